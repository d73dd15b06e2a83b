package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// sessionRow is a row of sessions.
type sessionRow struct {
	ID            string
	UserID        string
	TenantID      string
	AMR           string
	IP            string
	UserAgent     string
	CreatedAt     time.Time
	LastUsedAt    time.Time
	IdleExpiresAt time.Time
	ExpiresAt     time.Time
	RevokedAt     *time.Time
	RevokeReason  *string
}

func (sessionRow) TableName() string { return "sessions" }

func (r sessionRow) session() auth.Session {
	return auth.Session{ID: r.ID, UserID: r.UserID, TenantID: r.TenantID, AMR: r.AMR, IP: r.IP, UserAgent: r.UserAgent, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, IdleExpiresAt: r.IdleExpiresAt,
		ExpiresAt: r.ExpiresAt, RevokedAt: r.RevokedAt}
}

// refreshTokenRow is one link of a session's chain, stored as the SHA-256 of the token. A Kept token is
// the one token of a session without rotation; LastUsedAt records its last use.
type refreshTokenRow struct {
	ID         int64
	SessionID  string
	ParentID   *int64
	TokenHash  []byte
	CreatedAt  time.Time
	UsedAt     *time.Time
	LastUsedAt *time.Time
	Kept       bool
}

func (refreshTokenRow) TableName() string { return "refresh_tokens" }

type eventRow struct {
	ID        int64
	UserID    *string
	SessionID *string
	TenantID  *string
	Kind      string
	IP        string
	UserAgent string
	Detail    string
	ActorType string
	ActorID   string
	ActorName string
	CreatedAt time.Time
}

func (eventRow) TableName() string { return "security_events" }

// insertEvent writes an event; one that names a user but no tenant is the user's tenant's.
func insertEvent(tx *gorm.DB, ev auth.Event, now time.Time) error {
	if ev.Kind == "" {
		return nil
	}
	return tx.Exec(`INSERT INTO security_events (user_id, session_id, tenant_id, kind, ip, user_agent, detail,
			actor_type, actor_id, actor_name, created_at)
		VALUES (?, ?, coalesce(?, (SELECT tenant_id FROM users WHERE id = ?)), ?, ?, ?, ?, ?, ?, ?, ?)`,
		orNull(ev.UserID), orNull(ev.SessionID), orNull(ev.TenantID), orNull(ev.UserID), ev.Kind, ev.IP, ev.UserAgent, ev.Detail,
		ev.Actor.Type, ev.Actor.ID, ev.Actor.Name, now).Error
}

// orNull is NULL for "".
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// RecordEvent writes an event on its own (for things that change no other row, like a failed login).
func (s *Store) RecordEvent(ctx context.Context, ev auth.Event) error {
	return insertEvent(s.db.WithContext(ctx), ev, s.now())
}

// OpenSession consumes the code (exactly one caller wins), marks the email verified when asked,
// and creates the session with its first refresh token.
func (s *Store) OpenSession(ctx context.Context, p auth.NewSession) (auth.Session, error) {
	now := s.now()
	sess := sessionRow{ID: uuid.NewString(), UserID: p.UserID, TenantID: p.TenantID, AMR: p.AMR, IP: p.IP, UserAgent: p.UserAgent, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(p.MaxAge)}
	sess.IdleExpiresAt = auth.SessionEnd(now, sess.ExpiresAt, p.IdleTTL)
	err := s.tx(ctx, func(tx *gorm.DB) error {
		if p.CodeID != "" {
			if err := consumeCode(tx, p.CodeID, now); err != nil {
				return err
			}
		}
		if p.MarkVerified {
			if err := tx.Exec(`UPDATE users SET email_verified_at = ?, updated_at = ? WHERE id = ? AND email_verified_at IS NULL`,
				now, now, p.UserID).Error; err != nil {
				return err
			}
		}
		if err := tx.Create(&sess).Error; err != nil {
			return err
		}
		if err := tx.Create(&refreshTokenRow{SessionID: sess.ID, TokenHash: p.RefreshHash, CreatedAt: now, Kept: !p.RefreshRotation}).Error; err != nil {
			return err
		}
		if p.PasswordHash != "" {
			if err := affectedOne(tx.Exec(`UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`, p.PasswordHash, now, p.UserID)); err != nil {
				return err
			}
		}
		ev := p.Event
		ev.SessionID = sess.ID
		return insertEvent(tx, ev, now)
	})
	return sess.session(), err
}

// Rotate marks the token with hash oldHash used and stores its successor, if and only if
// auth.ClassifyRefresh says auth.RefreshRotate for it: the token is unused and was active within the
// idle TTL, its session neither revoked nor past its absolute end, its user active. When it says
// auth.RefreshKeep (the same, in a session without rotation) the token only records its use. It
// answers auth.ErrNotFound otherwise; the caller then reads the token's state to learn why. On
// Postgres it is a single statement, one round trip; the row lock taken by the UPDATE makes
// concurrent callers wait and then see used_at set, so exactly one wins. Under load the statement
// carries the rotations of every request that arrived meanwhile (Store.rotations, batch.go): one
// round trip and one commit for the group, each request still answered as if it had been alone.
//
// The spent token's used_at starts its reuse grace, which exists for a client that lost the answer and
// retries, so it must be no earlier than the commit: see settleUsedAt.
func (s *Store) Rotate(ctx context.Context, oldHash, newHash []byte, idleTTL time.Duration) (auth.Rotated, error) {
	in := rotation{oldHash: oldHash, newHash: newHash, idleTTL: idleTTL}
	switch {
	case s.rotations != nil:
		return s.rotations.do(ctx, in)
	case s.dialect == Postgres:
		// Grouping off (database.batch_max 1): every rotation alone, as many at once as the pool has.
		res, err := s.rotateBatch(ctx, []rotation{in})
		if err != nil {
			return auth.Rotated{}, err
		}
		return res[0].out, res[0].err
	}
	now := s.now()
	r, err := s.rotateSQLite(ctx, oldHash, newHash, idleTTL, now)
	if err == nil || errors.Is(err, auth.ErrUnavailable) {
		s.settleUsedAt(ctx, now, oldHash)
	}
	return r, err
}

// rotation is one Rotate call waiting in the Postgres batcher.
type rotation struct {
	oldHash, newHash []byte
	idleTTL          time.Duration
}

// rotateBatch runs a group of rotations (one statement, one commit) and answers each with its own
// outcome: what Rotate would have answered for it alone, since the batcher never puts one token in a
// group twice. A rotation that ran out of time may have committed all the same (Postgres ends a
// commit's wait for a synchronous standby with the transaction committed locally); its client gets a
// 503 and retries, so its grace must run from now too: settleUsedAt, where nothing was committed,
// finds no row.
func (s *Store) rotateBatch(ctx context.Context, in []rotation) ([]batchResult[auth.Rotated], error) {
	release, err := s.admit(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var res []batchResult[auth.Rotated]
	if len(in) == 1 && !s.groupStatements {
		r, oneErr := s.rotatePostgres(ctx, in[0], now)
		if oneErr == nil || errors.Is(oneErr, auth.ErrNotFound) {
			res = []batchResult[auth.Rotated]{{out: r, err: oneErr}}
		} else {
			err = oneErr
		}
	} else {
		res, err = s.rotatePostgresMany(ctx, in, now)
	}
	release()
	if err == nil || errors.Is(err, auth.ErrUnavailable) {
		hashes := make([][]byte, len(in))
		for i, r := range in {
			hashes[i] = r.oldHash
		}
		s.settleUsedAt(ctx, now, hashes...)
	}
	return res, err
}

// rotatePostgres is one rotation alone, the statement the service sends when it is not busy: one
// prepared statement (pgx caches it per connection), straight through database/sql, no ORM statement
// building or reflection per refresh.
func (s *Store) rotatePostgres(ctx context.Context, in rotation, now time.Time) (auth.Rotated, error) {
	var r auth.Rotated
	var rotated bool
	idle, idleFloor, touchFloor := now.Add(in.idleTTL), now.Add(-in.idleTTL), now.Add(-sessionTouchEvery)
	err := s.sqlDB.QueryRowContext(ctx, rotatePostgres, now, in.oldHash, in.newHash, idle, idleFloor, touchFloor).
		Scan(&r.SessionID, &r.UserID, &r.TenantID, &r.Email, &r.Role, &r.AMR, &r.ExpiresAt, &r.SessionStart, &rotated)
	if errors.Is(err, sql.ErrNoRows) {
		return r, auth.ErrNotFound
	}
	if err != nil {
		return r, batchFailed(err)
	}
	r.Kept = !rotated
	return r, nil
}

// rotatePostgresMany is a group of rotations in one statement (rotatePostgresBatch). Rotations the
// statement does not return did not happen: auth.ErrNotFound, as for one alone.
func (s *Store) rotatePostgresMany(ctx context.Context, in []rotation, now time.Time) ([]batchResult[auth.Rotated], error) {
	// In hash order, so that groups on different instances that share tokens lock their rows in the
	// same order and cannot deadlock (the input drives the update's nested loop, in array order).
	order := make([]int, len(in))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(in[a].oldHash, in[b].oldHash) })
	olds, news := make([][]byte, len(in)), make([][]byte, len(in))
	idles, idleFloors := make([]time.Time, len(in)), make([]time.Time, len(in))
	for i, k := range order {
		r := in[k]
		olds[i], news[i] = r.oldHash, r.newHash
		idles[i], idleFloors[i] = now.Add(r.idleTTL), now.Add(-r.idleTTL)
	}
	rows, err := s.sqlDB.QueryContext(ctx, rotatePostgresBatch, now, olds, news, idles, idleFloors, now.Add(-sessionTouchEvery), len(in))
	if err != nil {
		return nil, batchFailed(err)
	}
	defer rows.Close()
	res := make([]batchResult[auth.Rotated], len(in))
	found := make([]bool, len(in))
	for rows.Next() {
		var n int
		var r auth.Rotated
		var rotated bool
		if err := rows.Scan(&n, &r.SessionID, &r.UserID, &r.TenantID, &r.Email, &r.Role, &r.AMR, &r.ExpiresAt, &r.SessionStart, &rotated); err != nil {
			return nil, batchFailed(err)
		}
		if n < 1 || n > len(in) || found[order[n-1]] {
			return nil, fmt.Errorf("rotation batch: unexpected row for input %d of %d", n, len(in))
		}
		r.Kept = !rotated
		res[order[n-1]], found[order[n-1]] = batchResult[auth.Rotated]{out: r}, true
	}
	if err := rows.Err(); err != nil {
		return nil, batchFailed(err)
	}
	for i := range res {
		if !found[i] {
			res[i].err = auth.ErrNotFound
		}
	}
	return res, nil
}

func (s *Store) rotateSQLite(ctx context.Context, oldHash, newHash []byte, idleTTL time.Duration, now time.Time) (auth.Rotated, error) {
	idle := now.Add(idleTTL)
	idleFloor, touchFloor := now.Add(-idleTTL), now.Add(-sessionTouchEvery)
	var r auth.Rotated
	var rotated bool
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var old []struct {
			ID        int64
			SessionID string
			Rotated   bool
		}
		// Correlated, so SQLite checks the token's own session by key instead of building the
		// set of every live session on each refresh.
		err := tx.Raw(`UPDATE refresh_tokens
			SET used_at = CASE WHEN kept THEN NULL ELSE ? END,
			    last_used_at = ?
			WHERE token_hash = ? AND used_at IS NULL AND coalesce(last_used_at, created_at) > ? AND EXISTS (
				SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
				WHERE s.id = refresh_tokens.session_id AND s.revoked_at IS NULL AND s.expires_at > ? AND u.status = 'active')
			RETURNING id, session_id, NOT kept AS rotated`, now, now, oldHash, idleFloor, now).Scan(&old).Error
		if err != nil {
			return err
		}
		if len(old) == 0 {
			return auth.ErrNotFound
		}
		rotated = old[0].Rotated
		if rotated {
			if err := tx.Create(&refreshTokenRow{SessionID: old[0].SessionID, ParentID: &old[0].ID, TokenHash: newHash, CreatedAt: now}).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`UPDATE sessions SET last_used_at = ?, idle_expires_at = min(?, expires_at) WHERE id = ? AND last_used_at < ?`,
			now, idle, old[0].SessionID, touchFloor).Error; err != nil {
			return err
		}
		return tx.Raw(`SELECT s.id AS session_id, s.user_id, s.tenant_id, u.email, u.role, s.amr, s.expires_at, s.created_at AS session_start
			FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`, old[0].SessionID).Scan(&r).Error
	})
	if err != nil {
		return r, err
	}
	r.Kept = !rotated
	return r, nil
}

// rotationSlack is how far before its commit a rotation may date its spent token's used_at, and so
// how much of the reuse grace a slow rotation may cost its client: at most this.
const rotationSlack = time.Second

// settleUsedAt moves the used_at of the tokens spent at began to the present, when the rotation took
// longer than rotationSlack on the store's clock: waiting for a lock, a connection, a slow disk or a
// synchronous standby. The rotation stays one statement and its time one value on the fast path; only
// a slow one pays a second write. A retry that lands between the two sees the earlier time, which is
// what it would have seen anyway. It runs after the rotation committed (or gave up), so even a request
// past its deadline settles it.
func (s *Store) settleUsedAt(ctx context.Context, began time.Time, oldHashes ...[]byte) {
	end := s.now()
	if end.Sub(began) <= rotationSlack {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_ = s.tx(ctx, func(tx *gorm.DB) error {
		if s.dialect == Postgres {
			// A slow rotation may be one whose commit waited for a synchronous standby that is gone:
			// this write must not wait the same way, holding the token's row while the client's retry
			// waits for it. The time it moves is worth less than the wait.
			if err := tx.Exec(`SET LOCAL synchronous_commit TO local`).Error; err != nil {
				return err
			}
		}
		// The rotation that gave up may still be finishing in its backend (cancelled a moment ago):
		// wait for its rows, so the update below sees what it did. An UPDATE alone would judge the rows
		// as they were before the rotation, find no match, and not wait. In hash order, as every
		// settling does, so two of them cannot wait for each other.
		if err := tx.Exec(`SELECT 1 FROM refresh_tokens WHERE token_hash IN ? ORDER BY token_hash`+s.lockClause(), oldHashes).Error; err != nil {
			return err
		}
		// Conditional on the time it wrote, so a rotation that did not happen (or another's) is left
		// alone.
		return tx.Exec(`UPDATE refresh_tokens SET used_at = ? WHERE token_hash IN ? AND used_at = ?`, end, oldHashes, began).Error
	})
}

// sessionTouchEvery bounds how often a rotation rewrites its session row (last_used_at and the
// informational idle end). The idle window itself is enforced exactly on the presented token's age: a
// session is idle when its newest token is older than the idle TTL. Rewriting the session row on every
// refresh piled dead row versions onto a handful of hot rows and cost about a fifth of the throughput
// (docs/benchmarks.md); the price is that sessions lists show last use to within this interval.
const sessionTouchEvery = 30 * time.Second

// rotatePostgres spends a token and stores its successor in one statement: $1 now, $2 the spent
// token's hash, $3 the successor's hash, $4 the new idle end, $5 the oldest time a token may have
// been last active and still be inside the idle window, $6 the last-use time below which the session
// row is rewritten. The one token of a session without rotation (kept) is not spent: it records its
// use (last_used_at, from which its idle window now runs) and no successor is made. The flag is read
// from the row being updated, so the statement does the same lookups with or without it.
//
// The session and user checks are a correlated scalar subquery, not a join, so the plan is three
// primary-key or unique lookups whatever the statistics say. As a join, on a database that had never
// analysed sessions (autovacuum off), the planner guessed that few sessions have revoked_at NULL and
// read every live session through sessions_user_idx on each refresh: the cost grew with the number of
// sessions and refresh throughput fell run after run (docs/benchmarks.md). A subquery is not flattened
// into the join tree and its WHERE names no column of that partial index's predicate.
const rotatePostgres = `WITH consumed AS (
	UPDATE refresh_tokens rt
	SET used_at = CASE WHEN rt.kept THEN NULL ELSE $1 END,
	    last_used_at = $1
	WHERE rt.token_hash = $2 AND rt.used_at IS NULL AND coalesce(rt.last_used_at, rt.created_at) > $5
	  AND (SELECT s.revoked_at IS NULL AND s.expires_at > $1 AND u.status = 'active'
	       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = rt.session_id)
	RETURNING rt.id, rt.session_id, NOT rt.kept AS rotated
), successor AS (
	INSERT INTO refresh_tokens (session_id, parent_id, token_hash, created_at)
	SELECT session_id, id, $3, $1 FROM consumed WHERE rotated
), touched AS (
	UPDATE sessions SET last_used_at = $1, idle_expires_at = LEAST($4, sessions.expires_at)
	FROM consumed WHERE sessions.id = consumed.session_id AND sessions.last_used_at < $6
)
SELECT s.id::text, s.user_id::text, s.tenant_id, u.email, u.role, s.amr, s.expires_at, s.created_at, c.rotated
FROM consumed c JOIN sessions s ON s.id = c.session_id JOIN users u ON u.id = s.user_id`

// rotatePostgresBatch is rotatePostgres for a group of tokens: $2 their hashes, $3 their successors'
// hashes, $4 their new idle ends, $5 their idle floors (arrays, one element per rotation), $1 now and $6
// the session-touch floor, $7 the arrays' length. Each returned row starts with the 1-based position of its rotation in the
// arrays; a rotation that is not returned did not happen. No hash appears twice (the batcher keeps
// such calls in separate groups), and a session has one unspent token, so no row is updated twice.
//
// The input drives a nested loop of unique-index lookups, as one rotation's statement does for one
// (TestRotatePlanIsKeyLookups).
//
// $7 is the number of rotations, and the WHERE on it keeps nothing out: it is there for the plan cache.
// Postgres estimates unnest of an array parameter at 100 rows in a generic plan and at its real length
// in a custom one, so it judged the generic plan dearer and planned the statement anew on every
// execution: 0.3-0.6 ms of planning against 0.1 ms of execution for a group of 8. A range condition on
// a column without statistics is estimated alike in both (one row), so the cached generic plan wins
// after the first five executions, as it does for the one-rotation statement.
const rotatePostgresBatch = `WITH input AS (
	SELECT * FROM unnest($2::bytea[], $3::bytea[], $4::timestamptz[], $5::timestamptz[]) WITH ORDINALITY
		AS i(old_hash, new_hash, idle_end, idle_floor, n)
	WHERE i.n >= 1 AND i.n <= $7
), consumed AS (
	UPDATE refresh_tokens rt
	SET used_at = CASE WHEN rt.kept THEN NULL ELSE $1 END,
	    last_used_at = $1
	FROM input i
	WHERE rt.token_hash = i.old_hash AND rt.used_at IS NULL AND coalesce(rt.last_used_at, rt.created_at) > i.idle_floor
	  AND (SELECT s.revoked_at IS NULL AND s.expires_at > $1 AND u.status = 'active'
	       FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = rt.session_id)
	RETURNING i.n, i.new_hash, i.idle_end, rt.id, rt.session_id, NOT rt.kept AS rotated
), successor AS (
	INSERT INTO refresh_tokens (session_id, parent_id, token_hash, created_at)
	SELECT session_id, id, new_hash, $1 FROM consumed WHERE rotated
), touched AS (
	UPDATE sessions SET last_used_at = $1, idle_expires_at = LEAST(consumed.idle_end, sessions.expires_at)
	FROM consumed WHERE sessions.id = consumed.session_id AND sessions.last_used_at < $6
)
SELECT c.n, s.id::text, s.user_id::text, s.tenant_id, u.email, u.role, s.amr, s.expires_at, s.created_at, c.rotated
FROM consumed c JOIN sessions s ON s.id = c.session_id JOIN users u ON u.id = s.user_id`

// refreshStateRow is a presented token with its session, user, successor and the session's tip: a
// chain has exactly one unspent token, its newest (revocation ends the session, not the tokens).
type refreshStateRow struct {
	TokenCreatedAt  time.Time
	TokenLastUsedAt *time.Time
	UsedAt          *time.Time
	SessionID       string
	UserID          string
	TenantID        string
	Email           string
	Role            string
	AMR             string
	UserStatus      string
	RevokedAt       *time.Time
	ExpiresAt       time.Time
	SessionStart    time.Time
	Kept            bool
	NewestCreatedAt time.Time
	NewestUsedAt    *time.Time
	SuccessorHash   []byte
	SuccessorUsedAt *time.Time
}

// RefreshState looks a refresh token up by hash with its session, user and successor: everything
// auth.ClassifyRefresh reads. It is the slow path, taken only when Rotate refused.
func (s *Store) RefreshState(ctx context.Context, hash []byte) (auth.RefreshState, error) {
	var rows []refreshStateRow
	err := s.db.WithContext(ctx).Raw(`SELECT rt.created_at AS token_created_at, rt.last_used_at AS token_last_used_at, rt.used_at,
			s.id AS session_id, s.user_id, s.tenant_id, u.email, u.role, s.amr, u.status AS user_status, s.revoked_at, s.expires_at,
			s.created_at AS session_start, rt.kept, tip.created_at AS newest_created_at, tip.last_used_at AS newest_used_at,
			c.token_hash AS successor_hash, c.used_at AS successor_used_at
		FROM refresh_tokens rt
		JOIN sessions s ON s.id = rt.session_id
		JOIN users u ON u.id = s.user_id
		LEFT JOIN refresh_tokens c ON c.parent_id = rt.id
		LEFT JOIN refresh_tokens tip ON tip.session_id = s.id AND tip.used_at IS NULL
		WHERE rt.token_hash = ?`, hash).Scan(&rows).Error
	if err != nil {
		return auth.RefreshState{}, err
	}
	if len(rows) == 0 {
		return auth.RefreshState{}, auth.ErrNotFound
	}
	r := rows[0]
	newest := r.NewestCreatedAt
	if r.NewestUsedAt != nil && r.NewestUsedAt.After(newest) {
		newest = *r.NewestUsedAt
	}
	return auth.RefreshState{TokenCreatedAt: r.TokenCreatedAt, TokenLastUsedAt: r.TokenLastUsedAt, UsedAt: r.UsedAt,
		SessionID: r.SessionID, UserID: r.UserID, TenantID: r.TenantID, Email: r.Email, Role: r.Role, AMR: r.AMR,
		UserStatus: r.UserStatus, RevokedAt: r.RevokedAt, ExpiresAt: r.ExpiresAt, SessionStart: r.SessionStart, Kept: r.Kept,
		NewestTokenAt: newest, SuccessorHash: r.SuccessorHash, SuccessorUsedAt: r.SuccessorUsedAt}, nil
}

// SessionForRefresh finds the session a refresh token belongs to, whatever its state.
func (s *Store) SessionForRefresh(ctx context.Context, hash []byte) (auth.Session, error) {
	var sess sessionRow
	err := s.db.WithContext(ctx).Raw(`SELECT s.* FROM sessions s JOIN refresh_tokens rt ON rt.session_id = s.id
		WHERE rt.token_hash = ?`, hash).Scan(&sess).Error
	if err == nil && sess.ID == "" {
		err = auth.ErrNotFound
	}
	return sess.session(), err
}

// RevokeSession ends one live session of a user; auth.ErrNotFound when it is not the user's, or not
// live.
func (s *Store) RevokeSession(ctx context.Context, userID, sessionID, reason string, ev auth.Event) error {
	if _, err := uuid.Parse(sessionID); err != nil {
		return auth.ErrNotFound
	}
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE sessions SET revoked_at = ?, revoke_reason = ?
			WHERE id = ? AND user_id = ? AND revoked_at IS NULL`, now, reason, sessionID, userID)
		if err := affectedOne(res); err != nil {
			return err
		}
		ev.SessionID = sessionID
		return insertEvent(tx, ev, now)
	})
}

// RevokeUserSessions ends every live session of a user except exceptSessionID ("" for none).
func (s *Store) RevokeUserSessions(ctx context.Context, userID, exceptSessionID, reason string, ev auth.Event) error {
	now := s.now()
	return s.tx(ctx, func(tx *gorm.DB) error {
		if err := revokeUserSessions(tx, userID, exceptSessionID, reason, now); err != nil {
			return err
		}
		return insertEvent(tx, ev, now)
	})
}

func revokeUserSessions(tx *gorm.DB, userID, exceptSessionID, reason string, now time.Time) error {
	q := `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE user_id = ? AND revoked_at IS NULL`
	args := []any{now, reason, userID}
	if exceptSessionID != "" {
		q += ` AND id <> ?`
		args = append(args, exceptSessionID)
	}
	return tx.Exec(q, args...).Error
}

// LiveSession returns a session that is neither revoked nor expired.
func (s *Store) LiveSession(ctx context.Context, sessionID string) (auth.Session, error) {
	var sess sessionRow
	if _, err := uuid.Parse(sessionID); err != nil {
		return auth.Session{}, auth.ErrNotFound
	}
	now := s.now()
	err := s.db.WithContext(ctx).Where("id = ? AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?", sessionID, now, now).
		Take(&sess).Error
	return sess.session(), notFound(err)
}

// ListSessions returns a user's live sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]auth.Session, error) {
	now := s.now()
	var rows []sessionRow
	err := s.db.WithContext(ctx).Where("user_id = ? AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?", userID, now, now).
		Order("created_at DESC").Find(&rows).Error
	out := make([]auth.Session, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.session())
	}
	return out, err
}
