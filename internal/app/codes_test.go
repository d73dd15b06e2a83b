package app_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
)

// registerUnverified registers an account and returns the signup code it was sent, leaving the
// address unverified.
func registerUnverified(t *testing.T, h *apptest.Instance, email string) string {
	t.Helper()
	apptest.WantStatus(t, h.Post(t, "/v2/auth/register", apptest.Credentials(email, apptest.Password)), http.StatusCreated)
	return h.CodeFor(t, email)
}

// requestLoginCode asks for a login code (without moving the clock) and returns it.
func requestLoginCode(t *testing.T, h *apptest.Instance, email string) string {
	t.Helper()
	apptest.WantStatus(t, h.LoginStep(t, email, apptest.Password), http.StatusOK)
	return h.CodeFor(t, email)
}

// problemFields decodes a problem+json answer as a map, for comparing two answers member by member.
func problemFields(t *testing.T, r apptest.Response) map[string]any {
	t.Helper()
	r.Problem(t)
	return apptest.WithoutRequestID(t, r)
}

// wantInvalidCode requires the invalid_code answer telling the tries left (nil: no live code).
func wantInvalidCode(t *testing.T, r apptest.Response, remaining *int) {
	t.Helper()
	p := apptest.WantProblem(t, r, http.StatusUnauthorized, "invalid_code")
	if diff := cmp.Diff(remaining, p.AttemptsRemaining); diff != "" {
		t.Errorf("attemptsRemaining (-want +got):\n%s", diff)
	}
}

// wantTakenNotice registers a taken address again, written as registerAs, past the resend cooldown:
// the mailbox must get the already-registered notice, not a code.
func wantTakenNotice(t *testing.T, h *apptest.Instance, registerAs, mailbox string) {
	t.Helper()
	h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
	apptest.WantStatus(t, h.Post(t, "/v2/auth/register", apptest.Credentials(registerAs, apptest.Password)), http.StatusCreated)
	if m := h.MailTo(t, mailbox); strings.Contains(m.Subject, "code") {
		t.Errorf("registering %q again sent %q, want the already-registered notice", registerAs, m.Subject)
	}
}

func ptr[T any](v T) *T { return &v }

// validateAtOnce sends one validate-login request per code, all at once.
func validateAtOnce(t *testing.T, h *apptest.Instance, email string, codes []string) []apptest.Response {
	t.Helper()
	return apptest.AtOnce(t, len(codes), func(i int) (apptest.Response, error) {
		return h.Send(http.MethodPost, "/v2/auth/validate-login", apptest.EmailCode(email, codes[i]))
	})
}

func TestEmailCodes(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		ttl, cooldown := h.Config.Codes.TTL, h.Config.Codes.ResendCooldown

		t.Run("wrong code spends one try and leaves the code usable", func(t *testing.T) {
			h.Signup(t, "wrong@example.test", apptest.Password)
			code := requestLoginCode(t, h, "wrong@example.test")
			wantInvalidCode(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("wrong@example.test", apptest.OtherCode(code))), ptr(4))
			apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("wrong@example.test", code)), http.StatusOK)
		})

		t.Run("code expires after the ttl", func(t *testing.T) {
			h.Signup(t, "expired@example.test", apptest.Password)
			code := requestLoginCode(t, h, "expired@example.test")
			h.Clock.Advance(ttl - time.Second)
			wantInvalidCode(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("expired@example.test", apptest.OtherCode(code))), ptr(4))
			h.Clock.Advance(2 * time.Second)
			expired := h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("expired@example.test", code))
			wantInvalidCode(t, expired, nil)
			unknown := h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("nobody@example.test", code))
			if diff := cmp.Diff(problemFields(t, unknown), problemFields(t, expired)); diff != "" {
				t.Errorf("expired code and unknown email answer differently (-unknown +expired):\n%s", diff)
			}
		})

		t.Run("code works once", func(t *testing.T) {
			h.Signup(t, "once@example.test", apptest.Password)
			code := requestLoginCode(t, h, "once@example.test")
			apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("once@example.test", code)), http.StatusOK)
			wantInvalidCode(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("once@example.test", code)), nil)
		})

		t.Run("a new code replaces the old and says so", func(t *testing.T) {
			h.Signup(t, "replaced@example.test", apptest.Password)
			apptest.WantStatus(t, h.LoginStep(t, "replaced@example.test", apptest.Password), http.StatusOK)
			first := h.MailTo(t, "replaced@example.test")
			h.Clock.Advance(cooldown + time.Second)
			apptest.WantStatus(t, h.LoginStep(t, "replaced@example.test", apptest.Password), http.StatusOK)
			second := h.MailTo(t, "replaced@example.test")
			const replacedLine = "It replaces the code we sent you earlier"
			if strings.Contains(first.Text, replacedLine) {
				t.Errorf("first code email claims to replace one:\n%s", first.Text)
			}
			if !strings.Contains(second.Text, replacedLine) || !strings.Contains(second.HTML, replacedLine) {
				t.Errorf("second code email does not say it replaces the first:\n%s", second.Text)
			}
			firstCode, _ := mailtest.ExtractCode(first.Text)
			secondCode, _ := mailtest.ExtractCode(second.Text)
			if firstCode == secondCode {
				t.Skip("both codes drew the same six digits")
			}
			wantInvalidCode(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("replaced@example.test", firstCode)), ptr(4))
			apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("replaced@example.test", secondCode)), http.StatusOK)
		})

		t.Run("tries run out", func(t *testing.T) {
			h.Signup(t, "tries@example.test", apptest.Password)
			code := requestLoginCode(t, h, "tries@example.test")
			for left := 4; left >= 0; left-- {
				wantInvalidCode(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("tries@example.test", apptest.OtherCode(code))), ptr(left))
			}
			wantInvalidCode(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("tries@example.test", code)), ptr(0))
			// Starting over gives a working code.
			h.Login(t, "tries@example.test", apptest.Password)
		})

		t.Run("resend cooldown", func(t *testing.T) {
			h.Signup(t, "cooldown@example.test", apptest.Password)
			requestLoginCode(t, h, "cooldown@example.test")
			h.Clock.Advance(10 * time.Second)
			r := h.LoginStep(t, "cooldown@example.test", apptest.Password)
			apptest.WantProblem(t, r, http.StatusTooManyRequests, "code_recently_sent")
			if got := r.Header.Get("Retry-After"); got != "50" {
				t.Errorf("Retry-After = %q, want 50", got)
			}
			var logins int
			for _, row := range h.OutboxRowsTo(t, "cooldown@example.test") {
				if row.Template == "login_code" {
					logins++
				}
			}
			if logins != 1 {
				t.Errorf("%d login code emails queued, want 1", logins)
			}
			h.Clock.Advance(cooldown - 10*time.Second)
			apptest.WantStatus(t, h.LoginStep(t, "cooldown@example.test", apptest.Password), http.StatusOK)
		})

		t.Run("a used code ends its cooldown", func(t *testing.T) {
			// Logging in twice in a row (a second device) is no resend: the first code was used.
			h.Signup(t, "twice@example.test", apptest.Password)
			code := requestLoginCode(t, h, "twice@example.test")
			apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("twice@example.test", code)), http.StatusOK)
			h.Clock.Advance(time.Second)
			apptest.WantStatus(t, h.LoginStep(t, "twice@example.test", apptest.Password), http.StatusOK)
			second := h.CodeFor(t, "twice@example.test")
			// The new code is unused: its cooldown holds.
			apptest.WantProblem(t, h.LoginStep(t, "twice@example.test", apptest.Password), http.StatusTooManyRequests, "code_recently_sent")
			apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("twice@example.test", second)), http.StatusOK)
		})

		t.Run("register does not reveal a taken address", func(t *testing.T) {
			h.Signup(t, "taken@example.test", apptest.Password)
			h.Clock.Advance(cooldown + time.Second)
			fresh := h.Post(t, "/v2/auth/register", apptest.Credentials("fresh@example.test", apptest.Password))
			taken := h.Post(t, "/v2/auth/register", apptest.Credentials("taken@example.test", "another password entirely"))
			if fresh.Status != http.StatusCreated || taken.Status != fresh.Status || !bytes.Equal(taken.Body, fresh.Body) {
				t.Errorf("fresh: %d %s; taken: %d %s", fresh.Status, fresh.Body, taken.Status, taken.Body)
			}
			if _, ok := mailtest.ExtractCode(h.MailTo(t, "fresh@example.test").Text); !ok {
				t.Error("the fresh address got no code")
			}
			notice := h.MailTo(t, "taken@example.test")
			if _, ok := mailtest.ExtractCode(notice.Subject + "\n" + notice.Text); ok {
				t.Errorf("the taken address got a code:\n%s", notice.Text)
			}
			if notice.Subject == "" || strings.Contains(notice.Subject, "code") {
				t.Errorf("notice subject = %q, want the already-registered notice", notice.Subject)
			}
			// The notice left the password alone.
			h.Login(t, "taken@example.test", apptest.Password)
		})

		t.Run("login does not reveal an unknown address", func(t *testing.T) {
			h.Signup(t, "known@example.test", apptest.Password)
			wrong := h.LoginStep(t, "known@example.test", "not the password")
			unknown := h.LoginStep(t, "unknown@example.test", "not the password")
			apptest.WantProblem(t, wrong, http.StatusUnauthorized, "invalid_credentials")
			if unknown.Status != wrong.Status {
				t.Errorf("unknown email: status %d, wrong password: %d", unknown.Status, wrong.Status)
			}
			if diff := cmp.Diff(problemFields(t, wrong), problemFields(t, unknown)); diff != "" {
				t.Errorf("answers differ (-wrong password +unknown email):\n%s", diff)
			}
		})

		t.Run("validate with an unknown address answers like a wrong code", func(t *testing.T) {
			h.Signup(t, "live@example.test", apptest.Password)
			code := requestLoginCode(t, h, "live@example.test")
			wrong := h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("live@example.test", apptest.OtherCode(code)))
			unknown := h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("ghost@example.test", code))
			wantInvalidCode(t, wrong, ptr(4))
			wantInvalidCode(t, unknown, nil)
			w, u := problemFields(t, wrong), problemFields(t, unknown)
			delete(w, "attemptsRemaining")
			if diff := cmp.Diff(w, u); diff != "" {
				t.Errorf("answers differ beyond attemptsRemaining (-wrong code +unknown email):\n%s", diff)
			}
		})

		t.Run("concurrent validations of one code: exactly one wins", func(t *testing.T) {
			h.Signup(t, "race@example.test", apptest.Password)
			code := requestLoginCode(t, h, "race@example.test")
			var ok, refused int
			for _, r := range validateAtOnce(t, h, "race@example.test", slices.Repeat([]string{code}, 10)) {
				switch r.Status {
				case http.StatusOK:
					ok++
				case http.StatusUnauthorized:
					// A loser either found the code used (no live code: no count) or found its
					// tries spent by the racing right guesses, which count before they compare.
					if p := apptest.WantProblem(t, r, http.StatusUnauthorized, "invalid_code"); p.AttemptsRemaining != nil && *p.AttemptsRemaining != 0 {
						t.Errorf("a loser was told %d tries remain", *p.AttemptsRemaining)
					}
					refused++
				default:
					t.Errorf("status %d: %s", r.Status, r.Body)
				}
			}
			if ok != 1 || refused != 9 {
				t.Errorf("%d successes and %d refusals, want 1 and 9", ok, refused)
			}
		})

		t.Run("concurrent wrong guesses spend at most max_attempts tries", func(t *testing.T) {
			h.Signup(t, "guess@example.test", apptest.Password)
			code := requestLoginCode(t, h, "guess@example.test")
			var left []int
			for _, r := range validateAtOnce(t, h, "guess@example.test", slices.Repeat([]string{apptest.OtherCode(code)}, 10)) {
				p := apptest.WantProblem(t, r, http.StatusUnauthorized, "invalid_code")
				if p.AttemptsRemaining == nil {
					t.Fatalf("no attemptsRemaining: %s", r.Body)
				}
				left = append(left, *p.AttemptsRemaining)
			}
			slices.Sort(left)
			if diff := cmp.Diff([]int{0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, left); diff != "" {
				t.Errorf("attemptsRemaining (-want +got):\n%s", diff)
			}
			wantInvalidCode(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode("guess@example.test", code)), ptr(0))
		})

		t.Run("a code is good for its purpose only", func(t *testing.T) {
			const email = "purpose@example.test"
			signupCode := registerUnverified(t, h, email)
			loginCode := requestLoginCode(t, h, email)
			if signupCode == loginCode {
				t.Skip("both codes drew the same six digits")
			}
			// A signup code's tries are not told: a stranger can make one exist (see hardening_test.go).
			wantInvalidCode(t, h.Post(t, "/v2/auth/validate-register", apptest.EmailCode(email, loginCode)), nil)
			wantInvalidCode(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode(email, signupCode)), ptr(4))
			reset := map[string]string{"email": email, "emailToken": loginCode, "newPassword": "a brand new password"}
			wantInvalidCode(t, h.Post(t, "/v2/auth/password/reset", reset), nil)
			apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode(email, loginCode)), http.StatusOK)
			apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-register", apptest.EmailCode(email, signupCode)), http.StatusOK)
		})

		t.Run("login works before verification and validate-login verifies", func(t *testing.T) {
			registerUnverified(t, h, "unverified@example.test")
			pair := h.Login(t, "unverified@example.test", apptest.Password)
			if me := h.Me(t, pair.AccessToken); !me.EmailVerified {
				t.Errorf("me = %+v, want emailVerified", me)
			}
			// Now verified, the address is taken.
			wantTakenNotice(t, h, "unverified@example.test", "unverified@example.test")
		})

		t.Run("codes are stored as HMACs and scrubbed from the outbox once sent", func(t *testing.T) {
			h.Signup(t, "stored@example.test", apptest.Password)
			code := requestLoginCode(t, h, "stored@example.test")
			apptest.Eventually(t, "every outbox row is sent", func() bool {
				for _, r := range h.OutboxRows(t) {
					if !r.Sent {
						return false
					}
				}
				return true
			})
			for _, r := range h.OutboxRows(t) {
				if r.Data != nil {
					t.Errorf("sent %s to %s still holds its data: %s", r.Template, r.To, *r.Data)
				}
			}
			rows, err := h.App.Store.SQLDB().Query(`SELECT code_hash FROM email_codes`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			plain := sha256.Sum256([]byte(code))
			n := 0
			for rows.Next() {
				var hash []byte
				if err := rows.Scan(&hash); err != nil {
					t.Fatal(err)
				}
				n++
				if len(hash) != sha256.Size || bytes.Contains(hash, []byte(code)) || bytes.Equal(hash, plain[:]) ||
					bytes.Contains(hash, []byte(fmt.Sprintf("%x", plain))) {
					t.Errorf("stored code hash %x is not a keyed hash of %s", hash, code)
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Error("no code rows found")
			}
		})

		t.Run("email is case-insensitive", func(t *testing.T) {
			h.Signup(t, "Mixed@Example.test", apptest.Password)
			pair := h.Login(t, "mixed@example.TEST", apptest.Password)
			if me := h.Me(t, pair.AccessToken); me.Email != "mixed@example.test" {
				t.Errorf("me.email = %q, want mixed@example.test", me.Email)
			}
			wantTakenNotice(t, h, "  MIXED@example.test ", "mixed@example.test")
		})

		t.Run("unknown tenant", func(t *testing.T) {
			h.Signup(t, "tenant@example.test", apptest.Password)
			for _, tenant := range []string{"7c9e6679-7425-40de-944b-e07fc1f90ae7", "not-a-uuid"} {
				for _, path := range []string{"/v2/auth/login", "/v2/auth/register", "/v2/auth/validate-login", "/v2/auth/password/forgot"} {
					body := map[string]string{"email": "tenant@example.test", "password": apptest.Password, "emailToken": "123456", "tenantId": tenant}
					p := apptest.WantProblem(t, h.Post(t, path, body), http.StatusBadRequest, "validation_failed")
					if diff := cmp.Diff([]string{"tenantId"}, p.Fields()); diff != "" {
						t.Errorf("%s tenant %q: fields (-want +got):\n%s", path, tenant, diff)
					}
				}
			}
		})
	})
}

// TestHourlyCodeCap checks the per-user hourly cap, counted in the database: on Postgres the logins
// alternate between two instances, which must agree.
func TestHourlyCodeCap(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d, func(c *config.Config) { c.Codes.MaxPerHour = 3 })
		other := h
		if d == store.Postgres {
			other = h.StartPeer(t)
		}
		const email = "capped@example.test"
		h.Signup(t, email, apptest.Password) // a signup code, which spends none of the login codes
		step := h.Config.Codes.ResendCooldown + time.Second
		apptest.WantStatus(t, h.LoginStep(t, email, apptest.Password), http.StatusOK) // the first login code of the hour, at t0
		for _, inst := range []*apptest.Instance{other, h} {
			h.Clock.Advance(step)
			apptest.WantStatus(t, inst.LoginStep(t, email, apptest.Password), http.StatusOK)
		}
		h.Clock.Advance(step)
		r := other.LoginStep(t, email, apptest.Password)
		apptest.WantProblem(t, r, http.StatusTooManyRequests, "too_many_codes")
		wait := time.Hour - 3*step // until the login code at t0 leaves the window
		if got, want := r.Header.Get("Retry-After"), strconv.Itoa(int(wait/time.Second)); got != want {
			t.Fatalf("Retry-After = %q, want %s", got, want)
		}
		h.Clock.Advance(wait - time.Second)
		r = h.LoginStep(t, email, apptest.Password)
		apptest.WantProblem(t, r, http.StatusTooManyRequests, "too_many_codes")
		if got := r.Header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
		h.Clock.Advance(time.Second)
		apptest.WantStatus(t, other.LoginStep(t, email, apptest.Password), http.StatusOK)
	})
}
