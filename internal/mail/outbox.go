package mail

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Outbox is the table of queued mail the worker drains; package store implements it.
type Outbox interface {
	// ClaimOutbox leases up to limit due messages to this worker for lease; a lease that runs out
	// (the worker crashed) makes the message due again.
	ClaimOutbox(ctx context.Context, lease time.Duration, limit int) ([]Queued, error)
	// MarkSent records delivery and scrubs the template data, code included.
	MarkSent(ctx context.Context, id string) error
	// MarkFailed releases the lease and schedules the next try.
	MarkFailed(ctx context.Context, id string, next time.Time, cause string) error
	// PurgeOutbox scrubs the data of messages that expired unsent and deletes rows older than keep.
	PurgeOutbox(ctx context.Context, keep time.Duration) error
}

// Queued is one claimed outbox message.
type Queued struct {
	ID        string
	Template  string
	From      string // "" for the sender's configured From
	To        string
	Data      *string // JSON of Data; nil once scrubbed
	Attempts  int     // including the claim that returned it
	CreatedAt time.Time
}

// Worker delivers the outbox: it claims due messages (leased, so several instances share the table
// without double sends and a crashed worker's rows come back), renders and sends them, and schedules
// retries with backoff until the message stops being useful.
type Worker struct {
	outbox Outbox
	render *Renderer
	send   Sender
	log    *slog.Logger

	// Poll is how often the table is checked without a wake-up (mail queued by another instance, retries).
	Poll time.Duration
	// Lease is how long a claimed row stays with this worker; longer than any send can take.
	Lease time.Duration
	// RetryBase is the first retry delay; it doubles up to RetryMax.
	RetryBase, RetryMax time.Duration
	// Batch is how many rows one claim takes, and Parallel how many sends run at once.
	Batch, Parallel int
	// Observe, when set, is told of every send: how long after queueing it completed, and its error.
	Observe func(sinceQueued time.Duration, err error)
	// Now is the clock retries are scheduled by; the outbox's rows must be on the same one.
	Now func() time.Time

	wake chan struct{}
}

// NewWorker makes a worker with production defaults.
func NewWorker(o Outbox, r *Renderer, s Sender, log *slog.Logger) *Worker {
	return &Worker{outbox: o, render: r, send: s, log: log, Now: time.Now, Poll: time.Second, Lease: time.Minute,
		RetryBase: 4 * time.Second, RetryMax: time.Minute, Batch: 32, Parallel: 4, wake: make(chan struct{}, 1)}
}

// Wake asks the worker to look at the outbox now. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		n, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Error("outbox", "err", err)
		}
		if n == w.Batch {
			continue // more may be due
		}
		timer.Reset(w.Poll)
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		case <-purge.C:
			if err := w.outbox.PurgeOutbox(ctx, 24*time.Hour); err != nil && ctx.Err() == nil {
				w.log.Error("purge outbox", "err", err)
			}
		}
	}
}

// RunOnce claims one batch of due messages and sends them; it returns how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	msgs, err := w.outbox.ClaimOutbox(ctx, w.Lease, w.Batch)
	if err != nil {
		return 0, err
	}
	sem := make(chan struct{}, max(w.Parallel, 1))
	var wg sync.WaitGroup
	for _, m := range msgs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.deliver(ctx, m)
		}()
	}
	wg.Wait()
	return len(msgs), nil
}

func (w *Worker) deliver(ctx context.Context, m Queued) {
	err := w.sendOne(ctx, m)
	if w.Observe != nil {
		w.Observe(w.Now().Sub(m.CreatedAt), err)
	}
	if err == nil {
		if err := w.outbox.MarkSent(ctx, m.ID); err != nil {
			w.log.Error("outbox mark sent", "id", m.ID, "err", err)
		}
		return
	}
	next := w.Now().Add(w.backoff(m.Attempts))
	w.log.Warn("email send failed; will retry", "id", m.ID, "template", m.Template, "attempt", m.Attempts, "retry_at", next, "err", err)
	if err := w.outbox.MarkFailed(ctx, m.ID, next, err.Error()); err != nil {
		w.log.Error("outbox mark failed", "id", m.ID, "err", err)
	}
}

var errNoData = errors.New("outbox message has no data")

func (w *Worker) sendOne(ctx context.Context, m Queued) error {
	if m.Data == nil {
		return errNoData
	}
	var d Data
	if err := json.Unmarshal([]byte(*m.Data), &d); err != nil {
		return err
	}
	msg, err := w.render.Render(m.Template, m.To, d)
	if err != nil {
		return err
	}
	msg.From = m.From
	return w.send.Send(ctx, msg)
}

// backoff is the delay after the attempt-th failure: RetryBase, doubling, capped at RetryMax.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.RetryBase
	for i := 1; i < attempt && d < w.RetryMax; i++ {
		d *= 2
	}
	return min(d, w.RetryMax)
}
