package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// ListUsers pages through users in (tenant id, email) order. Every variant reads users_list_idx in
// that order: the tenant and the email prefix bound a range of it, the position after the cursor
// starts it, so a page costs its own rows whatever the table holds. Postgres compares the emails in
// byte order (COLLATE "C", as the index does): under a linguistic collation a prefix is not a range.
// In byte order every address in [prefix, prefix + U+10FFFF) starts with the prefix.
func (s *Store) ListUsers(ctx context.Context, q auth.UserQuery) ([]auth.User, error) {
	query, args := s.userList(q)
	var rows []userRow
	err := s.db.WithContext(ctx).Raw(query, args...).Scan(&rows).Error
	out := make([]auth.User, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.user())
	}
	return out, err
}

// userList is the statement of ListUsers and its arguments.
func (s *Store) userList(q auth.UserQuery) (string, []any) {
	email := "lower(email)"
	if s.dialect == Postgres {
		email = `(lower(email) COLLATE "C")`
	}
	var conds []string
	var args []any
	if q.EmailPrefix != "" {
		conds = append(conds, email+" >= ? AND "+email+" < ?")
		args = append(args, q.EmailPrefix, q.EmailPrefix+"\U0010FFFF")
	}
	if q.Disabled != nil {
		status := auth.StatusActive
		if *q.Disabled {
			status = auth.StatusDisabled
		}
		conds = append(conds, "status = ?")
		args = append(args, status)
	}
	if q.AfterEmail != "" {
		conds = append(conds, "(tenant_id, "+email+") > (?, ?)")
		args = append(args, q.AfterTenant, q.AfterEmail)
	}
	if q.TenantID == "" && q.EmailPrefix != "" && s.dialect == Postgres {
		// An address prefix across tenants is a range of the index within each tenant, not of the
		// index as a whole: one bounded index read per tenant (Postgres has no skip scan), each
		// already in email order, merged in tenant order.
		inner := userSelect + "WHERE tenant_id = t.id AND " + strings.Join(conds, " AND ") + " ORDER BY " + email + " LIMIT ?"
		query := "SELECT u.* FROM tenants t CROSS JOIN LATERAL (" + inner + ") u"
		args = append(args, q.Limit)
		if q.AfterEmail != "" {
			query += " WHERE t.id >= ?"
			args = append(args, q.AfterTenant)
		}
		return query + ` ORDER BY t.id, (lower(u.email) COLLATE "C") LIMIT ?`, append(args, q.Limit)
	}
	order := "tenant_id, " + email
	if q.TenantID != "" {
		conds = append([]string{"tenant_id = ?"}, conds...)
		args = append([]any{q.TenantID}, args...)
		order = email
	}
	where := "1 = 1"
	if len(conds) > 0 {
		where = strings.Join(conds, " AND ")
	}
	return userSelect + "WHERE " + where + " ORDER BY " + order + " LIMIT ?", append(args, q.Limit)
}

// DeleteUser erases a user in one transaction (see auth.Users.DeleteUser).
func (s *Store) DeleteUser(ctx context.Context, userID string, ev auth.Event) error {
	if _, err := uuid.Parse(userID); err != nil {
		return auth.ErrNotFound
	}
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		var found []string
		if err := tx.Raw("SELECT id FROM users WHERE id = ?"+s.lockClause(), userID).Scan(&found).Error; err != nil {
			return err
		}
		if len(found) == 0 {
			return auth.ErrNotFound
		}
		if err := s.eraseUsers(tx, "id = ?", userID); err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
}

// eraseUsers erases the users a condition on users selects: the address leaves the event log (an
// event keeps its user id) and the throttle, then the users go with everything of theirs by cascade:
// sessions and their refresh tokens, codes, factors, queued mail.
//
// The address stays in the log in two ways, both written by the password and code checks: within the
// detail of the user's own events ("<address>: wrong one-time code"), where it is replaced, and as the
// whole detail of events that name no user (a failure against the address, or a throttled attempt,
// before the check knew whose it was) in the user's tenant, or in none for events logged before
// events named their tenant.
func (s *Store) eraseUsers(tx *gorm.DB, cond string, args ...any) error {
	if err := s.forgetAddresses(tx, cond, args...); err != nil {
		return err
	}
	return tx.Exec(`DELETE FROM users WHERE `+cond, args...).Error
}

// forgetAddresses takes the current addresses of the users a condition selects out of the event log
// and the throttle (see eraseUsers): what an erasure does, and what an email change does with the
// address the account leaves, so that a later erasure finds no address of the user's anywhere.
func (s *Store) forgetAddresses(tx *gorm.DB, cond string, args ...any) error {
	const erased = "[erased]"
	contains := "instr"
	if s.dialect == Postgres {
		contains = "strpos"
	}
	// Evaluated before any user goes, so the subqueries still see the users' addresses.
	stmts := []struct {
		sql  string
		args []any
	}{
		{`UPDATE security_events SET detail = replace(lower(detail), (SELECT lower(u.email) FROM users u WHERE u.id = security_events.user_id), ?)
			WHERE user_id IN (SELECT id FROM users WHERE ` + cond + `)
			  AND ` + contains + `(lower(detail), (SELECT lower(u.email) FROM users u WHERE u.id = security_events.user_id)) > 0`,
			append([]any{erased}, args...)},
		{`UPDATE security_events SET detail = ?
			WHERE user_id IS NULL
			  AND (tenant_id IS NULL OR tenant_id IN (SELECT tenant_id FROM users WHERE ` + cond + `))
			  AND lower(detail) IN (SELECT lower(email) FROM users WHERE ` + cond + `)`,
			append(append([]any{erased}, args...), args...)},
		{`DELETE FROM login_failures WHERE subject IN (SELECT tenant_id || ':' || lower(email) FROM users WHERE ` + cond + `)`, args},
	}
	for _, st := range stmts {
		if err := tx.Exec(st.sql, st.args...).Error; err != nil {
			return err
		}
	}
	return nil
}

// ListEvents reads the log newest first. The id orders it: ids grow with every insert, so a page
// after a cursor never shows an event twice however many are logged meanwhile.
func (s *Store) ListEvents(ctx context.Context, q auth.EventQuery) ([]auth.LoggedEvent, error) {
	if q.UserID != "" {
		if _, err := uuid.Parse(q.UserID); err != nil {
			return []auth.LoggedEvent{}, nil
		}
	}
	var rows []eventRow
	err := eventList(s.db.WithContext(ctx), q).Find(&rows).Error
	out := make([]auth.LoggedEvent, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.logged())
	}
	return out, err
}

func (r eventRow) logged() auth.LoggedEvent {
	ev := auth.LoggedEvent{ID: r.ID, CreatedAt: r.CreatedAt, Event: auth.Event{Kind: r.Kind, IP: r.IP, UserAgent: r.UserAgent,
		Detail: r.Detail, Actor: auth.Actor{Type: r.ActorType, ID: r.ActorID, Name: r.ActorName}}}
	ev.UserID, ev.SessionID, ev.TenantID = deref(r.UserID), deref(r.SessionID), deref(r.TenantID)
	return ev
}

// eventList is the statement of ListEvents.
func eventList(db *gorm.DB, q auth.EventQuery) *gorm.DB {
	db = db.Model(&eventRow{})
	if q.TenantID != "" {
		db = db.Where("tenant_id = ?", q.TenantID)
	}
	if q.UserID != "" {
		db = db.Where("user_id = ?", q.UserID)
	}
	if q.Kind != "" {
		db = db.Where("kind = ?", q.Kind)
	}
	if !q.Since.IsZero() {
		db = db.Where("created_at >= ?", q.Since.UTC())
	}
	if !q.Until.IsZero() {
		db = db.Where("created_at < ?", q.Until.UTC())
	}
	if q.BeforeID > 0 {
		db = db.Where("id < ?", q.BeforeID)
	}
	return db.Order("id DESC").Limit(q.Limit)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// adminKeyRow is a row of admin_keys: the key's hash, never the key.
type adminKeyRow struct {
	ID         string
	Name       string
	TenantID   *string
	KeyHash    []byte
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

func (adminKeyRow) TableName() string { return "admin_keys" }

func (r adminKeyRow) key() auth.AdminKey {
	return auth.AdminKey{ID: r.ID, Name: r.Name, TenantID: deref(r.TenantID), CreatedAt: r.CreatedAt,
		LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt}
}

// CreateAdminKey stores a key's hash with its event; auth.ErrNotFound when its tenant does not exist.
func (s *Store) CreateAdminKey(ctx context.Context, k *auth.AdminKey, hash []byte, ev auth.Event) error {
	now := s.now()
	if k.ID == "" {
		k.ID = uuid.NewString()
	}
	row := adminKeyRow{ID: k.ID, Name: k.Name, KeyHash: hash, CreatedAt: now}
	if k.TenantID != "" {
		row.TenantID = &k.TenantID
	}
	err := s.tx(ctx, func(tx *gorm.DB) error {
		err := tx.Create(&row).Error
		if isForeignKeyViolation(err) {
			return auth.ErrNotFound
		}
		if err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
	if err == nil {
		*k = row.key()
	}
	return err
}

// AdminKeyByHash finds a key by the hash of its secret.
func (s *Store) AdminKeyByHash(ctx context.Context, hash []byte) (auth.AdminKey, error) {
	var r adminKeyRow
	if err := s.db.WithContext(ctx).Where("key_hash = ?", hash).Take(&r).Error; err != nil {
		return auth.AdminKey{}, notFound(err)
	}
	return r.key(), nil
}

// ListAdminKeys returns every key, oldest first.
func (s *Store) ListAdminKeys(ctx context.Context) ([]auth.AdminKey, error) {
	var rows []adminKeyRow
	err := s.db.WithContext(ctx).Order("created_at, id").Find(&rows).Error
	out := make([]auth.AdminKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.key())
	}
	return out, err
}

// RevokeAdminKey revokes a live key with its event.
func (s *Store) RevokeAdminKey(ctx context.Context, id string, ev auth.Event) error {
	if _, err := uuid.Parse(id); err != nil {
		return auth.ErrNotFound
	}
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := affectedOne(tx.Exec(`UPDATE admin_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, now, id)); err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
}

// TouchAdminKey records a use of a key when the last recorded one is older than interval.
func (s *Store) TouchAdminKey(ctx context.Context, id string, interval time.Duration) error {
	now := s.now()
	return s.db.WithContext(ctx).Exec(`UPDATE admin_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		now, id, now.Add(-interval)).Error
}
