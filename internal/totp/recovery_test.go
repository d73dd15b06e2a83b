package totp

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

var recoveryShape = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$`)

func TestGenerateRecoveryCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		codes, err := GenerateRecoveryCodes(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) != 10 {
			t.Fatalf("got %d codes, want 10", len(codes))
		}
		for _, c := range codes {
			if !recoveryShape.MatchString(c) {
				t.Fatalf("code %q is not xxxxx-xxxxx over the unambiguous alphabet", c)
			}
			// 1000 codes of 50 bits: a repeat means the randomness is broken.
			if seen[c] {
				t.Fatalf("code %q repeated", c)
			}
			seen[c] = true
			norm, ok := NormalizeRecoveryCode(c)
			if !ok || norm != strings.ReplaceAll(c, "-", "") {
				t.Fatalf("NormalizeRecoveryCode(%q) = %q, %v", c, norm, ok)
			}
		}
	}
}

func TestRecoveryCodesComeFromTheReader(t *testing.T) {
	// Ten bytes per code; the second block repeats the first, so the generator must draw again
	// rather than hand out a duplicate.
	block := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 31}
	var stream []byte
	stream = append(stream, block...)
	stream = append(stream, block...)
	for i := range 9 {
		stream = append(stream, bytes.Repeat([]byte{byte(32 + i)}, 10)...)
	}
	codes, err := GenerateRecoveryCodes(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"01234-5678z", "00000-00000", "11111-11111", "22222-22222", "33333-33333",
		"44444-44444", "55555-55555", "66666-66666", "77777-77777", "88888-88888"}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	if _, err := GenerateRecoveryCodes(iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("GenerateRecoveryCodes succeeded with a failing reader")
	}
}

func TestNormalizeRecoveryCode(t *testing.T) {
	for _, tt := range []struct {
		input, want string
	}{
		{"abcde-fghjk", "abcdefghjk"},
		{"ABCDE-FGHJK", "abcdefghjk"},
		{"abcdefghjk", "abcdefghjk"},
		{"  abcde fghjk\t", "abcdefghjk"},
		{"ab-cd-ef-gh-jk", "abcdefghjk"},
		{"OoIiL-l0123", "0011110123"}, // letters read as the digits they resemble
	} {
		got, ok := NormalizeRecoveryCode(tt.input)
		if !ok {
			t.Errorf("NormalizeRecoveryCode(%q) refused", tt.input)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("NormalizeRecoveryCode(%q) (-want +got):\n%s", tt.input, diff)
		}
		if !IsRecoveryCode(tt.input) {
			t.Errorf("IsRecoveryCode(%q) = false", tt.input)
		}
	}
	for _, input := range []string{
		"", "123456", "005924", "abcde-fghj", "abcde-fghjkm", "abcde-fghju", "abcde_fghjk",
		"abcde-fghj\u212a", "ａbcde-fghjk", "abcde-fghjk\n", strings.Repeat("-", 1000) + "abcdefghjk",
	} {
		if got, ok := NormalizeRecoveryCode(input); ok {
			t.Errorf("NormalizeRecoveryCode(%q) = %q, want it refused", input, got)
		}
		if IsRecoveryCode(input) {
			t.Errorf("IsRecoveryCode(%q) = true", input)
		}
	}
}

func TestRecoveryCodeAndTOTPShapesAreDisjoint(t *testing.T) {
	codes, err := GenerateRecoveryCodes(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range codes {
		if isTOTPShape(c) {
			t.Errorf("recovery code %q has the TOTP shape", c)
		}
	}
	for _, c := range []string{"000000", "123456", "999999"} {
		if IsRecoveryCode(c) {
			t.Errorf("TOTP code %q taken for a recovery code", c)
		}
	}
}

func TestHashRecoveryCode(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	// Computed independently: HMAC-SHA256(key, "latch/totp/recovery-code/v1\x00" || "0123456789").
	const known = "e2217292ccf9fd68129c46a182656b68b24fcf06f8167ee4ef231bd59d08eadb"
	for _, spelling := range []string{"01234-56789", "0123456789", "O1234 56789", "o1234-56789 "} {
		got, err := HashRecoveryCode(key, spelling)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(known, got); diff != "" {
			t.Errorf("HashRecoveryCode(%q) (-want +got):\n%s", spelling, diff)
		}
	}
	other, err := HashRecoveryCode(key, "01234-5678a")
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := HashRecoveryCode(bytes.Repeat([]byte("j"), 32), "01234-56789")
	if err != nil {
		t.Fatal(err)
	}
	if other == known || otherKey == known {
		t.Error("a different code or key gave the same hash")
	}
}

func TestHashRecoveryCodeRefuses(t *testing.T) {
	if _, err := HashRecoveryCode(make([]byte, 31), "01234-56789"); !errors.Is(err, ErrWeakKey) {
		t.Errorf("short key: err = %v, want ErrWeakKey", err)
	}
	if _, err := HashRecoveryCode(nil, "01234-56789"); !errors.Is(err, ErrWeakKey) {
		t.Errorf("nil key: err = %v, want ErrWeakKey", err)
	}
	if _, err := HashRecoveryCode(make([]byte, 32), "123456"); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("TOTP-shaped input: err = %v, want ErrInvalidCode", err)
	}
}
