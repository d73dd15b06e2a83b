package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

// TestOldStolenTokenStillTripsReuse: a token spent days ago and replayed on a session that is still
// in use must revoke the session (refresh_token_reused), not pass for an idle session.
func TestOldStolenTokenStillTripsReuse(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		first := h.signup("stolen@example.test", "correct horse battery")
		second := sessRotate(t, h, first.RefreshToken)
		h.clock.Advance(5 * 24 * time.Hour)
		sessRotate(t, h, second.RefreshToken)
		h.clock.Advance(3 * 24 * time.Hour) // the stolen token was spent 8 days ago; the session is live

		sessWantProblem(t, sessRefresh(h, first.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
	})
}

// TestIdleWindowFollowsTheNewestToken: each rotation restarts the idle window exactly, even when
// rotations come faster than the session row is rewritten.
func TestIdleWindowFollowsTheNewestToken(t *testing.T) {
	h := newHarness(t, store.SQLite, func(c *config.Config) { c.Tokens.RefreshIdleTTL = time.Hour })
	p := h.signup("idle@example.test", "correct horse battery")
	for i := 0; i < 3; i++ {
		h.clock.Advance(10 * time.Second) // faster than the session-row touch interval
		p = sessRotate(t, h, p.RefreshToken)
		if p.RefreshExpiresIn != 3600 {
			t.Errorf("refreshExpiresIn = %d, want 3600", p.RefreshExpiresIn)
		}
	}
	h.clock.Advance(time.Hour - time.Second)
	p = sessRotate(t, h, p.RefreshToken)
	h.clock.Advance(time.Hour)
	sessWantProblem(t, sessRefresh(h, p.RefreshToken), http.StatusUnauthorized, "session_expired")
}
