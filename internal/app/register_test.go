package app_test

import (
	"net/http"
	"testing"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
)

// TestReRegisterUnverifiedTakesTheValidatedPassword: an address registered but never verified can be
// registered again; the password that takes effect is the one sent with the code that was validated,
// so someone squatting an address they cannot read never sets its password.
func TestReRegisterUnverifiedTakesTheValidatedPassword(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	const email = "squat@example.test"
	apptest.WantStatus(t, h.Post(t, "/v2/auth/register", apptest.Credentials(email, "squatter password")), http.StatusCreated)
	h.MailTo(t, email) // the squatter's code goes to the owner, who ignores it
	h.Clock.Advance(h.Config.Codes.ResendCooldown + 1)
	apptest.WantStatus(t, h.Post(t, "/v2/auth/register", apptest.Credentials(email, "owner password")), http.StatusCreated)
	apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-register", apptest.EmailCode(email, h.CodeFor(t, email))), http.StatusOK)

	h.Clock.Advance(h.Config.Codes.ResendCooldown + 1)
	apptest.WantProblem(t, h.LoginStep(t, email, "squatter password"), http.StatusUnauthorized, "invalid_credentials")
	h.Login(t, email, "owner password")
}
