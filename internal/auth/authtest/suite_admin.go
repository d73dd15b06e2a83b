package authtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
)

// The suite's cases for what the admin API and the command line need from the ports: user listing,
// erasure, the event log and admin keys.

func mustTenant(t *testing.T, s auth.Store, id string) {
	t.Helper()
	if err := s.CreateTenant(context.Background(), &auth.Tenant{ID: id, Name: id, Settings: auth.DefaultTenantSettings()}, auth.Event{}); err != nil {
		t.Fatal(err)
	}
}

func mustTenantUser(t *testing.T, s auth.Store, tenant, email string) auth.User {
	t.Helper()
	u := auth.User{TenantID: tenant, Email: email}
	if err := s.CreateUser(context.Background(), &u, "h", auth.Event{}); err != nil {
		t.Fatal(err)
	}
	return u
}

func suiteListUsers(t *testing.T, open Opener) {
	s := open(t, NewClock().Now)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	mustTenant(t, s, "zeta")
	for _, x := range [][2]string{
		{"acme", "bob@acme.test"}, {"acme", "ann@acme.test"}, {"acme", "an_x%y@acme.test"}, {"acme", "anna@acme.test"},
		{"zeta", "ann@zeta.test"}, {auth.DefaultTenantID, "ann@example.test"}, {auth.DefaultTenantID, "ànn@example.test"},
	} {
		mustTenantUser(t, s, x[0], x[1])
	}
	annZeta, err := s.UserByEmail(ctx, "zeta", "ann@zeta.test")
	if err != nil {
		t.Fatal(err)
	}
	off := auth.StatusDisabled
	if _, err := s.UpdateUser(ctx, annZeta.User.ID, auth.UserChanges{Status: &off}, auth.Event{}); err != nil {
		t.Fatal(err)
	}
	list := func(q auth.UserQuery) []string {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 100
		}
		users, err := s.ListUsers(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, u := range users {
			out = append(out, u.TenantID+"/"+u.Email)
		}
		return out
	}
	yes, no := true, false
	for name, c := range map[string]struct {
		q    auth.UserQuery
		want []string
	}{
		"all, by tenant then email in byte order": {auth.UserQuery{}, []string{"acme/an_x%y@acme.test", "acme/ann@acme.test",
			"acme/anna@acme.test", "acme/bob@acme.test", "default/ann@example.test", "default/ànn@example.test", "zeta/ann@zeta.test"}},
		"a tenant":                       {auth.UserQuery{TenantID: "acme", Limit: 2}, []string{"acme/an_x%y@acme.test", "acme/ann@acme.test"}},
		"after a position in the tenant": {auth.UserQuery{TenantID: "acme", AfterTenant: "acme", AfterEmail: "ann@acme.test"}, []string{"acme/anna@acme.test", "acme/bob@acme.test"}},
		"after a position, every tenant": {auth.UserQuery{AfterTenant: "acme", AfterEmail: "bob@acme.test", Limit: 2}, []string{"default/ann@example.test", "default/ànn@example.test"}},
		"a prefix":                       {auth.UserQuery{EmailPrefix: "ann"}, []string{"acme/ann@acme.test", "acme/anna@acme.test", "default/ann@example.test", "zeta/ann@zeta.test"}},
		"a prefix in a tenant":           {auth.UserQuery{TenantID: "acme", EmailPrefix: "ann@"}, []string{"acme/ann@acme.test"}},
		"wildcards are letters":          {auth.UserQuery{EmailPrefix: "an_"}, []string{"acme/an_x%y@acme.test"}},
		"a prefix of one non-ASCII":      {auth.UserQuery{EmailPrefix: "à"}, []string{"default/ànn@example.test"}},
		"no match":                       {auth.UserQuery{EmailPrefix: "zz"}, []string{}},
		"disabled":                       {auth.UserQuery{Disabled: &yes}, []string{"zeta/ann@zeta.test"}},
		"enabled, a prefix":              {auth.UserQuery{Disabled: &no, EmailPrefix: "ann@z"}, []string{}},
	} {
		if diff := cmp.Diff(c.want, list(c.q)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func suiteUpdateUserStatusAndVerification(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	u := mustUser(t, s, "flags@example.test")
	mustSession(t, s, u, "flags-session", time.Hour)
	yes, no := true, false
	off, on := auth.StatusDisabled, auth.StatusActive
	got, err := s.UpdateUser(ctx, u.ID, auth.UserChanges{Status: &off, EmailVerified: &yes}, auth.Event{})
	if err != nil || got.Status != auth.StatusDisabled || got.EmailVerifiedAt == nil || !got.EmailVerifiedAt.Equal(clk.Now()) {
		t.Fatalf("disable and verify = %+v, %v", got, err)
	}
	if live, _ := s.ListSessions(ctx, u.ID); len(live) != 0 {
		t.Errorf("disabling through UpdateUser left %d sessions live", len(live))
	}
	clk.Advance(time.Hour)
	got, err = s.UpdateUser(ctx, u.ID, auth.UserChanges{Status: &on, EmailVerified: &yes}, auth.Event{})
	if err != nil || got.Status != auth.StatusActive || !got.EmailVerifiedAt.Equal(clk.Now().Add(-time.Hour)) {
		t.Errorf("enable, verify again = %+v, %v; want active and the first verification time kept", got, err)
	}
	if got, err = s.UpdateUser(ctx, u.ID, auth.UserChanges{EmailVerified: &no}, auth.Event{}); err != nil || got.EmailVerifiedAt != nil {
		t.Errorf("unverify = %+v, %v", got, err)
	}
}

func suiteDeleteUserErases(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	const addr = "gone@acme.test"
	u := mustTenantUser(t, s, "acme", addr)
	other := mustTenantUser(t, s, "acme", "stays@acme.test")
	twin := mustTenantUser(t, s, auth.DefaultTenantID, addr) // the same address in another tenant is another account
	mustSession(t, s, u, "gone-session", time.Hour)
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h")); err != nil {
		t.Fatal(err)
	}
	never := func(auth.FailureCounts) (time.Duration, time.Duration) { return time.Hour, 0 }
	for _, subject := range []string{"acme:" + addr, "default:" + addr} {
		if _, err := s.RecordFailure(ctx, subject, "10.0.0.1", never, auth.Event{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, ev := range []auth.Event{
		{UserID: u.ID, Kind: "login_failed", Detail: addr + ": wrong one-time code"},
		{TenantID: "acme", Kind: "login_throttled", Detail: addr},
		{Kind: "login_failed", Detail: "GONE@acme.test"}, // logged before events named their tenant
		{UserID: other.ID, Kind: "login_failed", Detail: "stays@acme.test"},
		{UserID: twin.ID, Kind: "login_failed", Detail: addr},
		{TenantID: auth.DefaultTenantID, Kind: "login_failed", Detail: addr},
	} {
		if err := s.RecordEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}

	if err := s.DeleteUser(ctx, u.ID, auth.Event{UserID: u.ID, TenantID: "acme", Kind: "user_deleted"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByID(ctx, u.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("the user reads %v after its deletion, want ErrNotFound", err)
	}
	if _, err := s.SessionForRefresh(ctx, Hash("gone-session")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("the session reads %v, want ErrNotFound", err)
	}
	if _, err := s.LiveCode(ctx, u.ID, auth.PurposeLogin); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("the code reads %v, want ErrNotFound", err)
	}
	waits := map[string]time.Duration{}
	for _, subject := range []string{"acme:" + addr, "default:" + addr} {
		w, err := s.LockedUntil(ctx, subject, "10.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		waits[subject] = w
	}
	if diff := cmp.Diff(map[string]time.Duration{"acme:" + addr: 0, "default:" + addr: time.Hour}, waits); diff != "" {
		t.Errorf("throttle waits after the deletion (-want +got):\n%s", diff)
	}
	events, err := s.ListEvents(ctx, auth.EventQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got [][3]string
	for _, e := range events {
		if e.Kind != "" && e.Kind != "login" {
			got = append(got, [3]string{e.UserID, e.TenantID, e.Detail})
		}
	}
	want := [][3]string{
		{u.ID, "acme", ""}, // user_deleted keeps the id
		{"", auth.DefaultTenantID, addr},
		{twin.ID, auth.DefaultTenantID, addr},
		{other.ID, "acme", "stays@acme.test"},
		{"", "", "[erased]"},
		{"", "acme", "[erased]"},
		{u.ID, "acme", "[erased]: wrong one-time code"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events after the deletion, newest first, as (user, tenant, detail) (-want +got):\n%s", diff)
	}
	if err := s.DeleteUser(ctx, u.ID, auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a second DeleteUser = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, "not-a-uuid", auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("DeleteUser(malformed id) = %v, want ErrNotFound", err)
	}
}

func suiteEventLog(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	start := clk.Now()
	u := auth.User{TenantID: "acme", Email: "log@acme.test"}
	actor := auth.Actor{Type: auth.ActorAdminKey, ID: "k1", Name: "ops"}
	if err := s.CreateUser(ctx, &u, "h", auth.Event{Kind: "user_created", Actor: actor}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	for _, ev := range []auth.Event{
		{UserID: u.ID, Kind: "login_failed", IP: "10.0.0.1", UserAgent: "ua", Detail: "d"},
		{Kind: "login_failed", TenantID: auth.DefaultTenantID},
	} {
		if err := s.RecordEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Minute)
	mustSession(t, s, u, "log-session", time.Hour)

	type row struct {
		Kind, User, Tenant, Detail string
		Actor                      auth.Actor
		At                         time.Time
	}
	list := func(q auth.EventQuery) []row {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 100
		}
		events, err := s.ListEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := []row{}
		for i, e := range events {
			if i > 0 && e.ID >= events[i-1].ID {
				t.Errorf("ids not descending: %d after %d", e.ID, events[i-1].ID)
			}
			out = append(out, row{e.Kind, e.UserID, e.TenantID, e.Detail, e.Actor, e.CreatedAt})
		}
		return out
	}
	login := row{"login", u.ID, "acme", "", auth.Actor{}, start.Add(2 * time.Minute)}
	failed := row{"login_failed", u.ID, "acme", "d", auth.Actor{}, start.Add(time.Minute)}
	anon := row{"login_failed", "", auth.DefaultTenantID, "", auth.Actor{}, start.Add(time.Minute)}
	created := row{"user_created", u.ID, "acme", "", actor, start}
	all := list(auth.EventQuery{})
	if diff := cmp.Diff([]row{login, anon, failed, created}, all); diff != "" {
		t.Fatalf("every event, newest first (-want +got):\n%s", diff)
	}
	events, err := s.ListEvents(ctx, auth.EventQuery{Limit: 2})
	if err != nil || len(events) != 2 {
		t.Fatalf("a page of 2 = %+v, %v", events, err)
	}
	for name, c := range map[string]struct {
		q    auth.EventQuery
		want []row
	}{
		"after the first page": {auth.EventQuery{BeforeID: events[1].ID}, []row{failed, created}},
		"a tenant":             {auth.EventQuery{TenantID: "acme"}, []row{login, failed, created}},
		"a user":               {auth.EventQuery{UserID: u.ID, Limit: 1}, []row{login}},
		"a kind":               {auth.EventQuery{Kind: "login_failed"}, []row{anon, failed}},
		"since":                {auth.EventQuery{Since: start.Add(time.Minute)}, []row{login, anon, failed}},
		"until":                {auth.EventQuery{Until: start.Add(time.Minute)}, []row{created}},
		"an unknown user":      {auth.EventQuery{UserID: "b0d1e0a1-0000-4000-8000-000000000000"}, []row{}},
	} {
		if diff := cmp.Diff(c.want, list(c.q)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func suiteAdminKeys(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	global := auth.AdminKey{Name: "ops"}
	if err := s.CreateAdminKey(ctx, &global, Hash("lak_global"), auth.Event{Kind: "admin_key_created"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	scoped := auth.AdminKey{ID: "5e5e5e5e-0000-4000-8000-000000000000", Name: "acme ci", TenantID: "acme"}
	if err := s.CreateAdminKey(ctx, &scoped, Hash("lak_acme"), auth.Event{}); err != nil {
		t.Fatal(err)
	}
	if global.ID == "" || scoped.ID != "5e5e5e5e-0000-4000-8000-000000000000" || !scoped.CreatedAt.Equal(clk.Now()) {
		t.Errorf("created keys %+v and %+v: want an id made for the first and the given one kept", global, scoped)
	}
	if err := s.CreateAdminKey(ctx, &auth.AdminKey{Name: "x", TenantID: "nope"}, Hash("lak_nope"), auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a key of an unknown tenant = %v, want ErrNotFound", err)
	}
	got, err := s.AdminKeyByHash(ctx, Hash("lak_acme"))
	if diff := cmp.Diff(scoped, got); err != nil || diff != "" {
		t.Errorf("AdminKeyByHash = %v (-created +read):\n%s", err, diff)
	}
	if _, err := s.AdminKeyByHash(ctx, Hash("lak_unknown")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("an unknown key = %v, want ErrNotFound", err)
	}

	// A use is recorded at most once per interval.
	if err := s.TouchAdminKey(ctx, global.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	used := clk.Now()
	clk.Advance(30 * time.Second)
	if err := s.TouchAdminKey(ctx, global.ID, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AdminKeyByHash(ctx, Hash("lak_global")); got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("last used %v, want %v (the touch within the interval writes nothing)", got.LastUsedAt, used)
	}

	if err := s.RevokeAdminKey(ctx, global.ID, auth.Event{Kind: "admin_key_revoked"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAdminKey(ctx, global.ID, auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoking twice = %v, want ErrNotFound", err)
	}
	if err := s.RevokeAdminKey(ctx, "not-a-uuid", auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoking a malformed id = %v, want ErrNotFound", err)
	}
	keys, err := s.ListAdminKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != global.ID || keys[0].RevokedAt == nil || keys[1].RevokedAt != nil {
		t.Errorf("ListAdminKeys = %+v, %v; want the revoked global key, then the live acme key", keys, err)
	}

	// A tenant's keys go with it.
	if err := s.DeleteTenant(ctx, "acme", false, auth.Event{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminKeyByHash(ctx, Hash("lak_acme")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("the key of a deleted tenant reads %v, want ErrNotFound", err)
	}
}

func suitePasswordWithTheCode(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	u := mustUser(t, s, "invited@example.test")
	iss, err := issue(s, clk.Now(), u.ID, auth.PurposeSignup, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenSession(ctx, auth.NewSession{CodeID: iss.CodeID, UserID: u.ID, TenantID: u.TenantID, MarkVerified: true,
		AMR: "pwd otp", RefreshRotation: true, IdleTTL: time.Hour, MaxAge: time.Hour, RefreshHash: Hash("invited"), PasswordHash: "chosen"}); err != nil {
		t.Fatal(err)
	}
	c, err := s.UserByEmail(ctx, u.TenantID, u.Email)
	if err != nil || c.PasswordHash != "chosen" || c.User.EmailVerifiedAt == nil {
		t.Errorf("after a session opened with a password: %+v, %v; want the chosen hash and a verified address", c, err)
	}
}
