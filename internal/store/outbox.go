package store

import (
	"context"
	"database/sql"
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
	Data          *string // template data, sealed when the store has a keyring; nil once sent
	Attempts      int
	CreatedAt     time.Time
	NextAttemptAt time.Time
	ExpiresAt     time.Time
	LockedUntil   *time.Time
	SentAt        *time.Time
	LastError     *string
	ClaimToken    *string
	DeadAt        *time.Time
	CodeID        *string
}

func (outboxRow) TableName() string { return "outbox" }

// enqueue queues m; codeID links a code email to its code so it is not sent once the code is dead.
func (s *Store) enqueue(tx *gorm.DB, userID, purpose, codeID string, m auth.Email, replaced bool, now time.Time) (string, error) {
	data, err := m.Data(replaced)
	if err != nil {
		return "", err
	}
	msg := outboxRow{ID: uuid.NewString(), Purpose: purpose, Template: m.Template, ToAddr: m.To,
		CreatedAt: now, NextAttemptAt: now, ExpiresAt: m.ExpiresAt}
	if data, err = s.sealOutbox(msg.ID, data); err != nil {
		return "", err
	}
	msg.Data = &data
	if userID != "" {
		msg.UserID = &userID
	}
	if m.From != "" {
		msg.FromAddr = &m.From
	}
	if codeID != "" {
		msg.CodeID = &codeID
	}
	return msg.ID, tx.Create(&msg).Error
}

// dropCodeMail stops the unsent mail of codes that are no longer live (replaced or used): sending it
// would only deliver a dead code. The code is scrubbed with it.
func dropCodeMail(tx *gorm.DB, where string, args []any, now time.Time) error {
	return tx.Exec(`UPDATE outbox SET expires_at = ?, data = NULL, last_error = 'not sent: its code is no longer live'
		WHERE `+where+` AND code_id IS NOT NULL AND sent_at IS NULL AND dead_at IS NULL AND expires_at > ?`,
		append(append([]any{now}, args...), now)...).Error
}

// ClaimOutbox leases up to limit due messages to one claim for lease, never one of holding. Several
// workers on one Postgres skip each other's rows; a lease that runs out (the worker crashed) makes the
// row due again. Mail of a code that can no longer be used is not claimed.
func (s *Store) ClaimOutbox(ctx context.Context, lease time.Duration, limit int, holding []string) ([]mail.Queued, error) {
	now := s.now()
	skip := ""
	if s.dialect == Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	notHeld := ""
	if len(holding) > 0 {
		notHeld = " AND id NOT IN ?"
	}
	claim := uuid.NewString()
	var rows []outboxRow
	err := s.db.WithContext(ctx).Raw(`UPDATE outbox SET locked_until = ?, attempts = attempts + 1, claim_token = ?
		WHERE id IN (SELECT id FROM outbox
			WHERE sent_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ? AND expires_at > ?
			  AND (locked_until IS NULL OR locked_until <= ?)
			  AND (code_id IS NULL OR EXISTS (SELECT 1 FROM email_codes c WHERE c.id = outbox.code_id
			       AND c.used_at IS NULL AND c.expires_at > ? AND c.attempts < c.max_attempts))`+notHeld+`
			ORDER BY next_attempt_at LIMIT ?`+skip+`)
		RETURNING *`, claimArgs(now.Add(lease), claim, now, holding, limit)...).Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	msgs := make([]mail.Queued, 0, len(rows))
	for _, r := range rows {
		q := mail.Queued{ID: r.ID, Claim: claim, Template: r.Template, To: r.ToAddr, Attempts: r.Attempts, CreatedAt: r.CreatedAt}
		if r.FromAddr != nil {
			q.From = *r.FromAddr
		}
		if r.Data != nil {
			data, err := s.openOutbox(r.ID, *r.Data)
			if err != nil {
				return msgs, err
			}
			q.Data = &data
		}
		msgs = append(msgs, q)
	}
	return msgs, nil
}

func claimArgs(until time.Time, claim string, now time.Time, holding []string, limit int) []any {
	args := []any{until, claim, now, now, now, now}
	if len(holding) > 0 {
		args = append(args, holding)
	}
	return append(args, limit)
}

// RenewLease extends the lease of a message its claim still holds; false when another claim took it.
func (s *Store) RenewLease(ctx context.Context, id, claim string, lease time.Duration) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE outbox SET locked_until = ? WHERE id = ? AND claim_token = ? AND sent_at IS NULL`,
		s.now().Add(lease), id, claim)
	return res.RowsAffected == 1, res.Error
}

// held answers mail.ErrLeaseLost when an update by a claim found its message claimed by another.
func held(res *gorm.DB) error {
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return mail.ErrLeaseLost
	}
	return nil
}

// MarkSent records delivery and scrubs the template data, code included.
func (s *Store) MarkSent(ctx context.Context, id, claim string) error {
	return held(s.db.WithContext(ctx).Exec(`UPDATE outbox SET sent_at = ?, data = NULL, locked_until = NULL, last_error = NULL
		WHERE id = ? AND claim_token = ? AND sent_at IS NULL`, s.now(), id, claim))
}

// MarkFailed releases the lease and schedules the next try.
func (s *Store) MarkFailed(ctx context.Context, id, claim string, next time.Time, cause string) error {
	return held(s.db.WithContext(ctx).Exec(`UPDATE outbox SET locked_until = NULL, next_attempt_at = ?, last_error = ?
		WHERE id = ? AND claim_token = ? AND sent_at IS NULL`, next.UTC(), cleanCause(cause), id, claim))
}

// MarkDead records that the mail server refused the message for good: it is never tried again, its
// data is scrubbed, and the refusal is a security event of its user (a code that never arrived).
func (s *Store) MarkDead(ctx context.Context, id, claim, cause string) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		var users []sql.NullString
		if err := tx.Raw(`UPDATE outbox SET dead_at = ?, data = NULL, locked_until = NULL, last_error = ?
			WHERE id = ? AND claim_token = ? AND sent_at IS NULL AND dead_at IS NULL RETURNING user_id`,
			now, cleanCause(cause), id, claim).Scan(&users).Error; err != nil {
			return err
		}
		if len(users) == 0 {
			return mail.ErrLeaseLost
		}
		ev := auth.Event{Kind: "email_undeliverable", Detail: cleanCause(cause)}
		ev.UserID = users[0].String
		return insertEvent(tx, ev, now)
	})
}

func cleanCause(cause string) string { return auth.CleanText(cause, 500) }

// OutboxStats is the backlog for metrics.
type OutboxStats struct {
	Pending int64
	Oldest  *time.Time
	Dead    int64 // messages the mail server refused for good, still within retention
}

// OutboxStats counts unsent, still useful messages, the age of the oldest, and the dead ones.
func (s *Store) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	now := s.now()
	pending := s.db.WithContext(ctx).Model(&outboxRow{}).Where("sent_at IS NULL AND dead_at IS NULL AND expires_at > ?", now)
	if err := pending.Count(&st.Pending).Error; err != nil {
		return st, err
	}
	if err := s.db.WithContext(ctx).Model(&outboxRow{}).Where("dead_at IS NOT NULL").Count(&st.Dead).Error; err != nil || st.Pending == 0 {
		return st, err
	}
	var oldest []time.Time
	err := s.db.WithContext(ctx).Model(&outboxRow{}).Where("sent_at IS NULL AND dead_at IS NULL AND expires_at > ?", now).
		Order("created_at").Limit(1).Pluck("created_at", &oldest).Error
	if len(oldest) == 1 {
		st.Oldest = &oldest[0]
	}
	return st, err
}

// OutboxMessage is an outbox row as an operator sees it: never its data.
type OutboxMessage struct {
	ID        string
	To        string
	Template  string
	Attempts  int
	CreatedAt time.Time
	State     string // pending, sent, dead or expired
	LastError string
}

// ListOutbox lists the newest messages first, only the dead ones when dead is set.
func (s *Store) ListOutbox(ctx context.Context, dead bool, limit int) ([]OutboxMessage, error) {
	q := s.db.WithContext(ctx).Model(&outboxRow{}).Order("created_at DESC").Limit(limit)
	if dead {
		q = q.Where("dead_at IS NOT NULL")
	}
	var rows []outboxRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, err
	}
	now := s.now()
	out := make([]OutboxMessage, 0, len(rows))
	for _, r := range rows {
		m := OutboxMessage{ID: r.ID, To: r.ToAddr, Template: r.Template, Attempts: r.Attempts, CreatedAt: r.CreatedAt, State: "pending"}
		switch {
		case r.SentAt != nil:
			m.State = "sent"
		case r.DeadAt != nil:
			m.State = "dead"
		case !r.ExpiresAt.After(now):
			m.State = "expired"
		}
		if r.LastError != nil {
			m.LastError = *r.LastError
		}
		out = append(out, m)
	}
	return out, nil
}
