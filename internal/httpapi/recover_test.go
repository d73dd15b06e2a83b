package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/latch-auth/latch/internal/logging"
)

// TestPanicBecomesOpaque500: a panicking handler answers a problem+json 500 that says nothing of the
// cause, and the cause is logged with the request id.
func TestPanicBecomesOpaque500(t *testing.T) {
	var logs bytes.Buffer
	s := New(Config{}, nil, logging.New(&logs, "json", "debug"))
	s.echo.GET("/boom", func(echo.Context) error { panic("secret internal detail") })

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Code != codeInternal || p.Status != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("problem = %s", rec.Body.String())
	}
	id := rec.Header().Get(echo.HeaderXRequestID)
	if !strings.Contains(logs.String(), "secret internal detail") || !strings.Contains(logs.String(), id) {
		t.Errorf("the cause and request id %q are not in the log:\n%s", id, logs.String())
	}
}
