package webhook_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/webhook"
)

func signed(secret string, ts time.Time, body []byte) http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, webhook.Sign(secret, ts.Unix(), body))
	return h
}

func TestSignatureVerifiesOnlyWithTheSecret(t *testing.T) {
	now := time.Unix(1_780_000_000, 0)
	body := []byte(`{"id":"x","type":"login.failed"}`)
	secret := "0123456789abcdef0123456789abcdef"
	h := signed(secret, now, body)
	if err := webhook.Verify(secret, h, body, now, 5*time.Minute); err != nil {
		t.Errorf("with the secret: %v", err)
	}
	for name, check := range map[string]func() error{
		"another secret": func() error {
			return webhook.Verify("another secret, just as long as the first", h, body, now, 5*time.Minute)
		},
		"altered body": func() error {
			return webhook.Verify(secret, h, []byte(`{"id":"y","type":"login.failed"}`), now, 5*time.Minute)
		},
		"replayed later": func() error { return webhook.Verify(secret, h, body, now.Add(6*time.Minute), 5*time.Minute) },
		"other timestamp": func() error {
			h2 := h.Clone()
			h2.Set(webhook.HeaderTimestamp, "1780000001")
			return webhook.Verify(secret, h2, body, now, time.Minute)
		},
		"no signature": func() error { return webhook.Verify(secret, http.Header{}, body, now, time.Minute) },
	} {
		if err := check(); !errors.Is(err, webhook.ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
}

// The signature is the documented HMAC, so a receiver in any language can check it.
func TestSignatureIsHexHMACOfTimestampDotBody(t *testing.T) {
	// printf '1700000000.{}' | openssl dgst -sha256 -hmac secret
	want := "v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
	if got := webhook.Sign("secret", 1700000000, []byte("{}")); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestRouteSendsOnlySubscribedTypesWithoutSecrets(t *testing.T) {
	route := webhook.Route([]webhook.Endpoint{
		{Name: "crm", Events: []string{auth.WebhookUserCreated}},
		{Name: "siem", Events: []string{"*"}},
	})
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	ev := auth.LoggedEvent{ID: 7, CreatedAt: at, Event: auth.Event{Kind: "login_failed", TenantID: "acme", UserID: "u1",
		IP: "10.0.0.1", UserAgent: "curl", Detail: "victim@example.com"}}
	ds := route(ev)
	if len(ds) != 1 || ds[0].Endpoint != "siem" || ds[0].EventType != auth.WebhookLoginFailed {
		t.Fatalf("route = %+v, want one delivery to siem", ds)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(ds[0].Body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": ds[0].ID, "type": "login.failed", "createdAt": "2026-03-01T09:00:00Z", "tenant": "acme",
		"data": map[string]any{"userId": "u1", "ip": "10.0.0.1", "userAgent": "curl"}}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if got := route(auth.LoggedEvent{Event: auth.Event{Kind: "tenant_created"}}); len(got) != 0 {
		t.Errorf("an operator's bookkeeping event sent %+v", got)
	}
}
