package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/latch-auth/latch/internal/auth"
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

// TestResetRefusedForDisabledAccount: a reset code issued before an operator disabled the account
// must not change its password.
func TestResetRefusedForDisabledAccount(t *testing.T) {
	h := newHarness(t, store.SQLite)
	const email = "gone@example.test"
	h.signup(email, "original password")
	expect(t, h.post("/v2/auth/password/forgot", map[string]string{"email": email}), http.StatusAccepted)
	code := h.codeFor(email)
	cred, err := h.app.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email)
	if err != nil {
		t.Fatal(err)
	}
	u := cred.User
	if err := h.app.Store.SetUserStatus(context.Background(), u.ID, auth.StatusDisabled, auth.Event{}); err != nil {
		t.Fatal(err)
	}
	r := h.post("/v2/auth/password/reset", map[string]string{"email": email, "emailToken": code, "newPassword": "attacker password"})
	expect(t, r, http.StatusUnauthorized)
	if p := r.Problem(t); p.Code != "account_disabled" {
		t.Errorf("reset of a disabled account: code %q, want account_disabled", p.Code)
	}
	after, err := h.app.Store.UserByEmail(context.Background(), auth.DefaultTenantID, email)
	if err != nil {
		t.Fatal(err)
	}
	if after.PasswordHash != cred.PasswordHash {
		t.Error("the password of a disabled account changed")
	}
}
