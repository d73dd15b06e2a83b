package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// User statuses.
const (
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// User is an account. Email is kept as the user typed it after trimming and lower-casing.
type User struct {
	ID              string
	TenantID        string
	Email           string
	PasswordHash    string
	EmailVerifiedAt *time.Time
	Status          string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// CreateUser inserts u, filling ID and timestamps when empty. A taken email answers ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	now := s.now()
	if u.ID == "" {
		u.ID = uuid.NewString()
	}
	if u.TenantID == "" {
		u.TenantID = DefaultTenantID
	}
	if u.Status == "" {
		u.Status = StatusActive
	}
	u.CreatedAt, u.UpdatedAt = now, now
	err := s.db.WithContext(ctx).Create(u).Error
	if isUniqueViolation(err) {
		return ErrConflict
	}
	return err
}

// UserByEmail finds a user of a tenant by email, case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, tenantID, email string) (User, error) {
	var u User
	err := s.db.WithContext(ctx).Where("tenant_id = ? AND lower(email) = lower(?)", tenantID, email).Take(&u).Error
	return u, notFound(err)
}

// UserByID finds a user by id. It serves GET /v2/auth/me, so on Postgres it skips the ORM.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	var u User
	if _, err := uuid.Parse(id); err != nil {
		return u, ErrNotFound
	}
	if s.dialect == Postgres {
		release, err := s.admit(ctx)
		if err != nil {
			return u, err
		}
		defer release()
		err = s.sqlDB.QueryRowContext(ctx, `SELECT id::text, tenant_id::text, email, password_hash, email_verified_at, status,
			created_at, updated_at FROM users WHERE id = $1`, id).
			Scan(&u.ID, &u.TenantID, &u.Email, &u.PasswordHash, &u.EmailVerifiedAt, &u.Status, &u.CreatedAt, &u.UpdatedAt)
		if errors.Is(err, sql.ErrNoRows) {
			return u, ErrNotFound
		}
		return u, err
	}
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&u).Error
	return u, notFound(err)
}

// SetPasswordHash replaces a user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	res := s.db.WithContext(ctx).Model(&User{}).Where("id = ?", userID).
		Updates(map[string]any{"password_hash": hash, "updated_at": s.now()})
	return affectedOne(res)
}

// SetUserStatus enables or disables an account; disabling revokes every live session of the user in
// the same transaction so a disabled user cannot refresh.
func (s *Store) SetUserStatus(ctx context.Context, userID, status string, ev Event) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&User{}).Where("id = ?", userID).Updates(map[string]any{"status": status, "updated_at": now})
		if err := affectedOne(res); err != nil {
			return err
		}
		if status == StatusDisabled {
			if err := revokeUserSessions(tx, userID, "", "disabled", now); err != nil {
				return err
			}
		}
		return insertEvent(tx, ev, now)
	})
}

func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

func affectedOne(res *gorm.DB) error {
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// TenantExists reports whether a tenant id is known.
func (s *Store) TenantExists(ctx context.Context, id string) (bool, error) {
	if _, err := uuid.Parse(id); err != nil {
		return false, nil
	}
	var n int64
	err := s.db.WithContext(ctx).Table("tenants").Where("id = ?", id).Count(&n).Error
	return n > 0, err
}

// PasswordUpdate sets a new password hash and ends sessions, in one transaction with its notice
// email and event.
type PasswordUpdate struct {
	CodeID        string // a reset code consumed by the same transaction; "" for a change
	UserID        string
	Hash          string
	KeepSessionID string // the session that made the change survives it; "" revokes all
	Reason        string
	Mail          Mail
	Event         Event
}

// UpdatePassword applies a PasswordUpdate. A reset code already used answers ErrCodeDead.
func (s *Store) UpdatePassword(ctx context.Context, p PasswordUpdate) error {
	now := s.now()
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if p.CodeID != "" {
			if err := consumeCode(tx, p.CodeID, now); err != nil {
				return err
			}
		}
		res := tx.Exec(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, p.Hash, now, p.UserID)
		if err := affectedOne(res); err != nil {
			return err
		}
		if err := revokeUserSessions(tx, p.UserID, p.KeepSessionID, p.Reason, now); err != nil {
			return err
		}
		if _, err := enqueue(tx, p.UserID, PurposeNotice, p.Mail, false, now); err != nil {
			return err
		}
		return insertEvent(tx, p.Event, now)
	})
	return err
}
