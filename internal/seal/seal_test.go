package seal

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func secret(version uint32, fill byte) Secret {
	return Secret{Version: version, Material: bytes.Repeat([]byte{fill}, MinSecretBytes)}
}

func box(t testing.TB, p Purpose, current Secret, previous ...Secret) *Box {
	t.Helper()
	k, err := NewKeyring(current, previous, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.For(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sealBoth returns a value sealed in each form, so every property is checked on both.
func sealBoth(t testing.TB, b *Box, plaintext, aad []byte) map[string][]byte {
	t.Helper()
	bin, err := b.Seal(plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	text, err := b.SealText(plaintext, aad)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"binary": bin, "text": []byte(text)}
}

func TestRoundTrip(t *testing.T) {
	b := box(t, PurposeTOTP, secret(1, 'a'))
	for _, tt := range []struct {
		name           string
		plaintext, aad []byte
	}{
		{"empty", []byte{}, []byte("user-1")},
		{"no aad", []byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"), nil},
		{"binary plaintext", []byte{0, 0xff, 1, 2, 3}, []byte{0}},
		{"large", bytes.Repeat([]byte("x"), 1<<16), []byte("row 42")},
	} {
		for form, sealed := range sealBoth(t, b, tt.plaintext, tt.aad) {
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				got, err := b.Open(sealed, tt.aad)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.plaintext, got); diff != "" {
					t.Errorf("Open (-want +got):\n%s", diff)
				}
				if !IsSealed(sealed) {
					t.Error("IsSealed = false for a sealed value")
				}
			})
		}
	}
}

func TestTextFormIsTextSafe(t *testing.T) {
	b := box(t, PurposeOutbox, secret(7, 'a'))
	text, err := b.SealText([]byte(`{"code":"042917"}`), []byte("outbox-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "sealed:v1:7:") {
		t.Errorf("SealText = %q, want the prefix sealed:v1:7:", text)
	}
	for _, c := range text {
		if c > 0x7e || c < 0x21 {
			t.Fatalf("SealText = %q holds %q, want printable ASCII only", text, c)
		}
	}
}

func TestPurposesAreIsolated(t *testing.T) {
	purposes := []Purpose{PurposeTOTP, PurposeOutbox, PurposeSigningKeys, PurposeServerSecrets, "totp2", "tot"}
	k, err := NewKeyring(secret(1, 'a'), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	boxes := map[Purpose]*Box{}
	for _, p := range purposes {
		if boxes[p], err = k.For(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, from := range purposes {
		for form, sealed := range sealBoth(t, boxes[from], []byte("payload"), []byte("user-1")) {
			for _, to := range purposes {
				_, err := boxes[to].Open(sealed, []byte("user-1"))
				if from == to && err != nil {
					t.Errorf("%s sealed for %q, opened for %q: %v", form, from, to, err)
				}
				if from != to && !errors.Is(err, ErrTampered) {
					t.Errorf("%s sealed for %q, opened for %q: err = %v, want ErrTampered", form, from, to, err)
				}
			}
		}
	}
}

func TestEmptyPurposeRefused(t *testing.T) {
	k, err := NewKeyring(secret(1, 'a'), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.For(""); err == nil {
		t.Error("For(\"\") succeeded, want an error")
	}
}

func TestAssociatedDataBindsTheRow(t *testing.T) {
	b := box(t, PurposeTOTP, secret(1, 'a'))
	for form, sealed := range sealBoth(t, b, []byte("secret"), []byte("user-1")) {
		for _, aad := range [][]byte{nil, []byte("user-2"), []byte("user-1 "), []byte("user-")} {
			if _, err := b.Open(sealed, aad); !errors.Is(err, ErrTampered) {
				t.Errorf("%s sealed with user-1, opened with %q: err = %v, want ErrTampered", form, aad, err)
			}
		}
	}
}

func TestTamperingAnyByteFails(t *testing.T) {
	b := box(t, PurposeTOTP, secret(1, 'a'))
	for form, sealed := range sealBoth(t, b, []byte("JBSWY3DPEHPK3PXP"), []byte("user-1")) {
		for i := range sealed {
			for _, change := range []func(byte) byte{
				func(c byte) byte { return c ^ 0x01 },
				func(c byte) byte { return c ^ 0x80 },
				func(c byte) byte { return c ^ 0x20 }, // flips the case of a base64 letter
			} {
				mangled := bytes.Clone(sealed)
				mangled[i] = change(mangled[i])
				if _, err := b.Open(mangled, []byte("user-1")); !isOpenError(err) {
					t.Errorf("%s with byte %d changed: err = %v, want a sealing error", form, i, err)
				}
			}
		}
		for _, mangled := range [][]byte{
			sealed[:len(sealed)-1],
			append(bytes.Clone(sealed), 'A'),
			append(bytes.Clone(sealed), '\n'),
			append(sealed[:len(sealed)-1:len(sealed)-1], '\n', sealed[len(sealed)-1]),
		} {
			if _, err := b.Open(mangled, []byte("user-1")); !isOpenError(err) {
				t.Errorf("%s %q: err = %v, want a sealing error", form, mangled, err)
			}
		}
	}
}

func isOpenError(err error) bool {
	return errors.Is(err, ErrFormat) || errors.Is(err, ErrUnknownVersion) || errors.Is(err, ErrTampered)
}

func TestUnknownVersion(t *testing.T) {
	old := box(t, PurposeTOTP, secret(1, 'a'))
	newer := box(t, PurposeTOTP, secret(2, 'b'))
	for form, sealed := range sealBoth(t, old, []byte("secret"), nil) {
		if _, err := newer.Open(sealed, nil); !errors.Is(err, ErrUnknownVersion) {
			t.Errorf("%s: err = %v, want ErrUnknownVersion", form, err)
		}
	}
}

func TestChangedSecretUnderSameVersionFails(t *testing.T) {
	before := box(t, PurposeTOTP, secret(1, 'a'))
	after := box(t, PurposeTOTP, secret(1, 'b'))
	for form, sealed := range sealBoth(t, before, []byte("secret"), nil) {
		if _, err := after.Open(sealed, nil); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: err = %v, want ErrTampered", form, err)
		}
	}
}

func TestRotation(t *testing.T) {
	v1, v2 := secret(1, 'a'), secret(2, 'b')
	before := box(t, PurposeTOTP, v1)
	oldSealed := sealBoth(t, before, []byte("old"), []byte("user-1"))

	k, err := NewKeyring(v2, []Secret{v1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(uint32(2), k.CurrentVersion()); diff != "" {
		t.Errorf("CurrentVersion (-want +got):\n%s", diff)
	}
	after, err := k.For(PurposeTOTP)
	if err != nil {
		t.Fatal(err)
	}
	if before.CurrentVersion() != 1 || after.CurrentVersion() != 2 {
		t.Errorf("boxes seal under versions %d and %d, want 1 and 2", before.CurrentVersion(), after.CurrentVersion())
	}
	for form, sealed := range oldSealed {
		got, err := after.Open(sealed, []byte("user-1"))
		if err != nil {
			t.Fatalf("%s: v1 value after rotation: %v", form, err)
		}
		if diff := cmp.Diff([]byte("old"), got); diff != "" {
			t.Errorf("%s: Open (-want +got):\n%s", form, diff)
		}
		if v, err := KeyVersion(sealed); err != nil || v != 1 {
			t.Errorf("%s: KeyVersion of the old value = %d, %v; want 1", form, v, err)
		}
	}
	for form, sealed := range sealBoth(t, after, []byte("new"), []byte("user-1")) {
		if v, err := KeyVersion(sealed); err != nil || v != 2 {
			t.Errorf("%s: KeyVersion of a new value = %d, %v; want 2", form, v, err)
		}
		// An instance still on the old keyring cannot read it: roll the new secret out to every
		// instance (as a previous version) before making it current.
		if _, err := before.Open(sealed, []byte("user-1")); !errors.Is(err, ErrUnknownVersion) {
			t.Errorf("%s: old keyring opening a v2 value: err = %v, want ErrUnknownVersion", form, err)
		}
	}
}

func TestNoncesComeFromTheReader(t *testing.T) {
	nonce := bytes.Repeat([]byte{0x5a}, 12)
	k, err := NewKeyring(secret(1, 'a'), nil, bytes.NewReader(nonce))
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.For(PurposeTOTP)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(nonce, sealed[8:20]); diff != "" {
		t.Errorf("nonce (-want +got):\n%s", diff)
	}
	// The reader is now empty: a failed read must fail the seal, never fall back to a fixed nonce.
	if _, err := b.Seal([]byte("x"), nil); !errors.Is(err, io.EOF) {
		t.Errorf("Seal with an exhausted reader: err = %v, want io.EOF", err)
	}
}

func TestNoncesAreUnique(t *testing.T) {
	b := box(t, PurposeOutbox, secret(1, 'a'))
	seen := map[string]bool{}
	for range 10000 {
		sealed, err := b.Seal([]byte("same plaintext"), []byte("same row"))
		if err != nil {
			t.Fatal(err)
		}
		nonce := string(sealed[8:20])
		if seen[nonce] {
			t.Fatalf("nonce %x repeated", nonce)
		}
		seen[nonce] = true
	}
}

// TestKnownValue pins the format and key derivation: if this fails, values already in databases no
// longer open. The expected value was computed independently of this package, with HKDF-SHA256 and
// AES-GCM from Python's cryptography library over the documented layout.
func TestKnownValue(t *testing.T) {
	k, err := NewKeyring(Secret{Version: 3, Material: []byte("0123456789abcdef0123456789abcdef")}, nil,
		bytes.NewReader(bytes.Repeat([]byte{0x01}, 12)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := k.For(PurposeTOTP)
	if err != nil {
		t.Fatal(err)
	}
	const want = "sealed:v1:3:AQEBAQEBAQEBAQEBSh0M0w3uq_DtXN5D9EYEGu9VyZ19rn5Y9dLh"
	got, err := b.SealText([]byte("hello world"), []byte("user-1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SealText (-want +got):\n%s", diff)
	}
	plain, err := b.Open([]byte(want), []byte("user-1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("hello world", string(plain)); diff != "" {
		t.Errorf("Open (-want +got):\n%s", diff)
	}
}

func TestIsSealed(t *testing.T) {
	for _, tt := range []struct {
		stored string
		want   bool
	}{
		{"", false},
		{"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", false},
		{`{"code":"042917","to":"a@example.test"}`, false},
		{"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI...", false},
		{"sealed", false},
		// Marked values count as sealed even when damaged or from a newer format, so a reader never
		// takes them for plaintext.
		{"sealed:v1:1:", true},
		{"sealed:v9:1:AAAA", true},
		{"\xffsl\x02", true},
	} {
		if got := IsSealed([]byte(tt.stored)); got != tt.want {
			t.Errorf("IsSealed(%q) = %v, want %v", tt.stored, got, tt.want)
		}
	}
}

func TestMalformedValues(t *testing.T) {
	b := box(t, PurposeTOTP, secret(1, 'a'))
	valid, err := b.SealText([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(valid, "sealed:v1:1:")
	for _, stored := range []string{
		"",
		"JBSWY3DPEHPK3PXP",
		"sealed:v2:1:" + body,
		"sealed:v1:01:" + body,
		"sealed:v1:+1:" + body,
		"sealed:v1::" + body,
		"sealed:v1:1" + body,
		"sealed:v1:4294967296:" + body,
		"sealed:v1:1:" + body + "=",
		"sealed:v1:1:" + body[:10],
		"\xffsl\x01\x00\x00\x00\x01",
		"\xffsl\x02" + strings.Repeat("\x00", 40),
	} {
		if _, err := b.Open([]byte(stored), nil); !errors.Is(err, ErrFormat) {
			t.Errorf("Open(%q): err = %v, want ErrFormat", stored, err)
		}
		if _, err := KeyVersion([]byte(stored)); !errors.Is(err, ErrFormat) {
			t.Errorf("KeyVersion(%q): err = %v, want ErrFormat", stored, err)
		}
	}
}

func TestParseSecret(t *testing.T) {
	material := "Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
	for _, tt := range []struct {
		text string
		want Secret
	}{
		{material, Secret{Version: 1, Material: []byte(material)}},
		{"  " + material + "\n", Secret{Version: 1, Material: []byte(material)}},
		{"v2:" + material, Secret{Version: 2, Material: []byte(material)}},
		{"v4294967295:" + material, Secret{Version: 4294967295, Material: []byte(material)}},
		// Not a version prefix, so the whole text is the material.
		{"vault:" + material, Secret{Version: 1, Material: []byte("vault:" + material)}},
		{"v:" + material, Secret{Version: 1, Material: []byte("v:" + material)}},
	} {
		got, err := ParseSecret(tt.text)
		if err != nil {
			t.Errorf("ParseSecret(%q): %v", tt.text, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseSecret(%q) (-want +got):\n%s", tt.text, diff)
		}
	}
	for _, text := range []string{
		"",
		strings.Repeat("x", MinSecretBytes-1),
		"v2:" + strings.Repeat("x", MinSecretBytes-1),
		"v0:" + material,
		"v02:" + material,
		"v4294967296:" + material,
	} {
		if _, err := ParseSecret(text); !errors.Is(err, ErrSecret) {
			t.Errorf("ParseSecret(%q): err = %v, want ErrSecret", text, err)
		}
	}
}

func TestParseSecretNeverEchoesTheSecret(t *testing.T) {
	short := "hunter2-is-my-secret"
	_, err := ParseSecret(short)
	if err == nil || strings.Contains(err.Error(), short) {
		t.Errorf("ParseSecret error %v, want one that does not contain the secret", err)
	}
}

func TestNewKeyringRejects(t *testing.T) {
	for _, tt := range []struct {
		name     string
		current  Secret
		previous []Secret
	}{
		{"zero secret", Secret{}, nil},
		{"version 0", secret(0, 'a'), nil},
		{"short", Secret{Version: 1, Material: make([]byte, MinSecretBytes-1)}, nil},
		{"short previous", secret(2, 'a'), []Secret{{Version: 1, Material: []byte("x")}}},
		{"duplicate version", secret(1, 'a'), []Secret{secret(1, 'b')}},
	} {
		if _, err := NewKeyring(tt.current, tt.previous, nil); !errors.Is(err, ErrSecret) {
			t.Errorf("%s: err = %v, want ErrSecret", tt.name, err)
		}
	}
}

func TestKeyringCopiesMaterial(t *testing.T) {
	s := secret(1, 'a')
	b := box(t, PurposeTOTP, s)
	sealed, err := b.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Material[0] = 'z'
	// A keyring built after the change derives other keys; the first one must be unaffected.
	k, err := NewKeyring(secret(1, 'a'), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := k.For(PurposeTOTP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Open(sealed, nil); err != nil {
		t.Errorf("Open after the caller changed its buffer: %v", err)
	}
}

func FuzzOpen(f *testing.F) {
	b := box(f, PurposeTOTP, secret(1, 'a'), secret(2, 'b'))
	for _, sealed := range sealBoth(f, b, []byte("seed"), []byte("user-1")) {
		f.Add(sealed, []byte("user-1"))
	}
	f.Add([]byte("sealed:v1:1:"), []byte(nil))
	f.Add([]byte("sealed:v1:2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), []byte(nil))
	f.Add([]byte("\xffsl\x01\x00\x00\x00\x02"+strings.Repeat("\x00", 28)), []byte(nil))
	f.Add([]byte("JBSWY3DPEHPK3PXP"), []byte(nil))
	f.Fuzz(func(t *testing.T, stored, aad []byte) {
		if _, err := b.Open(stored, aad); err != nil {
			if !isOpenError(err) {
				t.Fatalf("Open: err = %v, want one of the package's errors", err)
			}
			return
		}
		if !IsSealed(stored) {
			t.Fatalf("Open accepted %q, which IsSealed denies", stored)
		}
		if v, err := KeyVersion(stored); err != nil || (v != 1 && v != 2) {
			t.Fatalf("KeyVersion = %d, %v after a successful Open", v, err)
		}
	})
}

func BenchmarkSealOpen(b *testing.B) {
	bx := box(b, PurposeTOTP, secret(1, 'a'))
	plaintext := []byte("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
	b.ReportAllocs()
	for b.Loop() {
		sealed, err := bx.SealText(plaintext, []byte("user-1"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bx.Open([]byte(sealed), []byte("user-1")); err != nil {
			b.Fatal(err)
		}
	}
}
