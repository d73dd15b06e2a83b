package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/mail/mailtest"
	"github.com/latch-auth/latch/internal/store"
)

// admin sends an admin API request with a key, the body as JSON.
func admin(t *testing.T, h *apptest.Instance, key, method, path string, body any) apptest.Response {
	t.Helper()
	return h.Do(t, method, path, body, apptest.Bearer(key)...)
}

func adminJSON[T any](t *testing.T, h *apptest.Instance, key, method, path string, body any, status int) T {
	t.Helper()
	r := admin(t, h, key, method, path, body)
	apptest.WantStatus(t, r, status)
	var v T
	r.JSON(t, &v)
	return v
}

func emails(users []apptest.AdminUser) []string {
	out := []string{}
	for _, u := range users {
		out = append(out, u.TenantID+"/"+u.Email)
	}
	return out
}

// TestAdminKeyOfATenantSeesOnlyItsTenant: a key scoped to acme reads and changes acme alone. Anything
// of globex answers 404, byte for byte the answer for something that does not exist, so the key
// cannot even learn that globex or its users exist; and nothing of globex changes.
func TestAdminKeyOfATenantSeesOnlyItsTenant(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		h.CreateTenant(t, "acme", apptest.Settings{})
		h.CreateTenant(t, "globex", apptest.Settings{SecondStep: apptest.Ptr(auth.SecondStepOff)})
		ann := h.CreateAccount(t, "acme", "ann@acme.test", apptest.Password)
		gus := h.CreateAccount(t, "globex", "gus@globex.test", apptest.Password)
		r := h.Post(t, "/t/globex/v2/auth/login", apptest.Credentials("gus@globex.test", apptest.Password))
		apptest.WantStatus(t, r, http.StatusOK)
		gusPair := r.TokenPair(t)
		gusSession := apptest.Claim(t, gusPair.AccessToken, "sid")
		acme := h.AdminKey(t, "acme ci", "acme")
		global := h.AdminKey(t, "ops", "")

		users := adminJSON[apptest.Page[apptest.AdminUser]](t, h, acme, http.MethodGet, "/v2/admin/users", nil, http.StatusOK)
		if diff := cmp.Diff([]string{"acme/ann@acme.test"}, emails(users.Items)); diff != "" {
			t.Errorf("the acme key's user list (-want +got):\n%s", diff)
		}
		tenants := adminJSON[apptest.Page[struct{ ID string }]](t, h, acme, http.MethodGet, "/v2/admin/tenants", nil, http.StatusOK)
		if len(tenants.Items) != 1 || tenants.Items[0].ID != "acme" || tenants.NextCursor != nil {
			t.Errorf("the acme key's tenant list = %+v, want acme alone", tenants)
		}
		events := adminJSON[apptest.Page[apptest.AdminEvent]](t, h, acme, http.MethodGet, "/v2/admin/events?limit=200", nil, http.StatusOK)
		for _, e := range events.Items {
			if e.TenantID != "acme" {
				t.Errorf("the acme key reads an event of tenant %q: %+v", e.TenantID, e)
			}
		}
		if len(events.Items) == 0 {
			t.Error("the acme key reads no event at all")
		}

		const nobody = "00000000-0000-4000-8000-000000000000"
		for _, c := range []struct {
			method, globex, unknown string
			body                    any
		}{
			{http.MethodGet, "/v2/admin/users/" + gus.ID, "/v2/admin/users/" + nobody, nil},
			{http.MethodPatch, "/v2/admin/users/" + gus.ID, "/v2/admin/users/" + nobody, map[string]any{"role": "owned"}},
			{http.MethodDelete, "/v2/admin/users/" + gus.ID, "/v2/admin/users/" + nobody, nil},
			{http.MethodGet, "/v2/admin/users/" + gus.ID + "/sessions", "/v2/admin/users/" + nobody + "/sessions", nil},
			{http.MethodDelete, "/v2/admin/users/" + gus.ID + "/sessions", "/v2/admin/users/" + nobody + "/sessions", nil},
			{http.MethodDelete, "/v2/admin/users/" + gus.ID + "/sessions/" + gusSession, "/v2/admin/users/" + nobody + "/sessions/" + gusSession, nil},
			{http.MethodGet, "/v2/admin/tenants/globex", "/v2/admin/tenants/nope", nil},
			{http.MethodPatch, "/v2/admin/tenants/globex", "/v2/admin/tenants/nope", map[string]any{"name": "Owned"}},
			{http.MethodDelete, "/v2/admin/tenants/globex?force=true", "/v2/admin/tenants/nope?force=true", nil},
			{http.MethodGet, "/v2/admin/users?tenantId=globex", "/v2/admin/users?tenantId=nope", nil},
			{http.MethodGet, "/v2/admin/events?tenantId=globex", "/v2/admin/events?tenantId=nope", nil},
			{http.MethodGet, "/t/globex/v2/admin/users", "/t/nope/v2/admin/users", nil},
			{http.MethodGet, "/t/globex/v2/admin/users/" + ann.ID, "/t/nope/v2/admin/users/" + ann.ID, nil},
		} {
			got := admin(t, h, acme, c.method, c.globex, c.body)
			apptest.WantProblem(t, got, http.StatusNotFound, "not_found")
			want := admin(t, h, acme, c.method, c.unknown, c.body)
			if diff := cmp.Diff(apptest.WithoutRequestID(t, want), apptest.WithoutRequestID(t, got)); diff != "" {
				t.Errorf("%s %s answers otherwise than %s (-unknown +globex):\n%s", c.method, c.globex, c.unknown, diff)
			}
		}
		// A body naming another tenant is refused as one naming no tenant at all.
		named := func(tenant string) apptest.Response {
			return admin(t, h, acme, http.MethodPost, "/v2/admin/users", map[string]any{"email": "new@globex.test", "password": apptest.Password, "tenantId": tenant})
		}
		p := apptest.WantProblem(t, named("globex"), http.StatusBadRequest, "validation_failed")
		if diff := cmp.Diff([]string{"tenantId"}, p.Fields()); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(apptest.WithoutRequestID(t, named("nope")), apptest.WithoutRequestID(t, named("globex"))); diff != "" {
			t.Errorf("a body naming globex answers otherwise than one naming no tenant (-unknown +globex):\n%s", diff)
		}
		// Only a key for every tenant makes or deletes tenants.
		apptest.WantProblem(t, admin(t, h, acme, http.MethodPost, "/v2/admin/tenants", map[string]any{"id": "initech"}), http.StatusForbidden, "forbidden")
		apptest.WantProblem(t, admin(t, h, acme, http.MethodDelete, "/v2/admin/tenants/acme", nil), http.StatusForbidden, "forbidden")

		// Nothing of globex changed.
		got := adminJSON[apptest.AdminUser](t, h, global, http.MethodGet, "/v2/admin/users/"+gus.ID, nil, http.StatusOK)
		if got.Role != auth.DefaultRole || got.Disabled {
			t.Errorf("gus after the acme key's attempts: %+v", got)
		}
		h.Rotate(t, gusPair.RefreshToken) // the session is live
		adminJSON[struct{ ID string }](t, h, global, http.MethodGet, "/v2/admin/tenants/globex", nil, http.StatusOK)
		if n := len(adminJSON[apptest.Page[apptest.AdminEvent]](t, h, global, http.MethodGet, "/v2/admin/events?tenantId=globex&kind=user_updated", nil, http.StatusOK).Items); n != 0 {
			t.Errorf("%d user_updated events in globex", n)
		}

		// The acme key works on acme, with or without the prefix; a key for every tenant under /t/acme
		// sees acme as the acme key does.
		adminJSON[apptest.AdminUser](t, h, acme, http.MethodGet, "/t/acme/v2/admin/users/"+ann.ID, nil, http.StatusOK)
		patched := adminJSON[apptest.AdminUser](t, h, acme, http.MethodPatch, "/v2/admin/users/"+ann.ID, map[string]any{"role": "owner"}, http.StatusOK)
		if patched.Role != "owner" {
			t.Errorf("ann's role after the acme key's change: %q", patched.Role)
		}
		narrowed := adminJSON[apptest.Page[apptest.AdminUser]](t, h, global, http.MethodGet, "/t/acme/v2/admin/users", nil, http.StatusOK)
		if diff := cmp.Diff([]string{"acme/ann@acme.test"}, emails(narrowed.Items)); diff != "" {
			t.Errorf("the global key under /t/acme (-want +got):\n%s", diff)
		}
		apptest.WantProblem(t, admin(t, h, global, http.MethodGet, "/t/acme/v2/admin/users/"+gus.ID, nil), http.StatusNotFound, "not_found")
		all := adminJSON[apptest.Page[apptest.AdminUser]](t, h, global, http.MethodGet, "/v2/admin/users", nil, http.StatusOK)
		if diff := cmp.Diff([]string{"acme/ann@acme.test", "globex/gus@globex.test"}, emails(all.Items)); diff != "" {
			t.Errorf("the global key's user list (-want +got):\n%s", diff)
		}
	})
}

// TestAdminDeletionErasesTheAddress: after a user's deletion no row of any table holds the address.
// The tables and columns are read from the schema, so a table added later is searched too; before
// the deletion the same search finds the address in several, so it is known to work.
func TestAdminDeletionErasesTheAddress(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		key := h.AdminKey(t, "ops", "")
		const addr, pw = "erase.me@example.test", "the invitee's own password"
		// A failure against the address before its account exists: the event names no user.
		apptest.WantProblem(t, h.LoginStep(t, "Erase.Me@Example.test", "a guess"), http.StatusUnauthorized, "invalid_credentials")
		u := adminJSON[apptest.AdminUser](t, h, key, http.MethodPost, "/v2/admin/users",
			map[string]any{"email": "Erase.Me@Example.test", "invite": true, "metadata": map[string]any{"crm": 42}}, http.StatusCreated)
		r := h.Post(t, "/v2/auth/validate-register", map[string]string{"email": addr, "emailToken": h.CodeFor(t, addr), "password": pw})
		apptest.WantStatus(t, r, http.StatusOK)
		first := r.TokenPair(t)
		h.Rotate(t, first.RefreshToken)
		other := h.Login(t, addr, pw)
		// An authenticator, and a wrong code from it: an event whose detail holds the address.
		secret, _ := h.EnableTOTP(t, other.AccessToken, pw)
		wrong := apptest.TOTPCode(t, secret, h.Clock.Now().Add(-time.Hour))
		apptest.WantProblem(t, h.LoginOTP(t, addr, pw, wrong), http.StatusUnauthorized, "invalid_otp")
		// A failure with the account: an event of the user, and a throttle row keyed by the address.
		apptest.WantProblem(t, h.LoginStep(t, addr, "wrong password"), http.StatusUnauthorized, "invalid_credentials")

		before := h.RowsHolding(t, addr)
		for _, want := range []string{"users.email", "outbox.to_addr", "security_events.detail", "login_failures.subject"} {
			if !slices.Contains(before, want) {
				t.Errorf("before the deletion the search finds the address in %v, not in %s", before, want)
			}
		}

		apptest.WantStatus(t, admin(t, h, key, http.MethodDelete, "/v2/admin/users/"+u.ID, nil), http.StatusNoContent)
		if after := h.RowsHolding(t, addr); len(after) != 0 {
			t.Errorf("after the deletion the address is still in %v", after)
		}
		apptest.WantProblem(t, admin(t, h, key, http.MethodGet, "/v2/admin/users/"+u.ID, nil), http.StatusNotFound, "not_found")
		apptest.WantProblem(t, h.Refresh(t, other.RefreshToken), http.StatusUnauthorized, "invalid_refresh_token")

		// The events keep the user id.
		events := apptest.AdminAll[apptest.AdminEvent](t, h, key, "/v2/admin/events?userId="+u.ID, 50)
		var kinds []string
		for _, e := range events {
			kinds = append(kinds, e.Kind)
		}
		for _, want := range []string{"user_deleted", "login_failed", "login", "signup_validated", "user_created", "totp_enabled"} {
			if !slices.Contains(kinds, want) {
				t.Errorf("the deleted user's events are %v, without %s", kinds, want)
			}
		}
		// The address can sign up again, as a new account.
		h.Clock.Advance(h.Config.Codes.ResendCooldown)
		h.Signup(t, addr, apptest.Password)
	})
}

// TestAdminPagesAreStableUnderConcurrentInserts: paging through users and events while others are
// created meanwhile shows every item that existed at the start exactly once, in order, and never an
// item twice; a cursor altered by hand, or carried to another listing, is refused.
func TestAdminPagesAreStableUnderConcurrentInserts(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		key := h.AdminKey(t, "ops", "")
		hash := h.HashPassword(t, apptest.Password)
		var existing []string
		for i := range 40 {
			existing = append(existing, fmt.Sprintf("user%02d@example.test", i))
		}
		h.InsertVerifiedUsers(t, hash, existing...)

		// A writer adds users before, among and after the existing ones, and their events, while the
		// pages are read; between two pages a batch more is added for certain. The writer stops after
		// a bounded number, so the listing has an end.
		insert := func(i int) error {
			for _, prefix := range []string{"a", "user", "zz"} {
				u := auth.User{Email: fmt.Sprintf("%s-new%05d@example.test", prefix, i)}
				if err := h.App.Store.CreateUser(context.Background(), &u, hash, auth.Event{Kind: "user_created"}); err != nil {
					return err
				}
			}
			return nil
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var inserted atomic.Int64
		wg.Go(func() {
			for i := range 50 {
				select {
				case <-stop:
					return
				default:
				}
				if err := insert(i); err != nil {
					t.Error(err)
					return
				}
				inserted.Add(3)
			}
		})
		var seen []string
		cursor := ""
		for pages := 0; ; pages++ {
			p := apptest.AdminPage[apptest.AdminUser](t, h, key, "/v2/admin/users?tenantId=default&limit=7&cursor="+cursor)
			seen = append(seen, emails(p.Items)...)
			if p.NextCursor == nil {
				break
			}
			if pages > 200 {
				t.Fatalf("no last page after %d pages", pages)
			}
			cursor = *p.NextCursor
			if err := insert(100_000 + pages); err != nil {
				t.Fatal(err)
			}
		}
		var eventIDs []int64
		cursor = ""
		for pages := 0; ; pages++ {
			p := apptest.AdminPage[apptest.AdminEvent](t, h, key, "/v2/admin/events?kind=user_created&limit=5&cursor="+cursor)
			for _, e := range p.Items {
				eventIDs = append(eventIDs, e.ID)
			}
			if p.NextCursor == nil {
				break
			}
			if pages > 200 {
				t.Fatalf("no last page of events after %d pages", pages)
			}
			cursor = *p.NextCursor
		}
		close(stop)
		wg.Wait()

		if !slices.IsSorted(seen) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
			t.Errorf("the pages are not in strictly ascending order, or repeat a user: %v", seen)
		}
		for _, e := range existing {
			if !slices.Contains(seen, "default/"+e) {
				t.Errorf("%s, there from the start, was on no page", e)
			}
		}
		if !slices.IsSortedFunc(eventIDs, func(a, b int64) int { return int(b - a) }) || len(slices.Compact(slices.Clone(eventIDs))) != len(eventIDs) {
			t.Errorf("event ids not strictly descending across pages: %v", eventIDs)
		}
		t.Logf("the writer inserted %d users meanwhile", inserted.Load())

		first := apptest.AdminPage[apptest.AdminUser](t, h, key, "/v2/admin/users?tenantId=default&limit=2")
		if first.NextCursor == nil {
			t.Fatal("no second page")
		}
		good := *first.NextCursor
		payload, sig, _ := strings.Cut(good, ".")
		forged, _ := json.Marshal([]string{"default", "user30@example.test"})
		const listing = "/v2/admin/users?tenantId=default&limit=2&cursor="
		for name, path := range map[string]string{
			"not a cursor":        listing + "abc",
			"another position":    listing + base64.RawURLEncoding.EncodeToString(forged) + "." + sig,
			"a flipped signature": listing + payload + "." + strings.Map(func(r rune) rune { return r ^ 1 }, sig),
			"no signature":        listing + payload,
			"another filter":      listing + good + "&emailPrefix=user",
			"no tenant filter":    "/v2/admin/users?limit=2&cursor=" + good,
		} {
			p := apptest.WantProblem(t, admin(t, h, key, http.MethodGet, path, nil), http.StatusBadRequest, "validation_failed")
			if diff := cmp.Diff([]string{"cursor"}, p.Fields()); diff != "" {
				t.Errorf("%s: fields (-want +got):\n%s", name, diff)
			}
		}
		apptest.WantProblem(t, admin(t, h, key, http.MethodGet, "/v2/admin/events?cursor="+good, nil), http.StatusBadRequest, "validation_failed")
		// A key of a tenant cannot use a cursor of the same listing read by another key's scope.
		h.CreateTenant(t, "acme", apptest.Settings{})
		acme := h.AdminKey(t, "acme", "acme")
		apptest.WantProblem(t, admin(t, h, acme, http.MethodGet, "/v2/admin/users?limit=2&cursor="+good, nil), http.StatusBadRequest, "validation_failed")
		// The genuine cursor still works.
		apptest.AdminPage[apptest.AdminUser](t, h, key, "/v2/admin/users?tenantId=default&limit=2&cursor="+good)
	})
}

// TestEveryAdminWriteIsAnEventNamingTheKey: each change made through the admin API is one security
// event whose actor is the key (its id and name), and the key's secret is in no row of the database.
func TestEveryAdminWriteIsAnEventNamingTheKey(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		key := h.AdminKey(t, "ops team", "")
		keys, err := h.App.Service.AdminKeys(context.Background())
		if err != nil || len(keys) != 1 {
			t.Fatalf("admin keys = %+v, %v", keys, err)
		}
		keyID := keys[0].ID
		ctx := context.Background()
		mark, err := h.App.Store.ListEvents(ctx, auth.EventQuery{Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		since := int64(0)
		if len(mark) > 0 {
			since = mark[0].ID
		}
		var sid string
		writes := []struct {
			kind   string
			method string
			path   func() string
			body   any
			status int
		}{
			{"tenant_created", http.MethodPost, func() string { return "/v2/admin/tenants" }, map[string]any{"id": "acme", "name": "Acme",
				"settings": map[string]any{"secondStep": "off"}}, http.StatusCreated},
			{"tenant_updated", http.MethodPatch, func() string { return "/v2/admin/tenants/acme" }, map[string]any{"settings": map[string]any{"appName": "Acme Pay"}}, http.StatusOK},
			{"user_created", http.MethodPost, func() string { return "/v2/admin/users" }, map[string]any{"email": "ann@acme.test", "password": apptest.Password, "tenantId": "acme"}, http.StatusCreated},
		}
		var userID string
		for _, w := range writes {
			r := admin(t, h, key, w.method, w.path(), w.body)
			apptest.WantStatus(t, r, w.status)
			if w.kind == "user_created" {
				var u apptest.AdminUser
				r.JSON(t, &u)
				userID = u.ID
			}
		}
		login := func() {
			r := h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials("ann@acme.test", apptest.Password))
			apptest.WantStatus(t, r, http.StatusOK)
			sid = apptest.Claim(t, r.TokenPair(t).AccessToken, "sid")
		}
		login()
		more := []struct {
			kind, method, path string
			body               any
			status             int
		}{
			{"user_updated", http.MethodPatch, "/v2/admin/users/" + userID, map[string]any{"role": "owner", "metadata": map[string]any{"plan": "pro"}}, http.StatusOK},
			{"session_revoked", http.MethodDelete, "/v2/admin/users/" + userID + "/sessions/" + sid, nil, http.StatusNoContent},
		}
		for _, w := range more {
			apptest.WantStatus(t, admin(t, h, key, w.method, w.path, w.body), w.status)
		}
		r := h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials("ann@acme.test", apptest.Password))
		apptest.WantStatus(t, r, http.StatusOK)
		h.EnableTOTP(t, r.TokenPair(t).AccessToken, apptest.Password) // its session stays for sessions_revoked
		for _, w := range []struct {
			kind, method, path string
			status             int
		}{
			{"totp_reset", http.MethodDelete, "/v2/admin/users/" + userID + "/totp", http.StatusNoContent},
			{"sessions_revoked", http.MethodDelete, "/v2/admin/users/" + userID + "/sessions", http.StatusNoContent},
			{"user_deleted", http.MethodDelete, "/v2/admin/users/" + userID, http.StatusNoContent},
			{"tenant_deleted", http.MethodDelete, "/v2/admin/tenants/acme", http.StatusNoContent},
		} {
			apptest.WantStatus(t, admin(t, h, key, w.method, w.path, nil), w.status)
		}

		events, err := h.App.Store.ListEvents(ctx, auth.EventQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var byKey []string
		for _, e := range slices.Backward(events) {
			if e.ID <= since || e.Actor.Type == "" {
				continue
			}
			if e.Actor != (auth.Actor{Type: auth.ActorAdminKey, ID: keyID, Name: "ops team"}) {
				t.Errorf("event %s has actor %+v, want the key %s (ops team)", e.Kind, e.Actor, keyID)
			}
			byKey = append(byKey, e.Kind)
		}
		want := []string{"tenant_created", "tenant_updated", "user_created", "user_updated", "session_revoked", "totp_reset", "sessions_revoked", "user_deleted", "tenant_deleted"}
		if diff := cmp.Diff(want, byKey); diff != "" {
			t.Errorf("events naming the key, oldest first (-want +got):\n%s", diff)
		}
		// The API shows the same actor.
		page := apptest.AdminPage[apptest.AdminEvent](t, h, key, "/v2/admin/events?kind=user_updated")
		if len(page.Items) != 1 || page.Items[0].Actor == nil || page.Items[0].Actor.ID != keyID || page.Items[0].Actor.Name != "ops team" ||
			page.Items[0].Actor.Type != "admin_key" || page.Items[0].Detail != "role, metadata" {
			t.Errorf("user_updated events = %+v", page.Items)
		}
		if where := h.RowsHolding(t, key); len(where) != 0 {
			t.Errorf("the admin key's secret is stored in %v", where)
		}
	})
}

// TestAdminKeysAreChecked: no key, something else than a key, an unknown key and a revoked key all
// answer 401 admin_key_required; revocation applies to the very next request.
func TestAdminKeysAreChecked(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	key := h.AdminKey(t, "ops", "")
	pair := h.Signup(t, "someone@example.test", apptest.Password)
	apptest.WantStatus(t, admin(t, h, key, http.MethodGet, "/v2/admin/users", nil), http.StatusOK)
	unknown := "lak_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for name, headers := range map[string][]string{
		"no header":        nil,
		"basic":            {"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+key))},
		"an access token":  apptest.Bearer(pair.AccessToken),
		"a refresh token":  apptest.Bearer(pair.RefreshToken),
		"a truncated key":  apptest.Bearer(key[:20]),
		"not base64url":    apptest.Bearer("lak_" + strings.Repeat("!", 43)),
		"an unknown key":   apptest.Bearer(unknown),
		"the key, altered": apptest.Bearer(key[:len(key)-2] + "AA"),
	} {
		r := h.Get(t, "/v2/admin/users", headers...)
		apptest.WantProblem(t, r, http.StatusUnauthorized, "admin_key_required")
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
	}
	apptest.WantProblem(t, admin(t, h, key, http.MethodGet, "/v2/admin/nope", nil), http.StatusNotFound, "not_found")

	keys, err := h.App.Service.AdminKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.App.Service.RevokeAdminKey(context.Background(), keys[0].ID, apptest.Operator); err != nil {
		t.Fatal(err)
	}
	apptest.WantProblem(t, admin(t, h, key, http.MethodGet, "/v2/admin/users", nil), http.StatusUnauthorized, "admin_key_required")
	keys, _ = h.App.Service.AdminKeys(context.Background())
	if keys[0].LastUsedAt == nil || keys[0].RevokedAt == nil {
		t.Errorf("the key reads %+v: want its use and its revocation recorded", keys[0])
	}
}

// TestAdminBadInput: every malformed request to the admin API is a 4xx problem naming what is wrong,
// never a 500.
func TestAdminBadInput(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		key := h.AdminKey(t, "ops", "")
		h.CreateTenant(t, "acme", apptest.Settings{})
		ann := h.CreateAccount(t, "acme", "ann@acme.test", apptest.Password)
		over := `{"k":"` + strings.Repeat("v", auth.MaxMetadataBytes-7) + `"}` // one byte over 4 KiB
		for _, c := range []struct {
			method, path string
			body         any
			status       int
			code         string
			fields       []string
		}{
			{http.MethodPost, "/v2/admin/tenants", map[string]any{"id": "Acme Corp"}, 400, "validation_failed", []string{"id"}},
			{http.MethodPost, "/v2/admin/tenants", map[string]any{"id": "x", "settings": map[string]any{"secondStep": "sms", "mailFrom": "nope"}}, 400, "validation_failed", []string{"secondStep", "mailFrom"}},
			{http.MethodPost, "/v2/admin/tenants", map[string]any{"id": "x", "settings": "off"}, 400, "validation_failed", []string{"settings"}},
			{http.MethodPost, "/v2/admin/tenants", map[string]any{"id": "x", "settings": map[string]any{"routes": []int{1}}}, 400, "validation_failed", []string{"routes"}},
			{http.MethodPost, "/v2/admin/tenants", map[string]any{"id": "acme"}, 409, "tenant_exists", nil},
			{http.MethodPatch, "/v2/admin/tenants/default", map[string]any{"settings": map[string]any{"secondStep": "off"}}, 400, "validation_failed", []string{"settings"}},
			{http.MethodGet, "/v2/admin/tenants/Not%20A%20Slug", nil, 404, "not_found", nil},
			{http.MethodDelete, "/v2/admin/tenants/acme", nil, 409, "tenant_has_users", nil},
			{http.MethodDelete, "/v2/admin/tenants/acme?force=maybe", nil, 400, "validation_failed", []string{"force"}},
			{http.MethodDelete, "/v2/admin/tenants/default?force=true", nil, 400, "validation_failed", []string{"id"}},
			{http.MethodPost, "/v2/admin/users", map[string]any{}, 400, "validation_failed", []string{"email", "password"}},
			{http.MethodPost, "/v2/admin/users", map[string]any{"email": "x@example.test", "invite": true, "emailVerified": true}, 400, "validation_failed", []string{"invite"}},
			{http.MethodPost, "/v2/admin/users", map[string]any{"email": "x@example.test", "password": apptest.Password, "tenantId": "nope"}, 400, "validation_failed", []string{"tenantId"}},
			{http.MethodPost, "/v2/admin/users", map[string]any{"email": "ann@acme.test", "password": apptest.Password, "tenantId": "acme"}, 409, "email_taken", nil},
			{http.MethodPost, "/v2/admin/users", map[string]any{"email": "x@example.test", "password": apptest.Password, "metadata": []int{}}, 400, "validation_failed", []string{"metadata"}},
			{http.MethodPatch, "/v2/admin/users/" + ann.ID, json.RawMessage(`{"metadata":` + over + `}`), 400, "validation_failed", []string{"metadata"}},
			{http.MethodPatch, "/v2/admin/users/" + ann.ID, map[string]any{"metadata": "x"}, 400, "validation_failed", []string{"metadata"}},
			{http.MethodPatch, "/v2/admin/users/" + ann.ID, map[string]any{"metadata": nil}, 400, "validation_failed", []string{"metadata"}},
			{http.MethodPatch, "/v2/admin/users/" + ann.ID, map[string]any{"role": ""}, 400, "validation_failed", []string{"role"}},
			{http.MethodPatch, "/v2/admin/users/" + ann.ID, map[string]any{"disabled": "yes"}, 400, "validation_failed", []string{"disabled"}},
			{http.MethodPatch, "/v2/admin/users/" + ann.ID, apptest.Raw{ContentType: "application/json", Body: strings.NewReader(`{"role":`)}, 400, "malformed_request", nil},
			{http.MethodPatch, "/v2/admin/users/" + ann.ID, json.RawMessage(`[]`), 400, "malformed_request", nil},
			{http.MethodGet, "/v2/admin/users/not-a-uuid", nil, 404, "not_found", nil},
			{http.MethodDelete, "/v2/admin/users/" + ann.ID + "/sessions/not-a-uuid", nil, 404, "not_found", nil},
			{http.MethodGet, "/v2/admin/users?limit=0", nil, 400, "validation_failed", []string{"limit"}},
			{http.MethodGet, "/v2/admin/users?limit=201", nil, 400, "validation_failed", []string{"limit"}},
			{http.MethodGet, "/v2/admin/users?limit=ten", nil, 400, "validation_failed", []string{"limit"}},
			{http.MethodGet, "/v2/admin/users?disabled=maybe", nil, 400, "validation_failed", []string{"disabled"}},
			{http.MethodGet, "/v2/admin/users?emailPrefix=%01", nil, 400, "validation_failed", []string{"emailPrefix"}},
			{http.MethodGet, "/v2/admin/users?tenantId=nope", nil, 404, "not_found", nil},
			{http.MethodGet, "/v2/admin/users?tenantId=Not%20A%20Slug", nil, 404, "not_found", nil},
			{http.MethodGet, "/v2/admin/events?since=yesterday", nil, 400, "validation_failed", []string{"since"}},
			{http.MethodGet, "/v2/admin/events?userId=someone", nil, 400, "validation_failed", []string{"userId"}},
			{http.MethodGet, "/v2/admin/events?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", nil, 400, "validation_failed", []string{"until"}},
			{http.MethodPut, "/v2/admin/users", nil, 405, "method_not_allowed", nil},
			{http.MethodPost, "/v2/admin/users", json.RawMessage(`{"email":"` + strings.Repeat("a", 70<<10) + `"}`), 413, "payload_too_large", nil},
		} {
			r := admin(t, h, key, c.method, c.path, c.body)
			if r.Status != c.status {
				t.Errorf("%s %s: status %d, want %d; body %s", c.method, c.path, r.Status, c.status, r.Body)
				continue
			}
			p := apptest.WantProblem(t, r, c.status, c.code)
			if diff := cmp.Diff(c.fields, p.Fields()); diff != "" {
				t.Errorf("%s %s: fields (-want +got):\n%s", c.method, c.path, diff)
			}
		}
		r := h.Do(t, http.MethodPost, "/v2/admin/users", apptest.Raw{ContentType: "application/x-www-form-urlencoded",
			Body: strings.NewReader("email=x%40example.test&password=long+enough+password")}, apptest.Bearer(key)...)
		apptest.WantProblem(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
}

// TestAdminInvitation: an invited user gets a sign-up code in an invitation email, valid for
// codes.invitation_ttl; accepting it with a password of their choosing verifies the address and
// signs them in, and the password works from then on. Until then no password logs them in.
func TestAdminInvitation(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	key := h.AdminKey(t, "ops", "")
	const addr, pw = "invitee@example.test", "chosen by the invitee"
	u := adminJSON[apptest.AdminUser](t, h, key, http.MethodPost, "/v2/admin/users", map[string]any{"email": addr, "invite": true, "role": "editor"}, http.StatusCreated)
	if u.EmailVerified || u.Role != "editor" || u.Disabled {
		t.Errorf("the invited user: %+v", u)
	}
	m := h.MailTo(t, addr)
	if !strings.Contains(m.Subject, "invited") || !strings.Contains(m.Text, "72 hours") {
		t.Errorf("the invitation: subject %q, text %q", m.Subject, m.Text)
	}
	code, ok := mailtest.ExtractCode(m.Text)
	if !ok {
		t.Fatalf("no code in %q", m.Text)
	}
	apptest.WantProblem(t, h.LoginStep(t, addr, pw), http.StatusUnauthorized, "invalid_credentials")
	h.Clock.Advance(71 * time.Hour)
	r := h.Post(t, "/v2/auth/validate-register", map[string]string{"email": addr, "emailToken": code, "password": pw})
	apptest.WantStatus(t, r, http.StatusOK)
	if role := apptest.Claim(t, r.TokenPair(t).AccessToken, "role"); role != "editor" {
		t.Errorf("role claim %q", role)
	}
	if got := adminJSON[apptest.AdminUser](t, h, key, http.MethodGet, "/v2/admin/users/"+u.ID, nil, http.StatusOK); !got.EmailVerified {
		t.Error("the invitee's address is not verified after accepting")
	}
	h.Login(t, addr, pw)
	// A password too short is refused before the code is spent.
	adminJSON[apptest.AdminUser](t, h, key, http.MethodPost, "/v2/admin/users", map[string]any{"email": "second@example.test", "invite": true}, http.StatusCreated)
	code2 := h.CodeFor(t, "second@example.test")
	p := apptest.WantProblem(t, h.Post(t, "/v2/auth/validate-register", map[string]string{"email": "second@example.test", "emailToken": code2, "password": "short"}),
		http.StatusBadRequest, "validation_failed")
	if diff := cmp.Diff([]string{"password"}, p.Fields()); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-register", map[string]string{"email": "second@example.test", "emailToken": code2, "password": pw}), http.StatusOK)
}

// TestOpenAPIDescribesTheAdminAPI checks every admin operation, with success and its errors, against
// the OpenAPI document (see docChecker).
func TestOpenAPIDescribesTheAdminAPI(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		gone := apptest.NewReceiver(t)
		gone.Answer(func(int) int { return http.StatusGone })
		h := apptest.New(t, d, apptest.WithWebhook(gone, "gone", time.Second, 3, "*"))
		c := newDocChecker(t, h)
		key := apptest.Bearer(h.AdminKey(t, "docs", ""))
		const post, get, patch, del = http.MethodPost, http.MethodGet, http.MethodPatch, http.MethodDelete

		c.call(http.StatusCreated, post, "/v2/admin/tenants", jsonBody(`{"id":"acme","name":"Acme","settings":{"secondStep":"off",
			"routes":{"base":"https://api.acme.test/"},"allowedOrigins":["https://app.acme.test"],"issuer":"https://auth.acme.test"}}`), key...)
		c.call(http.StatusCreated, post, "/v2/admin/tenants", jsonBody(`{"id":"globex"}`), key...)
		c.problem(http.StatusConflict, "tenant_exists", post, "/v2/admin/tenants", jsonBody(`{"id":"acme"}`), key...)
		c.problem(http.StatusBadRequest, "validation_failed", post, "/v2/admin/tenants", jsonBody(`{"id":"Not A Slug"}`), key...)
		c.problem(http.StatusBadRequest, "malformed_request", post, "/v2/admin/tenants", jsonBody(`{"id":`), key...)
		c.problem(http.StatusUnsupportedMediaType, "unsupported_media_type", post, "/v2/admin/tenants", formBody(map[string]string{"id": "form"}), key...)
		c.problem(http.StatusRequestEntityTooLarge, "payload_too_large", post, "/v2/admin/tenants", jsonBody(`{"id":"`+strings.Repeat("a", 70<<10)+`"}`), key...)
		var tenants apptest.Page[struct{ ID string }]
		c.call(http.StatusOK, get, "/v2/admin/tenants?limit=1", nil, key...).JSON(t, &tenants)
		if tenants.NextCursor == nil {
			t.Fatalf("three tenants in pages of one: %+v", tenants)
		}
		c.call(http.StatusOK, get, "/v2/admin/tenants?limit=1&cursor="+*tenants.NextCursor, nil, key...)
		c.problem(http.StatusBadRequest, "validation_failed", get, "/v2/admin/tenants?limit=1&cursor=x", nil, key...)
		c.call(http.StatusOK, get, "/v2/admin/tenants/acme", nil, key...)
		c.call(http.StatusOK, get, "/t/acme/v2/admin/tenants/acme", nil, key...)
		c.problem(http.StatusNotFound, "not_found", get, "/v2/admin/tenants/nope", nil, key...)
		c.call(http.StatusOK, patch, "/v2/admin/tenants/acme", jsonBody(`{"name":"Acme Corp","settings":{"appName":"Acme Pay"}}`), key...)
		c.problem(http.StatusBadRequest, "validation_failed", patch, "/v2/admin/tenants/acme", jsonBody(`{"settings":{"locale":"?"}}`), key...)
		c.problem(http.StatusUnauthorized, "admin_key_required", get, "/v2/admin/tenants", nil)

		var ann apptest.AdminUser
		c.call(http.StatusCreated, post, "/v2/admin/users", jsonBody(`{"email":"ann@acme.test","password":"correct horse battery","tenantId":"acme",
			"role":"owner","metadata":{"plan":"pro"}}`), key...).JSON(t, &ann)
		c.call(http.StatusCreated, post, "/v2/admin/users", jsonBody(`{"email":"invitee@example.test","invite":true}`), key...)
		c.problem(http.StatusConflict, "email_taken", post, "/v2/admin/users", jsonBody(`{"email":"ann@acme.test","password":"correct horse battery","tenantId":"acme"}`), key...)
		c.problem(http.StatusBadRequest, "validation_failed", post, "/v2/admin/users", jsonBody(`{"email":"nope"}`), key...)
		c.call(http.StatusOK, get, "/v2/admin/users?tenantId=acme&emailPrefix=an&disabled=false&limit=10", nil, key...)
		c.problem(http.StatusNotFound, "not_found", get, "/v2/admin/users?tenantId=nope", nil, key...)
		c.problem(http.StatusBadRequest, "validation_failed", get, "/v2/admin/users?limit=1000", nil, key...)
		c.call(http.StatusOK, get, "/v2/admin/users/"+ann.ID, nil, key...)
		c.problem(http.StatusNotFound, "not_found", get, "/v2/admin/users/"+ann.ID+"x", nil, key...)
		c.call(http.StatusOK, patch, "/v2/admin/users/"+ann.ID, jsonBody(`{"emailVerified":false,"disabled":false,"role":"member","metadata":{}}`), key...)
		c.problem(http.StatusBadRequest, "validation_failed", patch, "/v2/admin/users/"+ann.ID, jsonBody(`{"metadata":[]}`), key...)

		login := func() string {
			r := h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials("ann@acme.test", apptest.Password))
			apptest.WantStatus(t, r, http.StatusOK)
			return apptest.Claim(t, r.TokenPair(t).AccessToken, "sid")
		}
		sid := login()
		c.call(http.StatusOK, get, "/v2/admin/users/"+ann.ID+"/sessions", nil, key...)
		c.call(http.StatusNoContent, del, "/v2/admin/users/"+ann.ID+"/sessions/"+sid, nil, key...)
		c.problem(http.StatusNotFound, "not_found", del, "/v2/admin/users/"+ann.ID+"/sessions/"+sid, nil, key...)
		login()
		c.call(http.StatusNoContent, del, "/v2/admin/users/"+ann.ID+"/sessions", nil, key...)
		c.problem(http.StatusNotFound, "not_found", get, "/v2/admin/users/"+ann.ID+"x/sessions", nil, key...)

		r := h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials("ann@acme.test", apptest.Password))
		apptest.WantStatus(t, r, http.StatusOK)
		h.EnableTOTP(t, r.TokenPair(t).AccessToken, apptest.Password)
		var withTOTP apptest.AdminUser
		c.call(http.StatusOK, get, "/v2/admin/users/"+ann.ID, nil, key...).JSON(t, &withTOTP)
		if !withTOTP.TOTPEnabled {
			t.Error("totpEnabled is false for a user with an authenticator")
		}
		c.call(http.StatusNoContent, del, "/v2/admin/users/"+ann.ID+"/totp", nil, key...)
		c.problem(http.StatusConflict, "totp_not_enabled", del, "/v2/admin/users/"+ann.ID+"/totp", nil, key...)
		c.problem(http.StatusNotFound, "not_found", del, "/v2/admin/users/"+ann.ID+"x/totp", nil, key...)
		apptest.WantStatus(t, h.Post(t, "/t/acme/v2/auth/login", apptest.Credentials("ann@acme.test", apptest.Password)), http.StatusOK)

		start := h.Clock.Now().Add(-time.Hour)
		c.call(http.StatusOK, get, "/v2/admin/events?userId="+ann.ID+"&kind=session_revoked&since="+apptest.Since(start)+"&until="+apptest.Since(start.Add(2*time.Hour)), nil, key...)
		c.call(http.StatusOK, get, "/v2/admin/events?tenantId=acme&limit=2", nil, key...)
		c.problem(http.StatusBadRequest, "validation_failed", get, "/v2/admin/events?since=bad", nil, key...)
		c.problem(http.StatusNotFound, "not_found", get, "/v2/admin/events?tenantId=nope", nil, key...)

		dead := h.WaitDelivery(t, strings.TrimPrefix(key[1], "Bearer "), "dead", "user.created")
		c.call(http.StatusOK, get, "/v2/admin/webhooks/deliveries?status=dead&limit=1", nil, key...)
		c.call(http.StatusOK, get, "/v2/admin/webhooks/deliveries?tenantId=acme", nil, key...)
		c.problem(http.StatusBadRequest, "validation_failed", get, "/v2/admin/webhooks/deliveries?status=lost", nil, key...)
		c.problem(http.StatusNotFound, "not_found", get, "/v2/admin/webhooks/deliveries?tenantId=nope", nil, key...)
		c.call(http.StatusAccepted, post, "/v2/admin/webhooks/deliveries/"+dead.ID+"/retry", nil, key...)
		c.problem(http.StatusNotFound, "not_found", post, "/v2/admin/webhooks/deliveries/"+dead.ID+"x/retry", nil, key...)

		c.problem(http.StatusConflict, "tenant_has_users", del, "/v2/admin/tenants/acme", nil, key...)
		acmeKey := apptest.Bearer(h.AdminKey(t, "acme", "acme"))
		c.problem(http.StatusForbidden, "forbidden", del, "/v2/admin/tenants/acme", nil, acmeKey...)
		c.problem(http.StatusForbidden, "forbidden", post, "/v2/admin/tenants", jsonBody(`{"id":"initech"}`), acmeKey...)
		c.problem(http.StatusBadRequest, "validation_failed", del, "/v2/admin/tenants/default", nil, key...)
		c.call(http.StatusNoContent, del, "/v2/admin/users/"+ann.ID, nil, key...)
		c.problem(http.StatusNotFound, "not_found", del, "/v2/admin/users/"+ann.ID, nil, key...)
		c.call(http.StatusNoContent, del, "/v2/admin/tenants/acme", nil, key...)
		c.call(http.StatusNoContent, del, "/v2/admin/tenants/globex?force=true", nil, key...)

		c.requireEverySuccess(isAdminPath)
	})
}

// TestAdminWalkthrough is the README's walk-through: a tenant and a user made through the admin API,
// then a login through the Devii shape in one call.
func TestAdminWalkthrough(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		key := h.AdminKey(t, "walkthrough", "")
		adminJSON[struct{ ID string }](t, h, key, http.MethodPost, "/v2/admin/tenants", json.RawMessage(
			`{"id":"179","name":"Devii demo","settings":{"secondStep":"off","routes":{"base":"https://api.example.com/"}}}`), http.StatusCreated)
		adminJSON[apptest.AdminUser](t, h, key, http.MethodPost, "/v2/admin/users", json.RawMessage(
			`{"tenantId":"179","email":"demo_user@example.test","password":"demouser password","role":"1611"}`), http.StatusCreated)
		r := h.Do(t, http.MethodPost, "/devii/auth", apptest.Raw{ContentType: "application/x-www-form-urlencoded",
			Body: strings.NewReader(apptest.Form(map[string]string{"login": "demo_user@example.test", "password": "demouser password", "tenantid": "179"}))})
		apptest.WantStatus(t, r, http.StatusOK)
		var got map[string]any
		r.JSON(t, &got)
		if got["message"] != "Logged in as demo_user@example.test." || got["roleid"] != float64(1611) ||
			!cmp.Equal(got["routes"], map[string]any{"base": "https://api.example.com/"}) || got["refresh_token"] == "" {
			t.Errorf("the Devii login answered %s", r.Body)
		}
		users := apptest.AdminPage[apptest.AdminUser](t, h, key, "/v2/admin/users?tenantId=179&emailPrefix=demo")
		if len(users.Items) != 1 {
			t.Errorf("users of 179 starting with demo: %+v", users)
		}
		events := apptest.AdminPage[apptest.AdminEvent](t, h, key, "/v2/admin/events?tenantId=179&limit=5")
		var kinds []string
		for _, e := range events.Items {
			kinds = append(kinds, e.Kind)
		}
		if diff := cmp.Diff([]string{"login", "user_created", "tenant_created"}, kinds); diff != "" {
			t.Errorf("the tenant's events, newest first (-want +got):\n%s", diff)
		}
	})
}
