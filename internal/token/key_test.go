package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var urlSafe16 = regexp.MustCompile(`^[A-Za-z0-9_-]{16}$`)

func TestGenerateKey(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			k, err := GenerateKey(alg, seeded(1), t0)
			if err != nil {
				t.Fatalf("GenerateKey: %v", err)
			}
			if !urlSafe16.MatchString(k.ID) {
				t.Errorf("kid %q: want 16 url-safe characters", k.ID)
			}
			if k.Alg != alg || !k.CreatedAt.Equal(t0) || k.RetiredAt != nil {
				t.Errorf("key = {Alg:%s CreatedAt:%v RetiredAt:%v}", k.Alg, k.CreatedAt, k.RetiredAt)
			}
			if _, err := publicKeyFor(alg, k.Private); err != nil {
				t.Errorf("generated key does not fit its alg: %v", err)
			}
			other, err := GenerateKey(alg, seeded(2), t0)
			if err != nil {
				t.Fatal(err)
			}
			if other.ID == k.ID {
				t.Errorf("two keys share kid %q", k.ID)
			}
		})
	}
	if k := mustKey(t, RS256, t0); k.Private.(*rsa.PrivateKey).N.BitLen() != 2048 {
		t.Errorf("RSA key has %d bits, want 2048", k.Private.(*rsa.PrivateKey).N.BitLen())
	}
	if k := mustKey(t, HS256, t0); len(k.Private.([]byte)) != 32 {
		t.Errorf("HMAC secret has %d bytes, want 32", len(k.Private.([]byte)))
	}
}

func TestGenerateKeyErrors(t *testing.T) {
	if _, err := GenerateKey("none", nil, t0); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("alg none: err = %v, want ErrUnsupportedAlg", err)
	}
	if _, err := GenerateKey(HS256, bytes.NewReader(make([]byte, 20)), t0); err == nil {
		t.Error("GenerateKey succeeded with too little randomness")
	}
}

func TestMarshalParsePrivateRoundTrip(t *testing.T) {
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			k := mustKey(t, alg, t0)
			data, err := MarshalPrivate(k)
			if err != nil {
				t.Fatalf("MarshalPrivate: %v", err)
			}
			if alg != HS256 {
				block, _ := pem.Decode(data)
				if block == nil || block.Type != "PRIVATE KEY" {
					t.Fatalf("MarshalPrivate did not produce a PKCS#8 PEM:\n%s", data)
				}
			}
			got, err := ParsePrivate(k.ID, alg, data, t0)
			if err != nil {
				t.Fatalf("ParsePrivate: %v", err)
			}
			if diff := cmp.Diff(k, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// Keys made by openssl often come as SEC 1 or PKCS#1 PEM rather than PKCS#8.
func TestParsePrivateAcceptsLegacyPEM(t *testing.T) {
	ec := mustKey(t, ES256, t0)
	sec1, err := x509.MarshalECPrivateKey(ec.Private.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	rs := mustKey(t, RS256, t0)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rs.Private.(*rsa.PrivateKey))

	for _, k := range []struct {
		key   Key
		label string
		der   []byte
	}{{ec, "EC PRIVATE KEY", sec1}, {rs, "RSA PRIVATE KEY", pkcs1}} {
		data := pem.EncodeToMemory(&pem.Block{Type: k.label, Bytes: k.der})
		got, err := ParsePrivate(k.key.ID, k.key.Alg, data, t0)
		if err != nil {
			t.Fatalf("%s: %v", k.label, err)
		}
		if diff := cmp.Diff(k.key, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k.label, diff)
		}
	}
}

func TestParsePrivateRejects(t *testing.T) {
	pemOf := func(k Key) []byte {
		data, err := MarshalPrivate(k)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	pkcs8 := func(private any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(private)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM, edPEM, rsaPEM := pemOf(mustKey(t, ES256, t0)), pemOf(mustKey(t, EdDSA, t0)), pemOf(mustKey(t, RS256, t0))
	ecPublic := publicPEM(t, mustKey(t, ES256, t0).Private.(*ecdsa.PrivateKey).Public())

	cases := []struct {
		name, id, alg string
		data          []byte
		want          error
	}{
		{"EC key as EdDSA", "k", EdDSA, ecPEM, ErrKeyMismatch},
		{"Ed25519 key as ES256", "k", ES256, edPEM, ErrKeyMismatch},
		{"RSA key as ES256", "k", ES256, rsaPEM, ErrKeyMismatch},
		{"EC key as RS256", "k", RS256, ecPEM, ErrKeyMismatch},
		{"P-384 key as ES256", "k", ES256, pkcs8(p384), ErrKeyMismatch},
		{"RSA 1024 as RS256", "k", RS256, pkcs8(rsa1024), ErrKeyMismatch},
		{"short HMAC secret", "k", HS256, make([]byte, 31), ErrKeyMismatch},
		{"public key PEM as HMAC secret", "k", HS256, ecPublic, ErrKeyMismatch},
		{"private key PEM as HMAC secret", "k", HS256, ecPEM, ErrKeyMismatch},
		{"public key PEM as ES256", "k", ES256, ecPublic, ErrMalformedKey},
		{"not PEM", "k", ES256, []byte("hello"), ErrMalformedKey},
		{"corrupt DER", "k", ES256, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), ErrMalformedKey},
		{"empty kid", "", ES256, ecPEM, ErrMalformedKey},
		{"unknown alg", "k", "PS256", rsaPEM, ErrUnsupportedAlg},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParsePrivate(tc.id, tc.alg, tc.data, t0); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMarshalPrivateRejectsMismatch(t *testing.T) {
	_, edPrivate, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Key{
		{ID: "k", Alg: ES256, Private: edPrivate},
		{ID: "k", Alg: HS256, Private: []byte("short")},
		{ID: "k", Alg: "none", Private: []byte{}},
	} {
		if _, err := MarshalPrivate(k); !errors.Is(err, ErrKeyMismatch) && !errors.Is(err, ErrUnsupportedAlg) {
			t.Errorf("MarshalPrivate(%s with %T): err = %v, want ErrKeyMismatch or ErrUnsupportedAlg", k.Alg, k.Private, err)
		}
	}
}

func TestParsePrivateCopiesHMACSecret(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	k, err := ParsePrivate("k", HS256, secret, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	secret[0] = 0
	if k.Private.([]byte)[0] != 7 {
		t.Error("the key shares memory with the caller's buffer")
	}
}
