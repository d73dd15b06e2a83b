package store

import (
	"context"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/mail"
)

// outboxRow is an email waiting to be sent, written in the same transaction as the change that
// caused it so a crash between commit and send loses nothing.
type outboxRow struct {
	ID            string
	UserID        *string
	Purpose       string
	Template      string
	FromAddr      *string
	ToAddr        string
	Data          *string // template data; nil once sent, so no code outlives its delivery
	Attempts      int
	CreatedAt     time.Time
	NextAttemptAt time.Time
	ExpiresAt     time.Time
	LockedUntil   *time.Time
	SentAt        *time.Time
	LastError     *string
}

func (outboxRow) TableName() string { return "outbox" }

func enqueue(tx *gorm.DB, userID, purpose string, m auth.Email, replaced bool, now time.Time) (string, error) {
	data, err := m.Data(replaced)
	if err != nil {
		return "", err
	}
	msg := outboxRow{ID: uuid.NewString(), Purpose: purpose, Template: m.Template, ToAddr: m.To,
		Data: &data, CreatedAt: now, NextAttemptAt: now, ExpiresAt: m.ExpiresAt}
	if userID != "" {
		msg.UserID = &userID
	}
	if m.From != "" {
		msg.FromAddr = &m.From
	}
	return msg.ID, tx.Create(&msg).Error
}

// ClaimOutbox leases up to limit due messages to this worker for lease. Several workers on one
// Postgres skip each other's rows; a lease that runs out (the worker crashed) makes the row due again.
func (s *Store) ClaimOutbox(ctx context.Context, lease time.Duration, limit int) ([]mail.Queued, error) {
	now := s.now()
	skip := ""
	if s.dialect == Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	var rows []outboxRow
	err := s.db.WithContext(ctx).Raw(`UPDATE outbox SET locked_until = ?, attempts = attempts + 1
		WHERE id IN (SELECT id FROM outbox
			WHERE sent_at IS NULL AND next_attempt_at <= ? AND expires_at > ?
			  AND (locked_until IS NULL OR locked_until <= ?)
			ORDER BY next_attempt_at LIMIT ?`+skip+`)
		RETURNING *`, now.Add(lease), now, now, now, limit).Scan(&rows).Error
	msgs := make([]mail.Queued, 0, len(rows))
	for _, r := range rows {
		q := mail.Queued{ID: r.ID, Template: r.Template, To: r.ToAddr, Data: r.Data, Attempts: r.Attempts, CreatedAt: r.CreatedAt}
		if r.FromAddr != nil {
			q.From = *r.FromAddr
		}
		msgs = append(msgs, q)
	}
	return msgs, err
}

// MarkSent records delivery and scrubs the template data, code included.
func (s *Store) MarkSent(ctx context.Context, id string) error {
	return s.db.WithContext(ctx).Exec(`UPDATE outbox SET sent_at = ?, data = NULL, locked_until = NULL, last_error = NULL
		WHERE id = ? AND sent_at IS NULL`, s.now(), id).Error
}

// MarkFailed releases the lease and schedules the next try.
func (s *Store) MarkFailed(ctx context.Context, id string, next time.Time, cause string) error {
	if len(cause) > 500 {
		cause = cause[:500]
	}
	return s.db.WithContext(ctx).Exec(`UPDATE outbox SET locked_until = NULL, next_attempt_at = ?, last_error = ?
		WHERE id = ? AND sent_at IS NULL`, next.UTC(), cause, id).Error
}

// OutboxStats is the backlog for metrics.
type OutboxStats struct {
	Pending int64
	Oldest  *time.Time
}

// OutboxStats counts unsent, still useful messages and the age of the oldest.
func (s *Store) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	now := s.now()
	q := s.db.WithContext(ctx).Model(&outboxRow{}).Where("sent_at IS NULL AND expires_at > ?", now)
	if err := q.Count(&st.Pending).Error; err != nil || st.Pending == 0 {
		return st, err
	}
	var oldest []time.Time
	err := s.db.WithContext(ctx).Model(&outboxRow{}).Where("sent_at IS NULL AND expires_at > ?", now).
		Order("created_at").Limit(1).Pluck("created_at", &oldest).Error
	if len(oldest) == 1 {
		st.Oldest = &oldest[0]
	}
	return st, err
}

// PurgeOutbox scrubs the data of messages that expired unsent and deletes rows older than keep
// (keep must exceed the hourly-cap window, which counts rows).
func (s *Store) PurgeOutbox(ctx context.Context, keep time.Duration) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE outbox SET data = NULL WHERE sent_at IS NULL AND expires_at <= ? AND data IS NOT NULL`, now).Error; err != nil {
			return err
		}
		return tx.Exec(`DELETE FROM outbox WHERE created_at < ?`, now.Add(-keep)).Error
	})
}
