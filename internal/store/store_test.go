package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

func hash(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestMigrateTwice(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		n, err := s.Migrate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("second migrate applied %d migrations, want 0", n)
		}
		st, err := s.MigrationStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st) < 5 {
			t.Fatalf("got %d migrations, want at least 5", len(st))
		}
		for _, m := range st {
			if !m.Applied {
				t.Errorf("migration %d not applied", m.Version)
			}
		}
	})
}

func newUser(t *testing.T, s *store.Store, email string) store.User {
	t.Helper()
	u := store.User{Email: email, PasswordHash: "x"}
	if err := s.CreateUser(context.Background(), &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUsersUniquePerTenantCaseInsensitive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "ann@example.test")
		err := s.CreateUser(ctx, &store.User{Email: "ANN@example.test", PasswordHash: "y"})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate email: got %v, want ErrConflict", err)
		}
		got, err := s.UserByEmail(ctx, store.DefaultTenantID, "Ann@Example.Test")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID {
			t.Errorf("UserByEmail id = %s, want %s", got.ID, u.ID)
		}
		if _, err := s.UserByID(ctx, "not-a-uuid"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByID(bad) = %v, want ErrNotFound", err)
		}
	})
}

func issue(s *store.Store, userID, purpose string, codeHash []byte) (store.Issued, error) {
	return s.IssueCode(context.Background(), store.IssueCode{
		UserID: userID, Purpose: purpose, CodeHash: codeHash, TTL: 10 * time.Minute, MaxAttempts: 5,
		Cooldown: time.Minute, MaxPerHour: 3,
		Mail: store.Mail{To: "a@example.test", Template: purpose + "_code", ExpiresAt: s.Now().Add(10 * time.Minute),
			Data: func(replaced bool) (string, error) { return fmt.Sprintf(`{"replaced":%v}`, replaced), nil }},
	})
}

func TestIssueCodeLimitsAndReplacement(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		u := newUser(t, s, "codes@example.test")

		first, err := issue(s, u.ID, store.PurposeLogin, []byte("h1"))
		if err != nil || first.Replaced {
			t.Fatalf("first issue = %+v, %v", first, err)
		}
		_, err = issue(s, u.ID, store.PurposeLogin, []byte("h2"))
		var lim *store.LimitError
		if !errors.As(err, &lim) || !lim.Cooldown || lim.RetryAfter != time.Minute {
			t.Fatalf("issue within cooldown = %v, want cooldown LimitError of 1m", err)
		}
		now = now.Add(61 * time.Second)
		second, err := issue(s, u.ID, store.PurposeLogin, []byte("h2"))
		if err != nil || !second.Replaced {
			t.Fatalf("second issue = %+v, %v; want Replaced", second, err)
		}
		live, err := s.LiveCode(ctx, u.ID, store.PurposeLogin)
		if err != nil || live.ID != second.CodeID {
			t.Fatalf("live code = %v, %v; want %s", live.ID, err, second.CodeID)
		}
		// A different purpose has its own cooldown but shares the hourly cap (3 here).
		if _, err := issue(s, u.ID, store.PurposeReset, []byte("h3")); err != nil {
			t.Fatal(err)
		}
		now = now.Add(61 * time.Second)
		_, err = issue(s, u.ID, store.PurposeLogin, []byte("h4"))
		if !errors.As(err, &lim) || lim.Cooldown {
			t.Fatalf("fourth code email in an hour = %v, want hourly LimitError", err)
		}
		if want := time.Hour - 122*time.Second; lim.RetryAfter != want {
			t.Errorf("hourly RetryAfter = %s, want %s", lim.RetryAfter, want)
		}
	})
}

func TestCodeAttemptsAreBounded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "tries@example.test")
		iss, err := issue(s, u.ID, store.PurposeLogin, []byte("h"))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, dead := 0, 0
		for i := 0; i < 12; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.CountCodeAttempt(ctx, iss.CodeID)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, store.ErrCodeDead):
					dead++
				default:
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if diff := cmp.Diff([2]int{5, 7}, [2]int{ok, dead}); diff != "" {
			t.Errorf("attempts (ok, dead) mismatch (-want +got):\n%s", diff)
		}
	})
}

func openSession(t *testing.T, s *store.Store, u store.User, refresh string) store.Session {
	t.Helper()
	sess, err := s.OpenSession(context.Background(), store.NewSession{UserID: u.ID, TenantID: u.TenantID, AMR: "pwd otp",
		IdleTTL: time.Hour, MaxAge: 24 * time.Hour, RefreshHash: hash(refresh), Event: store.Event{UserID: u.ID, Kind: "login"}})
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func TestRotateExactlyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "rot@example.test")
		sess := openSession(t, s, u, "r0")
		const n = 20
		var wg sync.WaitGroup
		wins := make(chan store.Rotated, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := s.Rotate(ctx, hash("r0"), hash("r1"), time.Hour)
				if err == nil {
					wins <- r
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		close(wins)
		if len(wins) != 1 {
			t.Fatalf("%d rotations won, want exactly 1", len(wins))
		}
		r := <-wins
		if r.SessionID != sess.ID || r.Email != u.Email || r.UserID != u.ID {
			t.Errorf("rotated = %+v", r)
		}
		st, err := s.InspectRefresh(ctx, hash("r0"))
		if err != nil {
			t.Fatal(err)
		}
		if st.UsedAt == nil || !st.SuccessorFound || string(st.SuccessorHash) != string(hash("r1")) || st.SuccessorUsed != nil {
			t.Errorf("inspect after rotation = %+v", st)
		}
		if _, err := s.Rotate(ctx, hash("r1"), hash("r2"), time.Hour); err != nil {
			t.Fatalf("rotating the successor: %v", err)
		}
		if err := s.RevokeSession(ctx, u.ID, sess.ID, "test", store.Event{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rotate(ctx, hash("r2"), hash("r3"), time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rotate on revoked session = %v, want ErrNotFound", err)
		}
	})
}

func TestOutboxClaimOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "mail@example.test")
		iss, err := issue(s, u.ID, store.PurposeSignup, []byte("h"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(a) != 1 || a[0].ID != iss.OutboxID || a[0].Attempts != 1 {
			t.Fatalf("first claim = %+v, %v", a, err)
		}
		b, err := s.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(b) != 0 {
			t.Fatalf("second claim while leased = %+v, %v", b, err)
		}
		if err := s.MarkSent(ctx, iss.OutboxID); err != nil {
			t.Fatal(err)
		}
		st, err := s.OutboxStats(ctx)
		if err != nil || st.Pending != 0 {
			t.Fatalf("stats after send = %+v, %v", st, err)
		}
	})
}

// TestRotateIdleIsTheTokenAgeAndSessionTouchIsLazy: the idle window is enforced on the presented
// token's age, exactly; the session row is rewritten at most every sessionTouchEvery.
func TestRotateIdleIsTheTokenAgeAndSessionTouchIsLazy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		u := newUser(t, s, "idle@example.test")
		sess := openSession(t, s, u, "i0")

		now = now.Add(10 * time.Second)
		if _, err := s.Rotate(ctx, hash("i0"), hash("i1"), time.Hour); err != nil {
			t.Fatal(err)
		}
		live, err := s.LiveSession(ctx, sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !live.LastUsedAt.Equal(sess.CreatedAt) {
			t.Errorf("a rotation 10 s after the last touch rewrote the session (last used %s)", live.LastUsedAt)
		}
		now = now.Add(time.Minute)
		if _, err := s.Rotate(ctx, hash("i1"), hash("i2"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if live, _ = s.LiveSession(ctx, sess.ID); !live.LastUsedAt.Equal(now) {
			t.Errorf("a rotation a minute after the last touch did not record it (last used %s, now %s)", live.LastUsedAt, now)
		}
		// i2 was created now; one idle TTL later it is too old, whatever the session row says.
		now = now.Add(time.Hour)
		if _, err := s.Rotate(ctx, hash("i2"), hash("i3"), time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("rotating a token older than the idle TTL = %v, want ErrNotFound", err)
		}
	})
}
