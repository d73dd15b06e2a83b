// Package loadgen is Latch's load generator: it creates its own users through the real sign-up flow,
// receives their code emails on its own SMTP listener, then drives one scenario at a time against a
// running server on this machine and reports throughput and latency per endpoint.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Scenario is what each worker repeats.
type Scenario string

// The scenarios.
const (
	ScenarioLogin   Scenario = "login"   // login + validate-login, code read from the email
	ScenarioRefresh Scenario = "refresh" // each worker refreshes its own session's chain
	ScenarioMe      Scenario = "me"      // GET /v2/auth/me with a Bearer token
	ScenarioVerify  Scenario = "verify"  // POST /v2/auth/verify
	ScenarioMixed   Scenario = "mixed"   // mixedWeights of the above
)

// Scenarios lists every scenario in the order "all" runs them.
var Scenarios = []Scenario{ScenarioLogin, ScenarioRefresh, ScenarioMe, ScenarioVerify, ScenarioMixed}

// mixedWeights is the mixed scenario: mostly reads, as an API in front of Latch would do.
var mixedWeights = []struct {
	scenario Scenario
	weight   int
}{{ScenarioMe, 50}, {ScenarioVerify, 25}, {ScenarioRefresh, 20}, {ScenarioLogin, 5}}

// Bounds of a run.
const (
	MaxDuration    = 10 * time.Minute
	MaxConcurrency = 1024
	MaxUsers       = 100_000
)

// ErrInvalidConfig wraps every configuration error.
var ErrInvalidConfig = errors.New("loadgen: invalid configuration")

// ParseScenarios reads a comma-separated list of scenarios; "all" is every one.
func ParseScenarios(s string) ([]Scenario, error) {
	var out []Scenario
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "all" {
			out = append(out, Scenarios...)
			continue
		}
		found := false
		for _, sc := range Scenarios {
			if string(sc) == name {
				out, found = append(out, sc), true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: unknown scenario %q (login, refresh, me, verify, mixed, all)", ErrInvalidConfig, name)
		}
	}
	return out, nil
}

// Config is one run.
type Config struct {
	Target      string        // base URL of the server under test; loopback only
	Scenarios   []Scenario    // run one after the other, on the same users
	Duration    time.Duration // measured time of each scenario
	Warmup      time.Duration // unmeasured time before each scenario
	Concurrency int           // workers
	Users       int           // users created in setup, dealt out to workers; 0 = Concurrency
	Password    string
	RunID       string        // in every user's email; "" = random
	MailTimeout time.Duration // longest wait for a code email; 0 = 10s
	// RequestTimeout bounds each request; 0 = 30s.
	RequestTimeout time.Duration
	Progress       io.Writer // one line per phase; nil = silent
}

func (c Config) withDefaults() Config {
	if c.Users == 0 {
		c.Users = c.Concurrency
	}
	if c.MailTimeout == 0 {
		c.MailTimeout = 10 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	return c
}

// Validate checks the configuration without touching the network.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := CheckTarget(c.Target); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case len(c.Scenarios) == 0:
		return bad("no scenario")
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return bad("duration %s must be above 0 and at most %s", c.Duration, MaxDuration)
	case c.Warmup < 0 || c.Warmup > MaxDuration:
		return bad("warmup %s must be 0 to %s", c.Warmup, MaxDuration)
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return bad("concurrency %d must be 1 to %d", c.Concurrency, MaxConcurrency)
	case c.Users < c.Concurrency || c.Users > MaxUsers:
		return bad("users %d must be at least the concurrency (%d: every worker owns its users) and at most %d", c.Users, c.Concurrency, MaxUsers)
	case c.Password == "":
		return bad("empty password")
	case c.MailTimeout < 0 || c.RequestTimeout < 0:
		return bad("negative timeout")
	}
	for _, sc := range c.Scenarios {
		if _, err := ParseScenarios(string(sc)); err != nil {
			return err
		}
	}
	return nil
}

// worker runs requests one after the other; its state is touched by its goroutine only.
type worker struct {
	c       *client
	mail    *Mailbox
	cfg     Config
	emails  []string  // its users: a user's codes must never be awaited by two workers
	next    int       // index in emails of the next login
	session tokenPair // the session it refreshes and authenticates with; empty when it must log in
	stats   *stats
	rand    uint64
}

// Run sets up the users, then runs each scenario of cfg; the server under test must send its mail to
// mb. On cancellation it returns what it measured so far with the context's error.
func Run(ctx context.Context, cfg Config, mb *Mailbox) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	cfg = cfg.withDefaults()
	target, _ := CheckTarget(cfg.Target)
	if cfg.RunID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.RunID = hex.EncodeToString(b)
	}
	c := newClient(target, cfg.Concurrency, cfg.RequestTimeout)
	defer c.close()

	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		workers[i] = &worker{c: c, mail: mb, cfg: cfg, rand: uint64(i)*0x9e3779b97f4a7c15 + 1}
	}
	for n := range cfg.Users {
		email := fmt.Sprintf("bench-%s-%d@example.test", cfg.RunID, n)
		mb.expect(email)
		w := workers[n%len(workers)]
		w.emails = append(w.emails, email)
	}
	rep := Report{RunID: cfg.RunID, Target: target.String(), Concurrency: cfg.Concurrency, Users: cfg.Users}
	finish := func(err error) (Report, error) {
		rep.MailDropped = mb.Dropped()
		return rep, err
	}

	progress := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	progress("setup: registering %d users (bench-%s-*@example.test)", cfg.Users, cfg.RunID)
	slots := make(chan struct{}, setupParallelism)
	setup, elapsed, errs := runPhase(workers, func(w *worker) error { return w.setup(ctx, slots) })
	rep.Setup = PhaseReport{Seconds: elapsed.Seconds(), Endpoints: setup.endpointReports(elapsed)}
	if len(errs) > 0 {
		return finish(fmt.Errorf("%w for %d of %d workers; first: %w", ErrSetup, len(errs), len(workers), errs[0]))
	}
	for _, sc := range cfg.Scenarios {
		if cfg.Warmup > 0 {
			progress("%s: warming up for %s at %d clients", sc, cfg.Warmup, cfg.Concurrency)
			until := time.Now().Add(cfg.Warmup)
			runPhase(workers, func(w *worker) error { w.loop(ctx, sc, until); return nil })
		}
		progress("%s: measuring for %s at %d clients", sc, cfg.Duration, cfg.Concurrency)
		until := time.Now().Add(cfg.Duration)
		s, elapsed, _ := runPhase(workers, func(w *worker) error { w.loop(ctx, sc, until); return nil })
		rep.Scenarios = append(rep.Scenarios, ScenarioReport{Scenario: sc, Concurrency: cfg.Concurrency, Seconds: elapsed.Seconds(),
			Endpoints: s.endpointReports(elapsed), CodeDelivery: s.deliveryReport()})
		if err := ctx.Err(); err != nil {
			return finish(err)
		}
	}
	return finish(nil)
}

// runPhase runs f on every worker at once with fresh stats, and merges the stats when all are done.
// It returns the errors of the workers that failed.
func runPhase(workers []*worker, f func(*worker) error) (*stats, time.Duration, []error) {
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(workers))
	for i, w := range workers {
		w.stats = newStats()
		wg.Go(func() { errs[i] = f(w) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := newStats()
	var failed []error
	for i, w := range workers {
		total.merge(w.stats)
		if errs[i] != nil {
			failed = append(failed, errs[i])
		}
	}
	return total, elapsed, failed
}

// ErrSetup is returned when users could not be created.
var ErrSetup = errors.New("loadgen: setup failed")

// setupParallelism bounds sign-ups in flight: each hashes a password, and a 200-client setup all at
// once would only measure the server's hashing queue (which answers 503 when it is too long).
const setupParallelism = 8

// setup creates the worker's users; its first user's session becomes the worker's. slots bounds the
// sign-ups of all workers together.
func (w *worker) setup(ctx context.Context, slots chan struct{}) error {
	for i, email := range w.emails {
		var pair tokenPair
		var err error
		for attempt := range 5 {
			slots <- struct{}{}
			pair, err = w.signup(ctx, email)
			<-slots
			var se statusError
			if err == nil || ctx.Err() != nil || errors.As(err, &se) && se.status != 503 && se.status != 0 {
				break
			}
			// Overloaded or no answer: worth another try after a pause.
			if !sleep(ctx, time.Duration(attempt+1)*250*time.Millisecond) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", email, err)
		}
		if i == 0 {
			w.session = pair
		}
	}
	return nil
}

// statusError is an unexpected answer.
type statusError struct {
	endpoint string
	status   int
}

func (e statusError) Error() string {
	hint := ""
	switch e.status {
	case 429:
		hint = " (run the server with LATCH_RATELIMIT_IP_PER_MINUTE=0, LATCH_CODES_RESEND_COOLDOWN=0s and a high LATCH_CODES_MAX_PER_HOUR)"
	case 0:
		hint = " (no answer)"
	}
	return fmt.Sprintf("%s answered %d%s", e.endpoint, e.status, hint)
}

// send makes one request and records it, except a request cut short by the end of the run.
func (w *worker) send(ctx context.Context, endpoint string, body any, bearer string, out any, want int) error {
	status, took, err := w.c.call(ctx, endpoint, body, bearer, out)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w.stats.request(endpoint, status, took, err)
	if err != nil {
		return err
	}
	if status != want {
		return statusError{endpoint, status}
	}
	return nil
}

// awaitCode waits for the code email to email after an answer read at answered, recording the delay
// when asked.
func (w *worker) awaitCode(ctx context.Context, email string, answered time.Time, measure bool) (string, error) {
	m, err := w.mail.next(ctx, email, w.cfg.MailTimeout)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	switch {
	case errors.Is(err, ErrMailTimeout):
		w.stats.mailErrs[ErrorMailTimeout]++
	case err != nil:
		w.stats.mailErrs[ErrorNoCode]++
	case measure:
		w.stats.delivery.Record(max(m.Arrived.Sub(answered), 0))
	}
	return m.Code, err
}

func (w *worker) signup(ctx context.Context, email string) (tokenPair, error) {
	w.mail.drain(email)
	creds := map[string]string{"email": email, "password": w.cfg.Password}
	if err := w.send(ctx, EndpointRegister, creds, "", nil, 201); err != nil {
		return tokenPair{}, err
	}
	code, err := w.awaitCode(ctx, email, time.Now(), false)
	if err != nil {
		return tokenPair{}, err
	}
	var pair tokenPair
	err = w.send(ctx, EndpointValidateRegister, map[string]string{"email": email, "emailToken": code}, "", &pair, 200)
	return pair, err
}

func (w *worker) login(ctx context.Context) error {
	email := w.emails[w.next]
	w.next = (w.next + 1) % len(w.emails)
	w.mail.drain(email)
	if err := w.send(ctx, EndpointLogin, map[string]string{"email": email, "password": w.cfg.Password}, "", nil, 200); err != nil {
		return err
	}
	code, err := w.awaitCode(ctx, email, time.Now(), true)
	if err != nil {
		return err
	}
	var pair tokenPair
	if err := w.send(ctx, EndpointValidateLogin, map[string]string{"email": email, "emailToken": code}, "", &pair, 200); err != nil {
		return err
	}
	w.session = pair
	return nil
}

// ensureSession logs in again after the worker's session was lost (a failed refresh).
func (w *worker) ensureSession(ctx context.Context) error {
	if w.session.RefreshToken != "" {
		return nil
	}
	return w.login(ctx)
}

func (w *worker) refresh(ctx context.Context) error {
	if err := w.ensureSession(ctx); err != nil {
		return err
	}
	var pair tokenPair
	err := w.send(ctx, EndpointRefresh, map[string]string{"refreshToken": w.session.RefreshToken}, "", &pair, 200)
	var se statusError
	if errors.As(err, &se) && se.status < 500 {
		w.session = tokenPair{} // the chain is gone: the next step logs in again
	}
	if err == nil {
		w.session = pair
	}
	return err
}

func (w *worker) me(ctx context.Context) error {
	if err := w.ensureSession(ctx); err != nil {
		return err
	}
	return w.send(ctx, EndpointMe, nil, w.session.AccessToken, nil, 200)
}

func (w *worker) verify(ctx context.Context) error {
	if err := w.ensureSession(ctx); err != nil {
		return err
	}
	return w.send(ctx, EndpointVerify, map[string]string{"token": w.session.AccessToken}, "", nil, 200)
}

// pick draws a scenario of the mix (splitmix64: fast, and the worker's own).
func (w *worker) pick() Scenario {
	w.rand += 0x9e3779b97f4a7c15
	z := w.rand
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	total := 0
	for _, m := range mixedWeights {
		total += m.weight
	}
	n := int(z % uint64(total))
	for _, m := range mixedWeights {
		if n < m.weight {
			return m.scenario
		}
		n -= m.weight
	}
	return mixedWeights[0].scenario
}

func (w *worker) step(ctx context.Context, sc Scenario) error {
	if sc == ScenarioMixed {
		sc = w.pick()
	}
	switch sc {
	case ScenarioLogin:
		return w.login(ctx)
	case ScenarioRefresh:
		return w.refresh(ctx)
	case ScenarioMe:
		return w.me(ctx)
	case ScenarioVerify:
		return w.verify(ctx)
	}
	return fmt.Errorf("%w: scenario %q", ErrInvalidConfig, sc)
}

// loop repeats the scenario until the deadline; a request under way at the deadline finishes and
// counts. After a failure it backs off, so a dead server is not hammered in a tight loop.
func (w *worker) loop(ctx context.Context, sc Scenario, until time.Time) {
	failures := 0
	for ctx.Err() == nil && time.Now().Before(until) {
		if err := w.step(ctx, sc); err == nil {
			failures = 0
			continue
		}
		failures++
		backoff := min(time.Duration(1<<min(failures, 10))*time.Millisecond, time.Second, time.Until(until))
		if !sleep(ctx, backoff) {
			return
		}
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
