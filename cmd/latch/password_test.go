package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
)

// pwWantProblem fails unless r is a problem+json answer with the status and catalogue code.
func pwWantProblem(t testing.TB, r response, status int, code string) problemBody {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	p := r.Problem(t)
	if p.Code != code {
		t.Fatalf("code = %q, want %q; body %s", p.Code, code, r.Body)
	}
	return p
}

// pwWantField fails unless the validation problem names the field.
func pwWantField(t testing.TB, p problemBody, field string) {
	t.Helper()
	if !slices.ContainsFunc(p.Errors, func(e fieldError) bool { return e.Field == field }) {
		t.Fatalf("errors %+v do not name %q", p.Errors, field)
	}
}

// pwNextMail waits for the next email to the address and checks it is the named template: its subject
// must be what that template renders (with the code the message carries, if any).
func pwNextMail(h *harness, to, template string) mailtest.Received {
	h.t.Helper()
	m := h.mailTo(to)
	r, err := mail.NewRenderer("")
	if err != nil {
		h.t.Fatal(err)
	}
	code, _ := mailtest.ExtractCode(m.Text)
	want, err := r.Render(template, to, mail.Data{Code: code})
	if err != nil {
		h.t.Fatal(err)
	}
	if m.Subject != want.Subject {
		h.t.Fatalf("email to %s has subject %q, want the %s email %q", to, m.Subject, template, want.Subject)
	}
	return m
}

// pwResetCode asks for a password reset and returns the code emailed to the address.
func pwResetCode(h *harness, email string) string {
	h.t.Helper()
	expect(h.t, h.post("/v2/auth/password/forgot", map[string]string{"email": email}), http.StatusAccepted)
	code, ok := mailtest.ExtractCode(pwNextMail(h, email, mail.ResetCode).Text)
	if !ok {
		h.t.Fatalf("no code in the reset email to %s", email)
	}
	return code
}

// pwOtherCode is a well-formed code different from code.
func pwOtherCode(code string) string {
	last := (code[5]-'0'+1)%10 + '0'
	return code[:5] + string(last)
}

// pwLoginStep sends only the password step of a login.
func pwLoginStep(h *harness, email, password string, headers ...string) response {
	h.t.Helper()
	return h.post("/v2/auth/login", map[string]string{"email": email, "password": password}, headers...)
}

// pwWithoutRequestID decodes a JSON object body and drops the per-request id.
func pwWithoutRequestID(t testing.TB, r response) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	delete(m, "requestId")
	return m
}

func TestPasswordForgotSameAnswerForUnknownEmail(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		h.signup("known@example.test", "first password")

		known := h.post("/v2/auth/password/forgot", map[string]string{"email": "Known@Example.test"})
		unknown := h.post("/v2/auth/password/forgot", map[string]string{"email": "nobody@example.test"})
		expect(t, known, http.StatusAccepted)
		expect(t, unknown, http.StatusAccepted)
		if diff := cmp.Diff(pwWithoutRequestID(t, known), pwWithoutRequestID(t, unknown)); diff != "" {
			t.Errorf("forgot answers differ between a known and an unknown email (-known +unknown):\n%s", diff)
		}
		if diff := cmp.Diff(known.Header.Get("Content-Type"), unknown.Header.Get("Content-Type")); diff != "" {
			t.Errorf("Content-Type differs (-known +unknown):\n%s", diff)
		}
		pwNextMail(h, "known@example.test", mail.ResetCode)
		for _, m := range h.smtp.Messages() {
			if slices.Contains(m.To, "nobody@example.test") {
				t.Errorf("an unknown address got an email: %q", m.Subject)
			}
		}
	})
}

func TestPasswordResetRevokesEverySession(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		const email, oldPW, newPW = "reset@example.test", "old password 1", "new password 2"
		first := h.signup(email, oldPW)
		second := h.login(email, oldPW)

		code := pwResetCode(h, email)

		// Validation comes first and costs no try of the code.
		p := pwWantProblem(t, h.post("/v2/auth/password/reset", map[string]string{"email": email, "emailToken": code, "newPassword": "short"}),
			http.StatusBadRequest, "validation_failed")
		pwWantField(t, p, "newPassword")

		p = pwWantProblem(t, h.post("/v2/auth/password/reset", map[string]string{"email": email, "emailToken": pwOtherCode(code), "newPassword": newPW}),
			http.StatusUnauthorized, "invalid_code")
		if p.AttemptsRemaining == nil || *p.AttemptsRemaining != h.cfg.Codes.MaxAttempts-1 {
			t.Errorf("attemptsRemaining = %v after one wrong try, want %d", p.AttemptsRemaining, h.cfg.Codes.MaxAttempts-1)
		}
		// A wrong code changed nothing.
		expect(t, h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(first.AccessToken)...), http.StatusOK)

		r := h.post("/v2/auth/password/reset", map[string]string{"email": email, "emailToken": code, "newPassword": newPW})
		expect(t, r, http.StatusOK)
		var msg struct {
			Message string `json:"message"`
		}
		r.JSON(t, &msg)
		if msg.Message == "" {
			t.Errorf("reset answer has no message: %s", r.Body)
		}

		for i, pair := range []tokenPair{first, second} {
			rr := h.post("/v2/auth/refresh", map[string]string{"refreshToken": pair.RefreshToken})
			if rr.Status != http.StatusUnauthorized {
				t.Errorf("session %d: refresh after reset = %d, want 401; body %s", i, rr.Status, rr.Body)
			}
			rs := h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(pair.AccessToken)...)
			if rs.Status != http.StatusUnauthorized {
				t.Errorf("session %d: GET sessions after reset = %d, want 401; body %s", i, rs.Status, rs.Body)
			}
		}
		pwNextMail(h, email, mail.PasswordChanged)

		// The code was spent by the reset.
		pwWantProblem(t, h.post("/v2/auth/password/reset", map[string]string{"email": email, "emailToken": code, "newPassword": "third password 3"}),
			http.StatusUnauthorized, "invalid_code")

		h.clock.Advance(h.cfg.Codes.ResendCooldown + time.Second)
		pwWantProblem(t, pwLoginStep(h, email, oldPW), http.StatusUnauthorized, "invalid_credentials")
		h.login(email, newPW)
	})
}

func TestPasswordResetUnknownEmailIsInvalidCode(t *testing.T) {
	h := newHarness(t, store.SQLite)
	pwWantProblem(t, h.post("/v2/auth/password/reset", map[string]string{"email": "ghost@example.test", "emailToken": "123456", "newPassword": "new password 2"}),
		http.StatusUnauthorized, "invalid_code")
}

func TestPasswordChange(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		const email, oldPW, newPW = "change@example.test", "old password 1", "new password 2"
		caller := h.signup(email, oldPW)
		other := h.login(email, oldPW)
		change := func(current, next string) response {
			return h.post("/v2/auth/password/change", map[string]string{"currentPassword": current, "newPassword": next}, bearer(caller.AccessToken)...)
		}

		pwWantProblem(t, h.post("/v2/auth/password/change", map[string]string{"currentPassword": oldPW, "newPassword": newPW}),
			http.StatusUnauthorized, "invalid_token")
		p := pwWantProblem(t, change(oldPW, "short"), http.StatusBadRequest, "validation_failed")
		pwWantField(t, p, "newPassword")
		pwWantProblem(t, change(oldPW, oldPW), http.StatusBadRequest, "password_unchanged")
		pwWantProblem(t, change("not the password", newPW), http.StatusUnauthorized, "invalid_credentials")
		// None of the refusals ended a session.
		expect(t, h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(other.AccessToken)...), http.StatusOK)

		expect(t, change(oldPW, newPW), http.StatusOK)

		r := h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(caller.AccessToken)...)
		expect(t, r, http.StatusOK)
		var live []struct {
			Current bool `json:"current"`
		}
		r.JSON(t, &live)
		var current []bool
		for _, s := range live {
			current = append(current, s.Current)
		}
		// Only the caller's session is left.
		if diff := cmp.Diff([]bool{true}, current); diff != "" {
			t.Errorf("live sessions after change, by current (-want +got):\n%s", diff)
		}
		expect(t, h.post("/v2/auth/refresh", map[string]string{"refreshToken": caller.RefreshToken}), http.StatusOK)
		pwWantProblem(t, h.post("/v2/auth/refresh", map[string]string{"refreshToken": other.RefreshToken}), http.StatusUnauthorized, "session_revoked")
		expect(t, h.do(http.MethodGet, "/v2/auth/sessions", nil, bearer(other.AccessToken)...), http.StatusUnauthorized)

		pwNextMail(h, email, mail.PasswordChanged)

		h.clock.Advance(h.cfg.Codes.ResendCooldown + time.Second)
		pwWantProblem(t, pwLoginStep(h, email, oldPW), http.StatusUnauthorized, "invalid_credentials")
		h.login(email, newPW)
	})
}

func TestPasswordBcryptImportIsUpgraded(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		const email, pw = "imported@example.test", "imported password"
		legacy, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		verified := h.clock.Now()
		u := auth.User{Email: email, EmailVerifiedAt: &verified}
		if err := h.app.Store.CreateUser(context.Background(), &u, string(legacy)); err != nil {
			t.Fatal(err)
		}

		pwWantProblem(t, pwLoginStep(h, email, "wrong password"), http.StatusUnauthorized, "invalid_credentials")
		if got := pwStoredHash(t, h, email); got != string(legacy) {
			t.Errorf("a failed login changed the stored hash to %q", got)
		}

		h.login(email, pw)
		if got := pwStoredHash(t, h, email); !strings.HasPrefix(got, "$argon2id$") {
			t.Errorf("stored hash after a bcrypt login = %q, want an $argon2id$ hash", got)
		}
		// The upgraded hash still opens the account.
		h.login(email, pw)
	})
}

func pwStoredHash(t testing.TB, h *harness, email string) string {
	t.Helper()
	u, err := h.app.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordHash
}

// An unknown email must cost what a wrong password costs, or login timing tells who has an account.
func TestPasswordUnknownEmailTakesAsLongAsWrongPassword(t *testing.T) {
	h := newHarness(t, store.Postgres, func(c *config.Config) {
		// Hashing must dominate the request for the comparison to mean anything.
		c.Password.Argon2Memory = 8192
		c.RateLimit.FreeFailures, c.RateLimit.AccountCeiling = 1_000_000, 1_000_000
	})
	const email = "timing@example.test"
	hash, err := h.app.Hasher.Hash(context.Background(), "the real password")
	if err != nil {
		t.Fatal(err)
	}
	verified := h.clock.Now()
	if err := h.app.Store.CreateUser(context.Background(), &auth.User{Email: email, EmailVerifiedAt: &verified}, hash); err != nil {
		t.Fatal(err)
	}

	timeLogin := func(email string) time.Duration {
		start := time.Now()
		pwWantProblem(t, pwLoginStep(h, email, "a wrong password"), http.StatusUnauthorized, "invalid_credentials")
		return time.Since(start)
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	const n = 15
	// A slow machine can make one round noisy; a missing dummy hash makes every round lopsided.
	var ratio float64
	for round := range 3 {
		timeLogin(email) // warm both paths
		timeLogin("warmup@example.test")
		var known, unknown []time.Duration
		for i := range n {
			known = append(known, timeLogin(email))
			unknown = append(unknown, timeLogin("nobody"+string(rune('a'+round))+string(rune('a'+i))+"@example.test"))
		}
		k, u := median(known), median(unknown)
		ratio = float64(max(k, u)) / float64(min(k, u))
		t.Logf("round %d: median wrong password %v, unknown email %v, ratio %.2f", round, k, u, ratio)
		if ratio <= 1.5 {
			return
		}
	}
	t.Errorf("login for an unknown email and for a wrong password differ in median time by %.2fx, want at most 1.5x", ratio)
}
