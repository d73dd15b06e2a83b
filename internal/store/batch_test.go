package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latch-auth/latch/internal/auth"
)

// gatedRun is a batcher's run whose groups wait for release, recording what each group held.
type gatedRun struct {
	mu      sync.Mutex
	groups  [][]string
	started chan int // receives each group's size as it starts
	release chan struct{}
	fail    error
	running map[string]bool // keys in running groups, to catch two groups holding one key
	overlap []string
}

func newGatedRun() *gatedRun {
	return &gatedRun{started: make(chan int, 100), release: make(chan struct{}), running: map[string]bool{}}
}

func (g *gatedRun) run(ctx context.Context, in []string) ([]batchResult[string], error) {
	g.mu.Lock()
	g.groups = append(g.groups, append([]string(nil), in...))
	for _, k := range in {
		if g.running[k] {
			g.overlap = append(g.overlap, k)
		}
		g.running[k] = true
	}
	g.mu.Unlock()
	g.started <- len(in)
	<-g.release
	g.mu.Lock()
	for _, k := range in {
		delete(g.running, k)
	}
	g.mu.Unlock()
	if g.fail != nil {
		return nil, g.fail
	}
	res := make([]batchResult[string], len(in))
	for i, k := range in {
		res[i].out = "done " + k
	}
	return res, nil
}

func identity(s string) string { return s }

// waitQueued waits until n calls are queued (not yet in a group).
func waitQueued[K comparable, In, Out any](t *testing.T, b *batcher[K, In, Out], n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		got := len(b.queue)
		b.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

type answer struct {
	out string
	err error
}

func TestBatcherRunsAloneWhenIdle(t *testing.T) {
	g := newGatedRun()
	close(g.release)
	b := newBatcher(2, 8, identity, g.run)
	for i := range 3 {
		out, err := b.do(context.Background(), fmt.Sprint(i))
		if err != nil || out != fmt.Sprint("done ", i) {
			t.Fatalf("call %d: %q, %v", i, out, err)
		}
	}
	if diff := cmp.Diff([][]string{{"0"}, {"1"}, {"2"}}, g.groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

// TestBatcherGroupsWhatArrivesWhileBusy: with every slot busy, arrivals queue, and the next free slot
// takes them in arrival order, at most max at a time; each caller gets its own outcome.
func TestBatcherGroupsWhatArrivesWhileBusy(t *testing.T) {
	g := newGatedRun()
	b := newBatcher(1, 4, identity, g.run)
	answers := make(chan answer, 20)
	call := func(k string) {
		out, err := b.do(context.Background(), k)
		answers <- answer{out, err}
	}
	go call("first")
	if n := <-g.started; n != 1 {
		t.Fatalf("first group has %d calls, want 1", n)
	}
	for i := range 10 {
		go call(fmt.Sprint(i))
		waitQueued(t, b, i+1)
	}
	close(g.release)
	got := map[string]bool{}
	for range 11 {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		got[a.out] = true
	}
	if len(got) != 11 {
		t.Errorf("answers %v, want 11 distinct", got)
	}
	sizes := []int{}
	var order []string
	for _, grp := range g.groups[1:] {
		sizes = append(sizes, len(grp))
		order = append(order, grp...)
	}
	if diff := cmp.Diff([]int{4, 4, 2}, sizes); diff != "" {
		t.Errorf("group sizes after the first (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestBatcherFailureReachesEveryCaller: a group that fails answers each of its callers with the
// group's error, and nobody with an outcome.
func TestBatcherFailureReachesEveryCaller(t *testing.T) {
	g := newGatedRun()
	down := fmt.Errorf("%w: connection refused", auth.ErrUnavailable)
	g.fail = down
	b := newBatcher(1, 8, identity, g.run)
	answers := make(chan answer, 10)
	call := func(k string) {
		out, err := b.do(context.Background(), k)
		answers <- answer{out, err}
	}
	go call("first")
	<-g.started
	for i := range 5 {
		go call(fmt.Sprint(i))
		waitQueued(t, b, i+1)
	}
	close(g.release)
	for range 6 {
		a := <-answers
		if !errors.Is(a.err, auth.ErrUnavailable) || a.out != "" {
			t.Errorf("answer %q, %v; want only ErrUnavailable", a.out, a.err)
		}
	}
	if len(g.groups) != 2 {
		t.Errorf("%d groups ran, want 2", len(g.groups))
	}
}

// TestBatcherCancelledCallLeavesTheQueue: a caller whose context ends while it waits for a group gets
// ErrUnavailable at once, and its call is never run.
func TestBatcherCancelledCallLeavesTheQueue(t *testing.T) {
	g := newGatedRun()
	b := newBatcher(1, 8, identity, g.run)
	answers := make(chan answer, 10)
	go func() {
		out, err := b.do(context.Background(), "first")
		answers <- answer{out, err}
	}()
	<-g.started
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		_, err := b.do(ctx, "leaves")
		left <- err
	}()
	waitQueued(t, b, 1)
	go func() {
		out, err := b.do(context.Background(), "stays")
		answers <- answer{out, err}
	}()
	waitQueued(t, b, 2)
	cancel()
	if err := <-left; !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v, want ErrUnavailable wrapping context.Canceled", err)
	}
	close(g.release)
	for range 2 {
		if a := <-answers; a.err != nil {
			t.Error(a.err)
		}
	}
	if diff := cmp.Diff([][]string{{"first"}, {"stays"}}, g.groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

// TestBatcherDeadlineBoundsTheGroup: a group runs under the latest deadline of its calls and no
// caller's cancellation.
func TestBatcherDeadlineBoundsTheGroup(t *testing.T) {
	var got []time.Time
	var cancelled []bool
	run := func(ctx context.Context, in []string) ([]batchResult[string], error) {
		d, _ := ctx.Deadline()
		got = append(got, d)
		cancelled = append(cancelled, ctx.Err() != nil)
		return make([]batchResult[string], len(in)), nil
	}
	b := newBatcher(1, 8, identity, run)
	deadline := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if _, err := b.do(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]time.Time{deadline}, got); diff != "" {
		t.Errorf("deadline (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]bool{false}, cancelled); diff != "" {
		t.Errorf("cancelled (-want +got):\n%s", diff)
	}
}

// TestBatcherKeepsOneKeyApart: calls with the same key never share a group nor run in two groups at
// once; the later runs after the earlier finished, as a second transaction would.
func TestBatcherKeepsOneKeyApart(t *testing.T) {
	g := newGatedRun()
	b := newBatcher(3, 8, identity, g.run)
	answers := make(chan answer, 10)
	call := func(k string) {
		out, err := b.do(context.Background(), k)
		answers <- answer{out, err}
	}
	go call("x")
	<-g.started
	go call("y")
	<-g.started
	// Two slots busy (x, y), one free: a second x must wait for the first, a z may run at once.
	go call("x")
	waitQueued(t, b, 1)
	go call("z")
	if n := <-g.started; n != 1 {
		t.Fatalf("z's group has %d calls, want 1", n)
	}
	waitQueued(t, b, 1) // the second x, still waiting
	close(g.release)
	for range 4 {
		if a := <-answers; a.err != nil {
			t.Error(a.err)
		}
	}
	for _, grp := range g.groups {
		seen := map[string]bool{}
		for _, k := range grp {
			if seen[k] {
				t.Errorf("group %v holds %q twice", grp, k)
			}
			seen[k] = true
		}
	}
	if len(g.overlap) > 0 {
		t.Errorf("keys %v ran in two groups at once", g.overlap)
	}
	if len(g.groups) != 4 {
		t.Errorf("groups %v, want 4", g.groups)
	}
}

// TestBatcherUnderLoad: many callers, several slots, repeated keys; every call answered with its own
// outcome exactly once, no group above max, no key in two groups at once (run with -race).
func TestBatcherUnderLoad(t *testing.T) {
	var mu sync.Mutex
	running := map[string]int{}
	var problems []string
	run := func(ctx context.Context, in []string) ([]batchResult[string], error) {
		mu.Lock()
		if len(in) > 5 {
			problems = append(problems, fmt.Sprintf("group of %d", len(in)))
		}
		for _, k := range in {
			if running[k]++; running[k] > 1 {
				problems = append(problems, "key "+k+" twice")
			}
		}
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		mu.Lock()
		for _, k := range in {
			running[k]--
		}
		mu.Unlock()
		res := make([]batchResult[string], len(in))
		for i, k := range in {
			res[i].out = k
		}
		return res, nil
	}
	b := newBatcher(3, 5, identity, run)
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprint(i % 7)
			out, err := b.do(context.Background(), k)
			if err != nil || out != k {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("call %s: %q %v", k, out, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Errorf("%d problems, first: %v", len(problems), problems[0])
	}
}

// TestBatcherShortAnswerFailsTheGroup: a run that answers fewer results than it was given calls fails
// every call of the group rather than handing anyone another call's outcome.
func TestBatcherShortAnswerFailsTheGroup(t *testing.T) {
	run := func(ctx context.Context, in []string) ([]batchResult[string], error) {
		return []batchResult[string]{{out: "someone's"}}, nil
	}
	b := newBatcher(1, 8, identity, run)
	b.slots <- struct{}{} // hold the only slot so that both calls queue into one group
	answers := make(chan answer, 2)
	for _, k := range []string{"a", "b"} {
		go func() {
			out, err := b.do(context.Background(), k)
			answers <- answer{out, err}
		}()
	}
	waitQueued(t, b, 2)
	<-b.slots
	b.kick()
	for range 2 {
		if a := <-answers; a.err == nil || a.out != "" {
			t.Errorf("answer %q, %v; want an error and no outcome", a.out, a.err)
		}
	}
}

// TestBatchFailedIsUnavailable: a deadlock or serialization failure aborts a whole group through no
// fault of its requests: 503, to be retried, like a database that did not answer; an error that says
// something is wrong with the statement stays what it is (a 500).
func TestBatchFailedIsUnavailable(t *testing.T) {
	for code, want := range map[string]bool{"40P01": true, "40001": true, "57014": true, "08006": true, "42601": false, "23505": false} {
		got := errors.Is(batchFailed(&pgconn.PgError{Code: code}), auth.ErrUnavailable)
		if got != want {
			t.Errorf("SQLSTATE %s: unavailable %v, want %v", code, got, want)
		}
	}
}
