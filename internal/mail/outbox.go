package mail

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/latch-auth/latch/internal/store"
)

// Worker delivers the outbox: it claims due messages (leased, so several instances share the table
// without double sends and a crashed worker's rows come back), renders and sends them, and schedules
// retries with backoff until the message stops being useful.
type Worker struct {
	store  *store.Store
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

	wake chan struct{}
}

// NewWorker makes a worker with production defaults.
func NewWorker(st *store.Store, r *Renderer, s Sender, log *slog.Logger) *Worker {
	return &Worker{store: st, render: r, send: s, log: log, Poll: time.Second, Lease: time.Minute,
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
			if err := w.store.PurgeOutbox(ctx, 24*time.Hour); err != nil && ctx.Err() == nil {
				w.log.Error("purge outbox", "err", err)
			}
		}
	}
}

// RunOnce claims one batch of due messages and sends them; it returns how many it claimed.
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	msgs, err := w.store.ClaimOutbox(ctx, w.Lease, w.Batch)
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

func (w *Worker) deliver(ctx context.Context, m store.OutboxMessage) {
	err := w.sendOne(ctx, m)
	if w.Observe != nil {
		w.Observe(w.store.Now().Sub(m.CreatedAt), err)
	}
	if err == nil {
		if err := w.store.MarkSent(ctx, m.ID); err != nil {
			w.log.Error("outbox mark sent", "id", m.ID, "err", err)
		}
		return
	}
	next := w.store.Now().Add(w.backoff(m.Attempts))
	w.log.Warn("email send failed; will retry", "id", m.ID, "template", m.Template, "attempt", m.Attempts, "retry_at", next, "err", err)
	if err := w.store.MarkFailed(ctx, m.ID, next, err.Error()); err != nil {
		w.log.Error("outbox mark failed", "id", m.ID, "err", err)
	}
}

var errNoData = errors.New("outbox message has no data")

func (w *Worker) sendOne(ctx context.Context, m store.OutboxMessage) error {
	if m.Data == nil {
		return errNoData
	}
	var d Data
	if err := json.Unmarshal([]byte(*m.Data), &d); err != nil {
		return err
	}
	msg, err := w.render.Render(m.Template, m.ToAddr, d)
	if err != nil {
		return err
	}
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
