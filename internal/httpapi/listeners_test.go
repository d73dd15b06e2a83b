package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/metrics"
)

func TestSandboxInboxAnswersOnlyLoopbackUnlessAllowed(t *testing.T) {
	for _, c := range []struct {
		name   string
		remote string
		allow  bool
		want   int
	}{
		{"loopback v4", "127.0.0.1:5555", false, http.StatusOK},
		{"loopback v6", "[::1]:5555", false, http.StatusOK},
		{"another machine", "192.0.2.10:5555", false, http.StatusNotFound},
		{"another machine, allowed", "192.0.2.10:5555", true, http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := New(Config{Sandbox: mail.NewInbox(nil, 1), SandboxAllowRemote: c.allow}, nil, slog.New(slog.DiscardHandler))
			req := httptest.NewRequest(http.MethodGet, "/v2/sandbox/emails?to=a@example.test", nil)
			req.RemoteAddr = c.remote
			// A forwarded-for header must not make a remote peer look local.
			req.Header.Set("X-Forwarded-For", "127.0.0.1")
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Errorf("status %d, want %d (body %s)", rec.Code, c.want, rec.Body)
			}
		})
	}
}

func TestInternalListenerTakesMetricsOffThePublicRouter(t *testing.T) {
	get := func(h http.Handler, path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	public := New(Config{Metrics: metrics.New(nil, nil)}, nil, slog.New(slog.DiscardHandler))
	if code := get(public.Handler(), "/metrics"); code != http.StatusOK {
		t.Errorf("without an internal listener /metrics on the public router: %d, want 200", code)
	}
	split := New(Config{Metrics: metrics.New(nil, nil), InternalListener: true}, nil, slog.New(slog.DiscardHandler))
	if code := get(split.Handler(), "/metrics"); code != http.StatusNotFound {
		t.Errorf("with an internal listener /metrics on the public router: %d, want 404", code)
	}
	for _, path := range []string{"/metrics", "/healthz"} {
		if code := get(split.InternalHandler(), path); code != http.StatusOK {
			t.Errorf("internal listener %s: %d, want 200", path, code)
		}
	}
}

// TestAdminAPIListeners: the admin API is on the listeners the configuration names and nowhere else;
// without a key a router that serves it answers 401, one that does not 404.
func TestAdminAPIListeners(t *testing.T) {
	get := func(h http.Handler, path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	for _, c := range []struct {
		public, internal bool
	}{{true, false}, {false, true}, {true, true}, {false, false}} {
		s := New(Config{InternalListener: true, AdminPublic: c.public, AdminInternal: c.internal}, nil, slog.New(slog.DiscardHandler))
		for _, path := range []string{"/v2/admin/users", "/t/acme/v2/admin/tenants"} {
			for _, l := range []struct {
				name   string
				h      http.Handler
				served bool
			}{{"public", s.Handler(), c.public}, {"internal", s.InternalHandler(), c.internal}} {
				want := http.StatusNotFound
				if l.served {
					want = http.StatusUnauthorized
				}
				if got := get(l.h, path); got != want {
					t.Errorf("admin API public %v, internal %v: %s listener GET %s = %d, want %d", c.public, c.internal, l.name, path, got, want)
				}
			}
		}
		if code := get(s.InternalHandler(), "/healthz"); code != http.StatusOK {
			t.Errorf("internal /healthz beside the admin API: %d", code)
		}
	}
}
