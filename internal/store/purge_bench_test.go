package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// BenchmarkPurge deletes a retention's worth of rows: security events, ended sessions with their
// refresh-token chains, failure counters, codes and mail, LATCH_BENCH_PURGE_ROWS events (default
// 100,000; docs/reliability.md has a run at 1,000,000) and as many rows again in the other tables,
// while a refresh chain keeps rotating beside it. It reports the rows deleted per second and the
// rotations' latency during the purge: the batches must not stall them.
func BenchmarkPurge(b *testing.B) {
	rows := 100_000
	if v := os.Getenv("LATCH_BENCH_PURGE_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("LATCH_BENCH_PURGE_ROWS=%q: want a number of rows, at least 100", v)
		}
		rows = n
	}
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s := storetest.Open(b, d)
				ctx := context.Background()
				u := auth.User{Email: "purge@example.test"}
				if err := s.CreateUser(ctx, &u, "x", auth.Event{}); err != nil {
					b.Fatal(err)
				}
				if err := fillForPurge(s, u.ID, rows); err != nil {
					b.Fatal(err)
				}
				if err := benchSession(s, u.ID, "beside"); err != nil {
					b.Fatal(err)
				}
				// The same rotations without a purge beside them, for comparison.
				var alone []time.Duration
				for i := range 500 {
					start := time.Now()
					if _, err := s.Rotate(ctx, chainHash("beside", i), chainHash("beside", i+1), 24*time.Hour); err != nil {
						b.Fatal(err)
					}
					alone = append(alone, time.Since(start))
				}
				done := make(chan struct{})
				lat := make(chan []time.Duration)
				go func() {
					var took []time.Duration
					for i := 500; ; i++ {
						select {
						case <-done:
							lat <- took
							return
						default:
						}
						start := time.Now()
						if _, err := s.Rotate(ctx, chainHash("beside", i), chainHash("beside", i+1), 24*time.Hour); err != nil {
							b.Error(err)
						}
						took = append(took, time.Since(start))
					}
				}()
				b.StartTimer()
				start := time.Now()
				p, err := s.Purge(ctx, store.Retention{Events: time.Hour, Sessions: time.Hour, Codes: time.Hour, LoginFailures: time.Hour, Outbox: time.Hour})
				elapsed := time.Since(start)
				b.StopTimer()
				close(done)
				took := <-lat
				if err != nil {
					b.Fatal(err)
				}
				if p.Events != int64(rows) {
					b.Fatalf("purged %+v, want %d events", p, rows)
				}
				slices.Sort(took)
				slices.Sort(alone)
				b.ReportMetric(float64(alone[len(alone)*99/100])/float64(time.Millisecond), "rotate-p99-alone-ms")
				b.ReportMetric(float64(p.Total())/elapsed.Seconds(), "rows/s")
				b.ReportMetric(float64(took[len(took)*99/100])/float64(time.Millisecond), "rotate-p99-ms")
				b.ReportMetric(float64(took[len(took)-1])/float64(time.Millisecond), "rotate-max-ms")
				b.ReportMetric(float64(elapsed)/float64(time.Second), "purge-s")
			}
		})
	}
}

// fillForPurge writes, dated a day ago: n security events; n/10 ended sessions with 10 refresh
// tokens each; n/10 failure counters, expired codes and sent mails.
func fillForPurge(s *store.Store, userID string, n int) error {
	old := time.Now().UTC().Add(-24 * time.Hour)
	db := s.SQLDB()
	id, hash := "md5('s' || n)::uuid", "decode(md5('t' || n || '/' || k), 'hex')"
	if s.Dialect() == store.SQLite {
		id, hash = "printf('%08x-0000-4000-8000-%012x', n, n)", "randomblob(16)"
	}
	series := "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %d) "
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{fmt.Sprintf(series, n) + `INSERT INTO security_events (user_id, kind, created_at) SELECT $1, 'login_failed', $2 FROM g`, []any{userID, old}},
		{fmt.Sprintf(series, n/10) + `INSERT INTO sessions (id, user_id, tenant_id, amr, created_at, last_used_at, idle_expires_at, expires_at, revoked_at)
			SELECT ` + id + `, $1, $2, 'pwd otp', $3, $3, $3, $3, $3 FROM g`, []any{userID, auth.DefaultTenantID, old}},
		{fmt.Sprintf(series, n/10) + `, k(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM k WHERE k < 10)
			INSERT INTO refresh_tokens (session_id, token_hash, created_at, used_at) SELECT ` + id + `, ` + hash + `, $1, $1 FROM g, k`, []any{old}},
		{fmt.Sprintf(series, n/10) + `INSERT INTO login_failures (subject, ip, failures, last_failure_at) SELECT 'bench:' || n, '', 1, $1 FROM g`, []any{old}},
		{fmt.Sprintf(series, n/10) + `INSERT INTO email_codes (id, user_id, purpose, code_hash, max_attempts, expires_at, used_at, created_at)
			SELECT ` + id + `, $1, 'reset', '\x00', 5, $2, $2, $2 FROM g`, []any{userID, old}},
		{fmt.Sprintf(series, n/10) + `INSERT INTO outbox (id, user_id, purpose, template, to_addr, created_at, next_attempt_at, expires_at, sent_at)
			SELECT ` + id + `, $1, 'login', 'login_code', 'purge@example.test', $2, $2, $2, $2 FROM g`, []any{userID, old}},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			return fmt.Errorf("%s: %w", q.sql, err)
		}
	}
	if s.Dialect() == store.Postgres {
		_, err := db.Exec("ANALYZE")
		return err
	}
	return nil
}
