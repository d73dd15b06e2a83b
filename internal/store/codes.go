package store

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// codeRow is a row of email_codes.
type codeRow struct {
	ID       string
	UserID   string
	Purpose  string
	CodeHash []byte
	// PendingPasswordHash, on a signup code, becomes the user's password when the code is validated.
	PendingPasswordHash *string
	// PendingEmail, on an email_change code, is the address the code moves the account to.
	PendingEmail *string
	Attempts     int
	MaxAttempts  int
	ExpiresAt    time.Time
	UsedAt       *time.Time
	CreatedAt    time.Time
}

func (codeRow) TableName() string { return "email_codes" }

// IssueCode enforces the resend cooldown and the hourly cap of the purpose, replaces any live code of
// the same purpose, stores the new code and queues its email, all in one transaction under a lock on
// the user row, so concurrent requests on any instance cannot both pass the limits.
func (s *Store) IssueCode(ctx context.Context, p auth.IssueCode) (auth.Issued, error) {
	now := s.now()
	var out auth.Issued
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var locked []string
		if err := tx.Raw("SELECT id FROM users WHERE id = ?"+s.lockClause(), p.UserID).Scan(&locked).Error; err != nil {
			return err
		}
		if len(locked) == 0 {
			return auth.ErrNotFound
		}
		// Both limits count this purpose's emails only. SQLite returns aggregates over datetime
		// columns as text, so read the rows themselves.
		var rows []struct {
			CreatedAt time.Time
			Used      bool // its code was used by the owner (a replaced code has a newer email)
		}
		// Of two emails stamped alike, the unused one counts as the newer: the cooldown holds.
		if err := tx.Raw(`SELECT o.created_at, c.used_at IS NOT NULL AS used FROM outbox o
			LEFT JOIN email_codes c ON c.id = o.code_id
			WHERE o.user_id = ? AND o.purpose = ? AND o.created_at > ?
			ORDER BY o.created_at, c.used_at IS NULL`, p.UserID, p.Purpose, now.Add(-max(time.Hour, p.Cooldown))).Scan(&rows).Error; err != nil {
			return err
		}
		sent := make([]time.Time, len(rows))
		for i, r := range rows {
			sent[i] = r.CreatedAt
		}
		if n := len(rows); n > 0 && !rows[n-1].Used && now.Before(sent[n-1].Add(p.Cooldown)) {
			return &auth.LimitError{Cooldown: true, RetryAfter: sent[n-1].Add(p.Cooldown).Sub(now)}
		}
		hour := now.Add(-time.Hour)
		window := slices.DeleteFunc(sent, func(t time.Time) bool { return !t.After(hour) })
		if len(window) >= p.MaxPerHour {
			// The cap frees a slot when the oldest email that keeps it full leaves the window.
			return &auth.LimitError{RetryAfter: window[len(window)-p.MaxPerHour].Add(time.Hour).Sub(now)}
		}
		if p.CodeHash != nil {
			res := tx.Exec(`UPDATE email_codes SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL`, now, p.UserID, p.Purpose)
			if res.Error != nil {
				return res.Error
			}
			out.Replaced = res.RowsAffected > 0
			if err := dropCodeMail(tx, "user_id = ? AND purpose = ?", []any{p.UserID, p.Purpose}, now); err != nil {
				return err
			}
			c := codeRow{ID: uuid.NewString(), UserID: p.UserID, Purpose: p.Purpose, CodeHash: p.CodeHash,
				MaxAttempts: p.MaxAttempts, ExpiresAt: now.Add(p.TTL), CreatedAt: now}
			if p.PendingPasswordHash != "" {
				c.PendingPasswordHash = &p.PendingPasswordHash
			}
			if p.PendingEmail != "" {
				c.PendingEmail = &p.PendingEmail
			}
			if err := tx.Create(&c).Error; err != nil {
				return err
			}
			out.CodeID = c.ID
		}
		id, err := s.enqueue(tx, p.UserID, p.Purpose, out.CodeID, p.Mail, out.Replaced, now)
		if err != nil {
			return err
		}
		out.OutboxID = id
		return insertEvent(tx, p.Event, now)
	})
	return out, err
}

// LiveCode returns the user's unused code of a purpose, which may have expired.
func (s *Store) LiveCode(ctx context.Context, userID, purpose string) (auth.EmailCode, error) {
	var c codeRow
	if err := s.db.WithContext(ctx).Where("user_id = ? AND purpose = ? AND used_at IS NULL", userID, purpose).Take(&c).Error; err != nil {
		return auth.EmailCode{}, notFound(err)
	}
	return auth.EmailCode{ID: c.ID, UserID: c.UserID, Purpose: c.Purpose, Hash: c.CodeHash, Attempts: c.Attempts,
		MaxAttempts: c.MaxAttempts, ExpiresAt: c.ExpiresAt, PendingEmail: deref(c.PendingEmail)}, nil
}

// CountCodeAttempt spends one try of a live code before its value is compared, so concurrent
// guesses cannot exceed MaxAttempts. It returns the tries used including this one.
func (s *Store) CountCodeAttempt(ctx context.Context, codeID string) (int, error) {
	var attempts []int
	err := s.db.WithContext(ctx).Raw(`UPDATE email_codes SET attempts = attempts + 1
		WHERE id = ? AND used_at IS NULL AND expires_at > ? AND attempts < max_attempts
		RETURNING attempts`, codeID, s.now()).Scan(&attempts).Error
	if err != nil {
		return 0, err
	}
	if len(attempts) == 0 {
		return 0, auth.ErrCodeDead
	}
	return attempts[0], nil
}

// consumeCode marks a code used exactly once; a second caller gets auth.ErrCodeDead.
func consumeCode(tx *gorm.DB, codeID string, now time.Time) error {
	res := tx.Exec(`UPDATE email_codes SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?`, now, codeID, now)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return auth.ErrCodeDead
	}
	if err := dropCodeMail(tx, "code_id = ?", []any{codeID}, now); err != nil {
		return err
	}
	// A signup code carries the password of the registration that asked for it.
	return tx.Exec(`UPDATE users SET password_hash = (SELECT pending_password_hash FROM email_codes WHERE id = ?), updated_at = ?
		WHERE id = (SELECT user_id FROM email_codes WHERE id = ? AND pending_password_hash IS NOT NULL)`, codeID, now, codeID).Error
}
