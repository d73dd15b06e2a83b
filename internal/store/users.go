package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// userRow is a row of users.
type userRow struct {
	ID              string
	TenantID        string
	Email           string
	PasswordHash    string
	EmailVerifiedAt *time.Time
	Status          string
	Role            string
	Metadata        string
	Locale          string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	// TOTPEnabled is computed by userSelect, never written.
	TOTPEnabled bool `gorm:"->"`
}

func (userRow) TableName() string { return "users" }

func (r userRow) user() auth.User {
	return auth.User{ID: r.ID, TenantID: r.TenantID, Email: r.Email, EmailVerifiedAt: r.EmailVerifiedAt,
		Status: r.Status, Role: r.Role, Metadata: json.RawMessage(r.Metadata), TOTPEnabled: r.TOTPEnabled, Locale: r.Locale,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

// userSelect reads a user with whether their authenticator is on: a primary-key probe of
// totp_factors in the same statement, so a login or `me` costs no extra round trip. It is a scalar
// subquery rather than an EXISTS so that it stays a probe per row returned when a statement reads many
// users (the admin list): Postgres may plan an EXISTS in the select list as a hash of all of
// totp_factors, built for every page.
const userSelect = `SELECT id, tenant_id, email, password_hash, email_verified_at, status, role, metadata, locale, created_at, updated_at,
	(SELECT 1 FROM totp_factors f WHERE f.user_id = users.id AND f.enabled_at IS NOT NULL) IS NOT NULL AS totp_enabled
	FROM users `

// takeUser runs userSelect with a condition, answering auth.ErrNotFound when no row matches.
func (s *Store) takeUser(ctx context.Context, where string, args ...any) (userRow, error) {
	var r userRow
	res := s.db.WithContext(ctx).Raw(userSelect+where, args...).Scan(&r)
	if res.Error != nil {
		return r, res.Error
	}
	if res.RowsAffected == 0 {
		return r, auth.ErrNotFound
	}
	return r, nil
}

// CreateUser inserts u, filling ID, tenant, status and timestamps when empty, with ev in the same
// transaction. A taken email answers auth.ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *auth.User, passwordHash string, ev auth.Event) error {
	now := s.now()
	if u.ID == "" {
		u.ID = uuid.NewString()
	}
	if u.TenantID == "" {
		u.TenantID = auth.DefaultTenantID
	}
	if u.Status == "" {
		u.Status = auth.StatusActive
	}
	if u.Role == "" {
		u.Role = auth.DefaultRole
	}
	if len(u.Metadata) == 0 {
		u.Metadata = json.RawMessage("{}")
	}
	u.CreatedAt, u.UpdatedAt = now, now
	row := userRow{ID: u.ID, TenantID: u.TenantID, Email: u.Email, PasswordHash: passwordHash,
		EmailVerifiedAt: u.EmailVerifiedAt, Status: u.Status, Role: u.Role, Metadata: string(u.Metadata), Locale: u.Locale, CreatedAt: now, UpdatedAt: now}
	insert := func(tx *gorm.DB) error {
		err := tx.Create(&row).Error
		if isUniqueViolation(err) {
			return auth.ErrConflict
		}
		if err != nil {
			return err
		}
		ev.UserID, ev.TenantID = u.ID, u.TenantID
		return insertEvent(tx, ev, now)
	}
	if ev.Kind == "" { // a registration: one statement, no transaction around it
		return insert(s.db.WithContext(ctx))
	}
	return s.tx(ctx, insert)
}

// UserByEmail finds a user of a tenant by email, case-insensitively, with its password hash.
func (s *Store) UserByEmail(ctx context.Context, tenantID, email string) (auth.Credential, error) {
	r, err := s.takeUser(ctx, "WHERE tenant_id = ? AND lower(email) = lower(?)", tenantID, email)
	if err != nil {
		return auth.Credential{}, err
	}
	return auth.Credential{User: r.user(), PasswordHash: r.PasswordHash}, nil
}

// UserByID finds a user by id. It serves GET /v2/auth/me, so on Postgres it skips the ORM.
func (s *Store) UserByID(ctx context.Context, id string) (auth.User, error) {
	var u auth.User
	parsed, err := uuid.Parse(id)
	if err != nil {
		return u, auth.ErrNotFound
	}
	switch {
	case s.users != nil:
		return s.users.do(ctx, parsed.String())
	case s.dialect == Postgres:
		res, err := s.usersByID(ctx, []string{parsed.String()})
		if err != nil {
			return u, err
		}
		return res[0].out, res[0].err
	}
	r, err := s.takeUser(ctx, "WHERE id = ?", id)
	if err != nil {
		return u, err
	}
	return r.user(), nil
}

// userByIDColumns are what UserByID reads on Postgres, in its Scan order.
const userByIDColumns = `users.id::text, tenant_id, email, email_verified_at, status, role, metadata, locale, created_at, updated_at,
	EXISTS (SELECT 1 FROM totp_factors f WHERE f.user_id = users.id AND f.enabled_at IS NOT NULL)`

// usersByIDPostgres reads the users of a group of lookups: $1 their ids, $2 how many. The condition
// on the position keeps nothing out; as in rotatePostgresBatch it makes the generic plan's estimate
// match the custom plans', so the plan is cached instead of made anew for every group.
const usersByIDPostgres = `SELECT ` + userByIDColumns + ` FROM unnest($1::uuid[]) WITH ORDINALITY AS i(want, n)
	JOIN users ON users.id = i.want WHERE i.n >= 1 AND i.n <= $2`

func scanUser(row interface{ Scan(...any) error }) (auth.User, error) {
	var u auth.User
	var metadata string
	err := row.Scan(&u.ID, &u.TenantID, &u.Email, &u.EmailVerifiedAt, &u.Status, &u.Role, &metadata, &u.Locale, &u.CreatedAt, &u.UpdatedAt, &u.TOTPEnabled)
	u.Metadata = json.RawMessage(metadata)
	return u, err
}

// usersByID looks a group of UserByID calls up on Postgres (the batcher's run): one statement for
// all of them, straight through database/sql, no ORM. One id alone takes the one-row statement.
func (s *Store) usersByID(ctx context.Context, ids []string) ([]batchResult[auth.User], error) {
	release, err := s.admit(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	res := make([]batchResult[auth.User], len(ids))
	if len(ids) == 1 && !s.groupStatements {
		u, err := scanUser(s.sqlDB.QueryRowContext(ctx, `SELECT `+userByIDColumns+` FROM users WHERE id = $1`, ids[0]))
		if errors.Is(err, sql.ErrNoRows) {
			err = auth.ErrNotFound
		} else if err != nil {
			return nil, batchFailed(err)
		}
		res[0] = batchResult[auth.User]{out: u, err: err}
		return res, nil
	}
	rows, err := s.sqlDB.QueryContext(ctx, usersByIDPostgres, ids, len(ids))
	if err != nil {
		return nil, batchFailed(err)
	}
	defer rows.Close()
	found := make(map[string]auth.User, len(ids))
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, batchFailed(err)
		}
		found[u.ID] = u
	}
	if err := rows.Err(); err != nil {
		return nil, batchFailed(err)
	}
	for i, id := range ids {
		u, ok := found[id] // canonical, as UserByID passes them and Postgres prints them
		if !ok {
			res[i].err = auth.ErrNotFound
			continue
		}
		res[i].out = u
	}
	return res, nil
}

// SetPasswordHash replaces a user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	res := s.db.WithContext(ctx).Model(&userRow{}).Where("id = ?", userID).
		Updates(map[string]any{"password_hash": hash, "updated_at": s.now()})
	return affectedOne(res)
}

// SetUserStatus enables or disables an account; disabling revokes every live session of the user in
// the same transaction so a disabled user cannot refresh.
func (s *Store) SetUserStatus(ctx context.Context, userID, status string, ev auth.Event) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&userRow{}).Where("id = ?", userID).Updates(map[string]any{"status": status, "updated_at": now})
		if err := affectedOne(res); err != nil {
			return err
		}
		if status == auth.StatusDisabled {
			if err := revokeUserSessions(tx, userID, "", "disabled", now); err != nil {
				return err
			}
		}
		return insertEvent(tx, ev, now)
	})
}

func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return auth.ErrNotFound
	}
	return err
}

func affectedOne(res *gorm.DB) error {
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// UpdateUser applies an admin's changes to a user with their event, in one transaction.
func (s *Store) UpdateUser(ctx context.Context, userID string, ch auth.UserChanges, ev auth.Event) (auth.User, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return auth.User{}, auth.ErrNotFound
	}
	now := s.now()
	set := map[string]any{"updated_at": now}
	if ch.Role != nil {
		set["role"] = *ch.Role
	}
	if ch.Metadata != nil {
		set["metadata"] = string(ch.Metadata)
	}
	if ch.Status != nil {
		set["status"] = *ch.Status
	}
	if ch.EmailVerified != nil {
		set["email_verified_at"] = nil
		if *ch.EmailVerified {
			// An address verified earlier keeps the time it was.
			set["email_verified_at"] = gorm.Expr("coalesce(email_verified_at, ?)", now)
		}
	}
	var r userRow
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if err := affectedOne(tx.Model(&userRow{}).Where("id = ?", userID).Updates(set)); err != nil {
			return err
		}
		if ch.Status != nil && *ch.Status == auth.StatusDisabled {
			if err := revokeUserSessions(tx, userID, "", "disabled", now); err != nil {
				return err
			}
		}
		if err := tx.Raw(userSelect+"WHERE id = ?", userID).Scan(&r).Error; err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
	return r.user(), err
}

// UpdatePassword sets a new password hash and ends sessions in one transaction with its notice email
// and event. A reset code already used answers auth.ErrCodeDead.
func (s *Store) UpdatePassword(ctx context.Context, p auth.PasswordUpdate) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
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
		if _, err := s.enqueue(tx, p.UserID, auth.PurposeNotice, "", p.Mail, false, now); err != nil {
			return err
		}
		return insertEvent(tx, p.Event, now)
	})
}
