package token

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewRefreshToken(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	got, err := NewRefreshToken(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("NewRefreshToken: %v", err)
	}
	if want := "lrt_" + base64.RawURLEncoding.EncodeToString(raw); got != want {
		t.Errorf("token = %q, want %q", got, want)
	}
	if len(got) != 47 {
		t.Errorf("len = %d, want 47", len(got))
	}
	decoded, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(got, "lrt_"))
	if err != nil || len(decoded) != 32 {
		t.Errorf("body decodes to %d bytes (err %v), want 32 bytes of entropy", len(decoded), err)
	}

	a, errA := NewRefreshToken(rand.Reader)
	b, errB := NewRefreshToken(rand.Reader)
	if errA != nil || errB != nil || a == b {
		t.Errorf("two random tokens: %q, %q (errs %v, %v)", a, b, errA, errB)
	}
	if _, err := NewRefreshToken(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("NewRefreshToken succeeded with 31 bytes of randomness")
	}
}

func TestHashRefreshToken(t *testing.T) {
	tok := "lrt_" + strings.Repeat("A", 43)
	want := sha256.Sum256([]byte(tok))
	if got := HashRefreshToken(tok); !bytes.Equal(got, want[:]) {
		t.Errorf("hash = %x, want SHA-256 of the whole token %x", got, want)
	}
	if bytes.Equal(HashRefreshToken(tok), HashRefreshToken(strings.TrimPrefix(tok, "lrt_"))) {
		t.Error("the prefix does not take part in the hash")
	}
}

func TestSuccessor(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, 32)
	parent, err := NewRefreshToken(seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	next := Successor(secret, parent)

	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parent))
	if want := "lrt_" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); next != want {
		t.Errorf("Successor = %q, want HMAC-SHA256 of the parent %q", next, want)
	}
	if again := Successor(secret, parent); again != next {
		t.Errorf("Successor is not deterministic: %q then %q", next, again)
	}
	if other := Successor(bytes.Repeat([]byte{2}, 32), parent); other == next {
		t.Error("Successor does not depend on the secret")
	}
	sibling, err := NewRefreshToken(seeded(4))
	if err != nil {
		t.Fatal(err)
	}
	if Successor(secret, sibling) == next {
		t.Error("Successor does not depend on the parent")
	}
	if next == parent || Successor(secret, next) == next {
		t.Error("a chain repeats itself")
	}
	if !LooksLikeRefreshToken(next) {
		t.Errorf("successor %q does not look like a refresh token", next)
	}
}

func TestLooksLikeRefreshToken(t *testing.T) {
	valid, err := NewRefreshToken(seeded(5))
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(valid, "lrt_")
	cases := []struct {
		name  string
		token string
		want  bool
	}{
		{"minted", valid, true},
		{"all zero bytes", "lrt_" + strings.Repeat("A", 43), true},
		{"all one bits", "lrt_" + strings.Repeat("_", 42) + "w", true},
		{"empty", "", false},
		{"no prefix", body, false},
		{"upper-case prefix", "LRT_" + body, false},
		{"one short", valid[:46], false},
		{"one long", valid + "A", false},
		{"padded", valid[:46] + "=", false},
		{"standard alphabet", "lrt_" + strings.Repeat("+", 42) + "A", false},
		{"slash", "lrt_" + strings.Repeat("/", 42) + "A", false},
		{"space", "lrt_" + strings.Repeat(" ", 42) + "A", false},
		{"non-canonical last character", "lrt_" + strings.Repeat("A", 42) + "B", false},
		{"non-ASCII", "lrt_" + strings.Repeat("A", 41) + "é", false},
		{"a JWT", "eyJhbGciOiJFUzI1NiJ9.e30.sig", false},
	}
	for _, tc := range cases {
		if got := LooksLikeRefreshToken(tc.token); got != tc.want {
			t.Errorf("%s: LooksLikeRefreshToken(%q) = %v, want %v", tc.name, tc.token, got, tc.want)
		}
	}
	for seed := range byte(50) {
		tok, err := NewRefreshToken(seeded(seed))
		if err != nil || !LooksLikeRefreshToken(tok) {
			t.Fatalf("minted token %q rejected (err %v)", tok, err)
		}
	}
}
