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
			[]string{"ada@example.com", "4 March 2025 at 16:05 UTC", "reset your password"}},
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
	want := mail.Message{To: "ada@example.com", Subject: "Sign-in code 222333 for ada@example.com", HTML: "<p>222333</p>"}
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
