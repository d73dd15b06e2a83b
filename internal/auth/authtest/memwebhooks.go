package authtest

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/latch-auth/latch/internal/auth"
)

type memDelivery struct {
	auth.WebhookDelivery
	lockedUntil *time.Time
}

func (m *MemStore) FanOutEvents(_ context.Context, limit int, route func(auth.LoggedEvent) []auth.WebhookDelivery) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := min(limit, len(m.events)-m.fanned)
	now := m.at()
	for _, ev := range m.events[m.fanned : m.fanned+n] {
		for _, d := range route(ev) {
			if slices.ContainsFunc(m.webhooks, func(x *memDelivery) bool { return x.EventID == ev.ID && x.Endpoint == d.Endpoint }) {
				continue
			}
			d.EventID, d.TenantID, d.Status, d.Attempts = ev.ID, ev.TenantID, auth.DeliveryPending, 0
			d.CreatedAt, d.NextAttemptAt = now, now
			m.webhooks = append(m.webhooks, &memDelivery{WebhookDelivery: d})
		}
	}
	m.fanned += n
	return n, nil
}

func (m *MemStore) ClaimWebhooks(_ context.Context, lease time.Duration, limit int) ([]auth.WebhookDelivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.at()
	var due []*memDelivery
	for _, d := range m.webhooks {
		if d.Status == auth.DeliveryPending && !d.NextAttemptAt.After(now) && (d.lockedUntil == nil || !d.lockedUntil.After(now)) {
			due = append(due, d)
		}
	}
	slices.SortStableFunc(due, func(a, b *memDelivery) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
	claim := newID()
	out := []auth.WebhookDelivery{}
	for _, d := range due[:min(limit, len(due))] {
		until := now.Add(lease)
		d.lockedUntil, d.Claim = &until, claim
		d.Attempts++
		out = append(out, d.WebhookDelivery)
	}
	return out, nil
}

func (m *MemStore) FinishWebhookAttempt(_ context.Context, a auth.WebhookAttempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.webhooks {
		if d.ID != a.ID || d.Claim != a.Claim || d.Status != auth.DeliveryPending {
			continue
		}
		now := m.at()
		d.Status, d.LastStatus, d.LastError, d.lockedUntil = a.Status, a.HTTPStatus, a.Error, nil
		switch a.Status {
		case auth.DeliveryPending:
			d.NextAttemptAt = a.Next.UTC().Truncate(time.Microsecond)
		default:
			d.FinishedAt = &now
		}
		return nil
	}
	return auth.ErrNotFound
}

func (m *MemStore) ListWebhookDeliveries(_ context.Context, q auth.WebhookQuery) ([]auth.WebhookDelivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sel []auth.WebhookDelivery
	for _, d := range m.webhooks {
		failed := d.Status == auth.DeliveryPending && d.LastError != ""
		dead := d.Status == auth.DeliveryDead
		switch {
		case q.TenantID != "" && d.TenantID != q.TenantID,
			q.Status == auth.DeliveryFailed && !failed,
			q.Status == auth.DeliveryDead && !dead,
			q.Status == "" && !failed && !dead:
			continue
		}
		if q.BeforeID != "" && webhookOrder(d.WebhookDelivery, q.BeforeCreated, q.BeforeID) >= 0 {
			continue
		}
		sel = append(sel, d.WebhookDelivery)
	}
	slices.SortFunc(sel, func(a, b auth.WebhookDelivery) int { return -webhookOrder(a, b.CreatedAt, b.ID) })
	return sel[:min(len(sel), q.Limit)], nil
}

// webhookOrder compares d with the position (created, id) of the listing's order.
func webhookOrder(d auth.WebhookDelivery, created time.Time, id string) int {
	if c := d.CreatedAt.Compare(created); c != 0 {
		return c
	}
	return strings.Compare(d.ID, id)
}

func (m *MemStore) RetryWebhookDelivery(_ context.Context, id, tenantID string, ev auth.Event) (auth.WebhookDelivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.webhooks {
		if d.ID != id || d.Status != auth.DeliveryDead || tenantID != "" && d.TenantID != tenantID {
			continue
		}
		d.Status, d.Attempts, d.NextAttemptAt, d.FinishedAt, d.lockedUntil = auth.DeliveryPending, 0, m.at(), nil, nil
		if ev.TenantID == "" {
			ev.TenantID = d.TenantID
		}
		m.event(ev)
		return d.WebhookDelivery, nil
	}
	return auth.WebhookDelivery{}, auth.ErrNotFound
}

func (m *MemStore) WebhookStats(context.Context) (auth.WebhookStats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var st auth.WebhookStats
	for _, d := range m.webhooks {
		switch d.Status {
		case auth.DeliveryPending:
			st.Pending++
			if st.Oldest == nil || d.CreatedAt.Before(*st.Oldest) {
				at := d.CreatedAt
				st.Oldest = &at
			}
		case auth.DeliveryDead:
			st.Dead++
		}
	}
	return st, nil
}
