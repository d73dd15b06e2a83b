package main

import (
	"net/http"
	"testing"

	"github.com/latch-auth/latch/internal/store"
)

// TestReRegisterUnverifiedTakesTheValidatedPassword: an address registered but never verified can be
// registered again; the password that takes effect is the one sent with the code that was validated,
// so someone squatting an address they cannot read never sets its password.
func TestReRegisterUnverifiedTakesTheValidatedPassword(t *testing.T) {
	h := newHarness(t, store.SQLite)
	const email = "squat@example.test"
	expect(t, h.post("/v2/auth/register", map[string]string{"email": email, "password": "squatter password"}), http.StatusCreated)
	h.mailTo(email) // the squatter's code goes to the owner, who ignores it
	h.clock.Advance(h.cfg.Codes.ResendCooldown + 1)
	expect(t, h.post("/v2/auth/register", map[string]string{"email": email, "password": "owner password"}), http.StatusCreated)
	expect(t, h.post("/v2/auth/validate-register", map[string]string{"email": email, "emailToken": h.codeFor(email)}), http.StatusOK)

	h.clock.Advance(h.cfg.Codes.ResendCooldown + 1)
	r := h.post("/v2/auth/login", map[string]string{"email": email, "password": "squatter password"})
	expect(t, r, http.StatusUnauthorized)
	if p := r.Problem(t); p.Code != "invalid_credentials" {
		t.Errorf("squatter's password: code %q, want invalid_credentials", p.Code)
	}
	h.login(email, "owner password")
}
