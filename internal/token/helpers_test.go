package token

import (
	"encoding/base64"
	"encoding/json"
	mathrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	t0       = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	allAlgs  = []string{ES256, EdDSA, RS256, HS256}
	asymAlgs = []string{ES256, EdDSA, RS256}
)

const (
	testIssuer   = "https://latch.example.test"
	testAudience = "latch-api"
	testTTL      = 15 * time.Minute
)

func testConfig(alg string) Config {
	return Config{Issuer: testIssuer, Audience: testAudience, AccessTTL: testTTL, Alg: alg}
}

// seeded is a deterministic random source; not safe for concurrent use.
func seeded(seed byte) *mathrand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return mathrand.NewChaCha8(s)
}

func fixedClock(at time.Time) func() time.Time { return func() time.Time { return at } }

func mustKey(t testing.TB, alg string, created time.Time) Key {
	t.Helper()
	k, err := GenerateKey(alg, nil, created)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", alg, err)
	}
	return k
}

func mustIssuer(t testing.TB, cfg Config, keys []Key, now func() time.Time) *Issuer {
	t.Helper()
	iss, err := NewIssuer(cfg, keys, now, nil)
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func userClaims() Claims {
	return Claims{
		Subject:   "user-1",
		SessionID: "sess-1",
		TenantID:  "tenant-1",
		Email:     "ada@example.test",
		AMR:       []string{"pwd", "otp"},
		AuthTime:  t0.Add(-48 * time.Hour),
	}
}

func mustIssue(t testing.TB, iss *Issuer) string {
	t.Helper()
	tok, _, err := iss.Issue(userClaims())
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return tok
}

// validMapClaims are claims an issuer configured with testConfig accepts at t0.
func validMapClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": []string{testAudience},
		"sub": "user-1",
		"sid": "sess-1",
		"iat": t0.Unix(),
		"exp": t0.Add(testTTL).Unix(),
	}
}

// craft signs claims with any method and key, bypassing Issuer, so tests can
// build the tokens an attacker would. A nil header value removes that field.
func craft(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["typ"] = AccessTokenType
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
			continue
		}
		tok.Header[name] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("craft: %v", err)
	}
	return s
}

func decodeSegment(t testing.TB, token string, index int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[index])
	if err != nil {
		t.Fatalf("decode segment %d: %v", index, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("unmarshal segment %d: %v", index, err)
	}
	return m
}
