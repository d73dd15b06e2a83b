// Package storetest gives each test a fresh, migrated database: a new Postgres database on the server
// named by TEST_DATABASE_URL (dropped in t.Cleanup), or a SQLite file in t.TempDir().
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for creating and dropping test databases

	"github.com/latch-auth/latch/internal/store"
)

// DefaultAdminURL is used when TEST_DATABASE_URL is unset.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// PostgresURL creates an empty database and returns its URL. Without a reachable server the test
// skips, except under CI=true where it fails: CI must never pass by skipping the real database.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := adminURL()
	db, err := sql.Open("pgx", admin)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postgres unreachable at TEST_DATABASE_URL (%v); CI requires it", err)
		}
		t.Skipf("postgres unreachable (%v); set TEST_DATABASE_URL to run this test", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "latch_test_" + hex.EncodeToString(b)
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// SQLiteURL returns the URL of a fresh SQLite file.
func SQLiteURL(t testing.TB) string {
	return "sqlite://" + t.TempDir() + "/latch.db"
}

// URL returns a fresh database URL of the dialect.
func URL(t testing.TB, d store.Dialect) string {
	if d == store.Postgres {
		return PostgresURL(t)
	}
	return SQLiteURL(t)
}

// Open returns a migrated store on a fresh database of the dialect, closed in t.Cleanup.
func Open(t testing.TB, d store.Dialect) *store.Store {
	t.Helper()
	s := open(t, d)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// OpenAt returns a store on a fresh database of the dialect migrated only up to version, for tests of
// what a later migration does to rows written before it; closed in t.Cleanup.
func OpenAt(t testing.TB, d store.Dialect, version int64) *store.Store {
	t.Helper()
	s := open(t, d)
	if err := s.MigrateTo(context.Background(), version); err != nil {
		t.Fatalf("migrate to %d: %v", version, err)
	}
	return s
}

func open(t testing.TB, d store.Dialect) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), URL(t, d), store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Dialects lists the dialects store-level tests run on.
var Dialects = []store.Dialect{store.Postgres, store.SQLite}

// Each runs fn as a subtest on a fresh store of every dialect.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) { fn(t, Open(t, d)) })
	}
}
