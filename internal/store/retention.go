package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Retention says how long rows that no longer serve any rule are kept.
type Retention struct {
	// Events are security events, kept this long for audits.
	Events time.Duration
	// Sessions are ended sessions (revoked, or past their absolute end) with their refresh-token
	// chains, kept this long after they ended. A live session keeps every token of its chain: a spent
	// one presented again is how theft is detected.
	Sessions time.Duration
	// Codes are email codes, kept this long after they expired.
	Codes time.Duration
	// LoginFailures are failure counters, kept this long after the last failure and any wait.
	LoginFailures time.Duration
	// Outbox is mail sent, refused for good or expired, kept this long after it was queued; at least
	// the hour the code caps count. Delivered webhooks are kept as long.
	Outbox time.Duration
	// Batch is how many rows one statement deletes (sessions: a tenth of it, as each takes its
	// chain along); 0 means 1000 on Postgres and 200 on SQLite, whose one writer makes every other
	// write wait for the batch.
	Batch int
}

// Purged counts the rows a Purge deleted, by table.
type Purged struct {
	Events, Sessions, Codes, LoginFailures, Outbox, Webhooks int64
}

// Total is every row deleted.
func (p Purged) Total() int64 {
	return p.Events + p.Sessions + p.Codes + p.LoginFailures + p.Outbox + p.Webhooks
}

// Purge deletes what the retention allows, in small batches: each batch is a statement of its own,
// finding its rows through an index on their age and holding its locks for milliseconds, so a purge
// of millions of rows never stalls the requests beside it. Several instances may purge at once.
// It stops at the first error, or when ctx ends, with the counts so far.
func (s *Store) Purge(ctx context.Context, r Retention) (Purged, error) {
	now := s.now()
	batch := r.Batch
	if batch <= 0 {
		batch = 1000
		if s.dialect == SQLite {
			batch = 200
		}
	}
	var p Purged
	// Unsent mail that can no longer be useful keeps no code a moment longer than it must.
	if err := s.db.WithContext(ctx).Exec(`UPDATE outbox SET data = NULL
		WHERE sent_at IS NULL AND expires_at <= ? AND data IS NOT NULL`, now).Error; err != nil {
		return p, err
	}
	for _, step := range []struct {
		count *int64
		batch int
		sql   string
		args  []any
	}{
		{&p.Events, batch, `DELETE FROM security_events WHERE id IN (
			SELECT id FROM security_events WHERE created_at < ? LIMIT ?)`, []any{now.Add(-r.Events)}},
		// The refresh tokens of a session go with it (ON DELETE CASCADE, by their session index).
		{&p.Sessions, max(batch/10, 1), `DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE revoked_at < ? LIMIT ?)`, []any{now.Add(-r.Sessions)}},
		{&p.Sessions, max(batch/10, 1), `DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE expires_at < ? LIMIT ?)`, []any{now.Add(-r.Sessions)}},
		{&p.Codes, batch, `DELETE FROM email_codes WHERE id IN (
			SELECT id FROM email_codes WHERE expires_at < ? LIMIT ?)`, []any{now.Add(-r.Codes)}},
		{&p.LoginFailures, batch, `DELETE FROM login_failures WHERE (subject, ip) IN (
			SELECT subject, ip FROM login_failures WHERE last_failure_at < ? AND (locked_until IS NULL OR locked_until < ?) LIMIT ?)`,
			[]any{now.Add(-r.LoginFailures), now}},
		{&p.Outbox, batch, `DELETE FROM outbox WHERE id IN (
			SELECT id FROM outbox WHERE created_at < ? AND (sent_at IS NOT NULL OR dead_at IS NOT NULL OR expires_at <= ?) LIMIT ?)`,
			[]any{now.Add(-max(r.Outbox, time.Hour)), now}},
		// A delivered webhook goes like sent mail; a dead one stays for the operator's audit as long as
		// the event it told of.
		{&p.Webhooks, batch, `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE status = 'delivered' AND created_at < ? LIMIT ?)`,
			[]any{now.Add(-max(r.Outbox, time.Hour))}},
		{&p.Webhooks, batch, `DELETE FROM webhook_deliveries WHERE id IN (
			SELECT id FROM webhook_deliveries WHERE status = 'dead' AND created_at < ? LIMIT ?)`,
			[]any{now.Add(-r.Events)}},
	} {
		for {
			res := s.db.WithContext(ctx).Session(&gorm.Session{}).Exec(step.sql, append(step.args, step.batch)...)
			if res.Error != nil {
				return p, res.Error
			}
			*step.count += res.RowsAffected
			if res.RowsAffected < int64(step.batch) {
				break
			}
			if err := ctx.Err(); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}
