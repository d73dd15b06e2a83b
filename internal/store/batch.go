package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// batcher groups calls that arrive while earlier groups are running into one call of run: one
// statement, one round trip and one commit for many requests. On the 2-core machines the refresh
// rotation's cost is mostly per statement (parse or bind, executor start-up, the commit's WAL flush,
// two context switches), not per row, so under load a group of rotations costs little more than one.
//
// At most inFlight groups run at once; a call that finds a free slot runs at once (alone, when
// nothing else is waiting), so an idle service adds no latency. Calls arriving while every slot is
// busy queue, and the next free slot takes up to max of them, in arrival order.
//
// With key set, two calls with the same key never run in one group nor in two groups at once: the
// later waits for the next group after the earlier one finished, so it sees what the earlier one
// committed, exactly as two transactions in a row would. That also keeps two groups from locking the
// same rows in opposite orders.
type batcher[K comparable, In, Out any] struct {
	run      func(ctx context.Context, in []In) ([]batchResult[Out], error)
	key      func(In) K // nil: calls need not be kept apart
	max      int
	slots    chan struct{}
	mu       sync.Mutex
	queue    []*batchCall[In, Out]
	inFlight map[K]int // keys of the calls in running groups
	// groups and calls count what ran, for metrics.
	groups, calls atomic.Int64
}

// batchResult is one call's outcome within a group that ran.
type batchResult[Out any] struct {
	out Out
	err error
}

type batchCall[In, Out any] struct {
	ctx   context.Context
	in    In
	res   batchResult[Out]
	taken bool          // in a group (under batcher.mu); a queued call that is not may still leave
	done  chan struct{} // closed when res is set
}

func newBatcher[K comparable, In, Out any](inFlight, max int, key func(In) K,
	run func(ctx context.Context, in []In) ([]batchResult[Out], error)) *batcher[K, In, Out] {
	if inFlight < 1 {
		inFlight = 1
	}
	if max < 1 {
		max = 1
	}
	return &batcher[K, In, Out]{run: run, key: key, max: max, slots: make(chan struct{}, inFlight), inFlight: map[K]int{}}
}

// do runs in within some group and returns its own outcome. When ctx ends first, the call leaves
// (if its group has not started, it is not run at all) and answers unavailable; a group already
// running is not interrupted for it, since its other calls still want their answers.
func (b *batcher[K, In, Out]) do(ctx context.Context, in In) (Out, error) {
	c := &batchCall[In, Out]{ctx: ctx, in: in, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	b.mu.Unlock()
	b.kick()
	select {
	case <-c.done:
		return c.res.out, c.res.err
	case <-ctx.Done():
	}
	select {
	case <-c.done: // answered as the deadline passed: the outcome is worth more than a 503
		return c.res.out, c.res.err
	default:
	}
	b.mu.Lock()
	if !c.taken {
		for i, q := range b.queue {
			if q == c {
				b.queue = append(b.queue[:i], b.queue[i+1:]...)
				break
			}
		}
	}
	b.mu.Unlock()
	var zero Out
	return zero, unavailable(ctx.Err())
}

// kick starts a group when a slot is free. When none is, a running group picks the queue up as it
// finishes.
func (b *batcher[K, In, Out]) kick() {
	select {
	case b.slots <- struct{}{}:
		go b.drain()
	default:
	}
}

// drain runs groups in the slot it holds until none can be formed, then frees the slot.
func (b *batcher[K, In, Out]) drain() {
	for {
		b.mu.Lock()
		group := b.take()
		more := b.takeable()
		b.mu.Unlock()
		if len(group) == 0 {
			break
		}
		if more {
			// More than one group's worth is waiting: another free slot may start on it meanwhile.
			b.kick()
		}
		b.exec(group)
	}
	<-b.slots
	// A call queued after take found no free slot: look again now that this one is free.
	b.mu.Lock()
	more := b.takeable()
	b.mu.Unlock()
	if more {
		b.kick()
	}
}

// take removes up to max runnable calls from the queue, in order, marking their keys in flight.
// Calls whose context already ended are dropped. Under b.mu.
func (b *batcher[K, In, Out]) take() []*batchCall[In, Out] {
	var group []*batchCall[In, Out]
	rest := b.queue[:0]
	for _, c := range b.queue {
		switch {
		case c.ctx.Err() != nil:
			// Its caller returns (or has returned) on its own; do nothing for it.
			continue
		case len(group) < b.max && b.free(c):
			c.taken = true
			if b.key != nil {
				b.inFlight[b.key(c.in)]++
			}
			group = append(group, c)
		default:
			rest = append(rest, c)
		}
	}
	clear(b.queue[len(rest):])
	b.queue = rest
	return group
}

func (b *batcher[K, In, Out]) free(c *batchCall[In, Out]) bool {
	return b.key == nil || b.inFlight[b.key(c.in)] == 0
}

// takeable reports whether take would form a group. Under b.mu.
func (b *batcher[K, In, Out]) takeable() bool {
	for _, c := range b.queue {
		if c.ctx.Err() == nil && b.free(c) {
			return true
		}
	}
	return false
}

// exec runs one group and hands each call its outcome. The group's context carries no caller's
// cancellation (one caller leaving must not fail the others) but ends at the latest of their
// deadlines, so a group cannot outlive every request waiting for it.
func (b *batcher[K, In, Out]) exec(group []*batchCall[In, Out]) {
	ctx := context.WithoutCancel(group[0].ctx)
	var latest time.Time
	bounded := true
	for _, c := range group {
		d, ok := c.ctx.Deadline()
		if !ok {
			bounded = false
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	cancel := context.CancelFunc(func() {})
	if bounded {
		ctx, cancel = context.WithDeadline(ctx, latest)
	}
	b.groups.Add(1)
	b.calls.Add(int64(len(group)))
	ins := make([]In, len(group))
	for i, c := range group {
		ins[i] = c.in
	}
	res, err := b.run(ctx, ins)
	cancel()
	if err == nil && len(res) != len(group) {
		err = fmt.Errorf("store: a group of %d calls answered %d results", len(group), len(res))
	}
	b.mu.Lock()
	for i, c := range group {
		if err != nil {
			c.res.err = err
		} else {
			c.res = res[i]
		}
		if b.key != nil {
			k := b.key(c.in)
			if b.inFlight[k]--; b.inFlight[k] == 0 {
				delete(b.inFlight, k)
			}
		}
		close(c.done)
	}
	b.mu.Unlock()
}
