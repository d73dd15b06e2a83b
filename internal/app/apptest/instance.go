// Package apptest drives real Latch instances for end-to-end tests: a fresh database per test, mail
// over real SMTP to an in-process server, HTTP through a real listener, and one settable clock that
// every component of an instance reads. It is the one vocabulary those tests share.
package apptest

import (
	"bytes"
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/httpapi"
	"github.com/latch-auth/latch/internal/logging"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// Clock is the settable time source every component of an instance reads, so tests reach expiry by
// moving it instead of sleeping.
type Clock = authtest.Clock

// NewClock starts at the current second rather than authtest's fixed instant: what the command line
// writes beside an instance (a rotated key's retired_at) is stamped with the wall clock. Whole seconds
// round-trip through every database exactly.
func NewClock() *Clock {
	c := authtest.NewClock()
	c.Advance(time.Now().UTC().Truncate(time.Second).Sub(c.Now()))
	return c
}

// Instance is one running Latch. Its parts are exported so tests can reach behind the HTTP surface.
type Instance struct {
	App    *app.App
	Config config.Config
	Clock  *Clock
	SMTP   *mailtest.Server
	URL    string // base URL of the HTTP server, no trailing slash

	srv  *httptest.Server
	logs *syncBuffer
}

// EncryptionKey is the key-encryption key of test instances: Postgres requires one, and a peer needs
// the same.
const EncryptionKey = "v1:apptest key-encryption key, not a secret"

// Config is the default configuration made fast for tests: cheap argon2 parameters, mail to the
// SMTP server, and no per-IP bucket (tests that need it turn it on).
func Config(dbURL string, smtp *mailtest.Server) config.Config {
	cfg := config.Default()
	cfg.Database.URL = dbURL
	cfg.Database.MaxOpenConns = 8
	cfg.Mail.Driver = "smtp"
	cfg.Mail.SMTP.Host, cfg.Mail.SMTP.Port, cfg.Mail.SMTP.TLS = smtp.Host(), smtp.Port(), "none"
	cfg.Mail.SMTP.ConnectTimeout, cfg.Mail.SMTP.SendTimeout = 2*time.Second, 5*time.Second
	cfg.Password.Argon2Memory, cfg.Password.Argon2Iterations = 1024, 1
	cfg.RateLimit.IPPerMinute = 0
	cfg.Tokens.CookieSecure = false
	cfg.Secrets.EncryptionKey = EncryptionKey
	return cfg
}

// New starts an instance on a fresh database of the dialect with its own SMTP server and clock.
// Options edit the configuration before it starts.
func New(t testing.TB, d store.Dialect, opts ...func(*config.Config)) *Instance {
	t.Helper()
	smtp := mailtest.NewServer(t)
	cfg := Config(storetest.URL(t, d), smtp)
	for _, o := range opts {
		o(&cfg)
	}
	return Start(t, cfg, smtp, NewClock())
}

// Start starts an instance with a given configuration, SMTP server and clock. It stops, and its log
// is printed if t failed, in t.Cleanup.
func Start(t testing.TB, cfg config.Config, smtp *mailtest.Server, clock *Clock) *Instance {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	logs := &syncBuffer{}
	a, err := app.New(context.Background(), cfg, logging.New(logs, "json", "debug"), clock.Now)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	// Fast polling and retries keep tests that wait for mail short. Tests move the clock by minutes at
	// once, which would run a lease out under a send in flight; an hour of lease keeps them apart.
	a.Worker.Poll, a.Worker.RetryBase, a.Worker.Lease = 50*time.Millisecond, 100*time.Millisecond, time.Hour
	// Webhook retries keep the production backoff: tests reach them by moving the clock.
	a.Webhooks.Poll = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	wait := a.RunBackground(ctx)
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Listener = httpapi.WrapListener(srv.Listener)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		wait()
		a.Close()
		if t.Failed() {
			t.Logf("instance log:\n%s", logs.String())
		}
	})
	return &Instance{App: a, Config: cfg, Clock: clock, SMTP: smtp, URL: srv.URL, srv: srv, logs: logs}
}

// StartPeer starts a second instance of the same deployment: same configuration, database, SMTP
// server and clock.
func (in *Instance) StartPeer(t testing.TB) *Instance {
	t.Helper()
	return Start(t, in.Config, in.SMTP, in.Clock)
}

// Logs is everything the instance has logged so far, one JSON object a line.
func (in *Instance) Logs() string { return in.logs.String() }

// EachDialect runs fn as a subtest on every database dialect; each subtest makes its own instance.
func EachDialect(t *testing.T, fn func(t *testing.T, d store.Dialect)) {
	t.Helper()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) { fn(t, d) })
	}
}

// syncBuffer collects the log, which the server's goroutines write while the test reads.
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
