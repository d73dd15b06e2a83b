package store_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/seal"
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
	// The rotation and user lookup of a busy Postgres: many-row statements, run here for every state
	// the suite builds.
	t.Run("postgres-grouped", func(t *testing.T) {
		authtest.StoreSuite(t, func(t *testing.T, now func() time.Time) auth.Store {
			s := storetest.Open(t, store.Postgres)
			s.Now = now
			s.GroupStatements()
			return s
		})
	})
	// The same as PgBouncer in transaction mode gets them: unnamed statements, nothing prepared.
	t.Run("postgres-grouped-pgbouncer-mode", func(t *testing.T) {
		authtest.StoreSuite(t, func(t *testing.T, now func() time.Time) auth.Store {
			s, err := store.Open(context.Background(), storetest.PostgresURL(t), store.Options{MaxOpenConns: 8, PgBouncer: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if _, err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			s.Now = now
			s.GroupStatements()
			return s
		})
	})
}

func newUser(t testing.TB, s *store.Store, email string) auth.User {
	t.Helper()
	u := auth.User{Email: email}
	if err := s.CreateUser(context.Background(), &u, "x", auth.Event{}); err != nil {
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
		a, err := s.ClaimOutbox(ctx, time.Minute, 10, nil)
		if err != nil || len(a) != 1 || a[0].ID != iss.OutboxID || a[0].Attempts != 1 || a[0].To != u.Email || a[0].Template != "signup_code" {
			t.Fatalf("first claim = %+v, %v", a, err)
		}
		b, err := s.ClaimOutbox(ctx, time.Minute, 10, nil)
		if err != nil || len(b) != 0 {
			t.Fatalf("second claim while leased = %+v, %v", b, err)
		}
		if err := s.MarkSent(ctx, iss.OutboxID, a[0].Claim); err != nil {
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

// TestGraceRunsFromTheCommit: the reuse grace protects a client that lost the answer to a rotation and
// retries. It used to run from the moment the request began, so a rotation that waited 6 s for a lock
// left its client 4 s of the 10 s grace, or none: the retry was taken for theft and ended the
// session. It runs from the commit.
func TestGraceRunsFromTheCommit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := authtest.NewClock()
		s.Now = clk.Now
		u := newUser(t, s, "slow@example.test")
		openSession(t, s, u, "g0")

		// Another transaction holds what the rotation needs: a lock on Postgres, the one connection
		// on SQLite.
		lock, err := s.SQLDB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Dialect() == store.Postgres {
			if _, err := lock.Exec("LOCK TABLE refresh_tokens IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
		}
		began := make(chan struct{})
		var once sync.Once
		s.Now = func() time.Time {
			once.Do(func() { close(began) })
			return clk.Now()
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.Rotate(ctx, authtest.Hash("g0"), authtest.Hash("g1"), authtest.Rules.IdleTTL)
			done <- err
		}()
		<-began
		clk.Advance(6 * time.Second) // the rotation waits for the lock
		if err := lock.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		clk.Advance(authtest.Rules.Grace - time.Second) // the client retries within the grace of the commit
		st, err := s.RefreshState(ctx, authtest.Hash("g0"))
		if err != nil {
			t.Fatal(err)
		}
		if v := auth.ClassifyRefresh(&st, clk.Now(), authtest.Rules); v != auth.RefreshGrace {
			t.Errorf("a retry %s after the commit of a rotation that waited 6 s: %v, want grace", authtest.Rules.Grace-time.Second, v)
		}
	})
}

// TestKeyEncryptionKeyRotation: start-up re-seals what an older version of the key-encryption key
// sealed, so that version can then be dropped.
func TestKeyEncryptionKeyRotation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v1 := seal.Secret{Version: 1, Material: []byte("the first key-encryption key, 32+ bytes")}
		v2 := seal.Secret{Version: 2, Material: []byte("the second key-encryption key, 32+ bytes")}
		useKeys := func(current seal.Secret, previous ...seal.Secret) {
			t.Helper()
			k, err := seal.NewKeyring(current, previous, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.UseKeyring(k); err != nil {
				t.Fatal(err)
			}
		}
		useKeys(v1)
		want, err := s.Secrets(ctx, "code_hmac", func() ([]byte, error) { return []byte("secret value of the first start"), nil })
		if err != nil {
			t.Fatal(err)
		}
		useKeys(v2, v1)
		n, err := s.SealAtRest(ctx)
		if err != nil || n != 1 {
			t.Fatalf("SealAtRest under a new version = %d, %v; want 1 row re-sealed", n, err)
		}
		useKeys(v2)
		got, err := s.Secrets(ctx, "code_hmac", func() ([]byte, error) { return nil, errors.New("must not generate again") })
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("secret after the rotation (-want +got):\n%s", diff)
		}
	})
}

// count is the number of rows of a table.
func count(t *testing.T, s *store.Store, table string) int {
	t.Helper()
	var n int
	if err := s.SQLDB().QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPurgeKeepsWhatTheRulesNeed: the retention job deletes what no rule reads any more, and nothing
// a rule still reads: a live session keeps every spent token of its chain (reuse detection needs
// them), a recent revocation, a live code and its mail, a counter whose wait still runs.
func TestPurgeKeepsWhatTheRulesNeed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := authtest.NewClock()
		s.Now = clk.Now
		day := 24 * time.Hour
		u := newUser(t, s, "kept@example.test")
		open := func(refresh string, maxAge time.Duration) auth.Session {
			t.Helper()
			sess, err := s.OpenSession(ctx, auth.NewSession{UserID: u.ID, TenantID: u.TenantID, AMR: "pwd otp", IdleTTL: 30 * day,
				MaxAge: maxAge, RefreshRotation: true, RefreshHash: authtest.Hash(refresh), Event: auth.Event{UserID: u.ID, Kind: "login"}})
			if err != nil {
				t.Fatal(err)
			}
			return sess
		}
		failure := func(subject string, wait time.Duration) {
			t.Helper()
			if _, err := s.RecordFailure(ctx, subject, "198.51.100.1", func(auth.FailureCounts) (time.Duration, time.Duration) { return wait, 0 },
				auth.Event{Kind: "login_failed"}); err != nil {
				t.Fatal(err)
			}
		}
		queue := func(email string) string {
			t.Helper()
			v := newUser(t, s, email)
			_, err := s.IssueCode(ctx, auth.IssueCode{UserID: v.ID, Purpose: auth.PurposeLogin, CodeHash: []byte("h"), TTL: 10 * time.Minute,
				MaxAttempts: 5, Cooldown: time.Minute, MaxPerHour: 10, Mail: auth.Email{To: email, Template: "login_code",
					ExpiresAt: clk.Now().Add(10 * time.Minute), Data: func(bool) (string, error) { return "{}", nil }}})
			if err != nil {
				t.Fatal(err)
			}
			return v.ID
		}

		// Day 0: five events (three logins, two failures).
		live := open("live0", 200*day)
		for i := range 3 {
			if _, err := s.Rotate(ctx, authtest.Hash(fmt.Sprintf("live%d", i)), authtest.Hash(fmt.Sprintf("live%d", i+1)), 30*day); err != nil {
				t.Fatal(err)
			}
		}
		ended := open("ended", 200*day)
		open("short", day)
		failure("old", 0)
		failure("locked", 200*day)
		queue("sent@example.test")
		claimed, err := s.ClaimOutbox(ctx, time.Minute, 10, nil)
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim = %v, %v", claimed, err)
		}
		if err := s.MarkSent(ctx, claimed[0].ID, claimed[0].Claim); err != nil {
			t.Fatal(err)
		}
		// Day 92: a revocation, 8 days before the purge.
		clk.Advance(92 * day)
		if err := s.RevokeSession(ctx, u.ID, ended.ID, "logout", auth.Event{}); err != nil {
			t.Fatal(err)
		}
		// Day 99 to 100: what is recent at the purge; two events.
		clk.Advance(7 * day)
		recent := open("recent", 200*day)
		if err := s.RevokeSession(ctx, u.ID, recent.ID, "logout", auth.Event{}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(day - time.Hour)
		failure("recent", 0)
		pending := queue("pending@example.test")
		clk.Advance(time.Hour)

		p, err := s.Purge(ctx, store.Retention{Events: 90 * day, Sessions: 7 * day, Codes: day, LoginFailures: day, Outbox: day, Batch: 20})
		if err != nil {
			t.Fatal(err)
		}
		// Failures: both counters of "old", and the all-IP counter of "locked", whose wait is per IP.
		want := store.Purged{Events: 5, Sessions: 2, Codes: 1, LoginFailures: 3, Outbox: 1}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Errorf("purged (-want +got):\n%s", diff)
		}
		st, err := s.RefreshState(ctx, authtest.Hash("live0"))
		if err != nil || st.SessionID != live.ID {
			t.Errorf("the first, spent token of a live session: %v, want it kept", err)
		}
		for _, gone := range []string{"ended", "short"} {
			if _, err := s.RefreshState(ctx, authtest.Hash(gone)); !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("token of the %s session: %v, want it purged with its session", gone, err)
			}
		}
		if got := count(t, s, "refresh_tokens"); got != 5 {
			t.Errorf("%d refresh tokens left, want the live chain's 4 and the recent revocation's 1", got)
		}
		if _, err := s.LiveCode(ctx, pending, auth.PurposeLogin); err != nil {
			t.Errorf("the pending code: %v, want it kept", err)
		}
		if got := count(t, s, "outbox"); got != 1 {
			t.Errorf("%d outbox rows left, want the pending one", got)
		}
		if got := count(t, s, "security_events"); got != 2 {
			t.Errorf("%d events left, want the 2 recent ones", got)
		}
	})
}
