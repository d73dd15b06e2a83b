package auth

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Webhooks tell integrators what happened to their users. They are derived from the security event
// log, in the one table below: every event a change records (in the change's transaction) is fanned
// out to the endpoints subscribed to its public type, so code that records an event kind gets its
// webhook by adding one line here, and no request ever waits for a receiver.

// Public webhook event types.
const (
	WebhookUserCreated          = "user.created"
	WebhookUserVerified         = "user.verified"
	WebhookUserUpdated          = "user.updated"
	WebhookUserDeleted          = "user.deleted"
	WebhookLoginSucceeded       = "login.succeeded"
	WebhookLoginFailed          = "login.failed"
	WebhookLoginThrottled       = "login.throttled"
	WebhookSessionRevoked       = "session.revoked"
	WebhookRefreshTokenReused   = "refresh_token.reused"
	WebhookPasswordChanged      = "password.changed"
	WebhookPasswordResetRequest = "password.reset_requested"
	WebhookEmailChanged         = "email.changed"
	WebhookEmailUndeliverable   = "email.undeliverable"
	WebhookTOTPEnabled          = "totp.enabled"
	WebhookTOTPDisabled         = "totp.disabled"
)

// webhookOf maps an event kind to its public type and the reason it carries (which of several kinds
// of one type it was). Kinds not listed (tenant and admin-key changes, TOTP setup started) are
// operator bookkeeping, not news about a user, and send nothing.
var webhookOf = map[string]struct{ typ, reason string }{
	"user_registered":          {WebhookUserCreated, "registered"},
	"user_created":             {WebhookUserCreated, "created"},
	"signup_validated":         {WebhookUserVerified, ""},
	"user_updated":             {WebhookUserUpdated, ""},
	"user_deleted":             {WebhookUserDeleted, ""},
	"login":                    {WebhookLoginSucceeded, ""},
	"login_failed":             {WebhookLoginFailed, ""},
	"login_throttled":          {WebhookLoginThrottled, ""},
	"logout":                   {WebhookSessionRevoked, "logout"},
	"logout_all":               {WebhookSessionRevoked, "logout_all"},
	"session_revoked":          {WebhookSessionRevoked, "revoked"},
	"sessions_revoked":         {WebhookSessionRevoked, "revoked_all"},
	"refresh_token_reused":     {WebhookRefreshTokenReused, ""},
	"password_changed":         {WebhookPasswordChanged, "changed"},
	"password_reset":           {WebhookPasswordChanged, "reset"},
	"password_reset_requested": {WebhookPasswordResetRequest, ""},
	"email_changed":            {WebhookEmailChanged, ""},
	"email_undeliverable":      {WebhookEmailUndeliverable, ""},
	"totp_enabled":             {WebhookTOTPEnabled, ""},
	"totp_disabled":            {WebhookTOTPDisabled, "disabled"},
	"totp_reset":               {WebhookTOTPDisabled, "reset_by_admin"},
}

// WebhookTypes lists every public type an endpoint may subscribe to, sorted.
func WebhookTypes() []string {
	var out []string
	for _, w := range webhookOf {
		if !slices.Contains(out, w.typ) {
			out = append(out, w.typ)
		}
	}
	slices.Sort(out)
	return out
}

// WebhookEvent is what a webhook says about an event. It holds no address, code, token or free
// text: a queued body must not outlive the erasure of a user, and the receiver can ask the admin API
// for the user by id.
type WebhookEvent struct {
	Type      string
	TenantID  string
	CreatedAt time.Time
	UserID    string
	SessionID string
	IP        string
	UserAgent string
	Reason    string
	Actor     Actor // zero for the user's own actions and the service's
}

// WebhookOf is the webhook an event sends; false when its kind sends none.
func WebhookOf(ev LoggedEvent) (WebhookEvent, bool) {
	w, ok := webhookOf[ev.Kind]
	if !ok {
		return WebhookEvent{}, false
	}
	return WebhookEvent{Type: w.typ, TenantID: ev.TenantID, CreatedAt: ev.CreatedAt, UserID: ev.UserID, SessionID: ev.SessionID,
		IP: ev.IP, UserAgent: ev.UserAgent, Reason: w.reason, Actor: ev.Actor}, true
}

// Webhook delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead"
	// DeliveryFailed is not stored: it is a pending delivery whose last attempt failed.
	DeliveryFailed = "failed"
)

// WebhookDelivery is one event's delivery to one endpoint.
type WebhookDelivery struct {
	ID        string // also the webhook's id, the receiver's idempotency key
	EventID   int64
	Endpoint  string // the endpoint's name in the configuration
	EventType string
	TenantID  string
	Body      string // the JSON that is signed and sent
	Status    string // pending, delivered or dead
	Attempts  int
	CreatedAt time.Time
	// NextAttemptAt is when a pending delivery is due.
	NextAttemptAt time.Time
	LastStatus    int // HTTP status of the last attempt; 0 when none answered
	LastError     string
	FinishedAt    *time.Time // delivered or dead
	Claim         string     // the claim that leased it, on a claimed delivery
}

// WebhookAttempt is the outcome of one claimed attempt: Status delivered, dead, or pending again
// (retried at Next).
type WebhookAttempt struct {
	ID, Claim  string
	Status     string
	Next       time.Time
	HTTPStatus int
	Error      string
}

// WebhookQuery selects deliveries for the admin view, newest first: of a tenant ("" any), of a
// state (failed, dead; "" both), strictly before the position (BeforeCreated, BeforeID) when
// BeforeID is set.
type WebhookQuery struct {
	TenantID      string
	Status        string
	BeforeCreated time.Time
	BeforeID      string
	Limit         int
}

// WebhookStats is the backlog, for metrics.
type WebhookStats struct {
	Pending int64
	Oldest  *time.Time // created_at of the oldest pending delivery
	Dead    int64
}

// WebhookFilter narrows the admin listing of deliveries.
type WebhookFilter struct {
	TenantID string // "" every tenant the caller sees
	Status   string // failed, dead, or "" for both
}

// WebhookPage is a page of deliveries, newest first.
type WebhookPage struct {
	Items      []WebhookDelivery
	NextCursor string
}

// ListWebhookDeliveries shows the deliveries that failed (to be retried) or died, newest first.
func (s *Service) ListWebhookDeliveries(ctx context.Context, by Admin, f WebhookFilter, p PageRequest) (WebhookPage, error) {
	var v Validation
	limit := p.limit(&v)
	switch f.Status {
	case "", DeliveryFailed, DeliveryDead:
	default:
		v.Add("status", "must be failed or dead")
	}
	tenant, err := s.tenantFilter(ctx, by, f.TenantID)
	key := listing("webhook_deliveries", by.Scope, tenant, f.Status)
	q := WebhookQuery{TenantID: tenant, Status: f.Status, Limit: limit + 1}
	if p.Cursor != "" {
		if pos := s.decodeCursor(&v, p.Cursor, key, 2); pos != nil {
			q.BeforeCreated, _ = time.Parse(time.RFC3339Nano, pos[0]) // signed by us: always a time
			q.BeforeID = pos[1]
		}
	}
	if err := v.Err(); err != nil {
		return WebhookPage{}, err
	}
	if err != nil {
		return WebhookPage{}, err
	}
	list, err := s.store.ListWebhookDeliveries(ctx, q)
	if err != nil {
		return WebhookPage{}, internal("list webhook deliveries", err)
	}
	page := WebhookPage{Items: list}
	if len(list) > limit {
		page.Items = list[:limit]
		last := list[limit-1]
		page.NextCursor = s.encodeCursor(key, last.CreatedAt.UTC().Format(time.RFC3339Nano), last.ID)
	}
	return page, nil
}

// RetryWebhookDelivery sends a dead delivery again, with a fresh budget of attempts, due at once.
// Only a dead one: a pending delivery is already being retried.
func (s *Service) RetryWebhookDelivery(ctx context.Context, by Admin, id string) (WebhookDelivery, error) {
	notFound := newError(CodeNotFound, "No such dead webhook delivery.")
	if _, err := uuid.Parse(id); err != nil {
		return WebhookDelivery{}, notFound
	}
	d, err := s.store.RetryWebhookDelivery(ctx, id, by.Scope, by.event("webhook_retried", by.Scope, ""))
	if errors.Is(err, ErrNotFound) {
		return WebhookDelivery{}, notFound
	}
	if err != nil {
		return WebhookDelivery{}, internal("retry webhook delivery", err)
	}
	return d, nil
}
