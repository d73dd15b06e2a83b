package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pquerna/otp"
	pqtotp "github.com/pquerna/otp/totp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/seal"
)

// Codes in these tests come from pquerna/otp's generator, not from Latch's own TOTP package.
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := pqtotp.GenerateCodeCustom(secret, at, pqtotp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongCode is a well-formed code that no step within the skew accepts.
func wrongCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	window := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		window[totpCode(t, secret, at.Add(d))] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !window[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

func (f *fixture) principal(access string) auth.Principal {
	f.t.Helper()
	p, err := f.svc.Authenticate(context.Background(), access, true)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// enrol signs a user up and turns their authenticator on, returning its secret and recovery codes.
// The clock then moves to the next step, so the code that enabled it is not what the test sends next.
func (f *fixture) enrol(email string) (secret string, recovery []string) {
	f.t.Helper()
	ctx := context.Background()
	p := f.principal(f.signup(email).AccessToken)
	setup, err := f.svc.SetupTOTP(ctx, p, pw, f.meta)
	if err != nil {
		f.t.Fatalf("setup: %v", err)
	}
	recovery, err = f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: totpCode(f.t, setup.Secret, f.clk.Now()), Meta: f.meta})
	if err != nil {
		f.t.Fatalf("enable: %v", err)
	}
	f.clk.Advance(30 * time.Second)
	return setup.Secret, recovery
}

func (f *fixture) amr(pair auth.TokenPair) []string {
	f.t.Helper()
	return f.principal(pair.AccessToken).Claims.AMR
}

func TestTOTPEnrolment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.principal(f.signup("ann@example.test").AccessToken)

	_, err := f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: "123456"})
	wantCode(t, err, auth.CodeTOTPSetupRequired)
	_, err = f.svc.SetupTOTP(ctx, p, "wrong password", f.meta)
	wantCode(t, err, auth.CodeInvalidCredentials)
	_, err = f.svc.SetupTOTP(ctx, p, "", f.meta)
	wantCode(t, err, auth.CodeValidation)

	first, err := f.svc.SetupTOTP(ctx, p, pw, f.meta)
	if err != nil {
		t.Fatal(err)
	}
	// Setting up again before enabling replaces the pending secret: the first one no longer enables.
	setup, err := f.svc.SetupTOTP(ctx, p, pw, f.meta)
	if err != nil {
		t.Fatal(err)
	}
	if setup.Secret == first.Secret || !strings.HasPrefix(setup.OTPAuthURL, "otpauth://totp/Latch:ann@example.test?") ||
		!strings.HasPrefix(setup.QRCode, "data:image/png;base64,") {
		t.Fatalf("second setup = %+v", setup)
	}
	_, err = f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: totpCode(t, first.Secret, f.clk.Now())})
	wantCode(t, err, auth.CodeInvalidOTP)
	_, err = f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: totpCode(t, setup.Secret, f.clk.Now()), Secret: first.Secret})
	ae := wantCode(t, err, auth.CodeValidation)
	if diff := cmp.Diff([]auth.FieldError{{Field: "secret", Message: "is not the secret of the pending setup"}}, ae.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	_, err = f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: "12345"})
	wantCode(t, err, auth.CodeValidation)

	// A client may send the secret back in lower case, as Directus clients do with what they were shown.
	codes, err := f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: totpCode(t, setup.Secret, f.clk.Now()), Secret: strings.ToLower(setup.Secret)})
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, c := range codes {
		distinct[c] = true
	}
	if len(codes) != 10 || len(distinct) != 10 {
		t.Errorf("recovery codes %v: want 10 distinct", codes)
	}
	me, err := f.svc.Me(ctx, p)
	if err != nil || !me.TOTPEnabled {
		t.Errorf("me = %+v, %v: want TOTP on", me, err)
	}
	_, err = f.svc.SetupTOTP(ctx, p, pw, f.meta)
	wantCode(t, err, auth.CodeTOTPAlreadyEnabled)
	_, err = f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: totpCode(t, setup.Secret, f.clk.Now())})
	wantCode(t, err, auth.CodeTOTPAlreadyEnabled)
}

func TestTOTPLogin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret, _ := f.enrol("ann@example.test")
	mails := len(f.store.Outbox())
	creds := auth.Credentials{Email: "ann@example.test", Password: pw, Meta: f.meta}

	_, err := f.svc.Login(ctx, creds)
	ae := wantCode(t, err, auth.CodeOTPRequired)
	if !strings.Contains(ae.Detail, "no code was emailed") {
		t.Errorf("otp_required detail %q does not say that no code was emailed", ae.Detail)
	}
	_, err = f.svc.SignIn(ctx, creds)
	wantCode(t, err, auth.CodeOTPRequired)
	if n := len(f.store.Outbox()); n != mails {
		t.Errorf("%d emails queued for a TOTP user's login without a code, want none", n-mails)
	}

	creds.OTP = totpCode(t, secret, f.clk.Now())
	res, err := f.svc.Login(ctx, creds)
	if err != nil || res.Tokens == nil {
		t.Fatalf("login with a TOTP code = %+v, %v; want tokens", res, err)
	}
	if diff := cmp.Diff([]string{"pwd", "otp", "mfa"}, f.amr(*res.Tokens)); diff != "" {
		t.Errorf("amr after a TOTP code (-want +got):\n%s", diff)
	}
	// The same code again, and the code of the step before it, are refused.
	_, err = f.svc.Login(ctx, creds)
	wantCode(t, err, auth.CodeInvalidOTP)
	creds.OTP = totpCode(t, secret, f.clk.Now().Add(-30*time.Second))
	_, err = f.svc.SignIn(ctx, creds)
	wantCode(t, err, auth.CodeInvalidOTP)
	// The next step, within the allowed skew, works through SignIn as well, and the session keeps its
	// amr across a refresh.
	creds.OTP = totpCode(t, secret, f.clk.Now().Add(30*time.Second))
	pair, err := f.svc.SignIn(ctx, creds)
	if err != nil {
		t.Fatalf("sign-in with the next step's code: %v", err)
	}
	if diff := cmp.Diff([]string{"pwd", "otp", "mfa"}, f.amr(f.mustRefresh(pair.RefreshToken))); diff != "" {
		t.Errorf("amr after a refresh (-want +got):\n%s", diff)
	}
	// Two steps ahead is beyond the skew.
	creds.OTP = totpCode(t, secret, f.clk.Now().Add(90*time.Second))
	_, err = f.svc.Login(ctx, creds)
	wantCode(t, err, auth.CodeInvalidOTP)

	if n := len(f.store.Outbox()); n != mails {
		t.Errorf("%d emails queued for a TOTP user's logins, want none", n-mails)
	}
}

func TestLoginCodeSentBeforeTOTPCannotSkipIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.principal(f.signup("ann@example.test").AccessToken)
	f.clk.Advance(time.Minute)
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw}); err != nil {
		t.Fatal(err)
	}
	code := f.lastCode("ann@example.test")
	setup, err := f.svc.SetupTOTP(ctx, p, pw, f.meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: totpCode(t, setup.Secret, f.clk.Now())}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.ValidateLogin(ctx, auth.CodeInput{Email: "ann@example.test", Code: code})
	wantCode(t, err, auth.CodeInvalidCode)
	_, err = f.svc.SignIn(ctx, auth.SignInInput{Email: "ann@example.test", Password: pw, OTP: code})
	wantCode(t, err, auth.CodeInvalidOTP)
}

func TestRecoveryCodesWorkOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, recovery := f.enrol("ann@example.test")
	creds := auth.Credentials{Email: "ann@example.test", Password: pw, Meta: f.meta}

	// Typed in upper case with a space instead of the dash, as people do.
	creds.OTP = strings.ToUpper(strings.Replace(recovery[0], "-", " ", 1))
	res, err := f.svc.Login(ctx, creds)
	if err != nil || res.Tokens == nil {
		t.Fatalf("login with a recovery code = %+v, %v", res, err)
	}
	if diff := cmp.Diff([]string{"pwd", "mfa"}, f.amr(*res.Tokens)); diff != "" {
		t.Errorf("amr after a recovery code (-want +got):\n%s", diff)
	}
	creds.OTP = recovery[0]
	_, err = f.svc.Login(ctx, creds)
	wantCode(t, err, auth.CodeInvalidOTP)
	_, err = f.svc.SignIn(ctx, auth.SignInInput{Email: "ann@example.test", Password: pw, OTP: recovery[1]})
	if err != nil {
		t.Fatalf("sign-in with another recovery code: %v", err)
	}
	creds.OTP = "zzzzz-zzzzz"
	_, err = f.svc.Login(ctx, creds)
	wantCode(t, err, auth.CodeInvalidOTP)
}

func TestWrongAuthenticatorCodesAreThrottledLikePasswords(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret, _ := f.enrol("ann@example.test")
	right := totpCode(t, secret, f.clk.Now())
	wrong := wrongCode(t, secret, f.clk.Now())
	var got []string
	for range specConfig.Throttle.FreeFailures + 1 {
		_, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, OTP: wrong, Meta: f.meta})
		got = append(got, auth.ErrorCode(err))
		// The right password alone must not wipe the count, or guesses could go on forever.
		_, err = f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, Meta: f.meta})
		got = append(got, auth.ErrorCode(err))
	}
	_, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, OTP: right, Meta: f.meta})
	got = append(got, auth.ErrorCode(err))
	var want []string
	for range specConfig.Throttle.FreeFailures {
		want = append(want, "invalid_otp", "otp_required")
	}
	want = append(want, "invalid_otp", "login_throttled", "login_throttled")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	// Another address is not locked out, and a success there resets the count.
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, OTP: right, Meta: auth.Meta{IP: "203.0.113.9"}}); err != nil {
		t.Fatalf("login from another IP: %v", err)
	}
	_, err = f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, Meta: f.meta})
	wantCode(t, err, auth.CodeOTPRequired)
}

func TestDisableTOTP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret, recovery := f.enrol("ann@example.test")
	res, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, OTP: recovery[0]})
	if err != nil {
		t.Fatal(err)
	}
	p := f.principal(res.Tokens.AccessToken)

	err = f.svc.DisableTOTP(ctx, p, auth.TOTPDisableInput{Code: totpCode(t, secret, f.clk.Now()), RequirePassword: true})
	ae := wantCode(t, err, auth.CodeValidation)
	if diff := cmp.Diff([]auth.FieldError{{Field: "password", Message: "is required"}}, ae.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	err = f.svc.DisableTOTP(ctx, p, auth.TOTPDisableInput{Password: pw, Code: "000000x"})
	wantCode(t, err, auth.CodeValidation)
	err = f.svc.DisableTOTP(ctx, p, auth.TOTPDisableInput{Password: "wrong password", Code: totpCode(t, secret, f.clk.Now())})
	wantCode(t, err, auth.CodeInvalidCredentials)
	err = f.svc.DisableTOTP(ctx, p, auth.TOTPDisableInput{Password: pw, Code: recovery[0]})
	wantCode(t, err, auth.CodeInvalidOTP)
	// Without a password where the surface does not ask for one (Directus), with a recovery code.
	if err := f.svc.DisableTOTP(ctx, p, auth.TOTPDisableInput{Code: recovery[1]}); err != nil {
		t.Fatalf("disable: %v", err)
	}
	err = f.svc.DisableTOTP(ctx, p, auth.TOTPDisableInput{Password: pw, Code: totpCode(t, secret, f.clk.Now())})
	wantCode(t, err, auth.CodeTOTPNotEnabled)

	// Logins are email-code logins again; the old recovery codes are gone.
	f.clk.Advance(time.Minute)
	res, err = f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw})
	if err != nil || res.Tokens != nil || res.ExpiresIn == 0 {
		t.Fatalf("login after disabling = %+v, %v; want a code emailed", res, err)
	}
	pair, err := f.svc.SignIn(ctx, auth.SignInInput{Email: "ann@example.test", Password: pw, OTP: f.lastCode("ann@example.test")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"pwd", "otp"}, f.amr(pair)); diff != "" {
		t.Errorf("amr of an emailed code (-want +got):\n%s", diff)
	}
	_, err = f.svc.SignIn(ctx, auth.SignInInput{Email: "ann@example.test", Password: pw, OTP: recovery[2]})
	wantCode(t, err, auth.CodeInvalidCode)
}

func TestLoginTakesTheEmailedCodeAsOTP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signup("ann@example.test")
	f.clk.Advance(time.Minute)
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw}); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, OTP: f.lastCode("ann@example.test")})
	if err != nil || res.Tokens == nil {
		t.Fatalf("login with the emailed code = %+v, %v; want tokens", res, err)
	}
	for _, bad := range []string{"12345", "1234567", "abcdef", "abcde-fghij-k"} {
		_, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, OTP: bad})
		ae := wantCode(t, err, auth.CodeValidation)
		if diff := cmp.Diff([]auth.FieldError{{Field: "otp", Message: "must be six digits or a recovery code"}}, ae.Fields); diff != "" {
			t.Errorf("otp %q: fields (-want +got):\n%s", bad, diff)
		}
	}
}

func TestTOTPSecretsMoveToTheNewKeyVersionAtLogin(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret, _ := f.enrol("ann@example.test")
	sealedVersion := func() uint32 {
		t.Helper()
		u, err := f.store.UserByEmail(ctx, auth.DefaultTenantID, "ann@example.test")
		if err != nil {
			t.Fatal(err)
		}
		factor, err := f.store.TOTPFactor(ctx, u.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		v, err := seal.KeyVersion(factor.Secret)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := sealedVersion(); v != 1 {
		t.Fatalf("enrolled under version %d, want the generated version 1", v)
	}
	generated, err := f.store.Secrets(ctx, auth.SecretTOTP, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An instance whose configured key (version 2) replaced the generated one, kept as the previous.
	withKeys := func(current seal.Secret, previous ...seal.Secret) *auth.Service {
		t.Helper()
		keyring, err := seal.NewKeyring(current, previous, nil)
		if err != nil {
			t.Fatal(err)
		}
		secrets, _, err := auth.LoadSecrets(ctx, f.store, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if secrets.TOTP, err = keyring.For(seal.PurposeTOTP); err != nil {
			t.Fatal(err)
		}
		svc := auth.New(specConfig, f.store, f.dir, mustKeys(t, f), cheapHasher(), secrets, nil)
		svc.Now = f.clk.Now
		return svc
	}
	v2 := seal.Secret{Version: 2, Material: []byte("the configured TOTP key, version 2")}
	rotated := withKeys(v2, seal.Secret{Version: 1, Material: generated[0]})
	if _, err := rotated.SignIn(ctx, auth.SignInInput{Email: "ann@example.test", Password: pw, OTP: totpCode(t, secret, f.clk.Now())}); err != nil {
		t.Fatalf("login under the rotated key: %v", err)
	}
	if v := sealedVersion(); v != 2 {
		t.Errorf("after a login the secret is sealed under version %d, want 2", v)
	}
	// The previous key can now go.
	f.clk.Advance(30 * time.Second)
	if _, err := withKeys(v2).SignIn(ctx, auth.SignInInput{Email: "ann@example.test", Password: pw, OTP: totpCode(t, secret, f.clk.Now())}); err != nil {
		t.Fatalf("login with the new key alone: %v", err)
	}
}

func TestSecondStepOffStillAsksTOTPUsersForTheirCode(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.CreateTenant(ctx, op, "quick", auth.TenantInput{Name: new("Quick"), SecondStep: new(auth.SecondStepOff)}); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"ann@example.test", "bob@example.test"} {
		if _, err := f.svc.CreateAccount(ctx, auth.NewAccount{Email: email, Password: pw, TenantID: "quick"}); err != nil {
			t.Fatal(err)
		}
	}
	// Without TOTP the password is enough there, and an otp sent along is not looked at.
	bob, err := f.svc.SignIn(ctx, auth.SignInInput{Email: "bob@example.test", Password: pw, OTP: "not a code", TenantID: "quick"})
	if err != nil {
		t.Fatalf("one-call sign-in in a tenant without a second step: %v", err)
	}
	if diff := cmp.Diff([]string{"pwd"}, f.amr(bob)); diff != "" {
		t.Errorf("amr without a second step (-want +got):\n%s", diff)
	}

	ann, err := f.svc.SignIn(ctx, auth.SignInInput{Email: "ann@example.test", Password: pw, TenantID: "quick"})
	if err != nil {
		t.Fatal(err)
	}
	p := f.principal(ann.AccessToken)
	setup, err := f.svc.SetupTOTP(ctx, p, pw, f.meta)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.EnableTOTP(ctx, p, auth.TOTPEnableInput{Code: totpCode(t, setup.Secret, f.clk.Now().Add(-30*time.Second))}); err != nil {
		t.Fatal(err)
	}
	in := auth.SignInInput{Email: "ann@example.test", Password: pw, TenantID: "quick"}
	_, err = f.svc.SignIn(ctx, in)
	wantCode(t, err, auth.CodeOTPRequired)
	_, err = f.svc.Login(ctx, in)
	wantCode(t, err, auth.CodeOTPRequired)
	in.OTP = "000000x"
	_, err = f.svc.SignIn(ctx, in)
	wantCode(t, err, auth.CodeInvalidOTP)
	in.OTP = totpCode(t, setup.Secret, f.clk.Now())
	pair, err := f.svc.SignIn(ctx, in)
	if err != nil {
		t.Fatalf("sign-in with the authenticator code: %v", err)
	}
	if diff := cmp.Diff([]string{"pwd", "otp", "mfa"}, f.amr(pair)); diff != "" {
		t.Errorf("amr (-want +got):\n%s", diff)
	}
}
