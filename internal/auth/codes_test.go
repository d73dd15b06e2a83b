package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func words(ns ...uint32) []byte {
	b := make([]byte, 0, 4*len(ns))
	for _, n := range ns {
		b = binary.BigEndian.AppendUint32(b, n)
	}
	return b
}

func TestNewCodeRejectsTheBiasedTail(t *testing.T) {
	const limit = 4_294_000_000 // the largest multiple of 10^6 not above 2^32
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"zero pads to six digits", words(42), "000042"},
		{"last accepted draw", words(limit - 1), "999999"},
		{"first rejected draw is skipped", words(limit, 7), "000007"},
		{"every rejected draw is skipped", words(1<<32-1, limit+123, 1_000_001), "000001"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := bytes.NewReader(c.in)
			got, err := newCode(r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("code (-want +got):\n%s", diff)
			}
			if r.Len() != 0 {
				t.Errorf("%d random bytes left unread", r.Len())
			}
		})
	}
}

func TestNewCodeReportsAShortRandomSource(t *testing.T) {
	// One rejected draw, then nothing.
	_, err := newCode(bytes.NewReader(words(1<<32 - 1)))
	if !errors.Is(err, io.EOF) {
		t.Errorf("err = %v, want io.EOF", err)
	}
	_, err = newCode(bytes.NewReader([]byte{1, 2}))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestNewCodeFromCryptoRandIsSixDigits(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		c, err := newCode(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != 6 || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("code %q is not six digits", c)
		}
		seen[c] = true
	}
	// 2000 draws from 10^6 values collide about twice on average; many more means a weak source.
	if len(seen) < 1980 {
		t.Errorf("only %d distinct codes in 2000 draws", len(seen))
	}
}

func TestCodeHashBindsUserPurposeAndCode(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	base := codeHash(key, "user-1", "login", "123456")
	if len(base) != sha256.Size {
		t.Fatalf("hash is %d bytes, want %d", len(base), sha256.Size)
	}
	if !bytes.Equal(base, codeHash(key, "user-1", "login", "123456")) {
		t.Fatal("codeHash is not deterministic")
	}
	plain := sha256.Sum256([]byte("123456"))
	if bytes.Equal(base, plain[:]) {
		t.Fatal("codeHash is an unkeyed hash of the code")
	}
	for name, other := range map[string][]byte{
		"another key":     codeHash([]byte("another key, another deployment"), "user-1", "login", "123456"),
		"another user":    codeHash(key, "user-2", "login", "123456"),
		"another purpose": codeHash(key, "user-1", "reset", "123456"),
		"another code":    codeHash(key, "user-1", "login", "123457"),
		// The separators keep shifted boundaries apart.
		"user/purpose boundary": codeHash(key, "user-1l", "ogin", "123456"),
		"purpose/code boundary": codeHash(key, "user-1", "login1", "23456"),
	} {
		if bytes.Equal(base, other) {
			t.Errorf("%s gives the same hash", name)
		}
	}
}
