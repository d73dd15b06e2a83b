package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
)

// The self-service account routes end to end: real HTTP, real SMTP (codes read from the sink), both
// databases.

const accountAgent = "account-test/1.0"

func changeEmail(t *testing.T, h *apptest.Instance, access, password, to string) apptest.Response {
	t.Helper()
	return h.Post(t, "/v2/auth/email/change", map[string]string{"currentPassword": password, "newEmail": to},
		append(apptest.Bearer(access), "User-Agent", accountAgent)...)
}

func confirmEmail(t *testing.T, h *apptest.Instance, access, code string) apptest.Response {
	t.Helper()
	return h.Post(t, "/v2/auth/email/confirm", map[string]string{"emailToken": code},
		append(apptest.Bearer(access), "User-Agent", accountAgent)...)
}

func mailCode(t *testing.T, m mailtest.Received) string {
	t.Helper()
	code, ok := mailtest.ExtractCode(m.Text)
	if !ok {
		t.Fatalf("no code in %q", m.Text)
	}
	return code
}

func TestEmailChangeEndToEnd(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		pair := h.Signup(t, "old@example.test", apptest.Password)

		r := changeEmail(t, h, pair.AccessToken, apptest.Password, " New@Example.test ")
		apptest.WantStatus(t, r, http.StatusOK)
		code := mailCode(t, nextMail(t, h, "new@example.test", mail.EmailChangeCode))

		r = confirmEmail(t, h, pair.AccessToken, code)
		apptest.WantStatus(t, r, http.StatusOK)
		var me apptest.Me
		r.JSON(t, &me)
		if me.Email != "new@example.test" || !me.EmailVerified {
			t.Errorf("after the change: %+v", me)
		}
		notice := nextMail(t, h, "old@example.test", mail.EmailChanged)
		for _, want := range []string{"new@example.test", "127.0.0.1", accountAgent, " UTC"} {
			if !strings.Contains(notice.Text, want) {
				t.Errorf("the notice to the old address does not say %q:\n%s", want, notice.Text)
			}
		}
		// The session is kept and its next tokens name the new address; the new address logs in, the
		// old one no longer does.
		next := h.Rotate(t, pair.RefreshToken)
		if got := apptest.Claim(t, next.AccessToken, "email"); got != "new@example.test" {
			t.Errorf("refreshed access token names %q", got)
		}
		h.Login(t, "new@example.test", apptest.Password)
		h.Clock.Advance(time.Minute)
		apptest.WantProblem(t, h.LoginStep(t, "old@example.test", apptest.Password), http.StatusUnauthorized, "invalid_credentials")
		if n := h.EventCount(t, "email_changed"); n != 1 {
			t.Errorf("%d email_changed events, want 1", n)
		}
	})
}

func TestEmailChangeToATakenAddressAnswersAsSuccess(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.Signup(t, "owner@example.test", apptest.Password)
		pair := h.Signup(t, "mover@example.test", apptest.Password)

		free := changeEmail(t, h, pair.AccessToken, apptest.Password, "free@example.test")
		nextMail(t, h, "free@example.test", mail.EmailChangeCode)
		h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
		taken := changeEmail(t, h, pair.AccessToken, apptest.Password, "Owner@example.test")
		apptest.WantStatus(t, taken, http.StatusOK)
		if diff := cmp.Diff(apptest.WithoutRequestID(t, free), apptest.WithoutRequestID(t, taken)); diff != "" {
			t.Errorf("a taken address answers otherwise than a free one (-free +taken):\n%s", diff)
		}
		if free.Status != taken.Status {
			t.Errorf("status %d for a free address, %d for a taken one", free.Status, taken.Status)
		}
		notice := nextMail(t, h, "owner@example.test", mail.EmailTaken)
		if _, ok := mailtest.ExtractCode(notice.Text); ok {
			t.Errorf("the notice to the taken address carries a code:\n%s", notice.Text)
		}
		// No code was sent for it, and the free address's code was replaced: nothing confirms.
		for _, code := range []string{"000000", "123456"} {
			apptest.WantProblem(t, confirmEmail(t, h, pair.AccessToken, code), http.StatusUnauthorized, "invalid_code")
		}
		if me := h.Me(t, pair.AccessToken); me.Email != "mover@example.test" {
			t.Errorf("the account moved to %q", me.Email)
		}
		// The export does not tell either: the notice to someone else's address is not in it.
		var exp exportBody
		r := h.Get(t, "/v2/auth/me/export", apptest.Bearer(pair.AccessToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
		r.JSON(t, &exp)
		for _, e := range exp.Emails {
			if e.To != "mover@example.test" {
				t.Errorf("the export lists mail to %s", e.To)
			}
		}
	})
}

func TestEmailChangeCodeTriesAreCappedEndToEnd(t *testing.T) {
	h := apptest.New(t, store.Postgres)
	pair := h.Signup(t, "tries@example.test", apptest.Password)
	apptest.WantStatus(t, changeEmail(t, h, pair.AccessToken, apptest.Password, "tries2@example.test"), http.StatusOK)
	code := mailCode(t, nextMail(t, h, "tries2@example.test", mail.EmailChangeCode))
	for range h.Config.Codes.MaxAttempts {
		apptest.WantProblem(t, confirmEmail(t, h, pair.AccessToken, apptest.OtherCode(code)), http.StatusUnauthorized, "invalid_code")
	}
	apptest.WantProblem(t, confirmEmail(t, h, pair.AccessToken, code), http.StatusUnauthorized, "invalid_code")
	// Bad input is a 400 naming the field; no token is a 401; a wrong password a 401.
	p := apptest.WantProblem(t, changeEmail(t, h, pair.AccessToken, apptest.Password, "not an address"), http.StatusBadRequest, "validation_failed")
	wantField(t, p, "newEmail")
	apptest.WantProblem(t, h.Post(t, "/v2/auth/email/change", map[string]string{"currentPassword": apptest.Password, "newEmail": "x@example.test"}),
		http.StatusUnauthorized, "invalid_token")
	h.Clock.Advance(h.Config.Codes.ResendCooldown + time.Second)
	apptest.WantProblem(t, changeEmail(t, h, pair.AccessToken, "not the password", "x@example.test"), http.StatusUnauthorized, "invalid_credentials")
}

func TestSelfServiceDeletionEndToEnd(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "leaving@example.test"
		pair := h.Signup(t, email, apptest.Password)
		other := h.Login(t, email, apptest.Password)

		apptest.WantProblem(t, h.Post(t, "/v2/auth/me/deletion", map[string]string{"password": "not the password"}, apptest.Bearer(pair.AccessToken)...),
			http.StatusUnauthorized, "invalid_credentials")
		r := h.Post(t, "/v2/auth/me/deletion", map[string]string{"password": apptest.Password}, apptest.Bearer(pair.AccessToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
		code := mailCode(t, nextMail(t, h, email, mail.DeleteAccountCode))

		apptest.WantProblem(t, h.Do(t, http.MethodDelete, "/v2/auth/me", map[string]string{"emailToken": apptest.OtherCode(code)}, apptest.Bearer(pair.AccessToken)...),
			http.StatusUnauthorized, "invalid_code")
		apptest.WantProblem(t, h.Do(t, http.MethodDelete, "/v2/auth/me", map[string]string{}, apptest.Bearer(pair.AccessToken)...),
			http.StatusBadRequest, "validation_failed")
		h.Me(t, pair.AccessToken) // still there

		apptest.WantStatus(t, h.Do(t, http.MethodDelete, "/v2/auth/me", map[string]string{"emailToken": code}, apptest.Bearer(pair.AccessToken)...),
			http.StatusNoContent)

		// Erased as an operator's deletion erases: the address is nowhere in the database.
		if rows := h.RowsHolding(t, email); len(rows) > 0 {
			t.Errorf("after deletion the address is still in %v", rows)
		}
		apptest.WantProblem(t, h.Get(t, "/v2/auth/me", apptest.Bearer(pair.AccessToken)...), http.StatusUnauthorized, "invalid_token")
		apptest.WantProblem(t, h.Get(t, "/v2/auth/sessions", apptest.Bearer(other.AccessToken)...), http.StatusUnauthorized, "session_revoked")
		for _, refresh := range []string{pair.RefreshToken, other.RefreshToken} {
			apptest.WantProblem(t, h.Refresh(t, refresh), http.StatusUnauthorized, "invalid_refresh_token")
		}
		h.Clock.Advance(time.Minute)
		apptest.WantProblem(t, h.LoginStep(t, email, apptest.Password), http.StatusUnauthorized, "invalid_credentials")
		key := h.AdminKey(t, "ops", "")
		events := apptest.AdminAll[struct {
			Kind  string `json:"kind"`
			User  string `json:"userId"`
			Actor struct {
				Type string `json:"type"`
				ID   string `json:"id"`
			} `json:"actor"`
		}](t, h, key, "/v2/admin/events?kind=user_deleted", 10)
		sub := apptest.Claim(t, pair.AccessToken, "sub")
		if len(events) != 1 || events[0].User != sub || events[0].Actor.Type != "user" || events[0].Actor.ID != sub {
			t.Errorf("user_deleted events %+v, want one naming the user as actor", events)
		}
	})
}

type exportBody struct {
	Profile struct {
		ID       string `json:"id"`
		Email    string `json:"email"`
		TenantID string `json:"tenantId"`
		Status   string `json:"status"`
	} `json:"profile"`
	Sessions []struct {
		ID string `json:"id"`
	} `json:"sessions"`
	PendingCodes []struct {
		Purpose string `json:"purpose"`
	} `json:"pendingCodes"`
	Emails []struct {
		Template string `json:"template"`
		To       string `json:"to"`
	} `json:"emails"`
	SecurityEvents []struct {
		Kind string `json:"kind"`
	} `json:"securityEvents"`
	TwoFactor struct {
		TOTPEnabled bool `json:"totpEnabled"`
	} `json:"twoFactor"`
}

func TestExportHoldsTheSessionsAndNoSecret(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "export@example.test"
		first := h.Signup(t, email, apptest.Password)
		second := h.Login(t, email, apptest.Password)
		secret, recovery := h.EnableTOTP(t, second.AccessToken, apptest.Password)
		apptest.WantStatus(t, h.Post(t, "/v2/auth/me/deletion", map[string]string{"password": apptest.Password}, apptest.Bearer(second.AccessToken)...),
			http.StatusOK)
		code := mailCode(t, nextMail(t, h, email, mail.DeleteAccountCode))

		r := h.Get(t, "/v2/auth/me/export", apptest.Bearer(second.AccessToken)...)
		apptest.WantStatus(t, r, http.StatusOK)
		if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
			t.Errorf("Content-Disposition = %q, want an attachment", cd)
		}
		var exp exportBody
		r.JSON(t, &exp)
		if exp.Profile.Email != email || exp.Profile.TenantID != "default" || exp.Profile.Status != "active" || !exp.TwoFactor.TOTPEnabled {
			t.Errorf("profile %+v, two-factor %+v", exp.Profile, exp.TwoFactor)
		}
		var sessions []string
		for _, s := range exp.Sessions {
			sessions = append(sessions, s.ID)
		}
		want := []string{apptest.Claim(t, second.AccessToken, "sid"), apptest.Claim(t, first.AccessToken, "sid")}
		if diff := cmp.Diff(want, sessions); diff != "" {
			t.Errorf("sessions (-want +got):\n%s", diff)
		}
		if len(exp.PendingCodes) != 1 || exp.PendingCodes[0].Purpose != "delete_account" {
			t.Errorf("pending codes %+v", exp.PendingCodes)
		}
		var templates []string
		for _, e := range exp.Emails {
			templates = append(templates, e.Template)
		}
		for _, want := range []string{mail.SignupCode, mail.LoginCode, mail.DeleteAccountCode} {
			if !slices.Contains(templates, want) {
				t.Errorf("emails %v lack %s", templates, want)
			}
		}
		if len(exp.SecurityEvents) == 0 {
			t.Error("no security events")
		}

		secrets := map[string]string{"refresh token 1": first.RefreshToken, "refresh token 2": second.RefreshToken,
			"TOTP secret": secret, "code": `"` + code + `"`, "password hash": storedHash(t, h, email), "argon2 prefix": "$argon2"}
		for i, c := range recovery {
			secrets["recovery code "+string(rune('a'+i))] = c
		}
		for _, q := range []string{`SELECT code_hash FROM email_codes`, `SELECT token_hash FROM refresh_tokens`, `SELECT secret FROM totp_factors`} {
			rows, err := h.App.Store.SQLDB().QueryContext(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var b []byte
				if err := rows.Scan(&b); err != nil {
					t.Fatal(err)
				}
				secrets[q+" hex "+hex.EncodeToString(b)] = hex.EncodeToString(b)
				secrets[q+" base64"] = base64.StdEncoding.EncodeToString(b)
			}
			rows.Close()
		}
		if len(secrets) < 12 {
			t.Fatalf("only %d secrets to look for: the queries found no hashes", len(secrets))
		}
		for name, s := range secrets {
			if bytes.Contains(r.Body, []byte(s)) {
				t.Errorf("the export holds the %s", name)
			}
		}
	})
}

// An address the account left is erased with it too: the events that named it (a failed login) do not
// keep it once the account moved away from it and was then deleted.
func TestDeletionAfterAnEmailChangeLeavesNeitherAddress(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const before, after = "before@example.test", "after@example.test"
		pair := h.Signup(t, before, apptest.Password)
		apptest.WantProblem(t, h.LoginStep(t, before, "not the password"), http.StatusUnauthorized, "invalid_credentials")
		apptest.WantStatus(t, changeEmail(t, h, pair.AccessToken, apptest.Password, after), http.StatusOK)
		apptest.WantStatus(t, confirmEmail(t, h, pair.AccessToken, mailCode(t, nextMail(t, h, after, mail.EmailChangeCode))), http.StatusOK)
		nextMail(t, h, before, mail.EmailChanged)

		apptest.WantStatus(t, h.Post(t, "/v2/auth/me/deletion", map[string]string{"password": apptest.Password}, apptest.Bearer(pair.AccessToken)...),
			http.StatusOK)
		code := mailCode(t, nextMail(t, h, after, mail.DeleteAccountCode))
		apptest.WantStatus(t, h.Do(t, http.MethodDelete, "/v2/auth/me", map[string]string{"emailToken": code}, apptest.Bearer(pair.AccessToken)...),
			http.StatusNoContent)
		for _, addr := range []string{before, after} {
			if rows := h.RowsHolding(t, addr); len(rows) > 0 {
				t.Errorf("after deletion %s is still in %v", addr, rows)
			}
		}
	})
}
