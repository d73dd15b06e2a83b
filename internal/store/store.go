// Package store keeps Latch's state in Postgres or SQLite through GORM: it implements auth's storage
// ports (users, email codes, sessions and their refresh-token chains, throttling, events, keys and
// secrets) and mail's outbox port. Every state change that must hold across instances is a
// conditional UPDATE whose rows-affected count is checked, never a read-then-write. Rows are this
// package's own types; callers only ever see auth's and mail's.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/migrations"
)

// Dialect names the SQL database behind a Store.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Options tune the connection pool; zero values take sensible defaults.
type Options struct {
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	// PgBouncer says the URL names a pooler in transaction mode, where consecutive statements of one
	// client connection may run on different server connections (see Open).
	PgBouncer bool
	// BatchesInFlight is how many groups of concurrent refresh rotations, and of user lookups, run at
	// once on Postgres (batch.go); 0 means 8. BatchMax caps one group; 0 means 64, 1 turns grouping
	// off (every call its own statement, as many at once as the pool allows, as before).
	BatchesInFlight int
	BatchMax        int
	// LockTimeout bounds how long a SQLite statement waits for a lock another process holds (its
	// busy_timeout, which no context interrupts); give it the request deadline. Postgres statements
	// end with their context instead. Zero means 10 s.
	LockTimeout time.Duration
}

// DefaultBatchesInFlight and DefaultBatchMax are Options' defaults for grouping hot-path statements.
const (
	DefaultBatchesInFlight = 8
	DefaultBatchMax        = 64
)

// Store is the database handle. Now is the clock every query uses, so tests can move time.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect Dialect
	Now     func() time.Time
	// boxes seal values at rest; nil keeps them in plain (see sealing.go).
	boxes *boxes
	// gate admits hot-path queries in arrival order. database/sql hands a freed connection to a
	// random waiter, which under load leaves a few requests waiting many times longer than the rest;
	// goroutines blocked on a channel are woken first-in, first-out, so waiting here instead keeps
	// the tail close to the median.
	gate chan struct{}
	// rotations groups concurrent refresh rotations into one statement and one commit (Postgres
	// only; SQLite has one writer anyway). users does the same for user lookups by id.
	rotations *batcher[string, rotation, auth.Rotated]
	users     *batcher[string, string, auth.User]
	// groupStatements sends even a group of one through the many-row statements, so tests can hold
	// those to the rules too.
	groupStatements bool
}

// ParseURL splits a database URL into its dialect and the DSN its driver takes.
func ParseURL(raw string) (Dialect, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("database url: %w", err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return Postgres, raw, nil
	case "sqlite":
		path := strings.TrimPrefix(raw, "sqlite://")
		if path == "" || strings.HasPrefix(path, "?") {
			return "", "", errors.New("database url: sqlite:// needs a file path, e.g. sqlite://latch.db")
		}
		return SQLite, path, nil
	default:
		return "", "", fmt.Errorf("database url: unsupported scheme %q (want postgres:// or sqlite://)", u.Scheme)
	}
}

// pgbouncerExecMode is how statements go through a transaction pooler (Options.PgBouncer): each one
// unnamed and in one round trip, so any backend can run it. Like the default mode it encodes
// parameters and results in binary with the types the server described; pgx asks for a statement's
// description once per connection and caches it, so a migration that changes a cached statement's
// result columns fails its next use once per connection, as the default mode's prepared statements
// do. The server parses and plans every statement: the refresh rotation costs Postgres about twice
// the CPU it costs with a prepared statement (docs/deploy.md, "PgBouncer"), the same in exec and
// simple_protocol mode; describe_exec would send its two round trips to different backends.
const pgbouncerExecMode = pgx.QueryExecModeCacheDescribe

// hasQueryParam reports whether the URL's query string sets key.
func hasQueryParam(rawURL, key string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && u.Query().Has(key)
}

// checkSQLitePath names the problem with a database file's directory before SQLite does: it reports
// a missing or unwritable directory as "out of memory (14)" (SQLITE_CANTOPEN).
func checkSQLitePath(dsn string) error {
	path, _, _ := strings.Cut(dsn, "?")
	path = strings.TrimPrefix(path, "file:")
	if path == ":memory:" {
		return nil
	}
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("database url: the directory of the SQLite file does not exist (create it or choose another path): %w", err)
	case err != nil:
		return fmt.Errorf("database url: the directory of the SQLite file: %w", err)
	case !info.IsDir():
		return fmt.Errorf("database url: %s is not a directory", dir)
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	// A new file: SQLite must be able to create it and its -wal and -shm companions here.
	probe, err := os.CreateTemp(dir, ".latch-write-check-*")
	if err != nil {
		return fmt.Errorf("database url: cannot create the SQLite file in %s: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// keepBackendHeap runs once on every new Postgres connection, so that the server process behind it
// stops handing memory back to the kernel after every statement.
//
// PostgreSQL mallocs about 27 KB for each B-tree scan and frees it when the statement ends; a
// rotation runs eight. In a backend whose heap has no free hole that large, glibc grows the heap with
// brk for them and, once the freed top is above its trim threshold (128 KiB by default), shrinks it
// again: page faults and a TLB shootdown across both CPUs on every refresh. Measured on the 2-core
// VMs: a fifth of the backends' CPU, and refresh throughput falling by a third over a minute of
// load on long-lived connections while fresh ones stayed fast (docs/benchmarks.md). glibc raises its
// trim threshold to twice the size of any mmap-ed block that is freed, so one 1 MiB value built and
// dropped inside the backend lets it keep up to 2 MiB of free heap. Where the server uses another
// allocator this costs one 1 MiB allocation per connection and nothing else.
func keepBackendHeap(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, "SELECT length(repeat('x', 1048576)) /* latch: keep the backend's freed heap, see internal/store */")
	return err
}

// Open connects to the database named by rawURL. It does not migrate.
func Open(ctx context.Context, rawURL string, opt Options) (*Store, error) {
	dialect, dsn, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		// No PrepareStmt: pgx already prepares and caches every statement per connection (except
		// behind a transaction pooler, where nothing may be prepared by name).
		NowFunc:        func() time.Time { return time.Now().UTC() },
		TranslateError: true, // see classifying
	}
	var dialector gorm.Dialector
	switch dialect {
	case Postgres:
		pgcfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("database url: %w", err)
		}
		var dbOpts []stdlib.OptionOpenDB
		if opt.PgBouncer {
			// A named prepared statement lives in one backend, and a transaction pooler hands the
			// next statement to any backend ("prepared statement stmtcache_... does not exist").
			// See pgbouncerExecMode. A default_query_exec_mode in the URL still wins.
			if !hasQueryParam(dsn, "default_query_exec_mode") {
				pgcfg.DefaultQueryExecMode = pgbouncerExecMode
			}
			// keepBackendHeap would reach whichever backend the pooler lends for that one
			// statement, not the ones this connection will use: PgBouncer's connect_query runs it
			// on every server connection instead (deploy/pgbouncer/pgbouncer.ini).
		} else {
			dbOpts = append(dbOpts, stdlib.OptionAfterConnect(keepBackendHeap))
		}
		dialector = postgres.New(postgres.Config{Conn: stdlib.OpenDB(*pgcfg, dbOpts...)})
	case SQLite:
		if err := checkSQLitePath(dsn); err != nil {
			return nil, err
		}
		// WAL lets readers proceed beside the writer; one connection serialises writers so a
		// deferred transaction never fails with SQLITE_BUSY half way through. Against a writer in
		// another process (the command line, a second instance), transactions take the write lock at
		// BEGIN (_txlock=immediate), where SQLite waits busy_timeout for it: a deferred one that read
		// first is refused at once when it comes to write, to avoid a deadlock.
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		if opt.LockTimeout <= 0 {
			opt.LockTimeout = 10 * time.Second
		}
		dsn += sep + fmt.Sprintf("_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)",
			opt.LockTimeout.Milliseconds())
		dialector = sqlite.Open(dsn)
	}
	db, err := gorm.Open(classifying{dialector}, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, err)
	}
	if err := markRowErrors(db); err != nil {
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	switch dialect {
	case Postgres:
		if opt.MaxOpenConns <= 0 {
			opt.MaxOpenConns = 16
		}
		if opt.MaxIdleConns <= 0 {
			opt.MaxIdleConns = opt.MaxOpenConns
		}
		if opt.ConnMaxLifetime <= 0 {
			opt.ConnMaxLifetime = 30 * time.Minute
		}
		sqlDB.SetMaxOpenConns(opt.MaxOpenConns)
		sqlDB.SetMaxIdleConns(opt.MaxIdleConns)
		sqlDB.SetConnMaxLifetime(opt.ConnMaxLifetime)
	case SQLite:
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	st := &Store{db: db, sqlDB: sqlDB, dialect: dialect, Now: time.Now}
	if dialect == Postgres {
		st.gate = make(chan struct{}, opt.MaxOpenConns)
		if opt.BatchesInFlight <= 0 {
			opt.BatchesInFlight = DefaultBatchesInFlight
		}
		if opt.BatchMax <= 0 {
			opt.BatchMax = DefaultBatchMax
		}
		// Each group holds one connection.
		opt.BatchesInFlight = min(opt.BatchesInFlight, opt.MaxOpenConns)
		if opt.BatchMax > 1 {
			st.rotations = newBatcher(opt.BatchesInFlight, opt.BatchMax,
				func(r rotation) string { return string(r.oldHash) }, st.rotateBatch)
			st.users = newBatcher[string](opt.BatchesInFlight, opt.BatchMax, nil, st.usersByID)
		}
	}
	return st, nil
}

// Dialect reports which database this store talks to.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close releases the pool.
func (s *Store) Close() error { return s.sqlDB.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.sqlDB.PingContext(ctx) }

// now is the store's clock in UTC at the precision both databases keep.
func (s *Store) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

func (s *Store) provider() (*goose.Provider, error) {
	fsys, err := migrations.Dialect(string(s.dialect))
	if err != nil {
		return nil, err
	}
	gd := goose.DialectPostgres
	if s.dialect == SQLite {
		gd = goose.DialectSQLite3
	}
	return goose.NewProvider(gd, s.sqlDB, fsys)
}

// Migrate applies every pending migration and returns how many ran.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	p, err := s.provider()
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate: %w", err)
	}
	return len(res), nil
}

// MigrateTo applies the pending migrations up to and including version, for tests of a migration
// against data written in the schema before it.
func (s *Store) MigrateTo(ctx context.Context, version int64) error {
	p, err := s.provider()
	if err != nil {
		return err
	}
	if _, err := p.UpTo(ctx, version); err != nil {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// MigrationStatus is one migration and whether it has been applied.
type MigrationStatus struct {
	Version   int64
	Name      string
	Applied   bool
	AppliedAt time.Time
}

// MigrationStatus lists every known migration in order.
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationStatus, error) {
	p, err := s.provider()
	if err != nil {
		return nil, err
	}
	st, err := p.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, m := range st {
		out = append(out, MigrationStatus{
			Version:   m.Source.Version,
			Name:      m.Source.Path,
			Applied:   m.State == goose.StateApplied,
			AppliedAt: m.AppliedAt,
		})
	}
	return out, nil
}

// isUniqueViolation recognises a unique-constraint failure on either dialect.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// isForeignKeyViolation recognises a foreign-key failure on either dialect.
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23503"
	}
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}

// tx runs fn in a transaction.
func (s *Store) tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(fn)
}

// lockClause is the row-lock suffix where the dialect has one; SQLite's single writer needs none.
func (s *Store) lockClause() string {
	if s.dialect == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// BatchCount reads the counters of one kind of grouped statement: the groups run, the calls they held.
type BatchCount struct {
	Kind          string
	Groups, Calls func() int64
}

// Batches lists the store's grouped statements (none on SQLite), for metrics.
func (s *Store) Batches() []BatchCount {
	if s.rotations == nil {
		return nil
	}
	return []BatchCount{
		{Kind: "rotate", Groups: s.rotations.groups.Load, Calls: s.rotations.calls.Load},
		{Kind: "user", Groups: s.users.groups.Load, Calls: s.users.calls.Load},
	}
}

// SQLDB exposes the pool for metrics collectors.
func (s *Store) SQLDB() *sql.DB { return s.sqlDB }

// admit waits in arrival order for a hot-path slot (see Store.gate); release with the returned func.
// The wait ends with the request's deadline, like every wait for the database.
func (s *Store) admit(ctx context.Context) (func(), error) {
	select {
	case s.gate <- struct{}{}:
		return func() { <-s.gate }, nil
	case <-ctx.Done():
		return nil, unavailable(ctx.Err())
	}
}
