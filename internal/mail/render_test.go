package mail_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/mail"
)

const replacedLine = "replaces the code we sent you earlier, which no longer works"

func newRenderer(t *testing.T, dir string) *mail.Renderer {
	t.Helper()
	r, err := mail.NewRenderer(dir)
	if err != nil {
		t.Fatalf("NewRenderer(%q): %v", dir, err)
	}
	return r
}

func TestRenderCodeMessages(t *testing.T) {
	r := newRenderer(t, "")
	subjects := map[string]string{
		mail.SignupCode: "Your Latch sign-up code: 493027",
		mail.LoginCode:  "Your Latch login code: 493027",
		mail.ResetCode:  "Your Latch password reset code: 493027",
	}
	for name, wantSubject := range subjects {
		for _, replaced := range []bool{false, true} {
			d := mail.Data{Code: "493027", ValidMinutes: 10, Replaced: replaced}
			m, err := r.Render(name, "ada@example.com", d)
			if err != nil {
				t.Fatalf("Render(%s, replaced=%v): %v", name, replaced, err)
			}
			if diff := cmp.Diff(wantSubject, m.Subject); diff != "" {
				t.Errorf("%s subject (-want +got):\n%s", name, diff)
			}
			if m.To != "ada@example.com" {
				t.Errorf("%s: To = %q", name, m.To)
			}
			for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
				for _, want := range []string{"493027", "10 minutes", "Never share this code", "ada@example.com"} {
					if !strings.Contains(body, want) {
						t.Errorf("%s %s (replaced=%v) lacks %q:\n%s", name, part, replaced, want, body)
					}
				}
				if got := strings.Contains(body, replacedLine); got != replaced {
					t.Errorf("%s %s: replaced line present = %v, want %v:\n%s", name, part, got, replaced, body)
				}
			}
		}
	}
}

func TestRenderNotices(t *testing.T) {
	r := newRenderer(t, "")
	changedAt := time.Date(2025, time.March, 4, 17, 5, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name        string
		wantSubject string
		wantInBody  []string
	}{
		{mail.AlreadyRegistered, "Sign-up attempt for your Latch account",
			[]string{"ada@example.com", "log in", "reset your password"}},
		{mail.PasswordChanged, "Your Latch password was changed",
			[]string{"ada@example.com", "4 March 2025 at 16:05:00 UTC", "reset your password"}},
	}
	for _, tt := range tests {
		for _, replaced := range []bool{false, true} {
			m, err := r.Render(tt.name, "ada@example.com", mail.Data{Time: changedAt, Replaced: replaced})
			if err != nil {
				t.Fatalf("Render(%s): %v", tt.name, err)
			}
			if diff := cmp.Diff(tt.wantSubject, m.Subject); diff != "" {
				t.Errorf("%s subject (-want +got):\n%s", tt.name, diff)
			}
			for _, body := range []string{m.Text, m.HTML} {
				for _, want := range tt.wantInBody {
					if !strings.Contains(body, want) {
						t.Errorf("%s lacks %q:\n%s", tt.name, want, body)
					}
				}
			}
		}
	}
}

func TestRenderEscapesHTMLOnly(t *testing.T) {
	r := newRenderer(t, "")
	m, err := r.Render(mail.AlreadyRegistered, "x@example.com", mail.Data{Email: `<b>x</b>@example.com`})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, "<b>x</b>") || !strings.Contains(m.HTML, "&lt;b&gt;x&lt;/b&gt;") {
		t.Errorf("HTML does not escape the address:\n%s", m.HTML)
	}
	if !strings.Contains(m.Text, "<b>x</b>@example.com") {
		t.Errorf("text altered the address:\n%s", m.Text)
	}
}

func TestRenderUsesAppName(t *testing.T) {
	r := newRenderer(t, "")
	m, err := r.Render(mail.LoginCode, "ada@example.com", mail.Data{Code: "111111", ValidMinutes: 5, AppName: "Acme ID"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("Your Acme ID login code: 111111", m.Subject); diff != "" {
		t.Errorf("subject (-want +got):\n%s", diff)
	}
}

func TestRenderUnknownName(t *testing.T) {
	r := newRenderer(t, "")
	if _, err := r.Render("welcome", "ada@example.com", mail.Data{}); !errors.Is(err, mail.ErrUnknownTemplate) {
		t.Errorf("Render(welcome) error = %v, want ErrUnknownTemplate", err)
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestOverrideDirReplacesOneTemplate(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "login_code.subject.txt", "Sign-in code {{.Code}} for\n{{.Email}}\n")
	writeFile(t, dir, "login_code.html", "<p>{{.Code}}</p>")
	r := newRenderer(t, dir)

	m, err := r.Render(mail.LoginCode, "ada@example.com", mail.Data{Code: "222333", ValidMinutes: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := mail.Message{To: "ada@example.com", Subject: "Sign-in code 222333 for ada@example.com", HTML: "<p>222333</p>",
		Purpose: mail.LoginCode, Code: "222333"}
	got := m
	got.Text = "" // still the embedded one, checked below
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("overridden message (-want +got):\n%s", diff)
	}
	if !strings.Contains(m.Text, "Never share this code") {
		t.Errorf("text template should still be the embedded one:\n%s", m.Text)
	}

	other, err := r.Render(mail.SignupCode, "ada@example.com", mail.Data{Code: "222333", ValidMinutes: 10})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("Your Latch sign-up code: 222333", other.Subject); diff != "" {
		t.Errorf("untouched template changed (-want +got):\n%s", diff)
	}
}

func TestBrokenOverrideFailsStartup(t *testing.T) {
	tests := []struct {
		file, content string
	}{
		{"signup_code.html", "<p>{{.Code</p>"},      // does not parse
		{"reset_code.txt", "{{.Code}} {{.Nope}}"},   // parses, cannot execute
		{"password_changed.subject.txt", "{{end}}"}, // does not parse
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tt.file, tt.content)
			_, err := mail.NewRenderer(dir)
			var terr *mail.TemplateError
			if !errors.As(err, &terr) {
				t.Fatalf("NewRenderer error = %v, want a *TemplateError", err)
			}
			if filepath.Base(terr.File) != tt.file {
				t.Errorf("TemplateError.File = %q, want %q", terr.File, tt.file)
			}
		})
	}
}

func TestMissingOverrideDirFailsStartup(t *testing.T) {
	_, err := mail.NewRenderer(filepath.Join(t.TempDir(), "absent"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewRenderer(absent dir) error = %v, want ErrNotExist", err)
	}
}

func TestRenderChoosesTheLocale(t *testing.T) {
	r := newRenderer(t, "")
	d := mail.Data{Code: "493027", ValidMinutes: 10}
	tests := []struct {
		locale, wantSubject, wantLocale string
	}{
		{"", "Your Latch login code: 493027", ""},
		{"en", "Your Latch login code: 493027", ""},
		{"de", "Ihr Anmeldecode für Latch: 493027", "de"},
		{"DE", "Ihr Anmeldecode für Latch: 493027", "de"},
		{"de-AT", "Ihr Anmeldecode für Latch: 493027", "de"},
		{"fr", "Your Latch login code: 493027", ""},
	}
	for _, tt := range tests {
		d.Locale, d.FallbackLocale = tt.locale, ""
		m, err := r.Render(mail.LoginCode, "ada@example.com", d)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{tt.wantSubject, tt.wantLocale}, []string{m.Subject, m.Locale}); diff != "" {
			t.Errorf("locale %q: subject and locale (-want +got):\n%s", tt.locale, diff)
		}
	}

	// The user's language first, then the tenant's; English asked for is English.
	for _, tt := range []struct{ user, tenant, wantLocale string }{
		{"", "de", "de"},
		{"fr", "de", "de"},
		{"en", "de", ""},
		{"en-GB", "de", ""},
		{"de", "fr", "de"},
		{"fr", "it", ""},
	} {
		d.Locale, d.FallbackLocale = tt.user, tt.tenant
		m, err := r.Render(mail.LoginCode, "ada@example.com", d)
		if err != nil {
			t.Fatal(err)
		}
		if m.Locale != tt.wantLocale {
			t.Errorf("user %q, tenant %q: rendered in %q, want %q", tt.user, tt.tenant, m.Locale, tt.wantLocale)
		}
	}
}

// Every bundled email has a German version, all of it in German.
func TestGermanSetIsComplete(t *testing.T) {
	r := newRenderer(t, "")
	for _, name := range []string{mail.SignupCode, mail.LoginCode, mail.ResetCode, mail.AlreadyRegistered, mail.PasswordChanged, mail.Invitation,
		mail.TOTPEnabled, mail.TOTPDisabled} {
		m, err := r.Render(name, "ada@example.com", mail.Data{Locale: "de", Code: "493027", ValidMinutes: 10, Replaced: true, Time: time.Unix(0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if m.Locale != "de" {
			t.Errorf("%s: rendered in %q, want de", name, m.Locale)
		}
		for part, body := range map[string]string{"subject": m.Subject, "text": m.Text, "html": m.HTML} {
			if !strings.Contains(body, "Ihr") && !strings.Contains(body, "Hallo") && !strings.Contains(body, "Sie") {
				t.Errorf("%s %s is not German:\n%s", name, part, body)
			}
			for _, english := range []string{"Hello", "Your ", "never ask", "valid for"} {
				if strings.Contains(body, english) {
					t.Errorf("%s %s has English %q:\n%s", name, part, english, body)
				}
			}
		}
		if strings.Contains(name, "code") && !strings.Contains(m.Text, "Er ersetzt den Code") {
			t.Errorf("%s: the German text lacks the replaced line:\n%s", name, m.Text)
		}
	}
}

func TestRendererAppName(t *testing.T) {
	r := newRenderer(t, "")
	r.AppName = "Acme ID"
	for _, tt := range []struct{ locale, dataName, want string }{
		{"", "", "Your Acme ID sign-up code: 111111"},
		{"de", "", "Ihr Registrierungscode für Acme ID: 111111"},
		// A tenant's own name wins over mail.app_name.
		{"", "Globex", "Your Globex sign-up code: 111111"},
	} {
		m, err := r.Render(mail.SignupCode, "ada@example.com", mail.Data{Code: "111111", ValidMinutes: 5, Locale: tt.locale, AppName: tt.dataName})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, m.Subject); diff != "" {
			t.Errorf("subject (-want +got):\n%s", diff)
		}
		wantBody := tt.dataName
		if wantBody == "" {
			wantBody = "Acme ID"
		}
		if !strings.Contains(m.Text, wantBody) || !strings.Contains(m.HTML, wantBody) || strings.Contains(m.Text+m.HTML, "Latch") {
			t.Errorf("body does not speak as %s:\n%s\n%s", wantBody, m.Text, m.HTML)
		}
	}
}

func TestNoticesSayWhenWhereAndWhich(t *testing.T) {
	r := newRenderer(t, "")
	at := time.Date(2025, time.March, 4, 17, 5, 9, 0, time.FixedZone("CET", 3600))
	for _, name := range []string{mail.PasswordChanged, mail.AlreadyRegistered, mail.TOTPEnabled, mail.TOTPDisabled} {
		for locale, want := range map[string][]string{
			"en": {"4 March 2025 at 16:05:09 UTC", "203.0.113.7", "Firefox 120 on Linux"},
			"de": {"04.03.2025 um 16:05:09 UTC", "203.0.113.7", "Firefox 120 on Linux"},
		} {
			m, err := r.Render(name, "ada@example.com", mail.Data{Locale: locale, Time: at, IP: "203.0.113.7", Device: "Firefox 120 on Linux"})
			if err != nil {
				t.Fatal(err)
			}
			for _, body := range []string{m.Text, m.HTML} {
				for _, w := range want {
					if !strings.Contains(body, w) {
						t.Errorf("%s in %s lacks %q:\n%s", name, locale, w, body)
					}
				}
			}
		}
		for locale, unknown := range map[string]string{"en": "unknown", "de": "unbekannt"} {
			m, err := r.Render(name, "ada@example.com", mail.Data{Locale: locale, Time: at})
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(m.Text, unknown); n != 2 {
				t.Errorf("%s in %s without IP and device says %q %d times, want 2:\n%s", name, locale, unknown, n, m.Text)
			}
		}
	}
}

func TestOverrideDirAddsALanguageFallingBackPerTemplate(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "login_code.fr.subject.txt", "Votre code {{.AppName}} : {{.Code}}")
	writeFile(t, dir, "login_code.fr.txt", "Bonjour, {{.Code}}")
	writeFile(t, dir, "login_code.fr.html", "<p>Bonjour, {{.Code}}</p>")
	writeFile(t, dir, ".login_code.fr.txt.swp", "an editor's, not a template")
	if err := os.Mkdir(filepath.Join(dir, "..data"), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newRenderer(t, dir)

	m, err := r.Render(mail.LoginCode, "ada@example.com", mail.Data{Code: "222333", Locale: "fr-CA"})
	if err != nil {
		t.Fatal(err)
	}
	want := mail.Message{To: "ada@example.com", Subject: "Votre code Latch : 222333", Text: "Bonjour, 222333", HTML: "<p>Bonjour, 222333</p>", Locale: "fr",
		Purpose: mail.LoginCode, Code: "222333"}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("French login code (-want +got):\n%s", diff)
	}
	// No French reset code: English, not an error.
	m, err = r.Render(mail.ResetCode, "ada@example.com", mail.Data{Code: "222333", Locale: "fr"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Your Latch password reset code: 222333", ""}, []string{m.Subject, m.Locale}); diff != "" {
		t.Errorf("reset code in fr (-want +got):\n%s", diff)
	}
}

func TestOverrideDirReplacesOneGermanFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "login_code.de.subject.txt", "Anmeldung bei {{.AppName}}: {{.Code}}")
	r := newRenderer(t, dir)
	m, err := r.Render(mail.LoginCode, "ada@example.com", mail.Data{Code: "222333", Locale: "de"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Anmeldung bei Latch: 222333" || !strings.Contains(m.Text, "Geben Sie diesen Code niemals weiter") {
		t.Errorf("subject %q, text:\n%s\nwant the override's subject and the bundled German text", m.Subject, m.Text)
	}
}

func TestOverrideDirRefusesWhatIsNotATemplate(t *testing.T) {
	tests := []struct {
		file    string
		wantErr error
		want    string // the name it must have, when it looks like a language version
	}{
		{"login_code_de.txt", mail.ErrNotATemplate, "login_code.de.txt"},
		{"login_code-de.subject.txt", mail.ErrNotATemplate, "login_code.de.subject.txt"},
		{"password_changed_pt-BR.html", mail.ErrNotATemplate, "password_changed.pt-BR.html"},
		{"welcome.html", mail.ErrNotATemplate, ""},
		{"welcome.de.html", mail.ErrNotATemplate, ""},
		{"login_code.htm", mail.ErrNotATemplate, ""},
		{"README.md", mail.ErrNotATemplate, ""},
		{"login_code.de_AT.txt", mail.ErrNotATemplate, ""},
		// A language needs its three files: a French body under an English subject is no French email.
		{"login_code.fr.html", mail.ErrIncomplete, ""},
		// The bundled German is spelled de.
		{"login_code.DE.html", mail.ErrNotATemplate, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, tt.file, "{{.Code}}")
			_, err := mail.NewRenderer(dir)
			var terr *mail.TemplateError
			if !errors.As(err, &terr) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewRenderer error = %v, want a *TemplateError of %v", err, tt.wantErr)
			}
			if terr.Want != tt.want {
				t.Errorf("Want = %q, want %q (%v)", terr.Want, tt.want, err)
			}
		})
	}
}

// An operator's change is told as theirs, without a client that was not the user's.
func TestNoticeOfAnOperatorsChange(t *testing.T) {
	r := newRenderer(t, "")
	for locale, want := range map[string]string{"en": "An administrator turned off", "de": "Ein Administrator hat"} {
		m, err := r.Render(mail.TOTPDisabled, "ada@example.com", mail.Data{Locale: locale, Time: time.Unix(0, 0), ByOperator: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{m.Text, m.HTML} {
			if !strings.Contains(body, want) || strings.Contains(body, "unknown") || strings.Contains(body, "unbekannt") {
				t.Errorf("operator's notice in %s lacks %q or shows an unknown client:\n%s", locale, want, body)
			}
		}
	}
}
