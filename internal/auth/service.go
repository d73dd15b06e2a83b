// Package auth is the Latch service: accounts, the two-step login with emailed codes, sessions and
// refresh-token rotation, password lifecycle and throttling. It knows nothing of HTTP; callers pass
// plain inputs and get values or an *Error with a catalogue code.
package auth

import (
	"context"
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
	CodesPerHour    int // code emails per user, per purpose and hour
	NoticesPerHour  int // already-registered notices per user and hour
	// InvitationTTL is how long an invitation's sign-up code lives; 0 means CodeTTL.
	InvitationTTL time.Duration

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

// Meta describes the client making a request, for sessions and the event log. Both fields come from
// the client, so they are cleaned (see CleanText) before anything stores them.
type Meta struct {
	IP        string
	UserAgent string
}

// Lengths kept of what a client says about itself.
const (
	maxIPLen        = 64
	maxUserAgentLen = 512
	maxDetailLen    = 1024
)

// event is a security event about this client, its strings made safe to store.
func (m Meta) event(userID, kind, detail string) Event {
	return Event{UserID: userID, Kind: kind, IP: CleanText(m.IP, maxIPLen), UserAgent: CleanText(m.UserAgent, maxUserAgentLen),
		Detail: CleanText(detail, maxDetailLen)}
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

	// detached bounds the work done after an answer (see detach); drained waits for it.
	detached chan struct{}
	drained  sync.WaitGroup
}

// New wires the service to its ports. tenants resolves tenant ids (the same directory the signer
// checks issuers with); signer is usually *Keys, which reloads the signing keys when another instance
// rotates them.
func New(cfg Config, st Store, tenants *Directory, signer Signer, hasher Hasher, secrets Secrets, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return &Service{cfg: cfg, store: st, tenants: tenants, signer: signer, hasher: hasher, secret: secrets, log: log,
		Now: time.Now, Random: rand.Reader, detached: make(chan struct{}, maxDetached)}
}

// maxDetached bounds the jobs running after their answer; past it a job is dropped (and logged)
// rather than queued, so a flood of requests cannot pile up work behind the answers.
const maxDetached = 64

// detachedTimeout bounds a job done after its answer, as server.request_timeout bounds a request.
const detachedTimeout = 10 * time.Second

// detach runs job after the request has been answered, with the request's values (its id, for the
// log) but not its deadline. It is for work whose cost would tell clients something through the
// time of the answer, like whether an address has an account.
func (s *Service) detach(ctx context.Context, what string, job func(context.Context) error) {
	select {
	case s.detached <- struct{}{}:
	default:
		s.log.WarnContext(ctx, what+": dropped, too much work waiting")
		return
	}
	s.drained.Add(1)
	go func() {
		defer func() { <-s.detached; s.drained.Done() }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachedTimeout)
		defer cancel()
		if err := job(ctx); err != nil {
			s.log.ErrorContext(ctx, what, "err", err)
		}
	}()
}

// Drain waits for the work done after answers (see detach) to end; a shutdown calls it once no more
// requests come.
func (s *Service) Drain() { s.drained.Wait() }

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

// internal wraps an unexpected failure; httpapi answers 500 and logs the cause. A database that did
// not answer within the request's deadline, or could not be reached, is no fault of the request and
// none of ours to hide: it is answered 503 unavailable, to be retried.
func internal(op string, err error) error {
	err = fmt.Errorf("auth: %s: %w", op, err)
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Code: CodeUnavailable, Detail: "The service could not reach its database in time; try again shortly.",
			RetryAfter: unavailableRetry, Err: err}
	}
	return err
}

// unavailableRetry is the Retry-After of an unavailable answer: long enough for a restarting database
// or a released lock, short enough that a client does not give up.
const unavailableRetry = 2 * time.Second

// hashErr turns a hasher failure into the client answer: overload is a 503 with Retry-After.
func hashErr(op string, err error) error {
	if errors.Is(err, password.ErrOverloaded) {
		return &Error{Code: CodeOverloaded, Detail: "The service is busy; try again shortly.", RetryAfter: time.Second, Err: err}
	}
	return internal(op, err)
}
