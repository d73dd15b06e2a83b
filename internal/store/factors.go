package store

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// totpFactorRow is a user's TOTP factor; the secret is sealed by the service.
type totpFactorRow struct {
	UserID    string
	Secret    []byte
	LastStep  int64
	EnabledAt *time.Time
	CreatedAt time.Time
}

func (totpFactorRow) TableName() string { return "totp_factors" }

// recoveryCodeRow is one recovery code of a user, as its HMAC.
type recoveryCodeRow struct {
	UserID    string
	CodeHash  string
	UsedAt    *time.Time
	CreatedAt time.Time
}

func (recoveryCodeRow) TableName() string { return "totp_recovery_codes" }

// SetPendingTOTP stores a pending secret, replacing a pending one; auth.ErrConflict when the user's
// factor is enabled. The upsert's condition makes the check and the write one statement.
func (s *Store) SetPendingTOTP(ctx context.Context, userID string, sealed []byte, ev auth.Event) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`INSERT INTO totp_factors (user_id, secret, last_step, created_at) VALUES (?, ?, 0, ?)
			ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at
			WHERE totp_factors.enabled_at IS NULL`, userID, sealed, now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return auth.ErrConflict
		}
		return insertEvent(tx, ev, now)
	})
}

// TOTPFactor returns the user's factor, pending or enabled.
func (s *Store) TOTPFactor(ctx context.Context, userID string) (auth.TOTPFactor, error) {
	var r totpFactorRow
	if err := s.db.WithContext(ctx).Where("user_id = ?", userID).Take(&r).Error; err != nil {
		return auth.TOTPFactor{}, notFound(err)
	}
	return auth.TOTPFactor{UserID: r.UserID, Secret: r.Secret, LastStep: r.LastStep, EnabledAt: r.EnabledAt}, nil
}

// EnableTOTP enables the pending factor whose secret is still p.Sealed, taking p.Step, and replaces the
// recovery codes, in one transaction.
func (s *Store) EnableTOTP(ctx context.Context, p auth.EnableTOTP) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE totp_factors SET enabled_at = ?, last_step = ?
			WHERE user_id = ? AND enabled_at IS NULL AND secret = ? AND last_step < ?`, now, p.Step, p.UserID, p.Sealed, p.Step)
		if err := affectedOne(res); err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM totp_recovery_codes WHERE user_id = ?`, p.UserID).Error; err != nil {
			return err
		}
		rows := make([]recoveryCodeRow, 0, len(p.RecoveryHashes))
		for _, h := range p.RecoveryHashes {
			rows = append(rows, recoveryCodeRow{UserID: p.UserID, CodeHash: h, CreatedAt: now})
		}
		if len(rows) > 0 {
			if err := tx.Create(&rows).Error; err != nil {
				return err
			}
		}
		return insertEvent(tx, p.Event, now)
	})
}

// AcceptTOTPStep raises the last accepted step to step if it is higher: the one statement that makes
// a TOTP code single-use across instances (RFC 6238 section 5.2).
func (s *Store) AcceptTOTPStep(ctx context.Context, userID string, step int64) error {
	return affectedOne(s.db.WithContext(ctx).Exec(`UPDATE totp_factors SET last_step = ?
		WHERE user_id = ? AND enabled_at IS NOT NULL AND last_step < ?`, step, userID, step))
}

// UseRecoveryCode spends one unused recovery code of an enabled factor matching one of hashes.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hashes []string) error {
	if len(hashes) == 0 {
		return auth.ErrNotFound
	}
	now := s.now()
	// Hashes of one code under different key versions never collide, so at most one row matches.
	return affectedOne(s.db.WithContext(ctx).Exec(`UPDATE totp_recovery_codes SET used_at = ?
		WHERE user_id = ? AND code_hash IN ? AND used_at IS NULL
		AND EXISTS (SELECT 1 FROM totp_factors f WHERE f.user_id = totp_recovery_codes.user_id AND f.enabled_at IS NOT NULL)`,
		now, userID, hashes))
}

// ResealTOTP swaps a sealed secret for the same secret sealed under a newer key version, unless it
// changed meanwhile.
func (s *Store) ResealTOTP(ctx context.Context, userID string, old, sealed []byte) error {
	return affectedOne(s.db.WithContext(ctx).Exec(`UPDATE totp_factors SET secret = ? WHERE user_id = ? AND secret = ?`, sealed, userID, old))
}

// DisableTOTP removes an enabled factor and its recovery codes.
func (s *Store) DisableTOTP(ctx context.Context, userID string, ev auth.Event) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := affectedOne(tx.Exec(`DELETE FROM totp_factors WHERE user_id = ? AND enabled_at IS NOT NULL`, userID)); err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM totp_recovery_codes WHERE user_id = ?`, userID).Error; err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
}
