package apptest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/webhook"
)

// WebhookSecret signs the deliveries to test receivers.
const WebhookSecret = "apptest webhook secret, 32+ characters long"

// Receiver is a webhook endpoint on a real TCP listener. It records every request and answers with
// the status its Answer gives (200 unless told), or holds requests while it hangs.
type Receiver struct {
	URL string

	mu       sync.Mutex
	got      []Delivery
	answer   func(n int) int
	hang     chan struct{} // non-nil: requests wait until it is closed or their client leaves
	inFlight int
	srv      *httptest.Server
}

// Delivery is one request a Receiver got.
type Delivery struct {
	Header http.Header
	Body   []byte
	Parsed WebhookBody
	At     time.Time // wall clock of arrival
}

// WebhookBody is the JSON of a delivery.
type WebhookBody struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	CreatedAt time.Time      `json:"createdAt"`
	Tenant    string         `json:"tenant"`
	Data      map[string]any `json:"data"`
}

// NewReceiver starts a receiver, closed in t.Cleanup.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL + "/hooks/latch"
	t.Cleanup(func() {
		r.Release()
		r.srv.Close()
	})
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := Delivery{Header: req.Header.Clone(), Body: body, At: time.Now()}
	json.Unmarshal(body, &d.Parsed)
	r.mu.Lock()
	r.got = append(r.got, d)
	n, answer, hang := len(r.got), r.answer, r.hang
	r.inFlight++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	if hang != nil {
		select {
		case <-hang:
		case <-req.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if answer != nil {
		status = answer(n)
	}
	w.WriteHeader(status)
}

// Answer sets the status of the n-th request (1-based, counting every request so far).
func (r *Receiver) Answer(f func(n int) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

// Hang makes requests wait until Release (or until the sender gives up).
func (r *Receiver) Hang() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hang == nil {
		r.hang = make(chan struct{})
	}
}

// Release ends a Hang, letting held requests answer.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hang != nil {
		close(r.hang)
		r.hang = nil
	}
}

// InFlight is how many requests the receiver is holding now.
func (r *Receiver) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

// Deliveries is every request so far, in arrival order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.got...)
}

// Of is the requests so far of an event type.
func (r *Receiver) Of(typ string) []Delivery {
	var out []Delivery
	for _, d := range r.Deliveries() {
		if d.Parsed.Type == typ {
			out = append(out, d)
		}
	}
	return out
}

// WaitFor waits until n requests of the type have arrived and returns them.
func (r *Receiver) WaitFor(t testing.TB, typ string, n int) []Delivery {
	t.Helper()
	Eventually(t, "the receiver got "+typ, func() bool { return len(r.Of(typ)) >= n })
	return r.Of(typ)
}

// Verify checks a delivery's signature under secret as a receiver would.
func (d Delivery) Verify(secret string) error {
	return webhook.Verify(secret, d.Header, d.Body, time.Now(), 365*24*time.Hour)
}

// WithWebhook configures an endpoint posting to the receiver, named name, for the event types.
func WithWebhook(r *Receiver, name string, timeout time.Duration, maxAttempts int, events ...string) func(*config.Config) {
	return func(c *config.Config) {
		c.Webhooks = append(c.Webhooks, config.Webhook{Name: name, URL: r.URL, Secret: WebhookSecret, Events: events,
			Timeout: timeout, MaxAttempts: maxAttempts})
	}
}

// AdminDelivery is a webhook delivery as the admin view answers it.
type AdminDelivery struct {
	ID         string `json:"id"`
	EventID    int64  `json:"eventId"`
	Type       string `json:"type"`
	Endpoint   string `json:"endpoint"`
	TenantID   string `json:"tenantId"`
	Status     string `json:"status"`
	Attempts   int    `json:"attempts"`
	LastStatus *int   `json:"lastStatus"`
	LastError  string `json:"lastError"`
}

// WebhookDeliveries is the admin view of deliveries of a status (failed, dead; "" both).
func (in *Instance) WebhookDeliveries(t testing.TB, key, status string) []AdminDelivery {
	t.Helper()
	path := "/v2/admin/webhooks/deliveries"
	if status != "" {
		path += "?status=" + status
	}
	return AdminAll[AdminDelivery](t, in, key, path, 50)
}

// WaitDelivery waits until the admin view of a status shows a delivery of the type, and returns it.
func (in *Instance) WaitDelivery(t testing.TB, key, status, typ string) AdminDelivery {
	t.Helper()
	var found AdminDelivery
	Eventually(t, "a "+status+" "+typ+" delivery", func() bool {
		for _, d := range in.WebhookDeliveries(t, key, status) {
			if d.Type == typ {
				found = d
				return true
			}
		}
		return false
	})
	return found
}

// MetricValue reads a sample of /metrics by its full name and labels as printed, e.g.
// `latch_webhook_deliveries_total{endpoint="crm",result="failed"}`; "absent" when it is not there.
func (in *Instance) MetricValue(t testing.TB, sample string) string {
	t.Helper()
	r := in.Get(t, "/metrics")
	for line := range strings.SplitSeq(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return "absent"
}
