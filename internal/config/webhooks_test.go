package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var hookSecret = strings.Repeat("s", 32)

func TestWebhooksFromFileAndEnv(t *testing.T) {
	path := writeFile(t, `
webhooks:
  - url: https://crm.example.com/hooks/latch?token=abc
    secret: `+hookSecret+`
    events: [user.created, login.failed]
  - name: audit
    url: http://audit.internal:8080/latch
    secret: placeholder
    events: ["*"]
    timeout: 3s
    max_attempts: 4
`)
	other := strings.Repeat("o", 40)
	cfg, err := Load(path, true, []string{"LATCH_WEBHOOKS_1_SECRET=" + other, "LATCH_WEBHOOKS_2_URL=https://third.example.com/h",
		"LATCH_WEBHOOKS_2_SECRET=" + other, "LATCH_WEBHOOKS_2_EVENTS=user.deleted, password.changed", "LATCH_WEBHOOKS_2_TIMEOUT=2s"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Webhook{
		{URL: "https://crm.example.com/hooks/latch?token=abc", Secret: hookSecret, Events: []string{"user.created", "login.failed"},
			Timeout: 10 * time.Second, MaxAttempts: 12},
		{Name: "audit", URL: "http://audit.internal:8080/latch", Secret: other, Events: []string{"*"}, Timeout: 3 * time.Second, MaxAttempts: 4},
		{URL: "https://third.example.com/h", Secret: other, Events: []string{"user.deleted", "password.changed"}, Timeout: 2 * time.Second, MaxAttempts: 12},
	}
	if diff := cmp.Diff(want, cfg.Webhooks); diff != "" {
		t.Errorf("webhooks (-want +got):\n%s", diff)
	}
	// The query may hold a token: the default name leaves it out.
	if diff := cmp.Diff([]string{"https://crm.example.com/hooks/latch", "audit", "https://third.example.com/h"},
		[]string{cfg.Webhooks[0].EndpointName(), cfg.Webhooks[1].EndpointName(), cfg.Webhooks[2].EndpointName()}); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	red := cfg.Redacted()
	if red.Webhooks[0].Secret != redactedMark || cfg.Webhooks[0].Secret != hookSecret {
		t.Errorf("Redacted: secret %q, original %q", red.Webhooks[0].Secret, cfg.Webhooks[0].Secret)
	}
	if got, want := red.Webhooks[0].URL, "https://crm.example.com/hooks/latch?redacted"; got != want {
		t.Errorf("Redacted URL = %q, want %q (the query may hold a token)", got, want)
	}
}

func TestWebhookEnvNamesAreKnown(t *testing.T) {
	got := UnknownEnv([]string{"LATCH_WEBHOOKS_0_SECRET=x", "LATCH_WEBHOOKS_12_EVENTS=x", "LATCH_WEBHOOKS_0_SECRT=x",
		"LATCH_WEBHOOKS_X_URL=x", "LATCH_WEBHOOKS=x", "LATCH_WEBHOOKS_01_URL=x"})
	want := []string{"LATCH_WEBHOOKS", "LATCH_WEBHOOKS_01_URL", "LATCH_WEBHOOKS_0_SECRT", "LATCH_WEBHOOKS_X_URL"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UnknownEnv (-want +got):\n%s", diff)
	}
}

func TestWebhookValidation(t *testing.T) {
	good := Webhook{URL: "https://example.com/h", Secret: hookSecret, Events: []string{"login.failed"}, Timeout: time.Second, MaxAttempts: 3}
	tests := []struct {
		name    string
		edit    func(w *Webhook)
		wantKey string
	}{
		{"ftp scheme", func(w *Webhook) { w.URL = "ftp://example.com/h" }, "webhooks[0].url"},
		{"file url", func(w *Webhook) { w.URL = "file:///etc/passwd" }, "webhooks[0].url"},
		{"no scheme", func(w *Webhook) { w.URL = "example.com/h" }, "webhooks[0].url"},
		{"no host", func(w *Webhook) { w.URL = "https:///h" }, "webhooks[0].url"},
		{"empty url", func(w *Webhook) { w.URL = "" }, "webhooks[0].url"},
		{"no secret", func(w *Webhook) { w.Secret = "" }, "webhooks[0].secret"},
		{"short secret", func(w *Webhook) { w.Secret = "short" }, "webhooks[0].secret"},
		{"no events", func(w *Webhook) { w.Events = nil }, "webhooks[0].events"},
		{"unknown event", func(w *Webhook) { w.Events = []string{"user.creted"} }, "webhooks[0].events"},
		{"internal kind", func(w *Webhook) { w.Events = []string{"login_failed"} }, "webhooks[0].events"},
		{"zero timeout", func(w *Webhook) { w.Timeout = 0 }, "webhooks[0].timeout"},
		{"long timeout", func(w *Webhook) { w.Timeout = 2 * time.Minute }, "webhooks[0].timeout"},
		{"no attempts", func(w *Webhook) { w.MaxAttempts = 0 }, "webhooks[0].max_attempts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := good
			tt.edit(&w)
			c := Default()
			c.Webhooks = []Webhook{w}
			if diff := cmp.Diff([]string{tt.wantKey}, errorKeys(c.Validate())); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
	c := Default()
	c.Webhooks = []Webhook{good}
	if err := c.Validate(); err != nil {
		t.Fatalf("good endpoint: %v", err)
	}
	c.Webhooks = []Webhook{good, good}
	if diff := cmp.Diff([]string{"webhooks[1].name"}, errorKeys(c.Validate())); diff != "" {
		t.Errorf("same name twice (-want +got):\n%s", diff)
	}
}

func TestWebhookSecretNotEchoed(t *testing.T) {
	c := Default()
	c.Webhooks = []Webhook{{URL: "gopher://x", Secret: "hunter2-not-long", Events: []string{"nope"}, Timeout: time.Second, MaxAttempts: 1}}
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate = %v; want errors that do not echo the secret", err)
	}
	var ke *KeyError
	if !errors.As(err, &ke) {
		t.Fatalf("want KeyErrors, got %T", err)
	}
}

func TestWebhookFileShape(t *testing.T) {
	for _, content := range []string{"webhooks: {url: x}\n", "webhooks: [https://x]\n", "webhooks:\n  - urll: https://x\n"} {
		_, err := Load(writeFile(t, content), true, nil)
		keys := errorKeys(err)
		if err == nil || !slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "webhooks") }) {
			t.Errorf("%q: err %v, keys %q; want an error naming webhooks", content, err, keys)
		}
	}
}
