package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
)

// The operator's rules (admin keys, scope, cursors, user administration) on the in-memory ports.

func TestAdminKeysAreShownOnceAndCheckedByShape(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k, secret, err := f.svc.CreateAdminKey(ctx, " ops ", "", op)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, auth.AdminKeyPrefix) || len(secret) != 47 || k.Name != "ops" || k.TenantID != "" {
		t.Fatalf("created %+v with secret %q", k, secret)
	}
	got, err := f.svc.AuthenticateAdmin(ctx, secret)
	if err != nil || got.ID != k.ID {
		t.Fatalf("AuthenticateAdmin = %+v, %v", got, err)
	}
	if diff := cmp.Diff(auth.Admin{Actor: auth.Actor{Type: auth.ActorAdminKey, ID: k.ID, Name: "ops"}}, got.Admin()); diff != "" {
		t.Errorf("the key's caller (-want +got):\n%s", diff)
	}
	for name, presented := range map[string]string{
		"empty":          "",
		"another prefix": "lrt_" + secret[4:],
		"too short":      secret[:46],
		"padding":        secret[:46] + "=",
		"unused bits":    secret[:46] + "B", // 32 bytes leave two bits of the last character unused
		"unknown":        auth.AdminKeyPrefix + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
	} {
		if _, err := f.svc.AuthenticateAdmin(ctx, presented); auth.ErrorCode(err) != auth.CodeAdminKeyRequired {
			t.Errorf("%s: %v, want admin_key_required", name, err)
		}
	}
	if err := f.svc.RevokeAdminKey(ctx, k.ID, op); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AuthenticateAdmin(ctx, secret); auth.ErrorCode(err) != auth.CodeAdminKeyRequired {
		t.Errorf("a revoked key: %v, want admin_key_required", err)
	}
	wantCode(t, f.svc.RevokeAdminKey(ctx, k.ID, op), auth.CodeNotFound)
	for name, c := range map[string]struct{ name, tenant, field string }{
		"no name":        {"", "", "name"},
		"a control char": {"a\x00b", "", "name"},
		"a long name":    {strings.Repeat("n", 101), "", "name"},
		"unknown tenant": {"x", "nope", "tenantId"},
		"not a slug":     {"x", "Not A Slug", "tenantId"},
	} {
		_, _, err := f.svc.CreateAdminKey(ctx, c.name, c.tenant, op)
		if diff := cmp.Diff([]string{c.field}, fieldNames(t, err)); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", name, diff)
		}
	}
	var kinds []string
	for _, ev := range f.store.Events() {
		kinds = append(kinds, ev.Kind)
		if ev.Actor != op.Actor {
			t.Errorf("%s by %+v, want the command line", ev.Kind, ev.Actor)
		}
	}
	if diff := cmp.Diff([]string{"admin_key_created", "admin_key_revoked"}, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestAdminScopeNarrowsToOneTenant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, id := range []string{"acme", "globex"} {
		if _, err := f.svc.CreateTenant(ctx, op, id, auth.TenantInput{Name: ptr(id)}); err != nil {
			t.Fatal(err)
		}
	}
	acme := auth.Admin{Actor: auth.Actor{Type: auth.ActorAdminKey, ID: "k", Name: "acme"}, Scope: "acme"}
	for _, c := range []struct {
		by     auth.Admin
		tenant string
		want   string // the scope, or "not_found"
	}{
		{op, "", ""},
		{op, "globex", "globex"},
		{op, "nope", auth.CodeNotFound},
		{acme, "", "acme"},
		{acme, "acme", "acme"},
		{acme, "globex", auth.CodeNotFound},
	} {
		got, err := f.svc.AdminWithin(ctx, c.by, c.tenant)
		if c.want == auth.CodeNotFound {
			wantCode(t, err, auth.CodeNotFound)
			continue
		}
		if err != nil || got.Scope != c.want || got.Actor != c.by.Actor {
			t.Errorf("%+v within %q = %+v, %v; want scope %q", c.by, c.tenant, got, err, c.want)
		}
	}
	ann, err := f.svc.CreateUser(ctx, acme, auth.NewUser{Email: "ann@acme.test", Password: pw})
	if err != nil || ann.TenantID != "acme" {
		t.Fatalf("a user made by the acme caller without a tenant: %+v, %v; want acme's", ann, err)
	}
	gus, err := f.svc.CreateUser(ctx, op, auth.NewUser{Email: "gus@globex.test", Password: pw, TenantID: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.User(ctx, acme, gus.ID)
	wantCode(t, err, auth.CodeNotFound)
	_, err = f.svc.UpdateUser(ctx, acme, gus.ID, auth.UserInput{Role: ptr("owned")})
	wantCode(t, err, auth.CodeNotFound)
	wantCode(t, f.svc.DeleteUser(ctx, acme, gus.ID), auth.CodeNotFound)
	_, err = f.svc.UserSessions(ctx, acme, gus.ID)
	wantCode(t, err, auth.CodeNotFound)
	_, err = f.svc.AdminTenant(ctx, acme, "globex")
	wantCode(t, err, auth.CodeNotFound)
	_, err = f.svc.CreateTenant(ctx, acme, "initech", auth.TenantInput{Name: ptr("Initech")})
	wantCode(t, err, auth.CodeForbidden)
	wantCode(t, f.svc.DeleteTenant(ctx, acme, "globex", true), auth.CodeNotFound)
	wantCode(t, f.svc.DeleteTenant(ctx, acme, "acme", true), auth.CodeForbidden)
	_, err = f.svc.ListUsers(ctx, acme, auth.UserFilter{TenantID: "globex"}, auth.PageRequest{})
	wantCode(t, err, auth.CodeNotFound)
	_, err = f.svc.CreateUser(ctx, acme, auth.NewUser{Email: "new@globex.test", Password: pw, TenantID: "globex"})
	if diff := cmp.Diff([]string{"tenantId"}, fieldNames(t, err)); diff != "" {
		t.Errorf("a body naming another tenant: fields (-want +got):\n%s", diff)
	}
	page, err := f.svc.ListUsers(ctx, acme, auth.UserFilter{}, auth.PageRequest{})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != ann.ID {
		t.Errorf("the acme caller's users = %+v, %v", page, err)
	}
	tenants, err := f.svc.ListTenants(ctx, acme, auth.PageRequest{})
	if err != nil || len(tenants.Items) != 1 || tenants.Items[0].ID != "acme" {
		t.Errorf("the acme caller's tenants = %+v, %v", tenants, err)
	}
	if got, err := f.svc.User(ctx, op, gus.ID); err != nil || got.Role != auth.DefaultRole {
		t.Errorf("gus after the acme caller's attempts: %+v, %v", got, err)
	}
}

func TestCursorsAreSignedAndBoundToTheirListing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, e := range []string{"a@example.test", "b@example.test", "c@example.test"} {
		if _, err := f.svc.CreateAccount(ctx, auth.NewAccount{Email: e, Password: pw}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(by auth.Admin, filter auth.UserFilter, cursor string) (auth.UserPage, error) {
		return f.svc.ListUsers(ctx, by, filter, auth.PageRequest{Cursor: cursor, Limit: 1})
	}
	var seen []string
	cursor := ""
	for range 10 {
		p, err := list(op, auth.UserFilter{}, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range p.Items {
			seen = append(seen, u.Email)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{"a@example.test", "b@example.test", "c@example.test"}, seen); diff != "" {
		t.Errorf("pages of one (-want +got):\n%s", diff)
	}
	first, err := list(op, auth.UserFilter{}, "")
	if err != nil || first.NextCursor == "" {
		t.Fatal(first, err)
	}
	c := first.NextCursor
	payload, sig, _ := strings.Cut(c, ".")
	moved, _ := json.Marshal([]string{"default", "b@example.test"})
	short, _ := json.Marshal([]string{"default"})
	key := strings.Repeat("k", 32)
	for name, try := range map[string]struct {
		by     auth.Admin
		filter auth.UserFilter
		cursor string
	}{
		"garbage":                   {op, auth.UserFilter{}, "garbage"},
		"another position":          {op, auth.UserFilter{}, base64.RawURLEncoding.EncodeToString(moved) + "." + sig},
		"a short position":          {op, auth.UserFilter{}, base64.RawURLEncoding.EncodeToString(short) + "." + sig},
		"a changed signature":       {op, auth.UserFilter{}, payload + "." + base64.RawURLEncoding.EncodeToString([]byte(key[:16]))},
		"another filter":            {op, auth.UserFilter{EmailPrefix: "b"}, c},
		"another scope":             {auth.Admin{Scope: auth.DefaultTenantID}, auth.UserFilter{}, c},
		"a tenant filter":           {op, auth.UserFilter{TenantID: auth.DefaultTenantID}, c},
		"over 2 KiB":                {op, auth.UserFilter{}, c + strings.Repeat("A", 2048)},
		"a signature over the list": {op, auth.UserFilter{}, payload + "." + sig + "A"},
	} {
		_, err := list(try.by, try.filter, try.cursor)
		if diff := cmp.Diff([]string{"cursor"}, fieldNames(t, err)); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", name, diff)
		}
	}
	_, err = f.svc.ListEvents(ctx, op, auth.EventFilter{}, auth.PageRequest{Cursor: c})
	if diff := cmp.Diff([]string{"cursor"}, fieldNames(t, err)); diff != "" {
		t.Errorf("a user cursor on the event log: fields (-want +got):\n%s", diff)
	}
	for _, limit := range []int{-1, auth.MaxPageSize + 1} {
		_, err := f.svc.ListUsers(ctx, op, auth.UserFilter{}, auth.PageRequest{Limit: limit})
		if diff := cmp.Diff([]string{"limit"}, fieldNames(t, err)); diff != "" {
			t.Errorf("limit %d: fields (-want +got):\n%s", limit, diff)
		}
	}
}

func TestOperatorUserChangesAreRecorded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := auth.Admin{Actor: auth.Actor{Type: auth.ActorAdminKey, ID: "k1", Name: "ops"}}
	u, err := f.svc.CreateUser(ctx, key, auth.NewUser{Email: "Ann@Example.test", Password: pw, Role: ptr("editor"),
		Metadata: json.RawMessage(`{ "plan" : "pro" }`)})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ann@example.test" || u.Role != "editor" || string(u.Metadata) != `{"plan":"pro"}` || u.EmailVerifiedAt != nil {
		t.Errorf("created %+v", u)
	}
	pair := f.login("ann@example.test")
	u, err = f.svc.UpdateUser(ctx, key, u.ID, auth.UserInput{Disabled: ptr(true), EmailVerified: ptr(true)})
	if err != nil || u.Active() || u.EmailVerifiedAt == nil {
		t.Fatalf("disable and verify = %+v, %v", u, err)
	}
	_, err = f.refresh(pair.RefreshToken)
	wantCode(t, err, auth.CodeAccountDisabled)
	if u, err = f.svc.UpdateUser(ctx, key, u.ID, auth.UserInput{Disabled: ptr(false)}); err != nil || !u.Active() {
		t.Fatalf("enable = %+v, %v", u, err)
	}
	_, err = f.refresh(pair.RefreshToken)
	wantCode(t, err, auth.CodeSessionRevoked) // enabling does not bring ended sessions back
	if err := f.svc.DeleteUser(ctx, key, u.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.DeleteUser(ctx, key, u.ID), auth.CodeNotFound)

	type rec struct{ Kind, User, Detail string }
	var got []rec
	for _, ev := range f.store.Events() {
		if ev.Actor == key.Actor {
			got = append(got, rec{ev.Kind, ev.UserID, ev.Detail})
		}
	}
	want := []rec{{"user_created", u.ID, ""}, {"user_updated", u.ID, "disabled, emailVerified"}, {"user_updated", u.ID, "disabled"}, {"user_deleted", u.ID, ""}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events by the key (-want +got):\n%s", diff)
	}
	for name, c := range map[string]struct {
		in     auth.NewUser
		fields []string
	}{
		"no password":          {auth.NewUser{Email: "x@example.test"}, []string{"password"}},
		"invited and verified": {auth.NewUser{Email: "x@example.test", Invite: true, EmailVerified: true}, []string{"invite"}},
		"bad role":             {auth.NewUser{Email: "x@example.test", Password: pw, Role: ptr("a b")}, []string{"role"}},
		"metadata not object":  {auth.NewUser{Email: "x@example.test", Password: pw, Metadata: json.RawMessage(`[]`)}, []string{"metadata"}},
		"everything":           {auth.NewUser{Email: "x", Password: "short", TenantID: "nope"}, []string{"email", "password", "tenantId"}},
	} {
		_, err := f.svc.CreateUser(ctx, key, c.in)
		if diff := cmp.Diff(c.fields, fieldNames(t, err)); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", name, diff)
		}
	}
}

// TestInvitationIsASignupCodeAcceptedWithAPassword: an invitee has no usable password until they
// accept the code with one; the code lives codes.invitation_ttl.
func TestInvitationIsASignupCodeAcceptedWithAPassword(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) { c.InvitationTTL = 72 * time.Hour })
	ctx := context.Background()
	u, err := f.svc.CreateUser(ctx, op, auth.NewUser{Email: "invitee@example.test", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	mails := f.store.Outbox()
	if len(mails) != 1 || mails[0].Template != "invitation" || mails[0].Purpose != auth.PurposeSignup || !strings.Contains(mails[0].Data, `"ValidHours":72`) {
		t.Fatalf("outbox %+v: want one invitation carrying a sign-up code valid 72 hours", mails)
	}
	code := f.lastCode("invitee@example.test")
	_, err = f.svc.Login(ctx, auth.Credentials{Email: "invitee@example.test", Password: pw})
	wantCode(t, err, auth.CodeInvalidCredentials)
	f.clk.Advance(71 * time.Hour)
	pair, err := f.svc.ValidateRegister(ctx, auth.CodeInput{Email: "invitee@example.test", Code: code, Password: pw})
	if err != nil || pair.UserID != u.ID {
		t.Fatalf("accepting the invitation = %+v, %v", pair, err)
	}
	f.login("invitee@example.test")
}

// TestResetTOTPForAUserWhoLostIt: an operator turns a user's authenticator off; the user logs in with an
// emailed code again, and the change is an event naming the operator.
func TestResetTOTPForAUserWhoLostIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.enrol("ann@example.test")
	u, err := f.svc.FindUser(ctx, op, "", "ann@example.test")
	if err != nil || !u.TOTPEnabled {
		t.Fatalf("ann before the reset: %+v, %v", u, err)
	}
	acme := auth.Admin{Scope: "acme"}
	wantCode(t, f.svc.ResetTOTP(ctx, acme, u.ID), auth.CodeNotFound)
	if err := f.svc.ResetTOTP(ctx, op, u.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.ResetTOTP(ctx, op, u.ID), auth.CodeTOTPNotEnabled)
	if got, _ := f.svc.User(ctx, op, u.ID); got.TOTPEnabled {
		t.Error("the authenticator is still on")
	}
	f.login("ann@example.test") // the emailed code again
	var resets []auth.Event
	for _, ev := range f.store.Events() {
		if ev.Kind == "totp_reset" {
			resets = append(resets, ev)
		}
	}
	if len(resets) != 1 || resets[0].Actor != op.Actor || resets[0].UserID != u.ID {
		t.Errorf("totp_reset events %+v", resets)
	}
}
