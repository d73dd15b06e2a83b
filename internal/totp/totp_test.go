package totp

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"
)

// rfcSecret is RFC 6238 Appendix B's SHA-1 seed, the ASCII string "12345678901234567890".
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

// TestRFC6238Vectors uses Appendix B's SHA-1 rows. The RFC prints eight digits; a six-digit code is
// the same truncated value modulo 10^6, i.e. its last six digits.
func TestRFC6238Vectors(t *testing.T) {
	for _, tt := range []struct {
		unix   int64
		rfc8   string
		step   uint64
		digits string
	}{
		{59, "94287082", 0x1, "287082"},
		{1111111109, "07081804", 0x23523EC, "081804"},
		{1111111111, "14050471", 0x23523ED, "050471"},
		{1234567890, "89005924", 0x273EF07, "005924"},
		{2000000000, "69279037", 0x3F940AA, "279037"},
		{20000000000, "65353130", 0x27BC86AA, "353130"},
	} {
		if diff := cmp.Diff(tt.rfc8[2:], tt.digits); diff != "" {
			t.Fatalf("table: six digits are not the RFC's last six (-want +got):\n%s", diff)
		}
		step, err := Validate(rfcSecret, tt.digits, time.Unix(tt.unix, 0))
		if err != nil {
			t.Errorf("Validate(%s at %d): %v", tt.digits, tt.unix, err)
			continue
		}
		if diff := cmp.Diff(tt.step, step); diff != "" {
			t.Errorf("step at %d (-want +got):\n%s", tt.unix, diff)
		}
	}
}

func TestWindowIsOneStepEachWay(t *testing.T) {
	const step = 0x273EF07 // 1234567890 / 30
	code := "005924"       // RFC 6238's code for that step, six digits
	start := time.Unix(step*30, 0)
	for _, tt := range []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"two steps early, last second", start.Add(-30*time.Second - time.Second), false},
		{"one step early, first second", start.Add(-30 * time.Second), true},
		{"one step early, last second", start.Add(-time.Second), true},
		{"on time, first second", start, true},
		{"on time, last second", start.Add(29 * time.Second), true},
		{"one step late, first second", start.Add(30 * time.Second), true},
		{"one step late, last second", start.Add(59 * time.Second), true},
		{"two steps late, first second", start.Add(60 * time.Second), false},
		{"ten steps late", start.Add(300 * time.Second), false},
	} {
		got, err := Validate(rfcSecret, code, tt.now)
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.ok && got != step:
			t.Errorf("%s: step = %d, want %d (the code's own step, not now's)", tt.name, got, step)
		case !tt.ok && !errors.Is(err, ErrInvalidCode):
			t.Errorf("%s: step %d, err = %v; want ErrInvalidCode", tt.name, got, err)
		}
	}
}

func TestFirstSteps(t *testing.T) {
	code, err := pqtotp.GenerateCode(rfcSecret, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// At the epoch there is no step -1 to try; step 0 must still be found.
	for _, unix := range []int64{0, 29, -1} {
		step, err := Validate(rfcSecret, code, time.Unix(unix, 0))
		if err != nil || step != 0 {
			t.Errorf("at %d: step %d, err %v; want step 0", unix, step, err)
		}
	}
}

// TestInteropWithPquerna checks that what an app (modelled by pquerna's generator) shows is what
// Validate accepts, across many times, for secrets from Generate.
func TestInteropWithPquerna(t *testing.T) {
	e, err := Generate("Latch", "alice@example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{e.Secret, rfcSecret} {
		for unix := int64(1_700_000_000); unix < 1_700_000_000+3600*24; unix += 997 {
			now := time.Unix(unix, 0)
			code, err := pqtotp.GenerateCode(secret, now)
			if err != nil {
				t.Fatal(err)
			}
			step, err := Validate(secret, code, now)
			if err != nil {
				t.Fatalf("Validate(pquerna's code %s at %d): %v", code, unix, err)
			}
			if diff := cmp.Diff(uint64(unix/30), step); diff != "" {
				t.Fatalf("step at %d (-want +got):\n%s", unix, diff)
			}
			ok, err := pqtotp.ValidateCustom(code, secret, now, pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
			if err != nil || !ok {
				t.Fatalf("pquerna refuses its own code: %v, %v", ok, err)
			}
		}
	}
}

func TestSecretSpellings(t *testing.T) {
	now := time.Unix(1234567890, 0)
	padded := base32.StdEncoding.EncodeToString([]byte("1234567890123456")) // 16 bytes: padded
	code, err := pqtotp.GenerateCode(padded, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{padded, strings.TrimRight(padded, "="), strings.ToLower(padded)} {
		if _, err := Validate(secret, code, now); err != nil {
			t.Errorf("Validate with secret %q: %v", secret, err)
		}
	}
}

func TestMalformedCodesRefused(t *testing.T) {
	now := time.Unix(1234567890, 0)
	for _, code := range []string{
		"", "00592", "0059240", "005924 ", " 005924", "005 924", "00592a", "+05924", "-05924",
		"００５９２４", "٠٠٥٩٢٤", "005924\x00", "abcde-fghjk",
	} {
		// A secret that would fail shows the code was refused before any work on the secret.
		if _, err := Validate("!", code, now); !errors.Is(err, ErrInvalidCode) {
			t.Errorf("Validate(%q): err = %v, want ErrInvalidCode", code, err)
		}
	}
}

func TestWrongCodeRefused(t *testing.T) {
	if _, err := Validate(rfcSecret, "005925", time.Unix(1234567890, 0)); !errors.Is(err, ErrInvalidCode) {
		t.Errorf("err = %v, want ErrInvalidCode", err)
	}
}

func TestBadSecretsRefused(t *testing.T) {
	for _, secret := range []string{
		"",
		"not base32!",
		base32.StdEncoding.EncodeToString([]byte("fifteen bytes..")), // below 128 bits
		"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1",                           // 1 is not base32
	} {
		if _, err := Validate(secret, "123456", time.Unix(1234567890, 0)); !errors.Is(err, ErrInvalidSecret) {
			t.Errorf("Validate with secret %q: err = %v, want ErrInvalidSecret", secret, err)
		}
	}
}

func TestGenerate(t *testing.T) {
	raw := bytes.Repeat([]byte{0xA5}, 20)
	e, err := Generate("Latch Bank", "alice+totp@example.test", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(base32.StdEncoding.EncodeToString(raw), e.Secret); diff != "" {
		t.Errorf("Secret (-want +got):\n%s", diff)
	}
	if len(e.Secret) != 32 || strings.Contains(e.Secret, "=") {
		t.Errorf("Secret = %q, want 32 unpadded base32 characters", e.Secret)
	}

	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	type fields struct {
		Scheme, Host, Label, Issuer, Secret, Algorithm, Digits, Period string
	}
	q := u.Query()
	got := fields{u.Scheme, u.Host, u.Path, q.Get("issuer"), q.Get("secret"), q.Get("algorithm"), q.Get("digits"), q.Get("period")}
	want := fields{"otpauth", "totp", "/Latch Bank:alice+totp@example.test", "Latch Bank", e.Secret, "SHA1", "6", "30"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("otpauth URL %s (-want +got):\n%s", e.URL, diff)
	}
	// Apps read a space as %20; a '+' in the query would turn into a space.
	if strings.Contains(e.URL, " ") || strings.Contains(strings.SplitN(e.URL, "?", 2)[1], "+") {
		t.Errorf("URL %q is not fully escaped", e.URL)
	}

	key, err := otp.NewKeyFromURL(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	type keyFields struct {
		Issuer, Account string
		Period          uint64
		Digits          otp.Digits
		Algorithm       otp.Algorithm
	}
	if diff := cmp.Diff(keyFields{"Latch Bank", "alice+totp@example.test", 30, otp.DigitsSix, otp.AlgorithmSHA1},
		keyFields{key.Issuer(), key.AccountName(), key.Period(), key.Digits(), key.Algorithm()}); diff != "" {
		t.Errorf("key as an app parses it (-want +got):\n%s", diff)
	}
}

func TestGenerateIsRandom(t *testing.T) {
	a, err := Generate("Latch", "a@example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate("Latch", "a@example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Secret == b.Secret {
		t.Error("two enrolments got the same secret")
	}
}

func TestQRCodeIsAPNG(t *testing.T) {
	// The longest account the API allows (254 characters) must still fit the image.
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 180) + ".example"
	for _, account := range []string{"alice@example.test", long} {
		e, err := Generate("Latch", account, nil)
		if err != nil {
			t.Fatal(err)
		}
		data, ok := strings.CutPrefix(e.QRCode, "data:image/png;base64,")
		if !ok {
			t.Fatalf("QRCode = %.40q..., want a PNG data URL", e.QRCode)
		}
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("PNG decode: %v", err)
		}
		_, format, err := image.DecodeConfig(bytes.NewReader(raw))
		if err != nil || format != "png" {
			t.Errorf("DecodeConfig: format %q, err %v; want png", format, err)
		}
		if diff := cmp.Diff(image.Rect(0, 0, 320, 320), img.Bounds()); diff != "" {
			t.Errorf("bounds (-want +got):\n%s", diff)
		}
		// The quiet zone is white and the code itself has dark modules.
		dark := 0
		for y := 0; y < 320; y++ {
			for x := 0; x < 320; x++ {
				lum := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
				inside := x >= 32 && x < 288 && y >= 32 && y < 288
				if !inside && lum != 0xff {
					t.Fatalf("pixel (%d,%d) in the quiet zone is %d, want white", x, y, lum)
				}
				if inside && lum == 0 {
					dark++
				}
			}
		}
		if dark < 256*256/4 {
			t.Errorf("only %d dark pixels in the code area", dark)
		}
	}
}

func TestGenerateRefusesBadLabels(t *testing.T) {
	for _, tt := range []struct{ issuer, account string }{
		{"", "a@example.test"},
		{"Latch", ""},
		{"  ", "a@example.test"},
		{"Latch:Prod", "a@example.test"},
		{"Latch", `"a:b"@example.test`},
	} {
		if _, err := Generate(tt.issuer, tt.account, nil); !errors.Is(err, ErrInvalidLabel) {
			t.Errorf("Generate(%q, %q): err = %v, want ErrInvalidLabel", tt.issuer, tt.account, err)
		}
	}
}

func TestGenerateFailsWithoutRandomness(t *testing.T) {
	if _, err := Generate("Latch", "a@example.test", iotest.ErrReader(errors.New("no entropy"))); err == nil {
		t.Error("Generate succeeded with a failing reader")
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{"005924", "", "abcde-fghjk", "99999999999"} {
		f.Add(rfcSecret, s, int64(1234567890))
	}
	f.Add("gezdgnbvgy3tqojq====", "123456", int64(-5))
	f.Fuzz(func(t *testing.T, secret, code string, unix int64) {
		step, err := Validate(secret, code, time.Unix(unix, 0))
		if err != nil {
			if !errors.Is(err, ErrInvalidCode) && !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("err = %v, want ErrInvalidCode or ErrInvalidSecret", err)
			}
			return
		}
		if !isTOTPShape(code) {
			t.Fatalf("accepted %q", code)
		}
		if want, err := pqtotp.GenerateCodeCustom(secret, time.Unix(int64(step)*30, 0), pqtotp.ValidateOpts{}); err != nil || want != code {
			t.Fatalf("accepted %q at step %d, where the code is %q (%v)", code, step, want, err)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	now := time.Unix(1234567890, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Validate(rfcSecret, "005924", now); err != nil {
			b.Fatal(err)
		}
	}
}
