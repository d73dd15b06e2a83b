package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
)

const cdPassword = "correct horse battery"

// cdFor returns a view of h that reports to t, so a subtest sharing its parent's instance fails
// itself rather than its parent.
func cdFor(t testing.TB, h *harness) *harness {
	c := *h
	c.t = t
	return &c
}

func cdCreds(email, password string) map[string]string {
	return map[string]string{"email": email, "password": password}
}

func cdEmailCode(email, code string) map[string]string {
	return map[string]string{"email": email, "emailToken": code}
}

// cdOtherCode is a well-formed code that is not code.
func cdOtherCode(code string) string {
	n, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (n+1)%1_000_000)
}

// cdRegisterUnverified registers an account and returns the signup code it was sent, leaving the
// address unverified.
func cdRegisterUnverified(h *harness, email string) string {
	h.t.Helper()
	expect(h.t, h.post("/v2/auth/register", cdCreds(email, cdPassword)), http.StatusCreated)
	return h.codeFor(email)
}

// cdLoginCode asks for a login code (without moving the clock) and returns it.
func cdLoginCode(h *harness, email string) string {
	h.t.Helper()
	expect(h.t, h.post("/v2/auth/login", cdCreds(email, cdPassword)), http.StatusOK)
	return h.codeFor(email)
}

// cdProblemFields decodes a problem+json answer as a map without its requestId, the one member that
// differs between two otherwise identical answers.
func cdProblemFields(t testing.TB, r response) map[string]any {
	t.Helper()
	r.Problem(t)
	var m map[string]any
	r.JSON(t, &m)
	delete(m, "requestId")
	return m
}

// cdProblem checks status, content type and catalogue code of an error answer.
func cdProblem(t testing.TB, r response, status int, code string) problemBody {
	t.Helper()
	expect(t, r, status)
	p := r.Problem(t)
	if p.Code != code || p.Status != status || p.Title == "" {
		t.Fatalf("problem = %+v, want status %d code %s", p, status, code)
	}
	if status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	return p
}

func cdInvalidCode(t testing.TB, r response, remaining *int) {
	t.Helper()
	p := cdProblem(t, r, http.StatusUnauthorized, "invalid_code")
	if diff := cmp.Diff(remaining, p.AttemptsRemaining); diff != "" {
		t.Errorf("attemptsRemaining (-want +got):\n%s", diff)
	}
}

func cdPtr[T any](v T) *T { return &v }

// cdSend is a request that reports transport errors instead of failing the test, so goroutines
// other than the test's may use it.
func cdSend(h *harness, method, path, contentType string, body io.Reader, headers ...string) (response, error) {
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		return response{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}, err
}

// cdValidateConcurrently sends n validate-login requests with the given codes at once.
func cdValidateConcurrently(t *testing.T, h *harness, email string, codes []string) []response {
	t.Helper()
	out := make([]response, len(codes))
	errs := make([]error, len(codes))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, code := range codes {
		wg.Go(func() {
			b, _ := json.Marshal(cdEmailCode(email, code))
			<-start
			out[i], errs[i] = cdSend(h, http.MethodPost, "/v2/auth/validate-login", "application/json", bytes.NewReader(b))
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

type cdMe struct {
	Email         string `json:"email"`
	EmailVerified bool   `json:"emailVerified"`
}

func cdMeOf(h *harness, access string) cdMe {
	h.t.Helper()
	r := h.do(http.MethodGet, "/v2/auth/me", nil, bearer(access)...)
	expect(h.t, r, http.StatusOK)
	var me cdMe
	r.JSON(h.t, &me)
	return me
}

// cdOutboxRow is one outbox row as the database holds it.
type cdOutboxRow struct {
	To        string
	Template  string
	Data      *string
	Attempts  int
	Sent      bool
	LastError *string
}

func cdOutboxRows(t testing.TB, h *harness) []cdOutboxRow {
	t.Helper()
	rows, err := h.app.Store.SQLDB().Query(`SELECT to_addr, template, data, attempts, sent_at IS NOT NULL, last_error FROM outbox ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []cdOutboxRow
	for rows.Next() {
		var r cdOutboxRow
		if err := rows.Scan(&r.To, &r.Template, &r.Data, &r.Attempts, &r.Sent, &r.LastError); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func cdOutboxRowsTo(t testing.TB, h *harness, to string) []cdOutboxRow {
	var out []cdOutboxRow
	for _, r := range cdOutboxRows(t, h) {
		if strings.EqualFold(r.To, to) {
			out = append(out, r)
		}
	}
	return out
}

// cdEventually polls cond until it holds, failing after a generous deadline: for conditions that
// another goroutine (the outbox worker) makes true, never for the passing of time.
func cdEventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEmailCodes(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		parent := newHarness(t, d)
		ttl, cooldown := parent.cfg.Codes.TTL, parent.cfg.Codes.ResendCooldown

		t.Run("wrong code spends one try and leaves the code usable", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("wrong@example.test", cdPassword)
			code := cdLoginCode(h, "wrong@example.test")
			cdInvalidCode(t, h.post("/v2/auth/validate-login", cdEmailCode("wrong@example.test", cdOtherCode(code))), cdPtr(4))
			expect(t, h.post("/v2/auth/validate-login", cdEmailCode("wrong@example.test", code)), http.StatusOK)
		})

		t.Run("code expires after the ttl", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("expired@example.test", cdPassword)
			code := cdLoginCode(h, "expired@example.test")
			h.clock.Advance(ttl - time.Second)
			cdInvalidCode(t, h.post("/v2/auth/validate-login", cdEmailCode("expired@example.test", cdOtherCode(code))), cdPtr(4))
			h.clock.Advance(2 * time.Second)
			expired := h.post("/v2/auth/validate-login", cdEmailCode("expired@example.test", code))
			cdInvalidCode(t, expired, nil)
			unknown := h.post("/v2/auth/validate-login", cdEmailCode("nobody@example.test", code))
			if diff := cmp.Diff(cdProblemFields(t, unknown), cdProblemFields(t, expired)); diff != "" {
				t.Errorf("expired code and unknown email answer differently (-unknown +expired):\n%s", diff)
			}
		})

		t.Run("code works once", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("once@example.test", cdPassword)
			code := cdLoginCode(h, "once@example.test")
			expect(t, h.post("/v2/auth/validate-login", cdEmailCode("once@example.test", code)), http.StatusOK)
			cdInvalidCode(t, h.post("/v2/auth/validate-login", cdEmailCode("once@example.test", code)), nil)
		})

		t.Run("a new code replaces the old and says so", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("replaced@example.test", cdPassword)
			expect(t, h.post("/v2/auth/login", cdCreds("replaced@example.test", cdPassword)), http.StatusOK)
			first := h.mailTo("replaced@example.test")
			h.clock.Advance(cooldown + time.Second)
			expect(t, h.post("/v2/auth/login", cdCreds("replaced@example.test", cdPassword)), http.StatusOK)
			second := h.mailTo("replaced@example.test")
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
			cdInvalidCode(t, h.post("/v2/auth/validate-login", cdEmailCode("replaced@example.test", firstCode)), cdPtr(4))
			expect(t, h.post("/v2/auth/validate-login", cdEmailCode("replaced@example.test", secondCode)), http.StatusOK)
		})

		t.Run("tries run out", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("tries@example.test", cdPassword)
			code := cdLoginCode(h, "tries@example.test")
			for left := 4; left >= 0; left-- {
				cdInvalidCode(t, h.post("/v2/auth/validate-login", cdEmailCode("tries@example.test", cdOtherCode(code))), cdPtr(left))
			}
			cdInvalidCode(t, h.post("/v2/auth/validate-login", cdEmailCode("tries@example.test", code)), cdPtr(0))
			// Starting over gives a working code.
			h.login("tries@example.test", cdPassword)
		})

		t.Run("resend cooldown", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("cooldown@example.test", cdPassword)
			cdLoginCode(h, "cooldown@example.test")
			h.clock.Advance(10 * time.Second)
			r := h.post("/v2/auth/login", cdCreds("cooldown@example.test", cdPassword))
			cdProblem(t, r, http.StatusTooManyRequests, "code_recently_sent")
			if got := r.Header.Get("Retry-After"); got != "50" {
				t.Errorf("Retry-After = %q, want 50", got)
			}
			var logins int
			for _, row := range cdOutboxRowsTo(t, h, "cooldown@example.test") {
				if row.Template == "login_code" {
					logins++
				}
			}
			if logins != 1 {
				t.Errorf("%d login code emails queued, want 1", logins)
			}
			h.clock.Advance(cooldown - 10*time.Second)
			expect(t, h.post("/v2/auth/login", cdCreds("cooldown@example.test", cdPassword)), http.StatusOK)
		})

		t.Run("register does not reveal a taken address", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("taken@example.test", cdPassword)
			h.clock.Advance(cooldown + time.Second)
			fresh := h.post("/v2/auth/register", cdCreds("fresh@example.test", cdPassword))
			taken := h.post("/v2/auth/register", cdCreds("taken@example.test", "another password entirely"))
			if fresh.Status != http.StatusCreated || taken.Status != fresh.Status || !bytes.Equal(taken.Body, fresh.Body) {
				t.Errorf("fresh: %d %s; taken: %d %s", fresh.Status, fresh.Body, taken.Status, taken.Body)
			}
			if _, ok := mailtest.ExtractCode(h.mailTo("fresh@example.test").Text); !ok {
				t.Error("the fresh address got no code")
			}
			notice := h.mailTo("taken@example.test")
			if _, ok := mailtest.ExtractCode(notice.Subject + "\n" + notice.Text); ok {
				t.Errorf("the taken address got a code:\n%s", notice.Text)
			}
			if notice.Subject == "" || strings.Contains(notice.Subject, "code") {
				t.Errorf("notice subject = %q, want the already-registered notice", notice.Subject)
			}
			// The notice left the password alone.
			h.login("taken@example.test", cdPassword)
		})

		t.Run("login does not reveal an unknown address", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("known@example.test", cdPassword)
			wrong := h.post("/v2/auth/login", cdCreds("known@example.test", "not the password"))
			unknown := h.post("/v2/auth/login", cdCreds("unknown@example.test", "not the password"))
			cdProblem(t, wrong, http.StatusUnauthorized, "invalid_credentials")
			if unknown.Status != wrong.Status {
				t.Errorf("unknown email: status %d, wrong password: %d", unknown.Status, wrong.Status)
			}
			if diff := cmp.Diff(cdProblemFields(t, wrong), cdProblemFields(t, unknown)); diff != "" {
				t.Errorf("answers differ (-wrong password +unknown email):\n%s", diff)
			}
		})

		t.Run("validate with an unknown address answers like a wrong code", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("live@example.test", cdPassword)
			code := cdLoginCode(h, "live@example.test")
			wrong := h.post("/v2/auth/validate-login", cdEmailCode("live@example.test", cdOtherCode(code)))
			unknown := h.post("/v2/auth/validate-login", cdEmailCode("ghost@example.test", code))
			cdInvalidCode(t, wrong, cdPtr(4))
			cdInvalidCode(t, unknown, nil)
			w, u := cdProblemFields(t, wrong), cdProblemFields(t, unknown)
			delete(w, "attemptsRemaining")
			if diff := cmp.Diff(w, u); diff != "" {
				t.Errorf("answers differ beyond attemptsRemaining (-wrong code +unknown email):\n%s", diff)
			}
		})

		t.Run("concurrent validations of one code: exactly one wins", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("race@example.test", cdPassword)
			code := cdLoginCode(h, "race@example.test")
			var ok, refused int
			for _, r := range cdValidateConcurrently(t, h, "race@example.test", slices.Repeat([]string{code}, 10)) {
				switch r.Status {
				case http.StatusOK:
					ok++
				case http.StatusUnauthorized:
					// A loser either found the code used (no live code: no count) or found its
					// tries spent by the racing right guesses, which count before they compare.
					if p := cdProblem(t, r, http.StatusUnauthorized, "invalid_code"); p.AttemptsRemaining != nil && *p.AttemptsRemaining != 0 {
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
			h := cdFor(t, parent)
			h.signup("guess@example.test", cdPassword)
			code := cdLoginCode(h, "guess@example.test")
			var left []int
			for _, r := range cdValidateConcurrently(t, h, "guess@example.test", slices.Repeat([]string{cdOtherCode(code)}, 10)) {
				p := cdProblem(t, r, http.StatusUnauthorized, "invalid_code")
				if p.AttemptsRemaining == nil {
					t.Fatalf("no attemptsRemaining: %s", r.Body)
				}
				left = append(left, *p.AttemptsRemaining)
			}
			slices.Sort(left)
			if diff := cmp.Diff([]int{0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, left); diff != "" {
				t.Errorf("attemptsRemaining (-want +got):\n%s", diff)
			}
			cdInvalidCode(t, h.post("/v2/auth/validate-login", cdEmailCode("guess@example.test", code)), cdPtr(0))
		})

		t.Run("a code is good for its purpose only", func(t *testing.T) {
			h := cdFor(t, parent)
			const email = "purpose@example.test"
			signupCode := cdRegisterUnverified(h, email)
			loginCode := cdLoginCode(h, email)
			if signupCode == loginCode {
				t.Skip("both codes drew the same six digits")
			}
			cdInvalidCode(t, h.post("/v2/auth/validate-register", cdEmailCode(email, loginCode)), cdPtr(4))
			cdInvalidCode(t, h.post("/v2/auth/validate-login", cdEmailCode(email, signupCode)), cdPtr(4))
			reset := map[string]string{"email": email, "emailToken": loginCode, "newPassword": "a brand new password"}
			cdInvalidCode(t, h.post("/v2/auth/password/reset", reset), nil)
			expect(t, h.post("/v2/auth/validate-login", cdEmailCode(email, loginCode)), http.StatusOK)
			expect(t, h.post("/v2/auth/validate-register", cdEmailCode(email, signupCode)), http.StatusOK)
		})

		t.Run("login works before verification and validate-login verifies", func(t *testing.T) {
			h := cdFor(t, parent)
			cdRegisterUnverified(h, "unverified@example.test")
			pair := h.login("unverified@example.test", cdPassword)
			if me := cdMeOf(h, pair.AccessToken); !me.EmailVerified {
				t.Errorf("me = %+v, want emailVerified", me)
			}
			// Now verified, the address is taken: registering it again sends the notice, not a code.
			h.clock.Advance(cooldown + time.Second)
			expect(t, h.post("/v2/auth/register", cdCreds("unverified@example.test", cdPassword)), http.StatusCreated)
			if m := h.mailTo("unverified@example.test"); strings.Contains(m.Subject, "code") {
				t.Errorf("got %q, want the already-registered notice", m.Subject)
			}
		})

		t.Run("codes are stored as HMACs and scrubbed from the outbox once sent", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("stored@example.test", cdPassword)
			code := cdLoginCode(h, "stored@example.test")
			cdEventually(t, "every outbox row is sent", func() bool {
				for _, r := range cdOutboxRows(t, h) {
					if !r.Sent {
						return false
					}
				}
				return true
			})
			for _, r := range cdOutboxRows(t, h) {
				if r.Data != nil {
					t.Errorf("sent %s to %s still holds its data: %s", r.Template, r.To, *r.Data)
				}
			}
			rows, err := h.app.Store.SQLDB().Query(`SELECT code_hash FROM email_codes`)
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
			h := cdFor(t, parent)
			h.signup("Mixed@Example.test", cdPassword)
			pair := h.login("mixed@example.TEST", cdPassword)
			if me := cdMeOf(h, pair.AccessToken); me.Email != "mixed@example.test" {
				t.Errorf("me.email = %q, want mixed@example.test", me.Email)
			}
			h.clock.Advance(cooldown + time.Second)
			expect(t, h.post("/v2/auth/register", cdCreds("  MIXED@example.test ", cdPassword)), http.StatusCreated)
			if m := h.mailTo("mixed@example.test"); strings.Contains(m.Subject, "code") {
				t.Errorf("registering another case of a taken address sent %q, want the notice", m.Subject)
			}
		})

		t.Run("unknown tenant", func(t *testing.T) {
			h := cdFor(t, parent)
			h.signup("tenant@example.test", cdPassword)
			for _, tenant := range []string{"7c9e6679-7425-40de-944b-e07fc1f90ae7", "not-a-uuid"} {
				for _, path := range []string{"/v2/auth/login", "/v2/auth/register", "/v2/auth/validate-login", "/v2/auth/password/forgot"} {
					body := map[string]string{"email": "tenant@example.test", "password": cdPassword, "emailToken": "123456", "tenantId": tenant}
					p := cdProblem(t, h.post(path, body), http.StatusBadRequest, "validation_failed")
					if diff := cmp.Diff([]string{"tenantId"}, cdFields(p)); diff != "" {
						t.Errorf("%s tenant %q: fields (-want +got):\n%s", path, tenant, diff)
					}
				}
			}
		})
	})
}

func cdFields(p problemBody) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// TestHourlyCodeCap checks the per-user hourly cap, counted in the database: on Postgres the logins
// alternate between two instances, which must agree.
func TestHourlyCodeCap(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, func(c *config.Config) { c.Codes.MaxPerHour = 3 })
		other := h
		if d == store.Postgres {
			other = startHarness(t, h.cfg, h.smtp, h.clock)
		}
		const email = "capped@example.test"
		h.signup(email, cdPassword) // the first code email of the hour, at t0
		step := h.cfg.Codes.ResendCooldown + time.Second
		for _, inst := range []*harness{other, h} {
			h.clock.Advance(step)
			expect(t, inst.post("/v2/auth/login", cdCreds(email, cdPassword)), http.StatusOK)
		}
		h.clock.Advance(step)
		r := other.post("/v2/auth/login", cdCreds(email, cdPassword))
		cdProblem(t, r, http.StatusTooManyRequests, "too_many_codes")
		wait := time.Hour - 3*step // until the signup email at t0 leaves the window
		if got, want := r.Header.Get("Retry-After"), strconv.Itoa(int(wait/time.Second)); got != want {
			t.Fatalf("Retry-After = %q, want %s", got, want)
		}
		h.clock.Advance(wait - time.Second)
		r = h.post("/v2/auth/login", cdCreds(email, cdPassword))
		cdProblem(t, r, http.StatusTooManyRequests, "too_many_codes")
		if got := r.Header.Get("Retry-After"); got != "1" {
			t.Errorf("Retry-After = %q, want 1", got)
		}
		h.clock.Advance(time.Second)
		expect(t, other.post("/v2/auth/login", cdCreds(email, cdPassword)), http.StatusOK)
	})
}
