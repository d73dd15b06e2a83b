package app_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
)

// wantField fails unless the validation problem names the field.
func wantField(t *testing.T, p apptest.Problem, field string) {
	t.Helper()
	if !slices.Contains(p.Fields(), field) {
		t.Fatalf("errors %+v do not name %q", p.Errors, field)
	}
}

// nextMail waits for the next email to the address and checks it is the named template: its subject
// must be what that template renders (with the code the message carries, if any).
func nextMail(t *testing.T, h *apptest.Instance, to, template string) mailtest.Received {
	t.Helper()
	m := h.MailTo(t, to)
	r, err := mail.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := mailtest.ExtractCode(m.Text)
	want, err := r.Render(template, to, mail.Data{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != want.Subject {
		t.Fatalf("email to %s has subject %q, want the %s email %q", to, m.Subject, template, want.Subject)
	}
	return m
}

// resetCode asks for a password reset and returns the code emailed to the address.
func resetCode(t *testing.T, h *apptest.Instance, email string) string {
	t.Helper()
	apptest.WantStatus(t, h.Post(t, "/v2/auth/password/forgot", map[string]string{"email": email}), http.StatusAccepted)
	code, ok := mailtest.ExtractCode(nextMail(t, h, email, mail.ResetCode).Text)
	if !ok {
		t.Fatalf("no code in the reset email to %s", email)
	}
	return code
}

func storedHash(t *testing.T, h *apptest.Instance, email string) string {
	t.Helper()
	u, err := h.App.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordHash
}

func TestPasswordForgotSameAnswerForUnknownEmail(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.Signup(t, "known@example.test", "first password")

		known := h.Post(t, "/v2/auth/password/forgot", map[string]string{"email": "Known@Example.test"})
		unknown := h.Post(t, "/v2/auth/password/forgot", map[string]string{"email": "nobody@example.test"})
		apptest.WantStatus(t, known, http.StatusAccepted)
		apptest.WantStatus(t, unknown, http.StatusAccepted)
		if diff := cmp.Diff(apptest.WithoutRequestID(t, known), apptest.WithoutRequestID(t, unknown)); diff != "" {
			t.Errorf("forgot answers differ between a known and an unknown email (-known +unknown):\n%s", diff)
		}
		if diff := cmp.Diff(known.Header.Get("Content-Type"), unknown.Header.Get("Content-Type")); diff != "" {
			t.Errorf("Content-Type differs (-known +unknown):\n%s", diff)
		}
		nextMail(t, h, "known@example.test", mail.ResetCode)
		for _, m := range h.SMTP.Messages() {
			if slices.Contains(m.To, "nobody@example.test") {
				t.Errorf("an unknown address got an email: %q", m.Subject)
			}
		}
	})
}

func TestPasswordResetRevokesEverySession(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email, oldPW, newPW = "reset@example.test", "old password 1", "new password 2"
		first := h.Signup(t, email, oldPW)
		second := h.Login(t, email, oldPW)

		code := resetCode(t, h, email)

		// Validation comes first and costs no try of the code.
		p := apptest.WantProblem(t, h.Post(t, "/v2/auth/password/reset", map[string]string{"email": email, "emailToken": code, "newPassword": "short"}),
			http.StatusBadRequest, "validation_failed")
		wantField(t, p, "newPassword")

		p = apptest.WantProblem(t, h.Post(t, "/v2/auth/password/reset", map[string]string{"email": email, "emailToken": apptest.OtherCode(code), "newPassword": newPW}),
			http.StatusUnauthorized, "invalid_code")
		if p.AttemptsRemaining != nil {
			t.Errorf("a wrong reset code told %d tries remaining; a stranger could tell accounts apart by it", *p.AttemptsRemaining)
		}
		// A wrong code changed nothing.
		apptest.WantStatus(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(first.AccessToken)...), http.StatusOK)

		r := h.Post(t, "/v2/auth/password/reset", map[string]string{"email": email, "emailToken": code, "newPassword": newPW})
		apptest.WantStatus(t, r, http.StatusOK)
		var msg struct {
			Message string `json:"message"`
		}
		r.JSON(t, &msg)
		if msg.Message == "" {
			t.Errorf("reset answer has no message: %s", r.Body)
		}

		for i, pair := range []apptest.TokenPair{first, second} {
			rr := h.Refresh(t, pair.RefreshToken)
			if rr.Status != http.StatusUnauthorized {
				t.Errorf("session %d: refresh after reset = %d, want 401; body %s", i, rr.Status, rr.Body)
			}
			rs := h.Get(t, "/v2/auth/sessions", apptest.Bearer(pair.AccessToken)...)
			if rs.Status != http.StatusUnauthorized {
				t.Errorf("session %d: GET sessions after reset = %d, want 401; body %s", i, rs.Status, rs.Body)
			}
		}
		nextMail(t, h, email, mail.PasswordChanged)

		// The code was spent by the reset.
		apptest.WantProblem(t, h.Post(t, "/v2/auth/password/reset", map[string]string{"email": email, "emailToken": code, "newPassword": "third password 3"}),
			http.StatusUnauthorized, "invalid_code")

		h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
		apptest.WantProblem(t, h.LoginStep(t, email, oldPW), http.StatusUnauthorized, "invalid_credentials")
		h.Login(t, email, newPW)
	})
}

func TestPasswordResetUnknownEmailIsInvalidCode(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	apptest.WantProblem(t, h.Post(t, "/v2/auth/password/reset", map[string]string{"email": "ghost@example.test", "emailToken": "123456", "newPassword": "new password 2"}),
		http.StatusUnauthorized, "invalid_code")
}

// TestResetRefusedForDisabledAccount: a reset code issued before an operator disabled the account
// must not change its password.
func TestResetRefusedForDisabledAccount(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	const email = "gone@example.test"
	h.Signup(t, email, "original password")
	apptest.WantStatus(t, h.Post(t, "/v2/auth/password/forgot", map[string]string{"email": email}), http.StatusAccepted)
	code := h.CodeFor(t, email)
	cred, err := h.App.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email)
	if err != nil {
		t.Fatal(err)
	}
	u := cred.User
	if err := h.App.Store.SetUserStatus(context.Background(), u.ID, auth.StatusDisabled, auth.Event{}); err != nil {
		t.Fatal(err)
	}
	r := h.Post(t, "/v2/auth/password/reset", map[string]string{"email": email, "emailToken": code, "newPassword": "attacker password"})
	apptest.WantProblem(t, r, http.StatusUnauthorized, "account_disabled")
	after, err := h.App.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email)
	if err != nil {
		t.Fatal(err)
	}
	if after.PasswordHash != cred.PasswordHash {
		t.Error("the password of a disabled account changed")
	}
}

func TestPasswordChange(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email, oldPW, newPW = "change@example.test", "old password 1", "new password 2"
		caller := h.Signup(t, email, oldPW)
		other := h.Login(t, email, oldPW)
		change := func(current, next string) apptest.Response {
			return h.Post(t, "/v2/auth/password/change", map[string]string{"currentPassword": current, "newPassword": next}, apptest.Bearer(caller.AccessToken)...)
		}

		apptest.WantProblem(t, h.Post(t, "/v2/auth/password/change", map[string]string{"currentPassword": oldPW, "newPassword": newPW}),
			http.StatusUnauthorized, "invalid_token")
		p := apptest.WantProblem(t, change(oldPW, "short"), http.StatusBadRequest, "validation_failed")
		wantField(t, p, "newPassword")
		apptest.WantProblem(t, change(oldPW, oldPW), http.StatusBadRequest, "password_unchanged")
		apptest.WantProblem(t, change("not the password", newPW), http.StatusUnauthorized, "invalid_credentials")
		// None of the refusals ended a session.
		apptest.WantStatus(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(other.AccessToken)...), http.StatusOK)

		apptest.WantStatus(t, change(oldPW, newPW), http.StatusOK)

		r := h.Get(t, "/v2/auth/sessions", apptest.Bearer(caller.AccessToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
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
		apptest.WantStatus(t, h.Refresh(t, caller.RefreshToken), http.StatusOK)
		apptest.WantProblem(t, h.Refresh(t, other.RefreshToken), http.StatusUnauthorized, "session_revoked")
		apptest.WantStatus(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(other.AccessToken)...), http.StatusUnauthorized)

		nextMail(t, h, email, mail.PasswordChanged)

		h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
		apptest.WantProblem(t, h.LoginStep(t, email, oldPW), http.StatusUnauthorized, "invalid_credentials")
		h.Login(t, email, newPW)
	})
}

func TestPasswordBcryptImportIsUpgraded(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email, pw = "imported@example.test", "imported password"
		legacy, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		h.InsertVerifiedUsers(t, string(legacy), email)

		apptest.WantProblem(t, h.LoginStep(t, email, "wrong password"), http.StatusUnauthorized, "invalid_credentials")
		if got := storedHash(t, h, email); got != string(legacy) {
			t.Errorf("a failed login changed the stored hash to %q", got)
		}

		h.Login(t, email, pw)
		if got := storedHash(t, h, email); !strings.HasPrefix(got, "$argon2id$") {
			t.Errorf("stored hash after a bcrypt login = %q, want an $argon2id$ hash", got)
		}
		// The upgraded hash still opens the account.
		h.Login(t, email, pw)
	})
}

// An unknown email must cost what a wrong password costs, or login timing tells who has an account.
func TestPasswordUnknownEmailTakesAsLongAsWrongPassword(t *testing.T) {
	// What makes the two answers take as long is that both spend exactly one password hash of the same
	// cost: counted here through the hasher's own metric rather than timed, so a loaded machine cannot
	// make the test fail or pass by chance.
	h := apptest.New(t, store.Postgres, func(c *config.Config) {
		c.RateLimit.FreeFailures, c.RateLimit.AccountCeiling = 1_000_000, 1_000_000
	})
	const email = "timing@example.test"
	h.InsertVerifiedUsers(t, h.HashPassword(t, "the real password"), email)

	hashes := func() int {
		t.Helper()
		for _, line := range strings.Split(string(h.Get(t, "/metrics").Body), "\n") {
			if v, ok := strings.CutPrefix(line, "latch_password_hash_wait_seconds_count "); ok {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					t.Fatalf("hash count %q: %v", v, err)
				}
				return n
			}
		}
		return 0
	}
	for _, c := range []struct{ name, email string }{
		{"wrong password", email},
		{"unknown email", "nobody@example.test"},
		{"wrong password again", email},
		{"another unknown email", "nobody-else@example.test"},
	} {
		before := hashes()
		apptest.WantProblem(t, h.LoginStep(t, c.email, "a wrong password"), http.StatusUnauthorized, "invalid_credentials")
		if got := hashes() - before; got != 1 {
			t.Errorf("%s: %d password hashes, want 1 (both answers must do the same work)", c.name, got)
		}
	}
}
