package app_test

import (
	"bytes"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

// loginWithCode sends a login carrying its second step from one of two instances, for AtOnce.
func loginWithCode(in *apptest.Instance, email, code string) (apptest.Response, error) {
	return in.Send(http.MethodPost, "/v2/auth/login", map[string]string{"email": email, "password": apptest.Password, "otp": code})
}

func TestTOTPStepAcceptedOnceAcrossInstances(t *testing.T) {
	// The refused replays are failed logins; the throttle must not end the test early.
	a := apptest.New(t, store.Postgres, func(c *config.Config) { c.RateLimit.FreeFailures = 100 })
	b := a.StartPeer(t)
	const email = "replay@example.test"
	secret, recovery := a.EnableTOTP(t, a.Signup(t, email, apptest.Password).AccessToken, apptest.Password)

	code := apptest.TOTPCode(t, secret, a.Clock.Now())
	answers := apptest.AtOnce(t, 10, func(i int) (apptest.Response, error) {
		return loginWithCode([]*apptest.Instance{a, b}[i%2], email, code)
	})
	var got []int
	for _, r := range answers {
		got = append(got, r.Status)
		if r.Status != http.StatusOK {
			apptest.WantProblem(t, r, http.StatusUnauthorized, "invalid_otp")
		}
	}
	if n := countStatus(got, http.StatusOK); n != 1 {
		t.Fatalf("the same code on two instances at once answered %v: want exactly one 200", got)
	}
	// Later, on either instance, the code and the one of the step before are still refused; the
	// next step's code works once.
	for _, in := range []*apptest.Instance{a, b} {
		apptest.WantProblem(t, in.LoginOTP(t, email, apptest.Password, code), http.StatusUnauthorized, "invalid_otp")
		apptest.WantProblem(t, in.LoginOTP(t, email, apptest.Password, apptest.TOTPCode(t, secret, a.Clock.Now().Add(-30*time.Second))),
			http.StatusUnauthorized, "invalid_otp")
	}
	next := apptest.TOTPCode(t, secret, a.Clock.Now().Add(30*time.Second))
	apptest.WantStatus(t, b.LoginOTP(t, email, apptest.Password, next), http.StatusOK)
	apptest.WantProblem(t, a.LoginOTP(t, email, apptest.Password, next), http.StatusUnauthorized, "invalid_otp")

	// A recovery code raced on both instances works once too.
	answers = apptest.AtOnce(t, 10, func(i int) (apptest.Response, error) {
		return loginWithCode([]*apptest.Instance{a, b}[i%2], email, recovery[0])
	})
	got = got[:0]
	for _, r := range answers {
		got = append(got, r.Status)
	}
	if n := countStatus(got, http.StatusOK); n != 1 {
		t.Fatalf("one recovery code on two instances at once answered %v: want exactly one 200", got)
	}
}

func countStatus(statuses []int, want int) int {
	n := 0
	for _, s := range statuses {
		if s == want {
			n++
		}
	}
	return n
}

func TestTOTPLoginInOneCall(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "one-call@example.test"
		secret, recovery := h.EnableTOTP(t, h.Signup(t, email, apptest.Password).AccessToken, apptest.Password)
		mails := len(h.OutboxRowsTo(t, email))

		// Without a code: otp_required, and no email, ever.
		h.Clock.Advance(h.Config.Codes.ResendCooldown)
		p := apptest.WantProblem(t, h.LoginStep(t, email, apptest.Password), http.StatusUnauthorized, "otp_required")
		if !strings.Contains(p.Detail, "no code was emailed") {
			t.Errorf("otp_required detail %q does not say that no code was emailed", p.Detail)
		}
		apptest.WantProblem(t, h.Post(t, "/v2/auth/login", map[string]string{"email": email, "password": apptest.Password, "otp": "12345"}),
			http.StatusBadRequest, "validation_failed")

		r := h.LoginOTP(t, email, apptest.Password, apptest.TOTPCode(t, secret, h.Clock.Now()))
		apptest.WantStatus(t, r, http.StatusOK)
		pair := r.TokenPair(t)
		_, claims := apptest.DecodeJWT(t, pair.AccessToken)
		if diff := cmp.Diff([]any{"pwd", "otp", "mfa"}, claims["amr"]); diff != "" {
			t.Errorf("amr of a TOTP login (-want +got):\n%s", diff)
		}
		// The session keeps how it was opened across rotations.
		_, claims = apptest.DecodeJWT(t, h.Rotate(t, pair.RefreshToken).AccessToken)
		if diff := cmp.Diff([]any{"pwd", "otp", "mfa"}, claims["amr"]); diff != "" {
			t.Errorf("amr after a refresh (-want +got):\n%s", diff)
		}

		// A recovery code works in place of the code, once, in any spelling.
		r = h.LoginOTP(t, email, apptest.Password, strings.ToUpper(recovery[3]))
		apptest.WantStatus(t, r, http.StatusOK)
		_, claims = apptest.DecodeJWT(t, r.TokenPair(t).AccessToken)
		if diff := cmp.Diff([]any{"pwd", "mfa"}, claims["amr"]); diff != "" {
			t.Errorf("amr of a recovery-code login (-want +got):\n%s", diff)
		}
		apptest.WantProblem(t, h.LoginOTP(t, email, apptest.Password, recovery[3]), http.StatusUnauthorized, "invalid_otp")
		apptest.WantProblem(t, h.LoginOTP(t, "nobody@example.test", apptest.Password, recovery[4]), http.StatusUnauthorized, "invalid_credentials")

		if n := len(h.OutboxRowsTo(t, email)); n != mails {
			t.Errorf("%d emails queued for a TOTP user's logins, want none", n-mails)
		}
	})
}

func TestWrongTOTPCodesAreThrottled(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "guess@example.test"
		secret, _ := h.EnableTOTP(t, h.Signup(t, email, apptest.Password).AccessToken, apptest.Password)
		right := apptest.TOTPCode(t, secret, h.Clock.Now())
		window := map[string]bool{}
		for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
			window[apptest.TOTPCode(t, secret, h.Clock.Now().Add(d))] = true
		}
		var guesses []string
		for n := 0; len(guesses) < h.Config.RateLimit.FreeFailures+1; n++ {
			if c := fmt.Sprintf("%06d", n); !window[c] {
				guesses = append(guesses, c)
			}
		}
		var got []string
		for _, g := range guesses {
			r := h.LoginOTP(t, email, apptest.Password, g)
			got = append(got, r.Problem(t).Code)
		}
		r := h.LoginOTP(t, email, apptest.Password, right)
		apptest.WantProblem(t, r, http.StatusTooManyRequests, "login_throttled")
		want := make([]string, len(guesses))
		for i := range want {
			want[i] = "invalid_otp"
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers to wrong codes (-want +got):\n%s", diff)
		}
		if retryAfter(t, r) < 1 {
			t.Error("no Retry-After")
		}
		h.Clock.Advance(h.Config.RateLimit.BaseDelay)
		apptest.WantStatus(t, h.LoginOTP(t, email, apptest.Password, right), http.StatusOK)
	})
}

// TestTOTPSecretsUnreadableInDatabase reads every column of every table after an enrolment and a few
// logins and finds neither the secret (in any encoding) nor a recovery code.
func TestTOTPSecretsUnreadableInDatabase(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "sealed@example.test"
		secret, recovery := h.EnableTOTP(t, h.Signup(t, email, apptest.Password).AccessToken, apptest.Password)
		apptest.WantStatus(t, h.LoginOTP(t, email, apptest.Password, apptest.TOTPCode(t, secret, h.Clock.Now())), http.StatusOK)
		apptest.WantStatus(t, h.LoginOTP(t, email, apptest.Password, recovery[0]), http.StatusOK)

		raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
		if err != nil {
			t.Fatal(err)
		}
		needles := map[string][]byte{"base32": []byte(secret), "base32 lower case": []byte(strings.ToLower(secret)),
			"raw": raw, "hex": []byte(hex.EncodeToString(raw)), "base64": []byte(base64.StdEncoding.EncodeToString(raw)),
			"base64url": []byte(base64.RawURLEncoding.EncodeToString(raw))}
		for i, c := range recovery {
			needles[fmt.Sprintf("recovery code %d", i)] = []byte(c)
			needles[fmt.Sprintf("recovery code %d undashed", i)] = []byte(strings.ReplaceAll(c, "-", ""))
		}
		db := h.App.Store.SQLDB()
		cells, controls := 0, 0
		for _, table := range tables(t, db, d) {
			rows, err := db.Query("SELECT * FROM " + table)
			if err != nil {
				t.Fatal(err)
			}
			cols, err := rows.Columns()
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				values := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range values {
					ptrs[i] = &values[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for i, v := range values {
					cells++
					cell := []byte(fmt.Sprint(v))
					if b, ok := v.([]byte); ok {
						cell = b
					}
					for name, needle := range needles {
						if bytes.Contains(cell, needle) {
							t.Errorf("%s.%s holds the TOTP %s", table, cols[i], name)
						}
					}
					// A control: the scan must find what is stored in plain.
					if bytes.Contains(cell, []byte(email)) {
						controls++
					}
				}
			}
			if err := rows.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if cells < 100 || controls == 0 {
			t.Fatalf("read %d cells and found the email in %d: the scan did not see the database", cells, controls)
		}
		var factors int
		if err := db.QueryRow(`SELECT count(*) FROM totp_factors`).Scan(&factors); err != nil || factors != 1 {
			t.Fatalf("totp_factors rows = %d, %v; want the one enrolment", factors, err)
		}
	})
}

func tables(t *testing.T, db *sql.DB, d store.Dialect) []string {
	t.Helper()
	q := `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`
	if d == store.SQLite {
		q = `SELECT name FROM sqlite_master WHERE type = 'table'`
	}
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	return out
}

// TestTOTPOnTheDeviiSurface: Devii's one login call asks a TOTP user for the authenticator's code,
// says that nothing was emailed, and takes the code as otp.
func TestTOTPOnTheDeviiSurface(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	const email = "devii-totp@example.test"
	secret, _ := h.EnableTOTP(t, h.Signup(t, email, apptest.Password).AccessToken, apptest.Password)
	mails := len(h.OutboxRowsTo(t, email))
	c := newDeviiClient(h, "/devii/auth")
	a := c.login(t, map[string]string{"login": email, "password": apptest.Password})
	if a.Status != http.StatusUnauthorized || !strings.Contains(a.Error, "no code was emailed") {
		t.Fatalf("first call = %+v, want 401 saying that no code was emailed", a)
	}
	a = c.login(t, map[string]string{"login": email, "password": apptest.Password, "otp": apptest.TOTPCode(t, secret, h.Clock.Now())})
	if a.Status != http.StatusOK || a.AccessToken == "" {
		t.Fatalf("call with the authenticator code = %+v", a)
	}
	if n := len(h.OutboxRowsTo(t, email)); n != mails {
		t.Errorf("%d emails for a TOTP user's Devii login, want none", n-mails)
	}
}

// TestTOTPOnTheGraphQLSurface: tokenCreate and tokenAuth ask a TOTP user for the authenticator's code
// (saying that nothing was emailed), take it as otp once, and refuse it the second time.
func TestTOTPOnTheGraphQLSurface(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	const email = "graphql-totp@example.test"
	secret, _ := h.EnableTOTP(t, h.Signup(t, email, apptest.Password).AccessToken, apptest.Password)
	vars := map[string]any{"email": email, "password": apptest.Password}
	var first createToken
	_, res := h.GraphQL(t, saleorCreate, vars)
	res.Field(t, "tokenCreate", &first)
	if diff := cmp.Diff([]string{"OTP_REQUIRED@otp"}, codes(first.Errors)); diff != "" || first.Token != nil ||
		!strings.Contains(first.Errors[0].Message, "no code was emailed") {
		t.Fatalf("tokenCreate without otp = %+v (-want +got codes):\n%s", first, diff)
	}
	vars["otp"] = apptest.TOTPCode(t, secret, h.Clock.Now())
	var second createToken
	_, res = h.GraphQL(t, saleorCreate, vars)
	res.Field(t, "tokenCreate", &second)
	if second.Token == nil || len(second.Errors) != 0 {
		t.Fatalf("tokenCreate with the authenticator code = %+v", second)
	}
	var replay createToken
	_, res = h.GraphQL(t, saleorCreate, vars)
	res.Field(t, "tokenCreate", &replay)
	if diff := cmp.Diff([]string{"INVALID_OTP@otp"}, codes(replay.Errors)); diff != "" || replay.Token != nil {
		t.Errorf("tokenCreate with the same code again = %+v (-want +got codes):\n%s", replay, diff)
	}
	_, res = h.GraphQL(t, jwtAuth, vars)
	apptest.WantGraphQLError(t, res, "INVALID_OTP")
	vars["otp"] = apptest.TOTPCode(t, secret, h.Clock.Now().Add(30*time.Second))
	var auth struct {
		Token string `json:"token"`
	}
	_, res = h.GraphQL(t, jwtAuth, vars)
	res.Field(t, "tokenAuth", &auth)
	if auth.Token == "" {
		t.Errorf("tokenAuth with the next step's code answered no token")
	}
}
