package store

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// LockedUntil returns how long the subject must wait before another password check from ip: the
// later of its per-IP lock and its subject-wide lock.
func (s *Store) LockedUntil(ctx context.Context, subject, ip string) (time.Duration, error) {
	var locks []time.Time
	now := s.now()
	err := s.db.WithContext(ctx).Raw(`SELECT locked_until FROM login_failures
		WHERE subject = ? AND ip IN (?, '') AND locked_until > ?`, subject, ip, now).Scan(&locks).Error
	var wait time.Duration
	for _, l := range locks {
		if d := l.Sub(now); d > wait {
			wait = d
		}
	}
	return wait, err
}

// RecordFailure counts a failed check for subject from ip, applies the waits that lock returns for
// the new counts (lock(counts) gives the per-IP wait and the subject-wide wait; zero means none) and
// records ev, in one transaction.
func (s *Store) RecordFailure(ctx context.Context, subject, ip string, lock func(auth.FailureCounts) (time.Duration, time.Duration), ev auth.Event) (auth.FailureCounts, error) {
	now := s.now()
	var c auth.FailureCounts
	err := s.tx(ctx, func(tx *gorm.DB) error {
		bump := func(ip string) (int, error) {
			var n []int
			err := tx.Raw(`INSERT INTO login_failures (subject, ip, failures, last_failure_at) VALUES (?, ?, 1, ?)
				ON CONFLICT (subject, ip) DO UPDATE SET failures = login_failures.failures + 1, last_failure_at = excluded.last_failure_at
				RETURNING failures`, subject, ip, now).Scan(&n).Error
			if err != nil || len(n) == 0 {
				return 0, err
			}
			return n[0], nil
		}
		var err error
		if c.PerIP, err = bump(ip); err != nil {
			return err
		}
		if c.Total, err = bump(""); err != nil {
			return err
		}
		perIP, total := lock(c)
		for _, l := range []struct {
			ip   string
			wait time.Duration
		}{{ip, perIP}, {"", total}} {
			if l.wait <= 0 {
				continue
			}
			if err := tx.Exec(`UPDATE login_failures SET locked_until = ? WHERE subject = ? AND ip = ?`, now.Add(l.wait), subject, l.ip).Error; err != nil {
				return err
			}
		}
		return insertEvent(tx, ev, now)
	})
	return c, err
}

// ResetFailures forgets a subject's failures after a success.
func (s *Store) ResetFailures(ctx context.Context, subject string) error {
	return s.db.WithContext(ctx).Exec(`DELETE FROM login_failures WHERE subject = ?`, subject).Error
}
