package mail

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Outbox is the table of queued mail the worker drains; package store implements it. A claim holds
// the messages it leased: only it may renew their lease or mark them, so a message whose lease ran
// out and was claimed again is finished by one worker only.
type Outbox interface {
	// ClaimOutbox leases up to limit due messages to one new claim for lease, never one of holding
	// (the messages the caller is sending: a clock that jumped must not hand it its own again); a
	// lease that runs out (the worker crashed) makes the message due again.
	ClaimOutbox(ctx context.Context, lease time.Duration, limit int, holding []string) ([]Queued, error)
	// RenewLease extends the lease of a message its claim still holds; false when another claim took it.
	RenewLease(ctx context.Context, id, claim string, lease time.Duration) (bool, error)
	// MarkSent records delivery and scrubs the template data, code included.
	MarkSent(ctx context.Context, id, claim string) error
	// MarkFailed releases the lease and schedules the next try.
	MarkFailed(ctx context.Context, id, claim string, next time.Time, cause string) error
	// MarkDead records a refusal for good: the message is never tried again, and its refusal is a
	// security event of its user.
	MarkDead(ctx context.Context, id, claim, cause string) error
}

// Queued is one claimed outbox message.
type Queued struct {
	ID        string
	Claim     string // the claim that leased it
	Template  string
	From      string // "" for the sender's configured From
	To        string
	Data      *string // JSON of Data; nil once scrubbed
	Attempts  int     // including the claim that returned it
	CreatedAt time.Time
}

var (
	// ErrLeaseLost means a message's lease ran out and another claim took it: whatever this claim
	// did with it is not recorded.
	ErrLeaseLost = errors.New("mail: the outbox lease was lost to another claim")
	// ErrPermanent marks a failure that trying again cannot fix: the mail server refused the message
	// for good (a 5xx reply to its MAIL, RCPT or DATA), or it cannot be rendered.
	ErrPermanent = errors.New("mail: permanent failure")
)

func permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Send results, as Observe reports them.
const (
	ResultSent   = "sent"
	ResultFailed = "failed" // will be tried again
	ResultDead   = "dead"   // refused for good
)

// Worker delivers the outbox. It claims a message only when it can start sending it (one free slot of
// Parallel each), so no message waits under a lease another worker cannot take; it renews the lease
// while the send runs, and stops the send if the lease cannot be kept, so no message is sent by two
// workers. Temporary failures are retried with backoff until the message stops being useful; a
// permanent refusal is final at once.
type Worker struct {
	outbox Outbox
	render *Renderer
	send   Sender
	log    *slog.Logger

	// Poll is how often the table is checked without a wake-up (mail queued by another instance, retries).
	Poll time.Duration
	// Lease is how long a claimed message stays with this worker without a renewal; it is renewed
	// every Lease/3 while the send runs.
	Lease time.Duration
	// RetryBase is the first retry delay; it doubles up to RetryMax.
	RetryBase, RetryMax time.Duration
	// Parallel is how many sends run at once.
	Parallel int
	// QueryTimeout bounds each outbox query, so a database that does not answer holds nothing.
	QueryTimeout time.Duration
	// Observe, when set, is told of every send: its result and how long after queueing it ended.
	Observe func(result string, sinceQueued time.Duration)
	// Now is the clock retries and leases are scheduled by; the outbox's rows must be on the same one.
	Now func() time.Time

	wake     chan struct{}
	inFlight sync.WaitGroup
	slots    chan struct{}

	mu       sync.Mutex
	sending  map[string]bool // ids of the messages in flight
	unmarked []Queued        // delivered, not yet recorded as sent (the database did not answer)
}

// NewWorker makes a worker with production defaults.
func NewWorker(o Outbox, r *Renderer, s Sender, log *slog.Logger) *Worker {
	return &Worker{outbox: o, render: r, send: s, log: log, Now: time.Now, Poll: time.Second, Lease: 30 * time.Second,
		RetryBase: 4 * time.Second, RetryMax: time.Minute, Parallel: 4, QueryTimeout: 10 * time.Second, wake: make(chan struct{}, 1)}
}

// Wake asks the worker to look at the outbox now. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the sends in flight: a send is never cut off by a
// shutdown, since a message the server accepted but that was not recorded would go out twice.
func (w *Worker) Run(ctx context.Context) {
	w.slots = make(chan struct{}, max(w.Parallel, 1))
	w.sending = map[string]bool{}
	defer w.inFlight.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		w.markUnmarked()
		if free := cap(w.slots) - len(w.slots); free > 0 && ctx.Err() == nil {
			n, err := w.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				w.log.Error("outbox claim", "err", err)
			}
			if err == nil && n == free {
				continue // more may be due; the slots are full now, so the next round waits for one
			}
		}
		timer.Reset(w.Poll)
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// claim leases up to free messages and starts sending them; it returns how many it claimed.
func (w *Worker) claim(ctx context.Context, free int) (int, error) {
	w.mu.Lock()
	holding := make([]string, 0, len(w.sending)+len(w.unmarked))
	for id := range w.sending {
		holding = append(holding, id)
	}
	for _, m := range w.unmarked {
		holding = append(holding, m.ID)
	}
	w.mu.Unlock()
	qctx, cancel := context.WithTimeout(ctx, w.QueryTimeout)
	msgs, err := w.outbox.ClaimOutbox(qctx, w.Lease, free, holding)
	cancel()
	for _, m := range msgs {
		w.slots <- struct{}{}
		w.inFlight.Add(1)
		w.mu.Lock()
		w.sending[m.ID] = true
		w.mu.Unlock()
		go func() {
			defer func() {
				w.mu.Lock()
				delete(w.sending, m.ID)
				w.mu.Unlock()
				<-w.slots
				w.inFlight.Done()
				w.Wake()
			}()
			w.deliver(m)
		}()
	}
	return len(msgs), err
}

func (w *Worker) deliver(m Queued) {
	sendCtx, stopSend := context.WithCancel(context.Background())
	lost := w.keepLease(sendCtx, stopSend, m)
	about, err := w.sendOne(sendCtx, m)
	stopSend()
	<-lost.done
	// Every line about a send says which email it was, never what it carries: no code, no token.
	attrs := []any{"id", m.ID, "template", m.Template, "tenant", about.tenant, "locale", about.locale,
		"to", maskAddress(m.To), "attempt", m.Attempts}
	if lost.lost && err != nil {
		// The send was stopped because the lease could not be kept; another worker has the message.
		w.log.Warn("email send stopped: its outbox lease could not be kept", append(attrs, "err", err)...)
		return
	}
	result := ResultSent
	switch {
	case err == nil:
		w.log.Info("email sent", attrs...)
		w.markSent(m)
	case errors.Is(err, ErrPermanent):
		result = ResultDead
		w.log.Error("email refused for good; it will not be retried", append(attrs, "err", err)...)
		w.mark(m, "dead", func(ctx context.Context) error { return w.outbox.MarkDead(ctx, m.ID, m.Claim, err.Error()) })
	default:
		result = ResultFailed
		next := w.Now().Add(w.backoff(m.Attempts))
		// One line at the first failure and every tenth after: a mail server down for hours must not
		// flood the log.
		level := slog.LevelDebug
		if m.Attempts == 1 || m.Attempts%10 == 0 {
			level = slog.LevelWarn
		}
		w.log.Log(context.Background(), level, "email send failed; will retry", append(attrs, "retry_at", next, "err", err)...)
		w.mark(m, "failed", func(ctx context.Context) error { return w.outbox.MarkFailed(ctx, m.ID, m.Claim, next, err.Error()) })
	}
	if w.Observe != nil {
		w.Observe(result, w.Now().Sub(m.CreatedAt))
	}
}

// leaseKeeper reports whether keepLease gave up the lease, once done is closed.
type leaseKeeper struct {
	done chan struct{}
	lost bool
}

// keepLease renews m's lease every Lease/3 until ctx ends. When the lease is taken by another claim,
// or cannot be renewed before it runs out (the database does not answer), it stops the send: better
// a retry later than the same message sent by two workers.
func (w *Worker) keepLease(ctx context.Context, stop context.CancelFunc, m Queued) *leaseKeeper {
	k := &leaseKeeper{done: make(chan struct{})}
	go func() {
		defer close(k.done)
		expires := w.Now().Add(w.Lease)
		tick := time.NewTicker(max(w.Lease/3, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			qctx, cancel := context.WithTimeout(ctx, w.Lease/3)
			ok, err := w.outbox.RenewLease(qctx, m.ID, m.Claim, w.Lease)
			cancel()
			switch {
			case err == nil && ok:
				expires = w.Now().Add(w.Lease)
			case err == nil || !w.Now().Before(expires.Add(-w.Lease/3)):
				k.lost = true
				stop()
				return
			}
		}
	}()
	return k
}

// markSent records a delivery. When the database does not answer, the message is remembered and
// recorded before the next claim, so this worker does not send it again.
func (w *Worker) markSent(m Queued) {
	ctx, cancel := context.WithTimeout(context.Background(), w.QueryTimeout)
	defer cancel()
	err := w.outbox.MarkSent(ctx, m.ID, m.Claim)
	switch {
	case err == nil:
	case errors.Is(err, ErrLeaseLost):
		w.log.Warn("email sent, but its outbox lease had passed to another claim", "id", m.ID)
	default:
		w.log.Error("outbox mark sent; will record it again", "id", m.ID, "err", err)
		w.mu.Lock()
		w.unmarked = append(w.unmarked, m)
		w.mu.Unlock()
	}
}

func (w *Worker) markUnmarked() {
	w.mu.Lock()
	pending := w.unmarked
	w.unmarked = nil
	w.mu.Unlock()
	for _, m := range pending {
		w.markSent(m)
	}
}

func (w *Worker) mark(m Queued, what string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.QueryTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		w.log.Error("outbox mark "+what, "id", m.ID, "err", err)
	}
}

var errNoData = errors.New("outbox message has no data")

// sent describes a message for the log: whose it is and which language it went out in.
type sent struct{ tenant, locale string }

func (w *Worker) sendOne(ctx context.Context, m Queued) (sent, error) {
	if m.Data == nil {
		return sent{}, permanent(errNoData)
	}
	var d Data
	if err := json.Unmarshal([]byte(*m.Data), &d); err != nil {
		return sent{}, permanent(err)
	}
	about := sent{tenant: d.Tenant}
	msg, err := w.render.Render(m.Template, m.To, d)
	if err != nil {
		return about, permanent(err)
	}
	about.locale = cmp.Or(msg.Locale, "en")
	msg.From = m.From
	// The outbox id names the message, so a copy sent again after a crash is recognisably the same.
	msg.ID = m.ID
	return about, w.send.Send(ctx, msg)
}

// maskAddress keeps of an address what tells deliveries apart in a log without making the log a list
// of users: the first character of the local part and the domain ("a***@example.com"). The outbox row,
// named by the line's id, holds the whole address.
func maskAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return "***"
	}
	first, _ := utf8.DecodeRuneInString(addr)
	return string(first) + "***" + addr[at:]
}

// backoff is the delay after the attempt-th failure: RetryBase, doubling, capped at RetryMax.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.RetryBase
	for i := 1; i < attempt && d < w.RetryMax; i++ {
		d *= 2
	}
	return min(d, w.RetryMax)
}
