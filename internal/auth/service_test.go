package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/password"
	"github.com/latch-auth/latch/internal/seal"
	"github.com/latch-auth/latch/internal/token"
)

// These tests run the rules against the in-memory ports: the whole matrix in milliseconds, no
// database, no SMTP, no HTTP. The end-to-end suite in internal/app keeps what needs the real wiring.

const pw = "correct horse battery"

var specConfig = auth.Config{
	CodeTTL: 10 * time.Minute, CodeMaxAttempts: 5, ResendCooldown: time.Minute, CodesPerHour: 10, NoticesPerHour: 3,
	AccessTTL: 15 * time.Minute, RefreshIdleTTL: 168 * time.Hour, SessionMaxAge: 720 * time.Hour, ReuseGrace: 10 * time.Second,
	PasswordMinLength: 8, PasswordMaxLength: 256, TOTPIssuer: "Latch",
	Throttle: auth.ThrottleConfig{FreeFailures: 5, BaseDelay: 30 * time.Second, MaxDelay: 15 * time.Minute, Ceiling: 100},
}

type fixture struct {
	t     testing.TB
	clk   *authtest.Clock
	store *authtest.MemStore
	dir   *auth.Directory
	svc   *auth.Service
	meta  auth.Meta
}

// defaultTenant is the default tenant's configuration in the fixtures: the spec's defaults.
var defaultTenant = auth.TenantConfig{Default: auth.DefaultTenantSettings(), Issuer: "latch", CacheFor: auth.DefaultTenantCacheFor}

func newFixture(t testing.TB, edit ...func(*auth.Config)) *fixture {
	t.Helper()
	cfg := specConfig
	for _, e := range edit {
		e(&cfg)
	}
	clk := authtest.NewClock()
	st := authtest.NewMemStore(clk.Now)
	return startFixture(t, cfg, defaultTenant, clk, st)
}

// startFixture wires a service on an existing store and clock: a second instance of a deployment.
func startFixture(t testing.TB, cfg auth.Config, tc auth.TenantConfig, clk *authtest.Clock, st *authtest.MemStore) *fixture {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	dir, err := auth.NewDirectory(st, tc, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.LoadKeys(ctx, st, token.Config{Issuer: tc.Issuer, Audience: "latch", AccessTTL: cfg.AccessTTL, Alg: token.ES256,
		IssuerOf: dir.IssuerOf}, nil, clk.Now, log)
	if err != nil {
		t.Fatal(err)
	}
	secrets, _, err := auth.LoadSecrets(ctx, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyring, _, err := auth.LoadSealKeyring(ctx, st, auth.SecretTOTP, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secrets.TOTP, err = keyring.For(seal.PurposeTOTP); err != nil {
		t.Fatal(err)
	}
	svc := auth.New(cfg, st, dir, keys, cheapHasher(), secrets, log)
	svc.Now = clk.Now
	return &fixture{t: t, clk: clk, store: st, dir: dir, svc: svc, meta: auth.Meta{IP: "192.0.2.1", UserAgent: "test"}}
}

// cheapHasher hashes passwords with parameters far below OWASP's, so the rules run fast.
func cheapHasher() *password.Hasher {
	cheap := password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	return password.NewHasher(cheap, 4, time.Second, nil)
}

// lastCode is the code in the newest email to the address.
func (f *fixture) lastCode(email string) string {
	f.t.Helper()
	mails := f.store.Outbox()
	for i := len(mails) - 1; i >= 0; i-- {
		if mails[i].To != email {
			continue
		}
		var d mail.Data
		if err := json.Unmarshal([]byte(mails[i].Data), &d); err != nil {
			f.t.Fatal(err)
		}
		if d.Code == "" {
			f.t.Fatalf("the newest email to %s (%s) has no code", email, mails[i].Template)
		}
		return d.Code
	}
	f.t.Fatalf("no email to %s", email)
	return ""
}

func (f *fixture) signup(email string) auth.TokenPair {
	f.t.Helper()
	ctx := context.Background()
	if err := f.svc.Register(ctx, auth.Credentials{Email: email, Password: pw, Meta: f.meta}); err != nil {
		f.t.Fatal(err)
	}
	p, err := f.svc.ValidateRegister(ctx, auth.CodeInput{Email: email, Code: f.lastCode(email), Meta: f.meta})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// login runs both steps of a login into the default tenant with the fixture's password.
func (f *fixture) login(email string) auth.TokenPair {
	f.t.Helper()
	ctx := context.Background()
	f.clk.Advance(specConfig.ResendCooldown)
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: email, Password: pw, Meta: f.meta}); err != nil {
		f.t.Fatal(err)
	}
	p, err := f.svc.ValidateLogin(ctx, auth.CodeInput{Email: email, Code: f.lastCode(email), Meta: f.meta})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// disable disables the default tenant's account of an email as an operator does.
func (f *fixture) disable(email string) {
	f.t.Helper()
	ctx := context.Background()
	u, err := f.svc.FindUser(ctx, op, "", email)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.svc.UpdateUser(ctx, op, u.ID, auth.UserInput{Disabled: ptr(true)}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) refresh(tok string) (auth.TokenPair, error) {
	return f.svc.Refresh(context.Background(), tok, f.meta)
}

func (f *fixture) mustRefresh(tok string) auth.TokenPair {
	f.t.Helper()
	p, err := f.refresh(tok)
	if err != nil {
		f.t.Fatalf("refresh: %v", err)
	}
	if p.RefreshToken == tok || p.AccessToken == "" {
		f.t.Fatalf("refresh answered %+v: want a new pair", p)
	}
	return p
}

func wantCode(t *testing.T, err error, code string) *auth.Error {
	t.Helper()
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want catalogue code %q", err, code)
	}
	if ae.Code != code {
		t.Fatalf("code = %q (%v), want %q", ae.Code, err, code)
	}
	return ae
}

func TestRefreshRotatesAndTheOldTokenGetsTheSameSuccessorWithinTheGrace(t *testing.T) {
	f := newFixture(t)
	first := f.signup("ann@example.test")
	next := f.mustRefresh(first.RefreshToken)
	if next.SessionID != first.SessionID {
		t.Errorf("rotation moved to session %s, want %s", next.SessionID, first.SessionID)
	}
	f.clk.Advance(specConfig.ReuseGrace)
	for range 2 {
		again, err := f.refresh(first.RefreshToken)
		if err != nil {
			t.Fatalf("replay within the grace: %v", err)
		}
		if again.RefreshToken != next.RefreshToken || again.SessionID != first.SessionID {
			t.Fatalf("replay within the grace answered %+v, want the successor %s", again, next.RefreshToken)
		}
	}
	f.mustRefresh(next.RefreshToken)
}

func TestRefreshVerdictsThroughTheService(t *testing.T) {
	for _, c := range []struct {
		name   string
		config func(*auth.Config)
		// present brings a signed-up user's session to its state and returns the token to present.
		present func(f *fixture, p auth.TokenPair) string
		want    string // "" for success
	}{
		{"unused, just inside the idle window", nil, func(f *fixture, p auth.TokenPair) string {
			f.clk.Advance(specConfig.RefreshIdleTTL - time.Microsecond)
			return p.RefreshToken
		}, ""},
		{"unused, idle for the idle TTL", nil, func(f *fixture, p auth.TokenPair) string {
			f.clk.Advance(specConfig.RefreshIdleTTL)
			return p.RefreshToken
		}, auth.CodeSessionExpired},
		{"active past the absolute end", nil, func(f *fixture, p auth.TokenPair) string {
			tok := p.RefreshToken
			for f.clk.Advance(100 * time.Hour); ; f.clk.Advance(100 * time.Hour) {
				next, err := f.refresh(tok)
				if err != nil {
					return tok
				}
				tok = next.RefreshToken
			}
		}, auth.CodeSessionExpired},
		{"spent, after the grace", nil, func(f *fixture, p auth.TokenPair) string {
			f.mustRefresh(p.RefreshToken)
			f.clk.Advance(specConfig.ReuseGrace + time.Microsecond)
			return p.RefreshToken
		}, auth.CodeRefreshReused},
		{"spent, its successor used", nil, func(f *fixture, p auth.TokenPair) string {
			f.mustRefresh(f.mustRefresh(p.RefreshToken).RefreshToken)
			return p.RefreshToken
		}, auth.CodeRefreshReused},
		{"spent, no grace configured", func(c *auth.Config) { c.ReuseGrace = 0 }, func(f *fixture, p auth.TokenPair) string {
			f.mustRefresh(p.RefreshToken)
			return p.RefreshToken
		}, auth.CodeRefreshReused},
		{"spent, session idle since", nil, func(f *fixture, p auth.TokenPair) string {
			f.mustRefresh(p.RefreshToken)
			f.clk.Advance(specConfig.RefreshIdleTTL)
			return p.RefreshToken
		}, auth.CodeSessionExpired},
		{"logged out", nil, func(f *fixture, p auth.TokenPair) string {
			if err := f.svc.Logout(context.Background(), auth.LogoutInput{RefreshToken: p.RefreshToken}); err != nil {
				f.t.Fatal(err)
			}
			return p.RefreshToken
		}, auth.CodeSessionRevoked},
		{"account disabled", nil, func(f *fixture, p auth.TokenPair) string {
			f.disable("ann@example.test")
			return p.RefreshToken
		}, auth.CodeAccountDisabled},
		{"not a refresh token", nil, func(f *fixture, p auth.TokenPair) string { return "lrt_short" }, auth.CodeInvalidRefresh},
		{"well formed, never issued", nil, func(f *fixture, p auth.TokenPair) string {
			tok, err := token.NewRefreshToken(nil)
			if err != nil {
				f.t.Fatal(err)
			}
			return tok
		}, auth.CodeInvalidRefresh},
	} {
		t.Run(c.name, func(t *testing.T) {
			var edits []func(*auth.Config)
			if c.config != nil {
				edits = append(edits, c.config)
			}
			f := newFixture(t, edits...)
			_, err := f.refresh(c.present(f, f.signup("ann@example.test")))
			if c.want == "" {
				if err != nil {
					t.Fatalf("refresh: %v, want success", err)
				}
				return
			}
			wantCode(t, err, c.want)
		})
	}
}

func TestReuseEndsTheWholeSessionAndIsRecorded(t *testing.T) {
	f := newFixture(t)
	first := f.signup("ann@example.test")
	other := f.mustRefresh(first.RefreshToken)
	f.clk.Advance(time.Minute)
	_, err := f.refresh(first.RefreshToken)
	wantCode(t, err, auth.CodeRefreshReused)
	_, err = f.refresh(other.RefreshToken)
	wantCode(t, err, auth.CodeSessionRevoked)
	var kinds []string
	for _, ev := range f.store.Events() {
		if ev.SessionID == first.SessionID {
			kinds = append(kinds, ev.Kind)
		}
	}
	if diff := cmp.Diff([]string{"signup_validated", "refresh_token_reused"}, kinds); diff != "" {
		t.Errorf("events of the session (-want +got):\n%s", diff)
	}
}

func TestGraceReplayAfterTheRefreshSecretRotatedIsReuse(t *testing.T) {
	f := newFixture(t)
	first := f.signup("ann@example.test")
	f.mustRefresh(first.RefreshToken)
	// An instance that no longer holds the secret that derived the successor cannot hand it out again.
	other := auth.New(specConfig, f.store, f.dir, mustKeys(t, f), nil, auth.Secrets{Refresh: [][]byte{[]byte("another refresh secret of 32 bytes")}}, nil)
	other.Now = f.clk.Now
	_, err := other.Refresh(context.Background(), first.RefreshToken, f.meta)
	wantCode(t, err, auth.CodeRefreshReused)
}

func mustKeys(t *testing.T, f *fixture) *auth.Keys {
	t.Helper()
	keys, err := auth.LoadKeys(context.Background(), f.store, token.Config{Issuer: "latch", Audience: "latch", AccessTTL: time.Minute, Alg: token.ES256},
		nil, f.clk.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestWrongCodesCountDownThenTheCodeIsDead(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signup("ann@example.test")
	f.clk.Advance(time.Minute)
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, Meta: f.meta}); err != nil {
		t.Fatal(err)
	}
	right := f.lastCode("ann@example.test")
	wrong := "000000"
	if right == wrong {
		wrong = "000001"
	}
	var left []int
	for range 5 {
		_, err := f.svc.ValidateLogin(ctx, auth.CodeInput{Email: "ann@example.test", Code: wrong})
		ae := wantCode(t, err, auth.CodeInvalidCode)
		if ae.AttemptsRemaining == nil {
			t.Fatal("a wrong code on a live code does not say how many tries remain")
		}
		left = append(left, *ae.AttemptsRemaining)
	}
	if diff := cmp.Diff([]int{4, 3, 2, 1, 0}, left); diff != "" {
		t.Errorf("tries remaining (-want +got):\n%s", diff)
	}
	_, err := f.svc.ValidateLogin(ctx, auth.CodeInput{Email: "ann@example.test", Code: right})
	ae := wantCode(t, err, auth.CodeInvalidCode)
	if ae.AttemptsRemaining == nil || *ae.AttemptsRemaining != 0 {
		t.Errorf("the right code after the last try: remaining %v, want 0", ae.AttemptsRemaining)
	}
}

func TestInvalidCodeAnswersDoNotTellAccountsApart(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signup("ann@example.test")
	f.clk.Advance(time.Minute)
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw}); err != nil {
		t.Fatal(err)
	}
	code := f.lastCode("ann@example.test")
	for name, in := range map[string]auth.CodeInput{
		"unknown email":        {Email: "nobody@example.test", Code: code},
		"a code of no purpose": {Email: "ann@example.test", Code: code}, // validate-register: no signup code is live
	} {
		t.Run(name, func(t *testing.T) {
			_, err := f.svc.ValidateRegister(ctx, in)
			if ae := wantCode(t, err, auth.CodeInvalidCode); ae.AttemptsRemaining != nil {
				t.Errorf("attempts remaining %d told for no live code", *ae.AttemptsRemaining)
			}
		})
	}
	f.clk.Advance(specConfig.CodeTTL)
	_, err := f.svc.ValidateLogin(ctx, auth.CodeInput{Email: "ann@example.test", Code: code})
	if ae := wantCode(t, err, auth.CodeInvalidCode); ae.AttemptsRemaining != nil {
		t.Errorf("an expired code told %d tries remaining", *ae.AttemptsRemaining)
	}
}

func TestCodeCooldownAndHourlyCap(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) { c.CodesPerHour = 3 })
	ctx := context.Background()
	f.signup("ann@example.test") // a signup code: another purpose, another budget
	login := func() error {
		_, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw})
		return err
	}
	if err := login(); err != nil {
		t.Fatal(err)
	}
	ae := wantCode(t, login(), auth.CodeRecentlySent)
	if ae.RetryAfter != time.Minute {
		t.Errorf("cooldown Retry-After %v, want 1m", ae.RetryAfter)
	}
	for range 2 {
		f.clk.Advance(time.Minute)
		if err := login(); err != nil {
			t.Fatal(err)
		}
	}
	f.clk.Advance(time.Minute)
	ae = wantCode(t, login(), auth.CodeTooManyCodes)
	if want := time.Hour - 3*time.Minute; ae.RetryAfter != want {
		t.Errorf("hourly cap Retry-After %v, want %v", ae.RetryAfter, want)
	}
}

// TestAddressOnlyMailSpendsNoLoginCodes: forgot-password and a registration of a taken address need
// nothing but the address. However often a stranger sends them, the owner's correct password still
// gets a login code, and the registration answers as for a free address.
func TestAddressOnlyMailSpendsNoLoginCodes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signup("ann@example.test")
	stranger := auth.Meta{IP: "203.0.113.66"}
	for range specConfig.CodesPerHour {
		f.clk.Advance(specConfig.ResendCooldown)
		if err := f.svc.ForgotPassword(ctx, "ann@example.test", "", stranger); err != nil {
			t.Fatal(err)
		}
		f.svc.Drain() // the reset code is issued after the answer
		if err := f.svc.Register(ctx, auth.Credentials{Email: "ann@example.test", Password: "a stranger's password", Meta: stranger}); err != nil {
			t.Fatalf("register of a taken address: %v", err)
		}
	}
	f.clk.Advance(specConfig.ResendCooldown)
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, Meta: f.meta}); err != nil {
		t.Fatalf("the owner's login after a stranger's mail: %v", err)
	}
	sent := map[string]int{}
	for _, m := range f.store.Outbox() {
		sent[m.Template]++
	}
	want := map[string]int{mail.SignupCode: 1, mail.ResetCode: specConfig.CodesPerHour, mail.AlreadyRegistered: specConfig.NoticesPerHour, mail.LoginCode: 1}
	if diff := cmp.Diff(want, sent); diff != "" {
		t.Errorf("emails sent in the hour (-want +got):\n%s", diff)
	}
}

func TestPasswordFailuresWaitPerAccountAndIP(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) { c.ResendCooldown = 0 })
	ctx := context.Background()
	f.signup("ann@example.test")
	login := func(password, ip string) error {
		_, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: password, Meta: auth.Meta{IP: ip}})
		return err
	}
	for range 6 {
		wantCode(t, login("wrong password", "198.51.100.7"), auth.CodeInvalidCredentials)
	}
	ae := wantCode(t, login(pw, "198.51.100.7"), auth.CodeLoginThrottled)
	if ae.RetryAfter != specConfig.Throttle.BaseDelay {
		t.Errorf("Retry-After %v after the first failure past the free ones, want %v", ae.RetryAfter, specConfig.Throttle.BaseDelay)
	}
	// The owner on another address is not locked out by a stranger's failures.
	if err := login(pw, "203.0.113.9"); err != nil {
		t.Fatalf("login from another IP: %v", err)
	}
	// The success reset the account's counters for every address.
	if err := login(pw, "198.51.100.7"); err != nil {
		t.Fatalf("login after a success elsewhere: %v", err)
	}
}

func TestUnknownEmailIsThrottledLikeAKnownOne(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var got []string
	for range 7 {
		_, err := f.svc.Login(ctx, auth.Credentials{Email: "nobody@example.test", Password: "wrong password", Meta: f.meta})
		got = append(got, auth.ErrorCode(err))
	}
	want := []string{"invalid_credentials", "invalid_credentials", "invalid_credentials", "invalid_credentials",
		"invalid_credentials", "invalid_credentials", "login_throttled"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers for an unknown email (-want +got):\n%s", diff)
	}
}

func TestSignInInTwoCalls(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signup("ann@example.test")
	f.clk.Advance(time.Minute)
	in := auth.SignInInput{Email: "ann@example.test", Password: pw, Meta: f.meta}
	_, err := f.svc.SignIn(ctx, in)
	wantCode(t, err, auth.CodeOTPRequired)
	code := f.lastCode("ann@example.test")

	wrong := auth.SignInInput{Email: in.Email, Password: "wrong password", OTP: code, Meta: f.meta}
	_, err = f.svc.SignIn(ctx, wrong)
	wantCode(t, err, auth.CodeInvalidCredentials)

	in.OTP = code
	p, err := f.svc.SignIn(ctx, in)
	if err != nil {
		t.Fatalf("second call with the emailed code: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, p.AccessToken, true); err != nil {
		t.Errorf("the access token of a sign-in does not authenticate: %v", err)
	}
	_, err = f.svc.SignIn(ctx, in)
	wantCode(t, err, auth.CodeInvalidCode)

	in.OTP = "12345"
	_, err = f.svc.SignIn(ctx, in)
	ae := wantCode(t, err, auth.CodeValidation)
	if diff := cmp.Diff([]auth.FieldError{{Field: "otp", Message: "must be six digits or a recovery code"}}, ae.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestOperatorAccountsFollowTheRegistrationRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.svc.CreateAccount(ctx, auth.NewAccount{Email: " Op@Example.TEST ", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "op@example.test" || u.EmailVerifiedAt == nil || !u.Active() {
		t.Errorf("created %+v: want a normalised, verified, active account", u)
	}
	_, err = f.svc.CreateAccount(ctx, auth.NewAccount{Email: "op@example.test", Password: pw})
	wantCode(t, err, auth.CodeEmailTaken)
	_, err = f.svc.CreateAccount(ctx, auth.NewAccount{Email: "not an address", Password: "short"})
	ae := wantCode(t, err, auth.CodeValidation)
	if diff := cmp.Diff([]auth.FieldError{{Field: "email", Message: "must be a valid email address"}, {Field: "password", Message: "must be at least 8 characters"}}, ae.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	_, err = f.svc.FindUser(ctx, op, "", "nobody@example.test")
	wantCode(t, err, auth.CodeNotFound)
}

// TestAccessTokensCarryTheSessionStart: auth_time is when the session was opened, and every access
// token of the session carries the same one, whether the refresh rotated or replayed within the grace.
func TestAccessTokensCarryTheSessionStart(t *testing.T) {
	f := newFixture(t)
	opened := f.clk.Now().Truncate(time.Second)
	check := func(name string, p auth.TokenPair) {
		t.Helper()
		c, err := f.svc.Verify(context.Background(), p.AccessToken)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !c.AuthTime.Equal(opened) {
			t.Errorf("%s: auth_time = %v, want the session start %v", name, c.AuthTime, opened)
		}
		if want := f.clk.Now().Add(time.Duration(p.RefreshExpiresIn) * time.Second); p.RefreshExpiresAt.Sub(want).Abs() > time.Second {
			t.Errorf("%s: RefreshExpiresAt = %v, want now + RefreshExpiresIn = %v", name, p.RefreshExpiresAt, want)
		}
	}
	first := f.signup("start@example.test")
	check("validate", first)
	f.clk.Advance(time.Hour)
	check("rotate", f.mustRefresh(first.RefreshToken))
	f.clk.Advance(time.Second)
	replayed, err := f.refresh(first.RefreshToken)
	if err != nil {
		t.Fatalf("replay within the grace: %v", err)
	}
	check("grace", replayed)
}

func TestLogoutAllTakesALiveToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.signup("ann@example.test")
	next := f.mustRefresh(first.RefreshToken)
	logoutAll := func(tok string) error {
		return f.svc.Logout(ctx, auth.LogoutInput{RefreshToken: tok, All: true, Meta: f.meta})
	}
	f.clk.Advance(specConfig.ReuseGrace + time.Minute) // first is spent and past its grace
	other := f.signup("bob@example.test")
	f.clk.Advance(time.Minute)
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, Meta: f.meta}); err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.ValidateLogin(ctx, auth.CodeInput{Email: "ann@example.test", Code: f.lastCode("ann@example.test"), Meta: f.meta})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, logoutAll(first.RefreshToken), auth.CodeInvalidRefresh)
	next = f.mustRefresh(next.RefreshToken)
	if err := logoutAll(next.RefreshToken); err != nil {
		t.Fatalf("logout all with the live token: %v", err)
	}
	_, err = f.refresh(second.RefreshToken)
	wantCode(t, err, auth.CodeSessionRevoked)
	wantCode(t, logoutAll(next.RefreshToken), auth.CodeSessionRevoked)
	f.mustRefresh(other.RefreshToken)
}

// TestLifetimesAreWholeAtAnyInstant: expiresIn is the access token's lifetime and refreshExpiresIn
// the session's idle lifetime, whatever fraction of a second the request arrived at (the JWT's exp
// is in whole seconds, from its truncated iat).
func TestLifetimesAreWholeAtAnyInstant(t *testing.T) {
	for i, frac := range []time.Duration{0, 300 * time.Millisecond, 700 * time.Millisecond, 999 * time.Millisecond} {
		f := newFixture(t)
		f.clk.Advance(frac)
		p := f.signup(fmt.Sprintf("whole%d@example.test", i))
		got := [2]int64{p.ExpiresIn, p.RefreshExpiresIn}
		want := [2]int64{int64(specConfig.AccessTTL / time.Second), int64(specConfig.RefreshIdleTTL / time.Second)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("at %v past the second, [expiresIn refreshExpiresIn] (-want +got):\n%s", frac, diff)
		}
	}
}
