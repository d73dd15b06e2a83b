package auth_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
)

func ptr[T any](v T) *T { return &v }

// op is the operator the tests act as: the command line, over every tenant.
var op = auth.CommandLine("test")

func fieldNames(t *testing.T, err error) []string {
	t.Helper()
	ae := wantCode(t, err, auth.CodeValidation)
	var names []string
	for _, f := range ae.Fields {
		names = append(names, f.Field)
	}
	return names
}

func TestTenantIDsAndSettingsAreChecked(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, id := range []string{"", "Acme", "-acme", "_a", "acme!", "a b", strings.Repeat("a", 64), "ümlaut"} {
		_, err := f.svc.CreateTenant(ctx, op, id, auth.TenantInput{Name: ptr("x")})
		if diff := cmp.Diff([]string{"id"}, fieldNames(t, err)); diff != "" {
			t.Errorf("id %q: fields (-want +got):\n%s", id, diff)
		}
	}
	for _, id := range []string{"acme", "179", "a", "a-b_c", strings.Repeat("z", 63)} {
		if _, err := f.svc.CreateTenant(ctx, op, id, auth.TenantInput{Name: ptr("Tenant " + id)}); err != nil {
			t.Errorf("id %q: %v", id, err)
		}
	}
	_, err := f.svc.CreateTenant(ctx, op, "bad", auth.TenantInput{
		Name: ptr(""), SecondStep: ptr("sms"), AppName: ptr("bell\a"), MailFrom: ptr("not an address"), Locale: ptr("english!"),
		AllowedOrigins: ptr([]string{"https://ok.test", "https://app.test/path"}), Routes: json.RawMessage(`[1]`),
		Issuer: ptr(strings.Repeat("i", 513)),
	})
	want := []string{"routes", "name", "secondStep", "appName", "mailFrom", "locale", "allowedOrigins", "issuer"}
	if diff := cmp.Diff(want, fieldNames(t, err)); diff != "" {
		t.Errorf("bad settings: fields (-want +got):\n%s", diff)
	}
	_, err = f.svc.CreateTenant(ctx, op, "acme", auth.TenantInput{Name: ptr("Other")})
	wantCode(t, err, auth.CodeTenantExists)
	_, err = f.svc.CreateTenant(ctx, op, "acme2", auth.TenantInput{Name: ptr("Tenant acme")})
	if diff := cmp.Diff([]string{"name"}, fieldNames(t, err)); diff != "" {
		t.Errorf("a taken name: fields (-want +got):\n%s", diff)
	}
	_, err = f.svc.CreateTenant(ctx, op, "huge", auth.TenantInput{Name: ptr("Huge"), Routes: json.RawMessage(`{"x":"` + strings.Repeat("r", 16<<10) + `"}`)})
	if diff := cmp.Diff([]string{"routes"}, fieldNames(t, err)); diff != "" {
		t.Errorf("routes over 16 KiB: fields (-want +got):\n%s", diff)
	}
}

func TestTenantUpdatesMergeAndTheDefaultTenantIsTheConfiguration(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	created, err := f.svc.CreateTenant(ctx, op, "acme", auth.TenantInput{Name: ptr("Acme"), AppName: ptr("Acme Pay"),
		Routes: json.RawMessage(`{ "base" : "https://api.acme.test/" }`)})
	if err != nil {
		t.Fatal(err)
	}
	want := auth.DefaultTenantSettings()
	want.AppName, want.Routes = "Acme Pay", json.RawMessage(`{"base":"https://api.acme.test/"}`)
	if diff := cmp.Diff(want, created.Settings); diff != "" {
		t.Errorf("created settings (-want +got):\n%s", diff)
	}
	updated, err := f.svc.UpdateTenant(ctx, op, "acme", auth.TenantInput{SecondStep: ptr(auth.SecondStepOff), AllowedOrigins: ptr([]string{"https://app.acme.test"})})
	if err != nil {
		t.Fatal(err)
	}
	want.SecondStep, want.AllowedOrigins = auth.SecondStepOff, []string{"https://app.acme.test"}
	if diff := cmp.Diff(want, updated.Settings); diff != "" || updated.Name != "Acme" {
		t.Errorf("after a partial update, name %q, settings (-want +got):\n%s", updated.Name, diff)
	}
	_, err = f.svc.UpdateTenant(ctx, op, "acme", auth.TenantInput{Locale: ptr("not a locale")})
	if diff := cmp.Diff([]string{"locale"}, fieldNames(t, err)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if got, _ := f.svc.Tenant(ctx, "acme"); !cmp.Equal(want, got.Settings) {
		t.Errorf("a refused update changed the tenant: %+v", got.Settings)
	}
	_, err = f.svc.UpdateTenant(ctx, op, "nope", auth.TenantInput{Name: ptr("x")})
	wantCode(t, err, auth.CodeNotFound)

	// The default tenant: its name may change, its settings are the configuration's.
	_, err = f.svc.UpdateTenant(ctx, op, auth.DefaultTenantID, auth.TenantInput{SecondStep: ptr(auth.SecondStepOff)})
	if diff := cmp.Diff([]string{"settings"}, fieldNames(t, err)); diff != "" {
		t.Errorf("default tenant settings: fields (-want +got):\n%s", diff)
	}
	def, err := f.svc.UpdateTenant(ctx, op, auth.DefaultTenantID, auth.TenantInput{Name: ptr("Main")})
	if err != nil || def.Name != "Main" || !cmp.Equal(defaultTenant.Default, def.Settings) {
		t.Errorf("renaming the default tenant = %+v, %v", def, err)
	}
	page, err := f.svc.ListTenants(ctx, op, auth.PageRequest{})
	list := page.Items
	if err != nil || len(list) != 2 || list[1].ID != auth.DefaultTenantID || !cmp.Equal(defaultTenant.Default, list[1].Settings) {
		t.Errorf("ListTenants = %+v, %v; want acme and the default with the configured settings", list, err)
	}
	if kinds := eventKinds(f); !slices.Equal(kinds, []string{"tenant_created", "tenant_updated", "tenant_updated"}) {
		t.Errorf("events %v", kinds)
	}
}

func eventKinds(f *fixture) []string {
	var kinds []string
	for _, ev := range f.store.Events() {
		kinds = append(kinds, ev.Kind)
	}
	return kinds
}

func TestTenantDeletionIsRefusedWhileItHasUsersUnlessForced(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.CreateTenant(ctx, op, "acme", auth.TenantInput{Name: ptr("Acme")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateAccount(ctx, auth.NewAccount{Email: "ann@acme.test", Password: pw, TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.svc.DeleteTenant(ctx, op, "acme", false), auth.CodeTenantHasUsers)
	if diff := cmp.Diff([]string{"id"}, fieldNames(t, f.svc.DeleteTenant(ctx, op, auth.DefaultTenantID, true))); diff != "" {
		t.Errorf("deleting the default tenant: fields (-want +got):\n%s", diff)
	}
	if err := f.svc.DeleteTenant(ctx, op, "acme", true); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
	_, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@acme.test", Password: pw, TenantID: "acme"})
	if diff := cmp.Diff([]string{"tenantId"}, fieldNames(t, err)); diff != "" {
		t.Errorf("a login into the deleted tenant: fields (-want +got):\n%s", diff)
	}
	wantCode(t, f.svc.DeleteTenant(ctx, op, "acme", false), auth.CodeNotFound)
	wantCode(t, f.svc.DeleteTenant(ctx, op, "Not A Slug", false), auth.CodeNotFound)
}

func TestSecondStepOffSignsInWithOneCall(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.CreateTenant(ctx, op, "quick", auth.TenantInput{Name: ptr("Quick"), SecondStep: ptr(auth.SecondStepOff)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateAccount(ctx, auth.NewAccount{Email: "ann@example.test", Password: pw, TenantID: "quick"}); err != nil {
		t.Fatal(err)
	}
	mailsBefore := len(f.store.Outbox())
	for name, in := range map[string]auth.SignInInput{
		"without otp":            {Email: "ann@example.test", Password: pw, TenantID: "quick"},
		"with an otp it ignores": {Email: "ann@example.test", Password: pw, TenantID: "quick", OTP: "not a code"},
	} {
		p, err := f.svc.SignIn(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		claims, err := f.svc.Verify(ctx, p.AccessToken)
		if err != nil || !slices.Equal(claims.AMR, []string{"pwd"}) || claims.TenantID != "quick" || p.TenantID != "quick" {
			t.Errorf("%s: claims %+v (%v), pair %+v", name, claims, err, p)
		}
	}
	res, err := f.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, TenantID: "quick"})
	if err != nil || res.Tokens == nil || res.ExpiresIn != 0 {
		t.Errorf("Login = %+v, %v; want tokens", res, err)
	}
	if n := len(f.store.Outbox()) - mailsBefore; n != 0 {
		t.Errorf("%d emails queued by logins without a second step", n)
	}
	_, err = f.svc.SignIn(ctx, auth.SignInInput{Email: "ann@example.test", Password: "wrong password", TenantID: "quick"})
	wantCode(t, err, auth.CodeInvalidCredentials)
}

func TestRefreshWithoutRotationKeepsTheTokenAndItsIdleWindowRunsFromLastUse(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.CreateTenant(ctx, op, "keep", auth.TenantInput{Name: ptr("Keep"), RefreshRotation: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Register(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, TenantID: "keep"}); err != nil {
		t.Fatal(err)
	}
	first, err := f.svc.ValidateRegister(ctx, auth.CodeInput{Email: "ann@example.test", Code: f.lastCode("ann@example.test"), TenantID: "keep"})
	if err != nil {
		t.Fatal(err)
	}
	idle := specConfig.RefreshIdleTTL
	for range 3 {
		f.clk.Advance(idle - time.Second)
		p, err := f.refresh(first.RefreshToken)
		if err != nil || p.RefreshToken != first.RefreshToken || p.SessionID != first.SessionID {
			t.Fatalf("refresh = %+v, %v; want the same refresh token", p, err)
		}
	}
	f.clk.Advance(idle)
	_, err = f.refresh(first.RefreshToken)
	wantCode(t, err, auth.CodeSessionExpired)

	// A tenant that starts rotating leaves the sessions opened before alone, so a client that keeps
	// its one token is not taken for a thief.
	second := f.signIn(t, "keep")
	if _, err := f.svc.UpdateTenant(ctx, op, "keep", auth.TenantInput{RefreshRotation: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f.clk.Advance(time.Minute)
		if p, err := f.refresh(second.RefreshToken); err != nil || p.RefreshToken != second.RefreshToken {
			t.Fatalf("refresh of a session opened without rotation = %+v, %v", p, err)
		}
	}
	third := f.signIn(t, "keep")
	if p := f.mustRefresh(third.RefreshToken); p.RefreshToken == third.RefreshToken {
		t.Error("a session opened after the tenant started rotating did not rotate")
	}
}

// signIn logs ann into a tenant through the two calls of SignIn.
func (f *fixture) signIn(t *testing.T, tenant string) auth.TokenPair {
	t.Helper()
	ctx := context.Background()
	f.clk.Advance(specConfig.ResendCooldown)
	in := auth.SignInInput{Email: "ann@example.test", Password: pw, TenantID: tenant}
	_, err := f.svc.SignIn(ctx, in)
	wantCode(t, err, auth.CodeOTPRequired)
	in.OTP = f.lastCode("ann@example.test")
	p, err := f.svc.SignIn(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTenantChangesReachOtherInstancesWithinTheCacheTime: an instance sees a change made elsewhere
// (another instance, the command line) once its cached copy is DefaultTenantCacheFor old; the
// instance that made it sees it at once.
func TestTenantChangesReachOtherInstancesWithinTheCacheTime(t *testing.T) {
	a := newFixture(t)
	b := startFixture(t, specConfig, defaultTenant, a.clk, a.store) // same store and clock
	ctx := context.Background()
	if _, err := a.svc.CreateTenant(ctx, op, "acme", auth.TenantInput{Name: ptr("Acme")}); err != nil {
		t.Fatal(err)
	}
	secondStep := func(f *fixture) string {
		tenant, err := f.dir.Tenant(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		return tenant.Settings.SecondStep
	}
	if got := secondStep(b); got != auth.SecondStepEmailCode {
		t.Fatalf("b reads %q before the change", got)
	}
	if _, err := a.svc.UpdateTenant(ctx, op, "acme", auth.TenantInput{SecondStep: ptr(auth.SecondStepOff)}); err != nil {
		t.Fatal(err)
	}
	if got := secondStep(a); got != auth.SecondStepOff {
		t.Errorf("the instance that made the change reads %q", got)
	}
	a.clk.Advance(auth.DefaultTenantCacheFor - time.Microsecond)
	if got := secondStep(b); got != auth.SecondStepEmailCode {
		t.Errorf("b reads %q before its cached copy expired", got)
	}
	a.clk.Advance(time.Microsecond)
	if got := secondStep(b); got != auth.SecondStepOff {
		t.Errorf("b reads %q once its cached copy is %v old", got, auth.DefaultTenantCacheFor)
	}
	if _, err := b.svc.CreateAccount(ctx, auth.NewAccount{Email: "ann@example.test", Password: pw, TenantID: "acme"}); err != nil {
		t.Fatal(err)
	}
	res, err := b.svc.Login(ctx, auth.Credentials{Email: "ann@example.test", Password: pw, TenantID: "acme"})
	if err != nil || res.Tokens == nil {
		t.Errorf("b's login after the cache time = %+v, %v; want tokens", res, err)
	}
}

func TestUserMetadataIsABoundedObject(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u, err := f.svc.CreateAccount(ctx, auth.NewAccount{Email: "ann@example.test", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	fill := func(n int) json.RawMessage { // a compact object of exactly n bytes
		return json.RawMessage(`{"k":"` + strings.Repeat("v", n-8) + `"}`)
	}
	if got, err := f.svc.UpdateUser(ctx, op, u.ID, auth.UserInput{Metadata: fill(auth.MaxMetadataBytes)}); err != nil || len(got.Metadata) != auth.MaxMetadataBytes {
		t.Errorf("metadata of exactly 4 KiB: %d bytes, %v", len(got.Metadata), err)
	}
	for name, raw := range map[string]string{
		"one byte over": string(fill(auth.MaxMetadataBytes + 1)), "an array": `[]`, "a string": `"x"`, "null": `null`, "broken": `{"a":}`,
	} {
		_, err := f.svc.UpdateUser(ctx, op, u.ID, auth.UserInput{Metadata: json.RawMessage(raw)})
		if diff := cmp.Diff([]string{"metadata"}, fieldNames(t, err)); diff != "" {
			t.Errorf("%s: fields (-want +got):\n%s", name, diff)
		}
	}
	_, err = f.svc.UpdateUser(ctx, op, "no-such-user", auth.UserInput{Role: ptr("admin")})
	wantCode(t, err, auth.CodeNotFound)
}

func TestDirectoryOfTheDefaultTenant(t *testing.T) {
	clk := authtest.NewClock().Now
	st := authtest.NewMemStore(clk)
	cfg := defaultTenant
	cfg.Default.Routes = json.RawMessage(" { \"base\" : \"https://api.example.test/\" } ")
	cfg.Default.Issuer = "https://default.example.test"
	dir, err := auth.NewDirectory(st, cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	def, err := dir.Tenant(context.Background(), auth.DefaultTenantID)
	if err != nil || string(def.Settings.Routes) != `{"base":"https://api.example.test/"}` {
		t.Errorf("default tenant = %+v, %v; want its configured routes, compacted", def, err)
	}
	// Access tokens signed before tenant ids became slugs name the default tenant by the nil uuid.
	for _, tid := range []string{auth.DefaultTenantID, "00000000-0000-0000-0000-000000000000"} {
		if iss, err := dir.IssuerOf(tid); err != nil || iss != "https://default.example.test" {
			t.Errorf("IssuerOf(%q) = %q, %v; want the default tenant's issuer", tid, iss, err)
		}
	}
	if _, err := dir.IssuerOf("nope"); err == nil {
		t.Error("IssuerOf(unknown tenant) answered an issuer")
	}

	cfg.Default.Routes = json.RawMessage(`["not", "an", "object"]`)
	cfg.Default.SecondStep = "sms"
	_, err = auth.NewDirectory(st, cfg, clk)
	if diff := cmp.Diff([]string{"routes", "secondStep"}, fieldNames(t, err)); diff != "" {
		t.Errorf("a bad default tenant: fields (-want +got):\n%s", diff)
	}
}
