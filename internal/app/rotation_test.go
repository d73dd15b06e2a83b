package app_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

// TestOldStolenTokenStillTripsReuse: a token spent days ago and replayed on a session that is still
// in use must revoke the session (refresh_token_reused), not pass for an idle session.
func TestOldStolenTokenStillTripsReuse(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		first := h.Signup(t, "stolen@example.test", apptest.Password)
		second := h.Rotate(t, first.RefreshToken)
		h.Clock.Advance(5 * 24 * time.Hour)
		h.Rotate(t, second.RefreshToken)
		h.Clock.Advance(3 * 24 * time.Hour) // the stolen token was spent 8 days ago; the session is live

		apptest.WantProblem(t, h.Refresh(t, first.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
	})
}

// TestIdleWindowFollowsTheNewestToken: each rotation restarts the idle window exactly, even when
// rotations come faster than the session row is rewritten.
func TestIdleWindowFollowsTheNewestToken(t *testing.T) {
	h := apptest.New(t, store.SQLite, func(c *config.Config) { c.Tokens.RefreshIdleTTL = time.Hour })
	p := h.Signup(t, "idle@example.test", apptest.Password)
	for i := 0; i < 3; i++ {
		h.Clock.Advance(10 * time.Second) // faster than the session-row touch interval
		p = h.Rotate(t, p.RefreshToken)
		if p.RefreshExpiresIn != 3600 {
			t.Errorf("refreshExpiresIn = %d, want 3600", p.RefreshExpiresIn)
		}
	}
	h.Clock.Advance(time.Hour - time.Second)
	p = h.Rotate(t, p.RefreshToken)
	h.Clock.Advance(time.Hour)
	apptest.WantProblem(t, h.Refresh(t, p.RefreshToken), http.StatusUnauthorized, "session_expired")
}
