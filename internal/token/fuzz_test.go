package token

import (
	"errors"
	"strings"
	"testing"
)

func FuzzVerify(f *testing.F) {
	key := mustKey(f, ES256, t0)
	iss := mustIssuer(f, testConfig(ES256), []Key{key}, fixedClock(t0))
	valid := mustIssue(f, iss)
	parts := strings.Split(valid, ".")

	f.Add(valid)
	f.Add(parts[0] + "." + parts[1] + "x." + parts[2])
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(parts[0] + ".." + parts[2])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("garbage")
	f.Add("")
	f.Add("...")
	f.Add("lrt_" + strings.Repeat("A", 43))

	f.Fuzz(func(t *testing.T, token string) {
		claims, err := iss.Verify(token)
		if err != nil {
			if errors.Is(err, ErrInvalid) == errors.Is(err, ErrExpired) {
				t.Fatalf("err = %v: want exactly one of ErrInvalid, ErrExpired", err)
			}
			return
		}
		if claims.Subject == "" || claims.SessionID == "" || claims.Issuer != testIssuer {
			t.Fatalf("accepted a token without the required claims: %+v", claims)
		}
	})
}
