package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/logging"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// clock is a settable time source shared by every component of a test instance.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves time forward: how tests reach expiry without sleeping.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is one real Latch instance: real database, real SMTP over TCP to an in-process server,
// real HTTP through httptest.
type harness struct {
	t     testing.TB
	cfg   config.Config
	clock *clock
	app   *app.App
	srv   *httptest.Server
	smtp  *mailtest.Server
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is the default configuration made fast for tests: cheap argon2 parameters and no per-IP
// bucket (tests that need it turn it on).
func testConfig(dbURL string, smtp *mailtest.Server) config.Config {
	cfg := config.Default()
	cfg.Database.URL = dbURL
	cfg.Database.MaxOpenConns = 8
	cfg.Mail.Driver = "smtp"
	cfg.Mail.SMTP.Host, cfg.Mail.SMTP.Port, cfg.Mail.SMTP.TLS = smtp.Host(), smtp.Port(), "none"
	cfg.Mail.SMTP.ConnectTimeout, cfg.Mail.SMTP.SendTimeout = 2*time.Second, 5*time.Second
	cfg.Password.Argon2Memory, cfg.Password.Argon2Iterations = 1024, 1
	cfg.RateLimit.IPPerMinute = 0
	cfg.Tokens.CookieSecure = false
	return cfg
}

// newHarness starts an instance on a fresh database of the dialect. Options edit the configuration.
func newHarness(t testing.TB, d store.Dialect, opts ...func(*config.Config)) *harness {
	t.Helper()
	smtp := mailtest.NewServer(t)
	cfg := testConfig(storetest.URL(t, d), smtp)
	for _, o := range opts {
		o(&cfg)
	}
	return startHarness(t, cfg, smtp, newClock())
}

// startHarness starts an instance with a given configuration, SMTP server and clock; two harnesses
// sharing one database URL are two instances of one deployment.
func startHarness(t testing.TB, cfg config.Config, smtp *mailtest.Server, clk *clock) *harness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	logs := &syncBuffer{}
	log := logging.New(logs, "json", "debug")
	a, err := app.New(context.Background(), cfg, log, clk.Now)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	a.Worker.Poll, a.Worker.RetryBase = 50*time.Millisecond, 100*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	wait := a.RunBackground(ctx)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wait()
		a.Close()
		if t.Failed() {
			t.Logf("instance log:\n%s", logs.String())
		}
	})
	return &harness{t: t, cfg: cfg, clock: clk, app: a, srv: srv, smtp: smtp, logs: logs}
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Problem decodes a problem+json body, checking the content type.
func (r response) Problem(t testing.TB) problemBody {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json (body %s)", ct, r.Body)
	}
	var p problemBody
	r.JSON(t, &p)
	return p
}

type problemBody struct {
	Title             string       `json:"title"`
	Status            int          `json:"status"`
	Code              string       `json:"code"`
	Detail            string       `json:"detail"`
	Errors            []fieldError `json:"errors"`
	AttemptsRemaining *int         `json:"attemptsRemaining"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

type tokenPair struct {
	AccessToken      string `json:"accessToken"`
	RefreshToken     string `json:"refreshToken"`
	TokenType        string `json:"tokenType"`
	ExpiresIn        int64  `json:"expiresIn"`
	RefreshExpiresIn int64  `json:"refreshExpiresIn"`
}

// do sends a request. body may be nil, a string or []byte (sent as is), or any value (sent as JSON).
// headers are name, value pairs.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd, ct = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if res.Header.Get("X-Request-Id") == "" {
		h.t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// post sends a JSON body.
func (h *harness) post(path string, body any, headers ...string) response {
	h.t.Helper()
	return h.do(http.MethodPost, path, body, headers...)
}

// expect fails the test unless r has the status.
func expect(t testing.TB, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
}

// mailTo waits for the next email to the address and returns it.
func (h *harness) mailTo(email string) mailtest.Received {
	h.t.Helper()
	m, err := h.smtp.WaitFor(email, 10*time.Second)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// codeFor waits for the next email to the address and returns the six-digit code in it.
func (h *harness) codeFor(email string) string {
	h.t.Helper()
	m := h.mailTo(email)
	code, ok := mailtest.ExtractCode(m.Text)
	if !ok {
		h.t.Fatalf("no code in the email to %s: %q", email, m.Text)
	}
	return code
}

// signup registers and validates an account, returning its first token pair.
func (h *harness) signup(email, password string) tokenPair {
	h.t.Helper()
	expect(h.t, h.post("/v2/auth/register", map[string]string{"email": email, "password": password}), http.StatusCreated)
	r := h.post("/v2/auth/validate-register", map[string]string{"email": email, "emailToken": h.codeFor(email)})
	expect(h.t, r, http.StatusOK)
	var p tokenPair
	r.JSON(h.t, &p)
	return p
}

// login runs login + validate-login and returns the token pair. It moves the clock past the resend
// cooldown first so repeated logins in one test are not refused.
func (h *harness) login(email, password string) tokenPair {
	h.t.Helper()
	h.clock.Advance(h.cfg.Codes.ResendCooldown + time.Second)
	expect(h.t, h.post("/v2/auth/login", map[string]string{"email": email, "password": password}), http.StatusOK)
	r := h.post("/v2/auth/validate-login", map[string]string{"email": email, "emailToken": h.codeFor(email)})
	expect(h.t, r, http.StatusOK)
	var p tokenPair
	r.JSON(h.t, &p)
	return p
}

// bearer is the Authorization header pair for an access token.
func bearer(access string) []string { return []string{"Authorization", "Bearer " + access} }

// eachDialect runs fn as a subtest on every database dialect; each subtest makes its own instance.
func eachDialect(t *testing.T, fn func(t *testing.T, d store.Dialect)) {
	t.Helper()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) { fn(t, d) })
	}
}
