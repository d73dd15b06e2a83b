package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	latchmail "github.com/latch-auth/latch/internal/mail"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
)

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"

// register asks for an account of a tenant ("" for the default) in a language ("" for none) and
// returns the email it caused, with the code it carries, if any.
func register(t *testing.T, h *apptest.Instance, tenant, email, locale string, headers ...string) (mailtest.Received, string) {
	t.Helper()
	path := "/v2/auth/register"
	if tenant != "" {
		path = "/t/" + tenant + path
	}
	body := map[string]string{"email": email, "password": apptest.Password}
	if locale != "" {
		body["locale"] = locale
	}
	apptest.WantStatus(t, h.Post(t, path, body, headers...), http.StatusCreated)
	m := h.MailTo(t, email)
	code, _ := mailtest.ExtractCode(m.Text)
	return m, code
}

// TestEmailsSpeakTheRecipientsLanguageAndBrand: mail.app_name names the product unless the tenant
// names its own; the user's language chooses the templates, else the tenant's, else English; the
// German set reaches a real SMTP server whole.
func TestEmailsSpeakTheRecipientsLanguageAndBrand(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d, func(c *config.Config) { c.Mail.AppName = "Example Cloud" })
		h.CreateTenant(t, "acme", apptest.Settings{AppName: apptest.Ptr("Acme Pay"), MailFrom: apptest.Ptr("Acme Pay <no-reply@acme.test>"),
			Locale: apptest.Ptr("de")})
		h.CreateTenant(t, "globex", apptest.Settings{Locale: apptest.Ptr("fr")})

		tests := []struct {
			name, tenant, locale string
			wantSubject          string // with %s for the code
			wantApp, wantHello   string
		}{
			{"default tenant, mail.app_name", "", "", "Your Example Cloud sign-up code: %s", "Example Cloud", "Hello,"},
			{"the user's German", "", "de", "Ihr Registrierungscode für Example Cloud: %s", "Example Cloud", "Hallo,"},
			{"a regional tag finds its language", "", "de-CH", "Ihr Registrierungscode für Example Cloud: %s", "Example Cloud", "Hallo,"},
			{"the tenant's German and name", "acme", "", "Ihr Registrierungscode für Acme Pay: %s", "Acme Pay", "Hallo,"},
			{"the user's English over the tenant's German", "acme", "en", "Your Acme Pay sign-up code: %s", "Acme Pay", "Hello,"},
			{"a language without templates: the tenant's", "acme", "fr", "Ihr Registrierungscode für Acme Pay: %s", "Acme Pay", "Hallo,"},
			{"a tenant language without templates: English", "globex", "", "Your Example Cloud sign-up code: %s", "Example Cloud", "Hello,"},
		}
		for i, tt := range tests {
			email := "lang" + string(rune('a'+i)) + "@example.test"
			m, code := register(t, h, tt.tenant, email, tt.locale)
			if code == "" {
				t.Fatalf("%s: no code in %q", tt.name, m.Text)
			}
			if diff := cmp.Diff(strings.Replace(tt.wantSubject, "%s", code, 1), m.Subject); diff != "" {
				t.Errorf("%s: subject (-want +got):\n%s", tt.name, diff)
			}
			for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
				if !strings.Contains(body, tt.wantHello) || !strings.Contains(body, tt.wantApp) || !strings.Contains(body, code) {
					t.Errorf("%s: %s part lacks %q, %q or the code:\n%s", tt.name, part, tt.wantHello, tt.wantApp, body)
				}
				if strings.Contains(body, "Latch") {
					t.Errorf("%s: %s part names Latch:\n%s", tt.name, part, body)
				}
			}
			msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
			if err != nil {
				t.Fatal(err)
			}
			wantFrom := "no-reply@localhost"
			if tt.tenant == "acme" {
				wantFrom = "no-reply@acme.test"
			}
			if from, err := mail.ParseAddress(msg.Header.Get("From")); err != nil || from.Address != wantFrom {
				t.Errorf("%s: From = %q, want %s", tt.name, msg.Header.Get("From"), wantFrom)
			}
		}
	})
}

func TestLoginCodeInTheLanguageTheUserRegisteredIn(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "de-user@example.test"
		_, code := register(t, h, "", email, "de")
		apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-register", apptest.EmailCode(email, code)), http.StatusOK)
		apptest.WantStatus(t, h.LoginStep(t, email, apptest.Password), http.StatusOK)
		m := h.MailTo(t, email)
		if !strings.HasPrefix(m.Subject, "Ihr Anmeldecode für Latch: ") {
			t.Errorf("login code subject %q, want the German one", m.Subject)
		}
	})
}

func TestRegisterRefusesABadLocale(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	for _, bad := range []string{"de_DE", "deutsch!", "x", strings.Repeat("a", 40)} {
		r := h.Post(t, "/v2/auth/register", map[string]string{"email": "bad@example.test", "password": apptest.Password, "locale": bad})
		wantField(t, apptest.WantProblem(t, r, http.StatusBadRequest, auth.CodeValidation), "locale")
	}
	if n := len(h.OutboxRowsTo(t, "bad@example.test")); n != 0 {
		t.Errorf("%d emails queued for refused registrations", n)
	}
}

// TestSecurityNoticesSayWhenWhereAndWhich: the password-changed and already-registered notices say
// when (UTC), from which address and which device, in the recipient's language, and what a client
// writes about itself reaches them only as a recognised description.
func TestSecurityNoticesSayWhenWhereAndWhich(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const en, de = "notice-en@example.test", "notice-de@example.test"
		pair := h.Signup(t, en, apptest.Password)

		r := h.Post(t, "/v2/auth/password/change", map[string]string{"currentPassword": apptest.Password, "newPassword": "a new password"},
			append(apptest.Bearer(pair.AccessToken), "User-Agent", firefox)...)
		apptest.WantStatus(t, r, http.StatusOK)
		m := nextMail(t, h, en, latchmail.PasswordChanged)
		when := h.Clock.Now().UTC().Format("2 January 2006 at 15:04:05 UTC")
		for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
			for _, want := range []string{when, "127.0.0.1", "Firefox 120 on Linux"} {
				if !strings.Contains(body, want) {
					t.Errorf("password-changed notice (%s) lacks %q:\n%s", part, want, body)
				}
			}
		}

		_, code := register(t, h, "", de, "de")
		apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-register", apptest.EmailCode(de, code)), http.StatusOK)
		// A client's own words never reach the email: only a description Latch built.
		m, _ = register(t, h, "", de, "", "User-Agent", `<a href="https://evil.example">Your account is locked, call 0800</a>`)
		if !strings.HasPrefix(m.Subject, "Registrierungsversuch") {
			t.Fatalf("subject %q, want the German already-registered notice", m.Subject)
		}
		when = h.Clock.Now().UTC().Format("02.01.2006 um 15:04:05 UTC")
		for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
			for _, want := range []string{when, "127.0.0.1", "unbekannt"} {
				if !strings.Contains(body, want) {
					t.Errorf("already-registered notice (%s) lacks %q:\n%s", part, want, body)
				}
			}
			for _, injected := range []string{"evil.example", "locked", "0800"} {
				if strings.Contains(body, injected) {
					t.Errorf("already-registered notice (%s) carries the client's %q:\n%s", part, injected, body)
				}
			}
		}
		h.Clock.Advance(2 * h.Config.Codes.ResendCooldown)
		m, _ = register(t, h, "", de, "", "User-Agent", "curl/8.4.0")
		if !strings.Contains(m.Text, "curl/8.4.0") {
			t.Errorf("already-registered notice lacks the client curl/8.4.0:\n%s", m.Text)
		}
	})
}

// logLine is one JSON line of an instance's log.
type logLine map[string]any

func logLines(t *testing.T, h *apptest.Instance, msg string) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range strings.Split(h.Logs(), "\n") {
		if l == "" {
			continue
		}
		var v logLine
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if v["msg"] == msg {
			out = append(out, v)
		}
	}
	return out
}

// TestEachSendIsLoggedWithoutItsCode: one info line per email sent and a warning for a failed try,
// naming the email (template, tenant, language, outbox id, masked recipient, attempt), never its code.
func TestEachSendIsLoggedWithoutItsCode(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	h.CreateTenant(t, "acme", apptest.Settings{Locale: apptest.Ptr("de")})
	const email = "logged@example.test"
	m, code := register(t, h, "acme", email, "")
	id, _, _ := strings.Cut(strings.Trim(m.MessageID, "<>"), "@")

	apptest.Eventually(t, "the sent line", func() bool { return len(logLines(t, h, "email sent")) == 1 })
	line := logLines(t, h, "email sent")[0]
	want := logLine{"level": "INFO", "msg": "email sent", "id": id, "template": "signup_code", "tenant": "acme", "locale": "de",
		"to": "l***@example.test", "attempt": float64(1)}
	delete(line, "time")
	if diff := cmp.Diff(want, line); diff != "" {
		t.Errorf("sent line (-want +got):\n%s", diff)
	}
	raw, _ := json.Marshal(line)
	if strings.Contains(string(raw), code) || strings.Contains(string(raw), email) {
		t.Errorf("the sent line carries the code %s or the address: %s", code, raw)
	}

	// A refused try: a warning, then a line when the retry goes out.
	h.SMTP.Refuse(450)
	h.Clock.Advance(2 * h.Config.Codes.ResendCooldown)
	apptest.WantStatus(t, h.Post(t, "/t/acme/v2/auth/register", apptest.Credentials(email, apptest.Password)), http.StatusCreated)
	apptest.Eventually(t, "the failure line", func() bool { return len(logLines(t, h, "email send failed; will retry")) > 0 })
	failed := logLines(t, h, "email send failed; will retry")[0]
	if failed["level"] != "WARN" || failed["template"] != "signup_code" || failed["to"] != "l***@example.test" || failed["attempt"] != float64(1) ||
		failed["tenant"] != "acme" {
		t.Errorf("failure line: %v", failed)
	}
	h.SMTP.Refuse(0)
	h.Clock.Advance(time.Minute) // the retry is due by the instance's clock
	second := h.MailTo(t, email)
	secondCode, _ := mailtest.ExtractCode(second.Text)
	apptest.Eventually(t, "the second sent line", func() bool { return len(logLines(t, h, "email sent")) == 2 })
	for _, l := range append(logLines(t, h, "email sent"), failed) {
		raw, _ := json.Marshal(l)
		if strings.Contains(string(raw), secondCode) {
			t.Errorf("a send line carries the code %s: %s", secondCode, raw)
		}
	}
	if got := logLines(t, h, "email sent")[1]["attempt"]; got.(float64) < 2 {
		t.Errorf("the retried send logs attempt %v, want at least 2", got)
	}
}

// TestMisnamedTemplateStopsStartup: a template directory with a file no template is named like is an
// error at start-up, not an English email later.
func TestMisnamedTemplateStopsStartup(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "login_code_de.txt"), []byte("{{.Code}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	smtp := mailtest.NewServer(t)
	cfg := apptest.Config("sqlite://"+filepath.Join(t.TempDir(), "latch.db"), smtp)
	cfg.Mail.TemplatesDir = dir
	a, err := app.New(context.Background(), cfg, slog.New(slog.DiscardHandler), time.Now)
	if err == nil {
		a.Close()
	}
	var terr *latchmail.TemplateError
	if !errors.As(err, &terr) || !errors.Is(err, latchmail.ErrNotATemplate) || terr.Want != "login_code.de.txt" {
		t.Fatalf("app.New = %v, want the misnamed login_code_de.txt reported", err)
	}
}

// TestAuthenticatorNotices: turning the authenticator app on or off emails the owner when, from where
// and from which device.
func TestAuthenticatorNotices(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "totp-notice@example.test"
		access := apptest.Bearer(h.Signup(t, email, apptest.Password).AccessToken)
		r := h.Post(t, "/v2/auth/totp/setup", map[string]string{"password": apptest.Password}, access...)
		apptest.WantStatus(t, r, http.StatusOK)
		var setup apptest.TOTPSetup
		r.JSON(t, &setup)
		ua := append(access, "User-Agent", firefox)
		apptest.WantStatus(t, h.Post(t, "/v2/auth/totp/enable", map[string]string{"otp": apptest.TOTPCode(t, setup.Secret, h.Clock.Now())}, ua...),
			http.StatusOK)
		on := nextMail(t, h, email, latchmail.TOTPEnabled)
		onAt := h.Clock.Now().UTC().Format("2 January 2006 at 15:04:05 UTC")

		h.Clock.Advance(time.Minute)
		apptest.WantStatus(t, h.Post(t, "/v2/auth/totp/disable", map[string]string{"password": apptest.Password,
			"otp": apptest.TOTPCode(t, setup.Secret, h.Clock.Now())}, ua...), http.StatusOK)
		off := nextMail(t, h, email, latchmail.TOTPDisabled)
		offAt := h.Clock.Now().UTC().Format("2 January 2006 at 15:04:05 UTC")
		for _, n := range []struct {
			m    mailtest.Received
			when string
		}{{on, onAt}, {off, offAt}} {
			for _, want := range []string{n.when, "127.0.0.1", "Firefox 120 on Linux"} {
				if !strings.Contains(n.m.Text, want) || !strings.Contains(n.m.HTML, want) {
					t.Errorf("%q lacks %q:\n%s", n.m.Subject, want, n.m.Text)
				}
			}
		}
	})
}

// TestInvitationInTheInviteesLanguage: an operator names the invitee's language; the invitation and
// every later email of theirs are in it, and a bad tag is the admin API's 400.
func TestInvitationInTheInviteesLanguage(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	key := h.AdminKey(t, "ops", "")
	const addr = "eingeladen@example.test"
	adminJSON[apptest.AdminUser](t, h, key, http.MethodPost, "/v2/admin/users", map[string]any{"email": addr, "invite": true, "locale": "de"},
		http.StatusCreated)
	m := h.MailTo(t, addr)
	if !strings.HasPrefix(m.Subject, "Sie sind zu Latch eingeladen") || !strings.Contains(m.Text, "72 Stunden") {
		t.Errorf("the invitation is not German: subject %q, text %q", m.Subject, m.Text)
	}
	r := h.Do(t, http.MethodPost, "/v2/admin/users", map[string]any{"email": "x@example.test", "invite": true, "locale": "de DE"}, apptest.Bearer(key)...)
	wantField(t, apptest.WantProblem(t, r, http.StatusBadRequest, auth.CodeValidation), "locale")
}

// TestOperatorsAuthenticatorResetIsNoticed: a user whose authenticator an operator turned off hears
// of it, told as the operator's doing.
func TestOperatorsAuthenticatorResetIsNoticed(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	key := h.AdminKey(t, "ops", "")
	const email = "reset-notice@example.test"
	pair := h.Signup(t, email, apptest.Password)
	h.EnableTOTP(t, pair.AccessToken, apptest.Password)
	apptest.WantStatus(t, h.Do(t, http.MethodDelete, "/v2/admin/users/"+h.Me(t, pair.AccessToken).ID+"/totp", nil, apptest.Bearer(key)...),
		http.StatusNoContent)
	m := nextMail(t, h, email, latchmail.TOTPDisabled)
	if !strings.Contains(m.Text, "An administrator turned off") {
		t.Errorf("the notice does not say an administrator did it:\n%s", m.Text)
	}
}
