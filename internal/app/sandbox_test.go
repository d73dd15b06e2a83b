package app_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

// TestSandboxInboxEntries: each email in the sandbox inbox says what it is, its code when it carries
// one (the very code the SMTP server received) and when it was sent, on the instance's clock.
func TestSandboxInboxEntries(t *testing.T) {
	h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Sandbox.Enabled = true })
	const ann = "ann@example.test"
	inbox := func(n int) []map[string]any {
		t.Helper()
		var entries []map[string]any
		apptest.Eventually(t, "the sandbox inbox holds the email", func() bool {
			r := h.Get(t, "/v2/sandbox/emails?to="+url.QueryEscape(ann))
			apptest.WantStatus(t, r, http.StatusOK)
			entries = nil
			if err := json.Unmarshal(r.Body, &entries); err != nil {
				t.Fatal(err)
			}
			return len(entries) == n
		})
		return entries
	}
	sentAt := h.Clock.Now().UTC().Format(time.RFC3339Nano)
	apptest.WantStatus(t, h.Post(t, "/v2/auth/register", apptest.Credentials(ann, apptest.Password)), http.StatusCreated)
	code := h.CodeFor(t, ann)
	signup := inbox(1)[0]
	if id, _ := signup["id"].(string); id == "" {
		t.Errorf("the entry has no id: %v", signup)
	}
	pick := func(e map[string]any) map[string]any {
		out := map[string]any{}
		for _, k := range []string{"to", "purpose", "code", "sentAt"} {
			if v, ok := e[k]; ok {
				out[k] = v
			}
		}
		return out
	}
	want := map[string]any{"to": ann, "purpose": "signup_code", "code": code, "sentAt": sentAt}
	if diff := cmp.Diff(want, pick(signup)); diff != "" {
		t.Errorf("sign-up email in the inbox (-want +got):\n%s", diff)
	}

	// A notice carries no code: the entry has none.
	pair := h.Post(t, "/v2/auth/validate-register", apptest.EmailCode(ann, code)).TokenPair(t)
	h.Clock.Advance(time.Minute)
	apptest.WantStatus(t, h.Post(t, "/v2/auth/password/change", map[string]string{"currentPassword": apptest.Password,
		"newPassword": "another long passphrase"}, apptest.Bearer(pair.AccessToken)...), http.StatusOK)
	notice := inbox(2)[0]
	want = map[string]any{"to": ann, "purpose": "password_changed", "sentAt": h.Clock.Now().UTC().Format(time.RFC3339Nano)}
	if diff := cmp.Diff(want, pick(notice)); diff != "" {
		t.Errorf("password-changed notice in the inbox (-want +got):\n%s", diff)
	}
}
