// Package auth is the Latch service: accounts, the two-step login with emailed codes, sessions and
// refresh-token rotation, password lifecycle and throttling. It knows nothing of HTTP; callers pass
// plain inputs and get values or an *Error with a catalogue code.
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/latch-auth/latch/internal/password"
)

// Config holds the service's rules; the wiring fills it from the configuration file.
type Config struct {
	CodeTTL         time.Duration
	CodeMaxAttempts int
	ResendCooldown  time.Duration
	CodesPerHour    int

	AccessTTL      time.Duration
	RefreshIdleTTL time.Duration
	SessionMaxAge  time.Duration
	ReuseGrace     time.Duration

	PasswordMinLength int
	PasswordMaxLength int

	// TOTPIssuer is the name authenticator apps list a Latch account under.
	TOTPIssuer string

	Throttle ThrottleConfig
}

// Meta describes the client making a request, for sessions and the event log.
type Meta struct {
	IP        string
	UserAgent string
}

// Service is the auth service. It is safe for concurrent use.
type Service struct {
	cfg     Config
	store   Store
	tenants *Directory
	signer  Signer
	hasher  Hasher
	secret  Secrets
	log     *slog.Logger

	// Now and Random are the clock and entropy source; tests replace them.
	Now    func() time.Time
	Random io.Reader

	wakeMu sync.Mutex
	wake   []func()
}

// New wires the service to its ports. tenants resolves tenant ids (the same directory the signer
// checks issuers with); signer is usually *Keys, which reloads the signing keys when another instance
// rotates them.
func New(cfg Config, st Store, tenants *Directory, signer Signer, hasher Hasher, secrets Secrets, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return &Service{cfg: cfg, store: st, tenants: tenants, signer: signer, hasher: hasher, secret: secrets, log: log,
		Now: time.Now, Random: rand.Reader}
}

// OnMailQueued registers a function called after a transaction queued mail, so an outbox worker on
// this instance sends it at once instead of at its next poll.
func (s *Service) OnMailQueued(f func()) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	s.wake = append(s.wake, f)
}

func (s *Service) mailQueued() {
	s.wakeMu.Lock()
	fs := s.wake
	s.wakeMu.Unlock()
	for _, f := range fs {
		f()
	}
}

// internal wraps an unexpected failure; httpapi answers 500 and logs the cause.
func internal(op string, err error) error { return fmt.Errorf("auth: %s: %w", op, err) }

// hashErr turns a hasher failure into the client answer: overload is a 503 with Retry-After.
func hashErr(op string, err error) error {
	if errors.Is(err, password.ErrOverloaded) {
		return &Error{Code: CodeOverloaded, Detail: "The service is busy; try again shortly.", RetryAfter: time.Second, Err: err}
	}
	return internal(op, err)
}
