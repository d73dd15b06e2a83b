package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// A database.url naming the primary and its standby, so that a promoted standby is found without a
// restart (SPEC §14): the store must hand it to pgx whole, and pgx must see both hosts and the
// read-write requirement.
func TestParseURLMultiHost(t *testing.T) {
	for raw, want := range map[string][]string{
		"postgres://latch:pw@db1:5432,db2:5433/latch?sslmode=disable&target_session_attrs=read-write": {"db1:5432", "db2:5433"},
		// Default port on both; sslmode=prefer makes a TLS and a plain attempt per host.
		"postgresql://latch@db1,db2/latch?target_session_attrs=read-write": {"db1:5432", "db2:5432"},
	} {
		d, dsn, err := store.ParseURL(raw)
		if err != nil || d != store.Postgres || dsn != raw {
			t.Fatalf("ParseURL(%q) = %q, %q, %v; want postgres and the URL unchanged", raw, d, dsn, err)
		}
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatalf("pgx.ParseConfig(%q): %v", raw, err)
		}
		hosts := []string{fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)}
		for _, f := range cfg.Fallbacks {
			if h := fmt.Sprintf("%s:%d", f.Host, f.Port); h != hosts[len(hosts)-1] {
				hosts = append(hosts, h)
			}
		}
		if diff := cmp.Diff(want, hosts); diff != "" {
			t.Errorf("%q: hosts tried in order (-want +got):\n%s", raw, diff)
		}
		if cfg.ValidateConnect == nil {
			t.Errorf("%q: no ValidateConnect: target_session_attrs=read-write was not understood", raw)
		}
	}
}

// With the first host down, Open connects to the next one: the situation right after a failover,
// when the old primary no longer answers.
func TestOpenFallsBackToTheNextHost(t *testing.T) {
	u, err := url.Parse(storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	// Port 1 on loopback refuses at once.
	u.Host = "127.0.0.1:1," + u.Host
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, u.String(), store.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatalf("Open(%s): %v", u.Redacted(), err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
}

// Behind a transaction pooler no statement may be prepared by name, hot paths included. Checked on
// Postgres itself: with one connection, pg_prepared_statements shows what that connection left.
func TestPgBouncerModePreparesNothingByName(t *testing.T) {
	for _, pgbouncer := range []bool{false, true} {
		ctx := context.Background()
		s, err := store.Open(ctx, storetest.PostgresURL(t), store.Options{MaxOpenConns: 1, PgBouncer: pgbouncer})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		usr := newUser(t, s, "bouncer@example.test")
		if _, err := s.UserByEmail(ctx, usr.TenantID, "bouncer@example.test"); err != nil {
			t.Fatal(err)
		}
		openSession(t, s, usr, "b0")
		if _, err := s.Rotate(ctx, authtest.Hash("b0"), authtest.Hash("b1"), time.Hour); err != nil {
			t.Fatalf("pgbouncer=%v: rotate: %v", pgbouncer, err)
		}
		if _, err := s.Rotate(ctx, authtest.Hash("b0"), authtest.Hash("b2"), time.Hour); !errors.Is(err, auth.ErrNotFound) {
			t.Fatalf("pgbouncer=%v: second rotation of the same token = %v, want ErrNotFound", pgbouncer, err)
		}
		var named int
		if err := s.SQLDB().QueryRowContext(ctx, "SELECT count(*) FROM pg_prepared_statements").Scan(&named); err != nil {
			t.Fatal(err)
		}
		if pgbouncer && named != 0 {
			t.Errorf("pgbouncer=true: %d named prepared statements on the connection, want 0", named)
		}
		if !pgbouncer && named == 0 {
			t.Error("pgbouncer=false: no prepared statement cached; the check above would prove nothing")
		}
	}
}
