package app_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
)

// TestMetricsExposeTheOperatorSeries drives a login and checks that /metrics carries the series an
// operator watches: requests and latency by route, auth outcomes, mail delivery, hashing waits, the
// outbox backlog and the database pool.
func TestMetricsExposeTheOperatorSeries(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	h.Signup(t, "metrics@example.test", apptest.Password)
	apptest.WantStatus(t, h.LoginStep(t, "metrics@example.test", "wrong password"), http.StatusUnauthorized)
	// A surface's answers are counted with the status its client got, in its own shape.
	apptest.WantStatus(t, h.Post(t, "/directus/auth/login", map[string]string{"email": "metrics@example.test", "password": "wrong password"}),
		http.StatusUnauthorized)
	apptest.WantStatus(t, h.Get(t, "/directus/users/me"), http.StatusForbidden)

	// The code reaches the SMTP capture a moment before the worker records the send and marks the
	// row sent, so wait for the delivery to be counted.
	var body string
	apptest.Eventually(t, "the signup email's delivery is counted", func() bool {
		r := h.Get(t, "/metrics")
		apptest.WantStatus(t, r, http.StatusOK)
		body = string(r.Body)
		return strings.Contains(body, `latch_mail_sends_total{result="sent"} 1`) && strings.Contains(body, "latch_outbox_pending 0")
	})
	for _, want := range []string{
		`latch_http_requests_total{method="POST",route="/v2/auth/register",status="201"} 1`,
		`latch_http_request_duration_seconds_bucket{method="POST",route="/v2/auth/login",le="+Inf"} 1`,
		`latch_auth_outcomes_total{operation="validate_register",outcome="ok"} 1`,
		`latch_auth_outcomes_total{operation="login",outcome="invalid_credentials"} 1`,
		`latch_auth_outcomes_total{operation="directus_login",outcome="invalid_credentials"} 1`,
		`latch_http_requests_total{method="GET",route="/directus/users/me",status="403"} 1`,
		`latch_mail_sends_total{result="sent"} 1`,
		`latch_mail_delivery_delay_seconds_count 1`,
		`latch_password_hash_wait_seconds_count`,
		`latch_outbox_pending 0`,
		`latch_outbox_oldest_age_seconds 0`,
		`go_sql_open_connections{db_name="latch"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestLogLinesCarryTheRequestID: every log line written while serving a request names its request
// id, the one the client got in X-Request-Id.
func TestLogLinesCarryTheRequestID(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	r := h.LoginStep(t, "nobody@example.test", "whatever it is", "X-Request-Id", "trace-me-123")
	apptest.WantStatus(t, r, http.StatusUnauthorized)
	if got := r.Header.Get("X-Request-Id"); got != "trace-me-123" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	r = h.Post(t, "/v2/auth/login", map[string]string{"email": "nobody@example.test"}, "X-Request-Id", "bad id with spaces")
	if got := r.Header.Get("X-Request-Id"); got == "bad id with spaces" || got == "" {
		t.Errorf("an invalid incoming request id was kept: %q", got)
	}

	var lines int
	sc := bufio.NewScanner(strings.NewReader(h.Logs()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
		if rec["path"] == "/v2/auth/login" || rec["msg"] == "record event" {
			lines++
			if rec["request_id"] == nil {
				t.Errorf("log line without request_id: %s", sc.Text())
			}
		}
		if rec["request_id"] == "trace-me-123" && rec["msg"] == "request" && rec["status"] != float64(401) {
			t.Errorf("access log of the traced request = %v", rec)
		}
	}
	if lines == 0 {
		t.Fatal("no log line for the login requests")
	}
}
