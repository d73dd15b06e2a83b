package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/mail"
)

// lastMail is the newest email to the address, with its template data.
func (f *fixture) lastMail(to string) (authtest.Mail, mail.Data) {
	f.t.Helper()
	mails := f.store.Outbox()
	for i := len(mails) - 1; i >= 0; i-- {
		if mails[i].To == to {
			var d mail.Data
			if err := json.Unmarshal([]byte(mails[i].Data), &d); err != nil {
				f.t.Fatal(err)
			}
			return mails[i], d
		}
	}
	f.t.Fatalf("no email to %s", to)
	return authtest.Mail{}, mail.Data{}
}

func (f *fixture) eventKinds(userID string) []string {
	var out []string
	for _, e := range f.store.Events() {
		if e.UserID == userID {
			out = append(out, e.Kind)
		}
	}
	return out
}

func TestEmailChangeMovesTheAccountKeepsSessionsAndTellsTheOldAddress(t *testing.T) {
	f := newFixture(t)
	f.meta = auth.Meta{IP: "203.0.113.7", UserAgent: "Firefox/140"}
	ctx := context.Background()
	pair := f.signup("ann@example.test")
	p := f.principal(pair.AccessToken)
	ttl, err := f.svc.RequestEmailChange(ctx, p, auth.EmailChangeInput{CurrentPassword: pw, NewEmail: "  Ann.New@Example.TEST ", Meta: f.meta})
	if err != nil {
		t.Fatal(err)
	}
	if ttl != 600 {
		t.Errorf("expiresIn = %d, want 600", ttl)
	}
	m, _ := f.lastMail("ann.new@example.test") // normalised as registration does
	if m.Template != mail.EmailChangeCode {
		t.Errorf("the new address got %q, want %q", m.Template, mail.EmailChangeCode)
	}
	u, err := f.svc.ConfirmEmailChange(ctx, p, f.lastCode("ann.new@example.test"), f.meta)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ann.new@example.test" || u.EmailVerifiedAt == nil {
		t.Errorf("after the change: %q verified %v", u.Email, u.EmailVerifiedAt)
	}
	notice, d := f.lastMail("ann@example.test")
	if diff := cmp.Diff([]string{mail.EmailChanged, "ann@example.test", "ann.new@example.test", "203.0.113.7", "Firefox 140"},
		[]string{notice.Template, d.Email, d.NewEmail, d.IP, d.Device}); diff != "" {
		t.Errorf("notice to the old address (-want +got):\n%s", diff)
	}
	if d.Time.IsZero() {
		t.Error("the notice does not say when")
	}
	// Sessions are kept, and the next tokens name the new address.
	if _, err := f.svc.Authenticate(ctx, pair.AccessToken, true); err != nil {
		t.Errorf("the session did not survive the change: %v", err)
	}
	if next := f.mustRefresh(pair.RefreshToken); next.Email != "ann.new@example.test" {
		t.Errorf("refreshed tokens name %q", next.Email)
	}
	f.login("ann.new@example.test")
	f.clk.Advance(time.Minute)
	_, err = f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw})
	wantCode(t, err, auth.CodeInvalidCredentials)
	kinds := f.eventKinds(u.ID)
	for _, k := range []string{"email_change_requested", "email_changed"} {
		if !strings.Contains(strings.Join(kinds, " "), k) {
			t.Errorf("events %v lack %s", kinds, k)
		}
	}
	// The code is spent.
	_, err = f.svc.ConfirmEmailChange(ctx, p, f.lastCode("ann.new@example.test"), f.meta)
	wantCode(t, err, auth.CodeInvalidCode)
}

// zeros makes every code the service draws 000000, so a test knows the code nobody was sent.
type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func TestEmailChangeToATakenAddressLooksTheSameAndCanNeverBeConfirmed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.signup("bob@example.test")
	p := f.principal(f.signup("ann@example.test").AccessToken)
	f.svc.Random = zeros{}
	free, errFree := f.svc.RequestEmailChange(ctx, p, auth.EmailChangeInput{CurrentPassword: pw, NewEmail: "free@example.test"})
	f.clk.Advance(time.Minute)
	taken, errTaken := f.svc.RequestEmailChange(ctx, p, auth.EmailChangeInput{CurrentPassword: pw, NewEmail: "BOB@example.test"})
	if errFree != nil || errTaken != nil || free != taken {
		t.Fatalf("free address: %d, %v; taken: %d, %v", free, errFree, taken, errTaken)
	}
	m, d := f.lastMail("bob@example.test")
	if m.Template != mail.EmailTaken || d.Code != "" {
		t.Errorf("the taken address got %q with code %q, want the notice and no code", m.Template, d.Code)
	}
	// The same budget: the next request waits whichever address it names.
	_, err := f.svc.RequestEmailChange(ctx, p, auth.EmailChangeInput{CurrentPassword: pw, NewEmail: "other@example.test"})
	wantCode(t, err, auth.CodeRecentlySent)
	// Not even the code that was drawn (and never sent) moves the account.
	_, err = f.svc.ConfirmEmailChange(ctx, p, "000000", f.meta)
	wantCode(t, err, auth.CodeInvalidCode)
	// The request for the taken address replaced the free one's code.
	_, err = f.svc.ConfirmEmailChange(ctx, p, "000000", f.meta)
	wantCode(t, err, auth.CodeInvalidCode)
	if u, _ := f.svc.Me(ctx, p); u.Email != "ann@example.test" {
		t.Errorf("the account moved to %q", u.Email)
	}
	// The export does not show the notice to someone else's address.
	data, err := f.svc.Export(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range data.Mail {
		if m.To != "ann@example.test" {
			t.Errorf("the export shows mail to %s", m.To)
		}
	}
}

func TestEmailChangeRefusals(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.principal(f.signup("ann@example.test").AccessToken)
	for name, tc := range map[string]struct {
		in   auth.EmailChangeInput
		code string
	}{
		"wrong password":  {auth.EmailChangeInput{CurrentPassword: "not the password", NewEmail: "new@example.test"}, auth.CodeInvalidCredentials},
		"no password":     {auth.EmailChangeInput{NewEmail: "new@example.test"}, auth.CodeValidation},
		"not an address":  {auth.EmailChangeInput{CurrentPassword: pw, NewEmail: "new@"}, auth.CodeValidation},
		"the same":        {auth.EmailChangeInput{CurrentPassword: pw, NewEmail: " ANN@example.test"}, auth.CodeValidation},
		"too long a name": {auth.EmailChangeInput{CurrentPassword: pw, NewEmail: strings.Repeat("a", 250) + "@example.test"}, auth.CodeValidation},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(f.store.Outbox())
			_, err := f.svc.RequestEmailChange(ctx, p, tc.in)
			wantCode(t, err, tc.code)
			if len(f.store.Outbox()) != before {
				t.Error("a refused request sent mail")
			}
		})
	}
	_, err := f.svc.ConfirmEmailChange(ctx, p, "12345", f.meta)
	wantCode(t, err, auth.CodeValidation)
	_, err = f.svc.ConfirmEmailChange(ctx, p, "123456", f.meta)
	wantCode(t, err, auth.CodeInvalidCode)
}

func TestEmailChangeCodeTriesAreCapped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := f.principal(f.signup("ann@example.test").AccessToken)
	if _, err := f.svc.RequestEmailChange(ctx, p, auth.EmailChangeInput{CurrentPassword: pw, NewEmail: "new@example.test"}); err != nil {
		t.Fatal(err)
	}
	right := f.lastCode("new@example.test")
	wrong := "000000"
	if right == wrong {
		wrong = "000001"
	}
	for range specConfig.CodeMaxAttempts {
		_, err := f.svc.ConfirmEmailChange(ctx, p, wrong, f.meta)
		wantCode(t, err, auth.CodeInvalidCode)
	}
	_, err := f.svc.ConfirmEmailChange(ctx, p, right, f.meta)
	wantCode(t, err, auth.CodeInvalidCode)
}

func TestDeleteAccountErasesItAsAnOperatorWould(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pair := f.signup("ann@example.test")
	p := f.principal(pair.AccessToken)
	_, err := f.svc.RequestDeletion(ctx, p, "not the password", f.meta)
	wantCode(t, err, auth.CodeInvalidCredentials)
	if _, err := f.svc.RequestDeletion(ctx, p, pw, f.meta); err != nil {
		t.Fatal(err)
	}
	if m, _ := f.lastMail("ann@example.test"); m.Template != mail.DeleteAccountCode {
		t.Errorf("mail %q, want %q", m.Template, mail.DeleteAccountCode)
	}
	code := f.lastCode("ann@example.test")
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	wantCode(t, f.svc.DeleteAccount(ctx, p, wrong, f.meta), auth.CodeInvalidCode)
	// A login code is no deletion code.
	f.clk.Advance(time.Minute)
	if _, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.DeleteAccount(ctx, p, f.lastCode("ann@example.test"), f.meta), auth.CodeInvalidCode)
	if err := f.svc.DeleteAccount(ctx, p, code, f.meta); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, pair.AccessToken, true)
	wantCode(t, err, auth.CodeSessionRevoked)
	_, err = f.svc.Me(ctx, auth.Principal{Claims: p.Claims})
	wantCode(t, err, auth.CodeInvalidToken)
	_, err = f.refresh(pair.RefreshToken)
	wantCode(t, err, auth.CodeInvalidRefresh)
	var deleted []auth.Event
	for _, e := range f.store.Events() {
		if strings.Contains(strings.ToLower(e.Detail+e.Actor.Name), "ann@example.test") {
			t.Errorf("event %s still holds the address: %+v", e.Kind, e)
		}
		if e.Kind == "user_deleted" {
			deleted = append(deleted, e)
		}
	}
	want := []auth.Event{{UserID: p.Claims.Subject, TenantID: auth.DefaultTenantID, Kind: "user_deleted",
		IP: f.meta.IP, UserAgent: f.meta.UserAgent, Actor: auth.Actor{Type: auth.ActorUser, ID: p.Claims.Subject}}}
	if diff := cmp.Diff(want, deleted); diff != "" {
		t.Errorf("deletion events (-want +got):\n%s", diff)
	}
	_, err = f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw})
	wantCode(t, err, auth.CodeInvalidCredentials)
}

func TestExportHoldsNoSecret(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first := f.signup("ann@example.test")
	second := f.login("ann@example.test")
	p := f.principal(second.AccessToken)
	if _, err := f.svc.RequestDeletion(ctx, p, pw, f.meta); err != nil {
		t.Fatal(err)
	}
	code := f.lastCode("ann@example.test")
	d, err := f.svc.Export(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var sessions []string
	for _, s := range d.Sessions {
		sessions = append(sessions, s.ID)
	}
	if diff := cmp.Diff([]string{second.SessionID, first.SessionID}, sessions); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}
	var purposes []string
	for _, c := range d.Codes {
		purposes = append(purposes, c.Purpose)
	}
	if diff := cmp.Diff([]string{auth.PurposeDeleteAccount}, purposes); diff != "" {
		t.Errorf("pending codes (-want +got):\n%s", diff)
	}
	var templates []string
	for _, m := range d.Mail {
		templates = append(templates, m.Template)
	}
	if diff := cmp.Diff([]string{mail.SignupCode, mail.LoginCode, mail.DeleteAccountCode}, templates); diff != "" {
		t.Errorf("mail (-want +got):\n%s", diff)
	}
	if len(d.Events) == 0 {
		t.Error("no events")
	}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{code, first.RefreshToken, second.RefreshToken, "argon2"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the export holds %q", secret)
		}
	}
}

func TestExportNamesTheLanguageOfTheUsersEmail(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.CreateTenant(ctx, op, "acme", auth.TenantInput{Name: ptr("Acme"), Locale: ptr("de")}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Register(ctx, auth.Credentials{Email: "ann@acme.test", Password: pw, TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	pair, err := f.svc.ValidateRegister(ctx, auth.CodeInput{Email: "ann@acme.test", Code: f.lastCode("ann@acme.test"), TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.Export(ctx, f.principal(pair.AccessToken))
	if err != nil {
		t.Fatal(err)
	}
	if d.Locale != "de" || d.User.TenantID != "acme" {
		t.Errorf("export of a user of acme: locale %q, tenant %q", d.Locale, d.User.TenantID)
	}
	// A user's own language comes first.
	if err := f.svc.Register(ctx, auth.Credentials{Email: "bo@acme.test", Password: pw, TenantID: "acme", Locale: "fr"}); err != nil {
		t.Fatal(err)
	}
	pair, err = f.svc.ValidateRegister(ctx, auth.CodeInput{Email: "bo@acme.test", Code: f.lastCode("bo@acme.test"), TenantID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err = f.svc.Export(ctx, f.principal(pair.AccessToken)); err != nil || d.Locale != "fr" {
		t.Errorf("export of a user who chose fr: locale %q, %v", d.Locale, err)
	}
}
