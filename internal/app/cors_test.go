package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

const (
	globalOrigin  = "https://app.example.test"
	defaultOrigin = "https://default.example.test"
	acmeOrigin    = "https://app.acme.test"
	strayOrigin   = "https://evil.example.test"
)

// corsInstance allows globalOrigin on every tenant, defaultOrigin on the default tenant, and
// acmeOrigin on tenant acme.
func corsInstance(t *testing.T, d store.Dialect, opts ...func(*config.Config)) *apptest.Instance {
	h := apptest.New(t, d, append([]func(*config.Config){func(c *config.Config) {
		c.Sandbox.Enabled = true
		c.Server.CORS.AllowedOrigins = []string{globalOrigin}
		c.DefaultTenant.AllowedOrigins = []string{defaultOrigin}
	}}, opts...)...)
	origins := []string{acmeOrigin}
	h.CreateTenant(t, "acme", apptest.Settings{AllowedOrigins: &origins})
	return h
}

// preflight is what a browser sends before a cross-origin POST with a JSON body and a token.
func preflight(t *testing.T, h *apptest.Instance, path, origin string) apptest.Response {
	t.Helper()
	return h.Do(t, http.MethodOptions, path, nil, "Origin", origin, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
}

// corsHeaders are the Access-Control-* headers of an answer.
func corsHeaders(r apptest.Response) map[string]string {
	out := map[string]string{}
	for name, v := range r.Header {
		if strings.HasPrefix(name, "Access-Control-") {
			out[name] = strings.Join(v, ", ")
		}
	}
	return out
}

func allowedPreflight(origin string, credentials bool) map[string]string {
	h := map[string]string{
		"Access-Control-Allow-Origin":  origin,
		"Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE",
		"Access-Control-Allow-Headers": "Authorization, Authentication, Content-Type, X-Request-Id",
		"Access-Control-Max-Age":       "600",
	}
	if credentials {
		h["Access-Control-Allow-Credentials"] = "true"
	}
	return h
}

// TestCORSPreflights: which origins a browser's preflight allows, by the configuration and the tenant
// in the path, on both databases (a tenant's origins are read from its row).
func TestCORSPreflights(t *testing.T) {
	apptest.EachDialect(t, testCORSPreflights)
}

func testCORSPreflights(t *testing.T, d store.Dialect) {
	h := corsInstance(t, d)
	for _, c := range []struct {
		name, path, origin string
		allowed            bool
	}{
		{"config origin, v2", "/v2/auth/login", globalOrigin, true},
		{"config origin, any tenant", "/t/acme/v2/auth/login", globalOrigin, true},
		{"config origin, unknown tenant", "/t/nope/v2/auth/login", globalOrigin, true},
		{"default tenant's origin without the prefix", "/v2/auth/refresh", defaultOrigin, true},
		{"default tenant's origin under the default tenant's prefix", "/t/default/v2/auth/refresh", defaultOrigin, true},
		{"default tenant's origin under acme", "/t/acme/v2/auth/login", defaultOrigin, false},
		{"acme's origin under acme", "/t/acme/v2/auth/login", acmeOrigin, true},
		{"acme's origin under acme, GraphQL", "/t/acme/graphql", acmeOrigin, true},
		{"acme's origin under acme, Directus", "/t/acme/directus/auth/login", acmeOrigin, true},
		{"acme's origin under acme, Devii", "/t/acme/devii/auth", acmeOrigin, true},
		{"acme's origin without the prefix", "/v2/auth/login", acmeOrigin, false},
		{"acme's origin under an unknown tenant", "/t/nope/v2/auth/login", acmeOrigin, false},
		{"a stray origin", "/v2/auth/login", strayOrigin, false},
		{"a stray origin under acme", "/t/acme/graphql", strayOrigin, false},
		{"null (a sandboxed page)", "/v2/auth/login", "null", false},
		{"an origin with a path", "/v2/auth/login", globalOrigin + "/", false},
		{"graphql", "/graphql", globalOrigin, true},
		{"directus", "/directus/auth/refresh", globalOrigin, true},
		{"devii", "/devii/auth", globalOrigin, true},
		{"public keys", "/.well-known/jwks.json", globalOrigin, true},
		{"a route that does not exist, in scope", "/v2/auth/nothing", globalOrigin, true},
		{"admin API (not configured for CORS)", "/v2/admin/users", globalOrigin, false},
		{"metrics", "/metrics", globalOrigin, false},
		{"the sandbox inbox", "/v2/sandbox/emails?to=ann@example.test", globalOrigin, false},
		{"health", "/healthz", globalOrigin, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := preflight(t, h, c.path, c.origin)
			if !c.allowed {
				if got := corsHeaders(r); len(got) != 0 {
					t.Errorf("preflight from %s to %s: CORS headers %v, want none", c.origin, c.path, got)
				}
				return
			}
			if r.Status != http.StatusNoContent || len(r.Body) != 0 {
				t.Errorf("preflight from %s to %s: %d %q, want 204 and no body", c.origin, c.path, r.Status, r.Body)
			}
			if diff := cmp.Diff(allowedPreflight(c.origin, false), corsHeaders(r)); diff != "" {
				t.Errorf("preflight from %s to %s (-want +got):\n%s", c.origin, c.path, diff)
			}
			if !strings.Contains(strings.Join(r.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("no Vary: Origin: %v", r.Header)
			}
		})
	}
}

// sameAnswer compares two answers but for the Date header.
func sameAnswer(t *testing.T, what string, want, got apptest.Response) {
	t.Helper()
	want.Header.Del("Date")
	got.Header.Del("Date")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: the answer differs from the one without an Origin (-want +got):\n%s", what, diff)
	}
}

// TestCORSActualRequests: an allowed origin's answers carry its CORS headers and are otherwise the
// same; a disallowed origin's are exactly those of a request without an Origin, preflights included.
func TestCORSActualRequests(t *testing.T) {
	h := corsInstance(t, store.SQLite)
	pair := h.Signup(t, "ann@example.test", apptest.Password)
	const rid = "cors-test-request"
	requests := []struct {
		method, path string
		body         any
		headers      []string
	}{
		{http.MethodGet, "/v2/auth/me", nil, apptest.Bearer(pair.AccessToken)},
		{http.MethodGet, "/v2/auth/me", nil, nil}, // 401 with WWW-Authenticate
		{http.MethodPost, "/v2/auth/verify", map[string]string{"token": "nonsense"}, nil},
		{http.MethodPost, "/graphql", map[string]string{"query": "{ me { email } }"}, apptest.JWT(pair.AccessToken)},
		{http.MethodOptions, "/v2/auth/login", nil, []string{"Access-Control-Request-Method", "POST"}},
		{http.MethodOptions, "/t/acme/graphql", nil, []string{"Access-Control-Request-Method", "POST"}},
	}
	for _, rq := range requests {
		headers := append([]string{"X-Request-Id", rid}, rq.headers...)
		plain := h.Do(t, rq.method, rq.path, rq.body, headers...)
		stray := h.Do(t, rq.method, rq.path, rq.body, append(headers, "Origin", strayOrigin)...)
		sameAnswer(t, rq.method+" "+rq.path+" from a stray origin", plain, stray)
		if rq.method == http.MethodOptions {
			continue
		}
		allowed := h.Do(t, rq.method, rq.path, rq.body, append(headers, "Origin", globalOrigin)...)
		want := map[string]string{
			"Access-Control-Allow-Origin":   globalOrigin,
			"Access-Control-Expose-Headers": "Retry-After, X-Request-Id, WWW-Authenticate",
		}
		if diff := cmp.Diff(want, corsHeaders(allowed)); diff != "" {
			t.Errorf("%s %s from an allowed origin (-want +got):\n%s", rq.method, rq.path, diff)
		}
		for name := range want {
			allowed.Header.Del(name)
		}
		sameAnswer(t, rq.method+" "+rq.path+" from an allowed origin, its CORS headers aside", plain, allowed)
	}
}

// TestCORSCredentials: with allow_credentials, allowed origins (listed in config or by their tenant)
// may send cookies, and the origin is always echoed, never "*"; others get nothing.
func TestCORSCredentials(t *testing.T) {
	h := corsInstance(t, store.SQLite, func(c *config.Config) {
		c.Server.CORS.AllowCredentials = true
		c.Server.CORS.MaxAge = 2 * time.Hour
	})
	for _, c := range []struct{ path, origin string }{{"/v2/auth/refresh", globalOrigin}, {"/t/acme/v2/auth/refresh", acmeOrigin}} {
		want := allowedPreflight(c.origin, true)
		want["Access-Control-Max-Age"] = "7200"
		if diff := cmp.Diff(want, corsHeaders(preflight(t, h, c.path, c.origin))); diff != "" {
			t.Errorf("preflight from %s (-want +got):\n%s", c.origin, diff)
		}
		r := h.Do(t, http.MethodPost, c.path, map[string]string{}, "Origin", c.origin)
		if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" || r.Header.Get("Access-Control-Allow-Origin") != c.origin {
			t.Errorf("POST %s from %s: %v", c.path, c.origin, corsHeaders(r))
		}
	}
	if got := corsHeaders(preflight(t, h, "/v2/auth/refresh", strayOrigin)); len(got) != 0 {
		t.Errorf("a stray origin with credentials on: %v, want no CORS header", got)
	}
}

// TestCORSFollowsTenantChanges: an origin added to a tenant through the admin API is allowed at once
// on this instance, and removing it takes it away; the admin API itself gets CORS only when asked.
func TestCORSFollowsTenantChanges(t *testing.T) {
	h := corsInstance(t, store.SQLite, func(c *config.Config) { c.Server.CORS.Admin = true })
	key := h.AdminKey(t, "cors", "")
	const newOrigin = "http://localhost:5173"
	if got := corsHeaders(preflight(t, h, "/t/acme/v2/auth/login", newOrigin)); len(got) != 0 {
		t.Fatalf("before the change: %v", got)
	}
	patch := func(origins ...string) {
		apptest.WantStatus(t, h.Do(t, http.MethodPatch, "/v2/admin/tenants/acme",
			map[string]any{"settings": map[string]any{"allowedOrigins": origins}}, apptest.Bearer(key)...), http.StatusOK)
	}
	patch(acmeOrigin, newOrigin)
	if got := corsHeaders(preflight(t, h, "/t/acme/v2/auth/login", newOrigin)); got["Access-Control-Allow-Origin"] != newOrigin {
		t.Errorf("after adding %s: %v", newOrigin, got)
	}
	patch(acmeOrigin)
	if got := corsHeaders(preflight(t, h, "/t/acme/v2/auth/login", newOrigin)); len(got) != 0 {
		t.Errorf("after removing %s: %v", newOrigin, got)
	}
	// server.cors.admin: true serves the admin API to the configured origins.
	r := h.Do(t, http.MethodOptions, "/v2/admin/users", nil, "Origin", globalOrigin, "Access-Control-Request-Method", "PATCH")
	if diff := cmp.Diff(allowedPreflight(globalOrigin, false), corsHeaders(r)); diff != "" {
		t.Errorf("admin preflight with server.cors.admin (-want +got):\n%s", diff)
	}
}

// TestCORSOriginsAreCheckedAtStart: a configured origin that is not one stops start-up naming its key.
func TestCORSOriginsAreCheckedAtStart(t *testing.T) {
	smtp := mailtest.NewServer(t)
	for _, bad := range []string{"*", "app.example.com", "https://app.example.com/", "https://app.example.com/path", "null"} {
		cfg := apptest.Config(storetest.SQLiteURL(t), smtp)
		cfg.Server.CORS.AllowedOrigins = []string{globalOrigin, bad}
		a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), time.Now)
		var ke *config.KeyError
		if !errors.As(err, &ke) || ke.Key != "server.cors.allowed_origins" {
			t.Errorf("allowed origin %q: start-up error %v, want one naming server.cors.allowed_origins", bad, err)
		}
		if a != nil {
			a.Close()
		}
	}
}
