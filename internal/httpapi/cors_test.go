package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkCORSPreflight is a browser's preflight from a configured origin through the whole router:
// what every cross-origin call costs once per max_age.
func BenchmarkCORSPreflight(b *testing.B) {
	s := New(Config{CORS: CORS{AllowedOrigins: []string{"https://app.example.test"}, MaxAge: 10 * time.Minute}}, nil, slog.New(slog.DiscardHandler))
	h := s.Handler()
	req := httptest.NewRequest(http.MethodOptions, "/v2/auth/login", nil)
	req.Header.Set("Origin", "https://app.example.test")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			b.Fatalf("preflight answered %d", rec.Code)
		}
	}
}
