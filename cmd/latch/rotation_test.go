package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

func refreshWith(t *testing.T, h *harness, tok string) (response, tokenPair) {
	t.Helper()
	r := h.post("/v2/auth/refresh", map[string]string{"refreshToken": tok})
	var p tokenPair
	if r.Status == http.StatusOK {
		r.JSON(t, &p)
	}
	return r, p
}

// TestOldStolenTokenStillTripsReuse: a token spent days ago and replayed on a session that is still
// in use must revoke the session (refresh_token_reused), not pass for an idle session.
func TestOldStolenTokenStillTripsReuse(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			h := newHarness(t, d)
			first := h.signup("stolen@example.test", "correct horse battery")
			r, second := refreshWith(t, h, first.RefreshToken)
			expect(t, r, http.StatusOK)
			h.clock.Advance(5 * 24 * time.Hour)
			r, _ = refreshWith(t, h, second.RefreshToken)
			expect(t, r, http.StatusOK)
			h.clock.Advance(3 * 24 * time.Hour) // the stolen token was spent 8 days ago; the session is live

			r, _ = refreshWith(t, h, first.RefreshToken)
			expect(t, r, http.StatusUnauthorized)
			if p := r.Problem(t); p.Code != "refresh_token_reused" {
				t.Fatalf("old stolen token: code %q, want refresh_token_reused", p.Code)
			}
		})
	}
}

// TestIdleWindowFollowsTheNewestToken: each rotation restarts the idle window exactly, even when
// rotations come faster than the session row is rewritten.
func TestIdleWindowFollowsTheNewestToken(t *testing.T) {
	h := newHarness(t, store.SQLite, func(c *config.Config) { c.Tokens.RefreshIdleTTL = time.Hour })
	p := h.signup("idle@example.test", "correct horse battery")
	for i := 0; i < 3; i++ {
		h.clock.Advance(10 * time.Second) // faster than the session-row touch interval
		r, next := refreshWith(t, h, p.RefreshToken)
		expect(t, r, http.StatusOK)
		if next.RefreshExpiresIn != 3600 {
			t.Errorf("refreshExpiresIn = %d, want 3600", next.RefreshExpiresIn)
		}
		p = next
	}
	h.clock.Advance(time.Hour - time.Second)
	r, next := refreshWith(t, h, p.RefreshToken)
	expect(t, r, http.StatusOK)
	h.clock.Advance(time.Hour)
	r, _ = refreshWith(t, h, next.RefreshToken)
	expect(t, r, http.StatusUnauthorized)
	if got := r.Problem(t).Code; got != "session_expired" {
		t.Errorf("after an idle hour: code %q, want session_expired", got)
	}
}
