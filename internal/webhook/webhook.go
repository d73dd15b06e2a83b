// Package webhook delivers the webhooks of SPEC 13: it fans the security event log out to the
// configured endpoints (auth.WebhookOf decides what an event sends) and posts each delivery, signed,
// from a worker of its own, retrying with backoff until the endpoint answers 2xx or the attempts run
// out. The deliveries live in the database (auth.Webhooks), so any instance may send any of them and
// a restart loses none.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/latch-auth/latch/internal/auth"
)

// Headers of a delivery.
const (
	HeaderID        = "Latch-Webhook-Id"
	HeaderTimestamp = "Latch-Webhook-Timestamp"
	HeaderSignature = "Latch-Webhook-Signature"
	HeaderEvent     = "Latch-Webhook-Event"
)

// Endpoint is a configured receiver.
type Endpoint struct {
	Name   string
	URL    string
	Secret string
	// Events are the public types it receives; "*" is every type.
	Events      []string
	Timeout     time.Duration
	MaxAttempts int
}

func (e Endpoint) wants(typ string) bool {
	return slices.Contains(e.Events, typ) || slices.Contains(e.Events, "*")
}

// Sign is the signature header of a body sent at timestamp: "v1=" and the hex HMAC-SHA256, under
// the endpoint's secret, of the timestamp (Unix seconds), a dot and the body. The version prefix
// leaves room for another scheme beside it.
func Sign(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is what Verify answers for a signature that does not match, or a timestamp out of
// tolerance.
var ErrBadSignature = errors.New("webhook: bad signature")

// Verify checks a delivery's headers as a receiver would: the signature matches the body under
// secret, and the timestamp is within tolerance of now (a replayed old delivery fails).
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(h.Get(HeaderTimestamp), 10, 64)
	if err != nil {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrBadSignature
	}
	want := Sign(secret, ts, body)
	for _, got := range strings.Split(h.Get(HeaderSignature), ",") {
		if hmac.Equal([]byte(strings.TrimSpace(got)), []byte(want)) {
			return nil
		}
	}
	return ErrBadSignature
}

// Body is the JSON a receiver gets.
type Body struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"createdAt"`
	Tenant    string    `json:"tenant"`
	Data      Data      `json:"data"`
}

// Data is what the event says; no address, code or token (see auth.WebhookEvent).
type Data struct {
	UserID    string `json:"userId,omitempty"`
	SessionID string `json:"sessionId,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Actor     *Actor `json:"actor,omitempty"`
}

// Actor is the admin key or command that made the change.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
}

// Route is the fan-out: the deliveries an event makes to the endpoints subscribed to its type.
func Route(endpoints []Endpoint) func(auth.LoggedEvent) []auth.WebhookDelivery {
	return func(ev auth.LoggedEvent) []auth.WebhookDelivery {
		w, ok := auth.WebhookOf(ev)
		if !ok {
			return nil
		}
		var out []auth.WebhookDelivery
		for _, e := range endpoints {
			if !e.wants(w.Type) {
				continue
			}
			b := Body{ID: uuid.NewString(), Type: w.Type, CreatedAt: w.CreatedAt.UTC(), Tenant: w.TenantID,
				Data: Data{UserID: w.UserID, SessionID: w.SessionID, IP: w.IP, UserAgent: w.UserAgent, Reason: w.Reason}}
			if w.Actor.Type != "" {
				b.Data.Actor = &Actor{Type: w.Actor.Type, ID: w.Actor.ID, Name: w.Actor.Name}
			}
			body, err := json.Marshal(b)
			if err != nil {
				panic(err) // strings and a time: cannot fail
			}
			out = append(out, auth.WebhookDelivery{ID: b.ID, Endpoint: e.Name, EventType: w.Type, Body: string(body)})
		}
		return out
	}
}

// Results of an attempt, as Observe reports them.
const (
	ResultDelivered = "delivered"
	ResultFailed    = "failed" // will be retried
	ResultDead      = "dead"
)

// Worker fans events out and delivers them until its context ends.
type Worker struct {
	store     auth.Webhooks
	endpoints map[string]Endpoint
	route     func(auth.LoggedEvent) []auth.WebhookDelivery
	client    *http.Client
	log       *slog.Logger

	// Poll is how often the tables are checked without a wake-up.
	Poll time.Duration
	// RetryBase is the delay after a first failure; it doubles per attempt up to RetryMax, and each
	// delay is drawn between half and all of that (jitter), so receivers coming back are not hit by
	// every retry at once.
	RetryBase, RetryMax time.Duration
	// Parallel is how many attempts run at once.
	Parallel int
	// QueryTimeout bounds each query, so a database that does not answer holds nothing.
	QueryTimeout time.Duration
	// Observe, when set, is told of every attempt's result and its endpoint.
	Observe func(endpoint, result string)
	// Now is the clock retries and leases are scheduled by.
	Now func() time.Time

	wake chan struct{}
}

// NewWorker makes a worker with production defaults. The client must not follow redirects to
// anywhere the operator did not configure; this one follows none.
func NewWorker(st auth.Webhooks, endpoints []Endpoint, log *slog.Logger) *Worker {
	byName := make(map[string]Endpoint, len(endpoints))
	for _, e := range endpoints {
		byName[e.Name] = e
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Worker{store: st, endpoints: byName, route: Route(endpoints), client: client, log: log,
		Poll: time.Second, RetryBase: 10 * time.Second, RetryMax: time.Hour, Parallel: 4, QueryTimeout: 10 * time.Second,
		Now: time.Now, wake: make(chan struct{}, 1)}
}

// Wake asks the worker to look now. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

const fanOutBatch = 200

// lease outlasts the longest attempt of any endpoint with room for recording it, so no other instance
// takes a delivery while its attempt runs.
func (w *Worker) lease() time.Duration {
	l := time.Duration(0)
	for _, e := range w.endpoints {
		l = max(l, e.Timeout)
	}
	return 2*l + w.QueryTimeout
}

// Run works until ctx ends, then waits for the attempts in flight.
func (w *Worker) Run(ctx context.Context) {
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	slots := make(chan struct{}, max(w.Parallel, 1))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		w.fanOut(ctx)
		if free := cap(slots) - len(slots); free > 0 && ctx.Err() == nil && len(w.endpoints) > 0 {
			qctx, cancel := context.WithTimeout(ctx, w.QueryTimeout)
			claimed, err := w.store.ClaimWebhooks(qctx, w.lease(), free)
			cancel()
			if err != nil && ctx.Err() == nil {
				w.log.Error("webhook claim", "err", err)
			}
			for _, d := range claimed {
				slots <- struct{}{}
				inFlight.Add(1)
				go func() {
					defer func() { <-slots; inFlight.Done(); w.Wake() }()
					w.deliver(d)
				}()
			}
			if err == nil && len(claimed) == free {
				continue
			}
		}
		timer.Reset(w.Poll)
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// fanOut queues the deliveries of every event logged since the last round. With no endpoint it still
// runs, marking events done: turning webhooks on later must not replay the whole log.
func (w *Worker) fanOut(ctx context.Context) {
	for ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, w.QueryTimeout)
		n, err := w.store.FanOutEvents(qctx, fanOutBatch, w.route)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("webhook fan-out", "err", err)
			}
			return
		}
		if n < fanOutBatch {
			return
		}
	}
}

// deliver makes one attempt and records its outcome.
func (w *Worker) deliver(d auth.WebhookDelivery) {
	a := auth.WebhookAttempt{ID: d.ID, Claim: d.Claim, Status: auth.DeliveryDelivered}
	e, ok := w.endpoints[d.Endpoint]
	var err error
	if !ok {
		a.Status, a.Error = auth.DeliveryDead, "endpoint "+strconv.Quote(d.Endpoint)+" is no longer configured"
	} else {
		a.HTTPStatus, err = w.post(e, d)
	}
	switch {
	case !ok:
	case err == nil:
	case a.HTTPStatus == http.StatusGone:
		// The receiver says the endpoint is gone for good: retrying would only knock on a closed door.
		a.Status, a.Error = auth.DeliveryDead, err.Error()
	case d.Attempts >= e.MaxAttempts:
		a.Status, a.Error = auth.DeliveryDead, err.Error()
	default:
		a.Status, a.Error, a.Next = auth.DeliveryPending, err.Error(), w.Now().Add(w.backoff(d.Attempts))
	}
	result := map[string]string{auth.DeliveryDelivered: ResultDelivered, auth.DeliveryDead: ResultDead, auth.DeliveryPending: ResultFailed}[a.Status]
	if a.Status != auth.DeliveryDelivered {
		// One line at the first failure, every tenth and the last: a receiver down for hours must not
		// flood the log.
		level := slog.LevelDebug
		if d.Attempts == 1 || d.Attempts%10 == 0 || a.Status == auth.DeliveryDead {
			level = slog.LevelWarn
		}
		w.log.Log(context.Background(), level, "webhook delivery failed", "id", d.ID, "endpoint", d.Endpoint, "type", d.EventType,
			"attempt", d.Attempts, "result", result, "status", a.HTTPStatus, "err", a.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.QueryTimeout)
	defer cancel()
	if err := w.store.FinishWebhookAttempt(ctx, a); err != nil {
		// The lease passed to another claim (or the database did not answer): the other claim, or the
		// lease running out, sends it again; the receiver deduplicates by the id.
		w.log.Warn("webhook attempt not recorded", "id", d.ID, "err", err)
	}
	if w.Observe != nil {
		w.Observe(d.Endpoint, result)
	}
}

// errStatus is a non-2xx answer.
type errStatus int

func (e errStatus) Error() string { return fmt.Sprintf("the endpoint answered %d", int(e)) }

// post sends one attempt; its error says why it did not count as delivered.
func (w *Worker) post(e Endpoint, d auth.WebhookDelivery) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.Timeout)
	defer cancel()
	body := []byte(d.Body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := w.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Latch-Webhooks/1")
	req.Header.Set(HeaderID, d.ID)
	req.Header.Set(HeaderEvent, d.EventType)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(e.Secret, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %v", e.Timeout)
		}
		return 0, err
	}
	// Read a little so the connection can be reused; a receiver's answer is not kept.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, errStatus(resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// backoff is the delay after the attempt-th failure: RetryBase doubling up to RetryMax, drawn from
// its upper half.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.RetryBase
	for i := 1; i < attempt && d < w.RetryMax; i++ {
		d *= 2
	}
	d = min(d, w.RetryMax)
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
