package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// TestGroupedRotationOfOneTokenTwice: one token presented twice in one group (which the batcher never
// forms, but a second instance's group may hold the same token) ends as two transactions in a row
// would: one rotation with one successor, and the other presentation refused, so that the service
// reads the token's state and finds the grace replay (or, past the grace, the reuse).
func TestGroupedRotationOfOneTokenTwice(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Postgres)
	clk := authtest.NewClock()
	s.Now = clk.Now
	u := newUser(t, s, "twice@example.test")
	sess := openSession(t, s, u, "a0")
	openSession(t, s, u, "b0")

	ttl := authtest.Rules.IdleTTL
	outs, errs, err := s.RotateGroup(ctx, []store.Rotation{
		{OldHash: authtest.Hash("a0"), NewHash: authtest.Hash("a1"), IdleTTL: ttl},
		{OldHash: authtest.Hash("b0"), NewHash: authtest.Hash("b1"), IdleTTL: ttl},
		{OldHash: authtest.Hash("a0"), NewHash: authtest.Hash("a1"), IdleTTL: ttl},
	})
	if err != nil {
		t.Fatal(err)
	}
	if errs[1] != nil {
		t.Errorf("the other session's rotation in the group: %v", errs[1])
	}
	var won []int
	for _, i := range []int{0, 2} {
		switch {
		case errs[i] == nil:
			won = append(won, i)
			if outs[i].SessionID != sess.ID || outs[i].Kept {
				t.Errorf("presentation %d: %+v, want a rotation of session %s", i, outs[i], sess.ID)
			}
		case !errors.Is(errs[i], auth.ErrNotFound):
			t.Errorf("presentation %d: %v, want ErrNotFound for the one that lost", i, errs[i])
		}
	}
	if len(won) != 1 {
		t.Fatalf("presentations that rotated: %v, want exactly one", won)
	}
	if n := countTokens(t, s, sess.ID); n != 2 {
		t.Errorf("session has %d refresh tokens, want 2 (the token and one successor)", n)
	}
	// What the loser's caller does next: read the state and classify it.
	st, err := s.RefreshState(ctx, authtest.Hash("a0"))
	if err != nil {
		t.Fatal(err)
	}
	if v := auth.ClassifyRefresh(&st, clk.Now(), authtest.Rules); v != auth.RefreshGrace {
		t.Errorf("the second presentation, right after: %v, want grace", v)
	}
	if diff := cmp.Diff(authtest.Hash("a1"), st.SuccessorHash); diff != "" {
		t.Errorf("successor (-want +got):\n%s", diff)
	}
	clk.Advance(authtest.Rules.Grace + time.Second)
	if v := auth.ClassifyRefresh(&st, clk.Now(), authtest.Rules); v != auth.RefreshReused {
		t.Errorf("the second presentation, past the grace: %v, want reused", v)
	}
}

// TestGroupedRotationAgreesWithTheClassifier: a group holding tokens in every state rotates exactly
// those ClassifyRefresh says rotate (or keep), each with its own session's answer.
func TestGroupedRotationAgreesWithTheClassifier(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Postgres)
	clk := authtest.NewClock()
	s.Now = clk.Now
	u := newUser(t, s, "states@example.test")
	disabled := newUser(t, s, "disabled@example.test")
	idle := openSession(t, s, u, "idle0")
	clk.Advance(authtest.Rules.IdleTTL + time.Minute)

	live := openSession(t, s, u, "live0")
	spent := openSession(t, s, u, "spent0")
	mustRotate(t, s, "spent0", "spent1")
	revoked := openSession(t, s, u, "revoked0")
	if err := s.RevokeSession(ctx, u.ID, revoked.ID, "logout", auth.Event{}); err != nil {
		t.Fatal(err)
	}
	openSession(t, s, disabled, "disabled0")
	if err := s.SetUserStatus(ctx, disabled.ID, auth.StatusDisabled, auth.Event{}); err != nil {
		t.Fatal(err)
	}
	kept, err := s.OpenSession(ctx, auth.NewSession{UserID: u.ID, TenantID: u.TenantID, AMR: "pwd", RefreshRotation: false,
		IdleTTL: time.Hour, MaxAge: 24 * time.Hour, RefreshHash: authtest.Hash("kept0")})
	if err != nil {
		t.Fatal(err)
	}
	_ = idle

	presented := []string{"live0", "spent0", "revoked0", "disabled0", "idle0", "unknown", "kept0", "spent1"}
	var in []store.Rotation
	want := map[string]auth.RefreshVerdict{}
	for _, p := range presented {
		in = append(in, store.Rotation{OldHash: authtest.Hash(p), NewHash: authtest.Hash(p + "'"), IdleTTL: authtest.Rules.IdleTTL})
		st, err := s.RefreshState(ctx, authtest.Hash(p))
		var state *auth.RefreshState
		if err == nil {
			state = &st
		}
		want[p] = auth.ClassifyRefresh(state, clk.Now(), authtest.Rules)
	}
	// The states the group must tell apart.
	if diff := cmp.Diff(map[string]auth.RefreshVerdict{"live0": auth.RefreshRotate, "spent0": auth.RefreshGrace,
		"revoked0": auth.RefreshRevoked, "disabled0": auth.RefreshDisabled, "idle0": auth.RefreshExpired, "unknown": auth.RefreshUnknown,
		"kept0": auth.RefreshKeep, "spent1": auth.RefreshRotate}, want); diff != "" {
		t.Fatalf("states before the group (-want +got):\n%s", diff)
	}
	outs, errs, err := s.RotateGroup(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	sessionOf := map[string]string{"live0": live.ID, "spent1": spent.ID, "kept0": kept.ID}
	for i, p := range presented {
		accepted := want[p] == auth.RefreshRotate || want[p] == auth.RefreshKeep
		switch {
		case accepted && errs[i] != nil:
			t.Errorf("%s (%v): %v, want accepted", p, want[p], errs[i])
		case accepted:
			if outs[i].SessionID != sessionOf[p] || outs[i].Kept != (want[p] == auth.RefreshKeep) || outs[i].UserID != u.ID {
				t.Errorf("%s: %+v, want session %s, kept %v", p, outs[i], sessionOf[p], want[p] == auth.RefreshKeep)
			}
		case !errors.Is(errs[i], auth.ErrNotFound):
			t.Errorf("%s (%v): %v, want ErrNotFound", p, want[p], errs[i])
		}
	}
	for p, sid := range map[string]string{"live0": live.ID, "spent1": spent.ID, "kept0": kept.ID} {
		wantTokens := map[string]int{"live0": 2, "spent1": 3, "kept0": 1}[p]
		if n := countTokens(t, s, sid); n != wantTokens {
			t.Errorf("session of %s has %d tokens, want %d", p, n, wantTokens)
		}
	}
}

// TestGroupedGraceRunsFromTheCommit: TestGraceRunsFromTheCommit for a group: every token a slow group
// spent has its used_at moved to the end of the wait.
func TestGroupedGraceRunsFromTheCommit(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Postgres)
	clk := authtest.NewClock()
	s.Now = clk.Now
	u := newUser(t, s, "slowgroup@example.test")
	for i := range 3 {
		openSession(t, s, u, fmt.Sprintf("g%d", i))
	}
	lock, err := s.SQLDB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec("LOCK TABLE refresh_tokens IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	began := make(chan struct{})
	var once sync.Once
	s.Now = func() time.Time {
		once.Do(func() { close(began) })
		return clk.Now()
	}
	done := make(chan error, 1)
	go func() {
		var in []store.Rotation
		for i := range 3 {
			in = append(in, store.Rotation{OldHash: authtest.Hash(fmt.Sprintf("g%d", i)), NewHash: authtest.Hash(fmt.Sprintf("g%d'", i)), IdleTTL: authtest.Rules.IdleTTL})
		}
		_, errs, err := s.RotateGroup(ctx, in)
		done <- errors.Join(append(errs, err)...)
	}()
	<-began
	clk.Advance(6 * time.Second)
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	clk.Advance(authtest.Rules.Grace - time.Second)
	for i := range 3 {
		st, err := s.RefreshState(ctx, authtest.Hash(fmt.Sprintf("g%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if v := auth.ClassifyRefresh(&st, clk.Now(), authtest.Rules); v != auth.RefreshGrace {
			t.Errorf("token %d, a retry %s after the group's commit: %v, want grace", i, authtest.Rules.Grace-time.Second, v)
		}
	}
}

// TestConcurrentRefreshesOfOneTokenThroughTheBatcher: 50 concurrent rotations of one token among
// rotations of other sessions' tokens: exactly one of the 50 wins, every other session rotates once.
func TestConcurrentRefreshesOfOneTokenThroughTheBatcher(t *testing.T) {
	ctx := context.Background()
	s := storetest.Open(t, store.Postgres)
	u := newUser(t, s, "fifty@example.test")
	hot := openSession(t, s, u, "hot0")
	const others = 30
	for i := range others {
		openSession(t, s, u, fmt.Sprintf("o%d", i))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, othersWon := 0, 0
	var problems []error
	for i := range 50 + others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			old, next := "hot0", "hot1"
			if i >= 50 {
				old, next = fmt.Sprintf("o%d", i-50), fmt.Sprintf("o%d'", i-50)
			}
			_, err := s.Rotate(ctx, authtest.Hash(old), authtest.Hash(next), authtest.Rules.IdleTTL)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && i < 50:
				wins++
			case err == nil:
				othersWon++
			case !errors.Is(err, auth.ErrNotFound) || i >= 50:
				problems = append(problems, err)
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("unexpected errors: %v", problems)
	}
	if wins != 1 || othersWon != others {
		t.Errorf("%d rotations of the hot token won (want 1), %d of %d other sessions rotated", wins, othersWon, others)
	}
	if n := countTokens(t, s, hot.ID); n != 2 {
		t.Errorf("the hot session has %d tokens, want 2", n)
	}
}

func mustRotate(t *testing.T, s *store.Store, old, next string) {
	t.Helper()
	if _, err := s.Rotate(context.Background(), authtest.Hash(old), authtest.Hash(next), authtest.Rules.IdleTTL); err != nil {
		t.Fatalf("rotate %s: %v", old, err)
	}
}

func countTokens(t *testing.T, s *store.Store, sessionID string) int {
	t.Helper()
	var n int
	if err := s.SQLDB().QueryRow("SELECT count(*) FROM refresh_tokens WHERE session_id = $1", sessionID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
