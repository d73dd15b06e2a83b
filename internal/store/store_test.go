package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

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

// TestPorts holds both databases to the same behaviour as the in-memory ports, the rotation rule
// included.
func TestPorts(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			authtest.StoreSuite(t, func(t *testing.T, now func() time.Time) auth.Store {
				s := storetest.Open(t, d)
				s.Now = now
				return s
			})
		})
	}
}

func newUser(t testing.TB, s *store.Store, email string) auth.User {
	t.Helper()
	u := auth.User{Email: email}
	if err := s.CreateUser(context.Background(), &u, "x"); err != nil {
		t.Fatal(err)
	}
	return u
}

func openSession(t testing.TB, s *store.Store, u auth.User, refresh string) auth.Session {
	t.Helper()
	sess, err := s.OpenSession(context.Background(), auth.NewSession{UserID: u.ID, TenantID: u.TenantID, AMR: "pwd otp", RefreshRotation: true,
		IdleTTL: time.Hour, MaxAge: 24 * time.Hour, RefreshHash: authtest.Hash(refresh), Event: auth.Event{UserID: u.ID, Kind: "login"}})
	if err != nil {
		t.Fatal(err)
	}
	return sess
}

func TestOutboxClaimOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		u := newUser(t, s, "mail@example.test")
		iss, err := s.IssueCode(ctx, auth.IssueCode{UserID: u.ID, Purpose: auth.PurposeSignup, CodeHash: []byte("h"), TTL: 10 * time.Minute,
			MaxAttempts: 5, Cooldown: time.Minute, MaxPerHour: 3,
			Mail: auth.Email{To: u.Email, Template: "signup_code", ExpiresAt: s.Now().Add(10 * time.Minute),
				Data: func(replaced bool) (string, error) { return fmt.Sprintf(`{"Replaced":%v}`, replaced), nil }}})
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.ClaimOutbox(ctx, time.Minute, 10)
		if err != nil || len(a) != 1 || a[0].ID != iss.OutboxID || a[0].Attempts != 1 || a[0].To != u.Email || a[0].Template != "signup_code" {
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

// TestSessionTouchIsLazy: a rotation rewrites its session row at most every sessionTouchEvery; the
// idle window itself is judged on the token, exactly (the shared suite checks that part).
func TestSessionTouchIsLazy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return now }
		u := newUser(t, s, "idle@example.test")
		sess := openSession(t, s, u, "i0")

		now = now.Add(10 * time.Second)
		if _, err := s.Rotate(ctx, authtest.Hash("i0"), authtest.Hash("i1"), time.Hour); err != nil {
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
		if _, err := s.Rotate(ctx, authtest.Hash("i1"), authtest.Hash("i2"), time.Hour); err != nil {
			t.Fatal(err)
		}
		if live, _ = s.LiveSession(ctx, sess.ID); !live.LastUsedAt.Equal(now) || !live.IdleExpiresAt.Equal(now.Add(time.Hour)) {
			t.Errorf("a rotation a minute after the last touch did not record it (last used %s, idle end %s, now %s)",
				live.LastUsedAt, live.IdleExpiresAt, now)
		}
		if _, err := s.UserByID(ctx, "not-a-uuid"); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("UserByID(bad) = %v, want ErrNotFound", err)
		}
	})
}

func TestOpenSQLiteNamesAMissingDirectory(t *testing.T) {
	_, err := store.Open(context.Background(), "sqlite://"+t.TempDir()+"/no/such/dir/latch.db", store.Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open in a missing directory: %v, want an error saying the directory does not exist", err)
	}
}
