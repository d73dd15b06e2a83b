package store

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/latch-auth/latch/internal/auth"
)

// webhookRow is one event's delivery to one endpoint (migration 00010).
type webhookRow struct {
	ID            string
	EventID       int64
	Endpoint      string
	EventType     string
	TenantID      *string
	Body          string
	Status        string
	Attempts      int
	CreatedAt     time.Time
	NextAttemptAt time.Time
	LockedUntil   *time.Time
	ClaimToken    *string
	LastStatus    *int
	LastError     *string
	FinishedAt    *time.Time
}

func (webhookRow) TableName() string { return "webhook_deliveries" }

func (r webhookRow) delivery() auth.WebhookDelivery {
	d := auth.WebhookDelivery{ID: r.ID, EventID: r.EventID, Endpoint: r.Endpoint, EventType: r.EventType, TenantID: deref(r.TenantID),
		Body: r.Body, Status: r.Status, Attempts: r.Attempts, CreatedAt: r.CreatedAt, NextAttemptAt: r.NextAttemptAt,
		LastError: deref(r.LastError), FinishedAt: r.FinishedAt, Claim: deref(r.ClaimToken)}
	if r.LastStatus != nil {
		d.LastStatus = *r.LastStatus
	}
	return d
}

// FanOutEvents queues the deliveries of up to limit events not yet fanned out. The events are locked
// with SKIP LOCKED, so instances fanning out at once take different events; the unique (event,
// endpoint) key keeps a delivery single even where the lock is not to be had.
func (s *Store) FanOutEvents(ctx context.Context, limit int, route func(auth.LoggedEvent) []auth.WebhookDelivery) (int, error) {
	skip := ""
	if s.dialect == Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	n := 0
	err := s.tx(ctx, func(tx *gorm.DB) error {
		var rows []eventRow
		if err := tx.Raw(`SELECT id, user_id, session_id, tenant_id, kind, ip, user_agent, detail, actor_type, actor_id, actor_name, created_at
			FROM security_events WHERE webhook_pending ORDER BY id LIMIT ?`+skip, limit).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		now := s.now()
		ids := make([]int64, 0, len(rows))
		var values []string
		var args []any
		for _, r := range rows {
			ids = append(ids, r.ID)
			ev := auth.LoggedEvent{ID: r.ID, CreatedAt: r.CreatedAt, Event: auth.Event{Kind: r.Kind, IP: r.IP, UserAgent: r.UserAgent,
				Detail: r.Detail, Actor: auth.Actor{Type: r.ActorType, ID: r.ActorID, Name: r.ActorName}}}
			ev.UserID, ev.SessionID, ev.TenantID = deref(r.UserID), deref(r.SessionID), deref(r.TenantID)
			for _, d := range route(ev) {
				if d.ID == "" {
					d.ID = uuid.NewString()
				}
				values = append(values, "(?, ?, ?, ?, ?, ?, ?, 0, ?, ?)")
				args = append(args, d.ID, ev.ID, d.Endpoint, d.EventType, orNull(ev.TenantID), d.Body, auth.DeliveryPending, now, now)
			}
		}
		// One statement per chunk rather than per delivery: a batch of events costs a few round trips.
		const chunk = 500
		for len(values) > 0 {
			k := min(chunk, len(values))
			if err := tx.Exec(`INSERT INTO webhook_deliveries (id, event_id, endpoint, event_type, tenant_id, body, status, attempts,
					created_at, next_attempt_at)
				VALUES `+strings.Join(values[:k], ", ")+` ON CONFLICT (event_id, endpoint) DO NOTHING`, args[:k*9]...).Error; err != nil {
				return err
			}
			values, args = values[k:], args[k*9:]
		}
		n = len(rows)
		return tx.Exec(`UPDATE security_events SET webhook_pending = false WHERE id IN ?`, ids).Error
	})
	return n, err
}

// ClaimWebhooks leases due deliveries like ClaimOutbox leases mail: one UPDATE whose subquery skips
// rows another instance is claiming, so each delivery goes to one claim.
func (s *Store) ClaimWebhooks(ctx context.Context, lease time.Duration, limit int) ([]auth.WebhookDelivery, error) {
	now := s.now()
	skip := ""
	if s.dialect == Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	claim := uuid.NewString()
	var rows []webhookRow
	err := s.db.WithContext(ctx).Raw(`UPDATE webhook_deliveries SET locked_until = ?, attempts = attempts + 1, claim_token = ?
		WHERE id IN (SELECT id FROM webhook_deliveries
			WHERE status = 'pending' AND next_attempt_at <= ? AND (locked_until IS NULL OR locked_until <= ?)
			ORDER BY next_attempt_at LIMIT ?`+skip+`)
		RETURNING *`, now.Add(lease), claim, now, now, limit).Scan(&rows).Error
	out := make([]auth.WebhookDelivery, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.delivery())
	}
	return out, err
}

// FinishWebhookAttempt records an attempt if its claim still holds the delivery.
func (s *Store) FinishWebhookAttempt(ctx context.Context, a auth.WebhookAttempt) error {
	now := s.now()
	var status, errText any
	if a.HTTPStatus != 0 {
		status = a.HTTPStatus
	}
	if a.Error != "" {
		errText = cleanCause(a.Error)
	}
	var finished any
	next := a.Next.UTC()
	if a.Status != auth.DeliveryPending {
		finished, next = now, now
	}
	res := s.db.WithContext(ctx).Exec(`UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, locked_until = NULL,
			last_status = ?, last_error = ?, finished_at = ?
		WHERE id = ? AND claim_token = ? AND status = 'pending'`, a.Status, next, status, errText, finished, a.ID, a.Claim)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// ListWebhookDeliveries reads failed or dead deliveries newest first, after a position of that order.
func (s *Store) ListWebhookDeliveries(ctx context.Context, q auth.WebhookQuery) ([]auth.WebhookDelivery, error) {
	db := s.db.WithContext(ctx).Model(&webhookRow{})
	failed := "(status = 'pending' AND last_error IS NOT NULL)"
	switch q.Status {
	case auth.DeliveryFailed:
		db = db.Where(failed)
	case auth.DeliveryDead:
		db = db.Where("status = 'dead'")
	default:
		db = db.Where("(status = 'dead' OR " + failed + ")")
	}
	if q.TenantID != "" {
		db = db.Where("tenant_id = ?", q.TenantID)
	}
	if q.BeforeID != "" {
		at := q.BeforeCreated.UTC()
		db = db.Where("(created_at < ? OR created_at = ? AND id < ?)", at, at, q.BeforeID)
	}
	var rows []webhookRow
	err := db.Order("created_at DESC, id DESC").Limit(q.Limit).Find(&rows).Error
	out := make([]auth.WebhookDelivery, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.delivery())
	}
	return out, err
}

// RetryWebhookDelivery makes a dead delivery due again, with its event, in one transaction.
func (s *Store) RetryWebhookDelivery(ctx context.Context, id, tenantID string, ev auth.Event) (auth.WebhookDelivery, error) {
	now := s.now()
	var d auth.WebhookDelivery
	err := s.tx(ctx, func(tx *gorm.DB) error {
		scope, args := "", []any{now, id}
		if tenantID != "" {
			scope, args = " AND tenant_id = ?", append(args, tenantID)
		}
		var rows []webhookRow
		if err := tx.Raw(`UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, locked_until = NULL,
				claim_token = NULL, finished_at = NULL
			WHERE id = ? AND status = 'dead'`+scope+` RETURNING *`, args...).Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 0 {
			return auth.ErrNotFound
		}
		d = rows[0].delivery()
		if ev.TenantID == "" {
			ev.TenantID = d.TenantID
		}
		ev.Detail = "webhook delivery " + d.ID + " (" + d.EventType + " to " + d.Endpoint + ")"
		return insertEvent(tx, ev, now)
	})
	return d, err
}

// WebhookStats counts the backlog and the dead deliveries.
func (s *Store) WebhookStats(ctx context.Context) (auth.WebhookStats, error) {
	var st auth.WebhookStats
	db := s.db.WithContext(ctx)
	if err := db.Model(&webhookRow{}).Where("status = 'pending'").Count(&st.Pending).Error; err != nil {
		return st, err
	}
	if err := db.Model(&webhookRow{}).Where("status = 'dead'").Count(&st.Dead).Error; err != nil || st.Pending == 0 {
		return st, err
	}
	var oldest []time.Time
	err := db.Model(&webhookRow{}).Where("status = 'pending'").Order("created_at").Limit(1).Pluck("created_at", &oldest).Error
	if len(oldest) == 1 {
		st.Oldest = &oldest[0]
	}
	return st, err
}
