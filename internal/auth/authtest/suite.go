package authtest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
)

// Opener makes a fresh, empty store on the given clock for one test.
type Opener func(t *testing.T, now func() time.Time) auth.Store

// StoreSuite holds an implementation of auth's storage ports to the behaviour the service relies on.
// Every implementation runs it: the databases in package store, the in-memory one here.
func StoreSuite(t *testing.T, open Opener) {
	for name, test := range map[string]func(*testing.T, Opener){
		"UsersUniquePerTenantCaseInsensitive": suiteUsersUnique,
		"TenantsCreateListUpdateDelete":       suiteTenants,
		"UpdateUserRoleAndMetadata":           suiteUpdateUser,
		"IssueCodeLimitsAndReplacement":       suiteIssueCodeLimits,
		"UsedCodeEndsCooldown":                suiteUsedCodeEndsCooldown,
		"CodeAttemptsAreBounded":              suiteCodeAttempts,
		"CodeConsumedOnce":                    suiteCodeConsumedOnce,
		"RotateExactlyOnce":                   suiteRotateExactlyOnce,
		"RotateAgreesWithTheClassifier":       suiteRotateAgreesWithClassifier,
		"RevocationAndDisabling":              suiteRevocation,
		"ThrottleCountsAndLocks":              suiteThrottle,
		"TOTPFactorLifecycle":                 suiteTOTPFactor,
		"TOTPStepsAndRecoveryCodesOnce":       suiteTOTPOnce,
		"ListUsers":                           suiteListUsers,
		"UpdateUserStatusAndVerification":     suiteUpdateUserStatusAndVerification,
		"DeleteUserErases":                    suiteDeleteUserErases,
		"EventLog":                            suiteEventLog,
		"AdminKeys":                           suiteAdminKeys,
		"PasswordSetWithTheCode":              suitePasswordWithTheCode,
		"UserLocaleKept":                      suiteUserLocale,
		"WebhookFanOutOnce":                   suiteWebhookFanOut,
		"WebhookOutcomes":                     suiteWebhookOutcomes,
		"EmailChange":                         suiteEmailChange,
		"UserData":                            suiteUserData,
	} {
		t.Run(name, func(t *testing.T) { test(t, open) })
	}
}

// suiteUserLocale: the language a user registered in comes back with the user, and a user without
// one has "".
func suiteUserLocale(t *testing.T, open Opener) {
	s := open(t, NewClock().Now)
	ctx := context.Background()
	de := auth.User{Email: "de@example.test", Locale: "de-AT"}
	if err := s.CreateUser(ctx, &de, "h", auth.Event{}); err != nil {
		t.Fatal(err)
	}
	plain := mustUser(t, s, "plain@example.test")
	for _, want := range []auth.User{de, plain} {
		byEmail, err := s.UserByEmail(ctx, auth.DefaultTenantID, want.Email)
		if err != nil {
			t.Fatal(err)
		}
		byID, err := s.UserByID(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{want.Locale, want.Locale}, []string{byEmail.User.Locale, byID.Locale}); diff != "" {
			t.Errorf("%s: locale by email and by id (-want +got):\n%s", want.Email, diff)
		}
	}
}

// race runs n calls of f at once and counts those that succeeded and those refused with
// auth.ErrCodeDead; any other error fails the test.
func race(t *testing.T, n int, f func(i int) error) (won, dead int) {
	t.Helper()
	var wg sync.WaitGroup
	results := make(chan error, n)
	for i := range n {
		wg.Go(func() { results <- f(i) })
	}
	wg.Wait()
	close(results)
	for err := range results {
		switch {
		case err == nil:
			won++
		case errors.Is(err, auth.ErrCodeDead):
			dead++
		default:
			t.Error(err)
		}
	}
	return won, dead
}

// Hash is the stored hash of a test token: the store only ever sees hashes.
func Hash(token string) []byte { h := sha256.Sum256([]byte(token)); return h[:] }

func mustUser(t *testing.T, s auth.Store, email string) auth.User {
	t.Helper()
	u := auth.User{Email: email}
	if err := s.CreateUser(context.Background(), &u, "hash-of-"+email, auth.Event{}); err != nil {
		t.Fatal(err)
	}
	return u
}

// Rules are the rotation settings the suite runs under.
var Rules = auth.RefreshRules{IdleTTL: time.Hour, Grace: 10 * time.Second}

func mustSession(t *testing.T, s auth.Store, u auth.User, refresh string, maxAge time.Duration) auth.Session {
	t.Helper()
	return openSession(t, s, u, refresh, maxAge, true)
}

// mustKeptSession opens a session without rotation: its one refresh token is kept for its life.
func mustKeptSession(t *testing.T, s auth.Store, u auth.User, refresh string, maxAge time.Duration) auth.Session {
	t.Helper()
	return openSession(t, s, u, refresh, maxAge, false)
}

func openSession(t *testing.T, s auth.Store, u auth.User, refresh string, maxAge time.Duration, rotation bool) auth.Session {
	t.Helper()
	sess, err := s.OpenSession(context.Background(), auth.NewSession{UserID: u.ID, TenantID: u.TenantID, AMR: "pwd otp",
		RefreshRotation: rotation, IdleTTL: Rules.IdleTTL, MaxAge: maxAge, RefreshHash: Hash(refresh),
		Event: auth.Event{UserID: u.ID, Kind: "login"}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.RefreshState(context.Background(), Hash(refresh)); err != nil || st.Kept == rotation {
		t.Fatalf("the first token of a session with rotation %v reads %+v (%v)", rotation, st, err)
	}
	return sess
}

func issue(s auth.Store, now time.Time, userID, purpose string, codeHash []byte) (auth.Issued, error) {
	return s.IssueCode(context.Background(), auth.IssueCode{
		UserID: userID, Purpose: purpose, CodeHash: codeHash, TTL: 10 * time.Minute, MaxAttempts: 5,
		Cooldown: time.Minute, MaxPerHour: 3,
		Mail: auth.Email{To: "a@example.test", Template: purpose + "_code", ExpiresAt: now.Add(10 * time.Minute),
			Data: func(replaced bool) (string, error) { return fmt.Sprintf(`{"replaced":%v}`, replaced), nil }},
	})
}

func suiteUsersUnique(t *testing.T, open Opener) {
	s := open(t, NewClock().Now)
	ctx := context.Background()
	u := mustUser(t, s, "ann@example.test")
	err := s.CreateUser(ctx, &auth.User{Email: "ANN@example.test"}, "y", auth.Event{})
	if !errors.Is(err, auth.ErrConflict) {
		t.Fatalf("duplicate email: got %v, want ErrConflict", err)
	}
	got, err := s.UserByEmail(ctx, auth.DefaultTenantID, "Ann@Example.Test")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.Credential{User: u, PasswordHash: "hash-of-ann@example.test"}, got); diff != "" {
		t.Errorf("UserByEmail (-want +got):\n%s", diff)
	}
	if _, err := s.UserByID(ctx, "not-a-uuid"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("UserByID(bad) = %v, want ErrNotFound", err)
	}
	if u.Role != auth.DefaultRole || string(u.Metadata) != "{}" {
		t.Errorf("a new user has role %q and metadata %s, want %q and {}", u.Role, u.Metadata, auth.DefaultRole)
	}

	// The same address in another tenant is another user.
	if err := s.CreateTenant(ctx, &auth.Tenant{ID: "acme", Name: "Acme", Settings: auth.DefaultTenantSettings()}, auth.Event{}); err != nil {
		t.Fatal(err)
	}
	other := auth.User{TenantID: "acme", Email: "ann@example.test"}
	if err := s.CreateUser(ctx, &other, "acme-hash", auth.Event{}); err != nil {
		t.Fatalf("the same email in another tenant: %v", err)
	}
	got, err = s.UserByEmail(ctx, "acme", "ANN@example.test")
	if err != nil || got.User.ID != other.ID || got.User.ID == u.ID || got.PasswordHash != "acme-hash" {
		t.Errorf("UserByEmail(acme) = %+v, %v; want the acme user %s", got, err, other.ID)
	}
	if err := s.CreateUser(ctx, &auth.User{TenantID: "nope", Email: "x@example.test"}, "h", auth.Event{}); err == nil {
		t.Error("a user of an unknown tenant was created")
	}
}

func suiteTenants(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()

	def, err := s.TenantByID(ctx, auth.DefaultTenantID)
	if err != nil || def.ID != auth.DefaultTenantID {
		t.Fatalf("TenantByID(default) = %+v, %v", def, err)
	}
	if _, err := s.TenantByID(ctx, "nope"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("TenantByID(unknown) = %v, want ErrNotFound", err)
	}

	acme := auth.Tenant{ID: "acme", Name: "Acme", Settings: auth.TenantSettings{SecondStep: auth.SecondStepOff, RefreshRotation: false,
		AppName: "Acme Pay", MailFrom: "Acme <no-reply@acme.test>", Locale: "de", AllowedOrigins: []string{"https://app.acme.test"},
		Routes: json.RawMessage(`{"base":"https://api.acme.test/"}`), Issuer: "https://auth.acme.test/t/acme/graphql"}}
	if err := s.CreateTenant(ctx, &acme, auth.Event{Kind: "tenant_created"}); err != nil {
		t.Fatal(err)
	}
	if !acme.CreatedAt.Equal(clk.Now()) {
		t.Errorf("CreatedAt = %v, want %v", acme.CreatedAt, clk.Now())
	}
	got, err := s.TenantByID(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(acme, got); diff != "" {
		t.Errorf("tenant read back (-created +read):\n%s", diff)
	}
	for _, dup := range []auth.Tenant{{ID: "acme", Name: "Other"}, {ID: "other", Name: "Acme"}} {
		dup.Settings = auth.DefaultTenantSettings()
		if err := s.CreateTenant(ctx, &dup, auth.Event{}); !errors.Is(err, auth.ErrConflict) {
			t.Errorf("CreateTenant(%s, %s) = %v, want ErrConflict", dup.ID, dup.Name, err)
		}
	}
	for _, id := range []string{"b-2", "a_1"} {
		if err := s.CreateTenant(ctx, &auth.Tenant{ID: id, Name: id, Settings: auth.DefaultTenantSettings()}, auth.Event{}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(after string, limit int) []string {
		list, err := s.ListTenants(ctx, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range list {
			out = append(out, x.ID)
		}
		return out
	}
	if diff := cmp.Diff([]string{"a_1", "acme", "b-2", "default"}, ids("", 0)); diff != "" {
		t.Errorf("ListTenants (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b-2", "default"}, ids("acme", 2)); diff != "" {
		t.Errorf("ListTenants after acme, 2 (-want +got):\n%s", diff)
	}

	refused := errors.New("refused by apply")
	if _, err := s.UpdateTenant(ctx, "acme", func(t *auth.Tenant) error { t.Name = "Changed"; return refused }, auth.Event{}); !errors.Is(err, refused) {
		t.Errorf("UpdateTenant with a refusing apply = %v, want its error", err)
	}
	if _, err := s.UpdateTenant(ctx, "acme", func(t *auth.Tenant) error { t.Name = "a_1"; return nil }, auth.Event{}); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("UpdateTenant to a taken name = %v, want ErrConflict", err)
	}
	if _, err := s.UpdateTenant(ctx, "nope", func(*auth.Tenant) error { return nil }, auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("UpdateTenant(unknown) = %v, want ErrNotFound", err)
	}
	updated, err := s.UpdateTenant(ctx, "acme", func(t *auth.Tenant) error {
		t.Name, t.Settings.RefreshRotation = "Acme Corp", true
		return nil
	}, auth.Event{Kind: "tenant_updated"})
	want := acme
	want.Name, want.Settings.RefreshRotation = "Acme Corp", true
	if err != nil || !cmp.Equal(want, updated) {
		t.Errorf("UpdateTenant = %+v, %v; want %+v", updated, err, want)
	}
	if got, _ := s.TenantByID(ctx, "acme"); !cmp.Equal(want, got) {
		t.Errorf("after UpdateTenant the tenant reads %+v, want %+v", got, want)
	}

	// A tenant with users goes only with them.
	u := auth.User{TenantID: "acme", Email: "user@acme.test"}
	if err := s.CreateUser(ctx, &u, "h", auth.Event{}); err != nil {
		t.Fatal(err)
	}
	mustSession(t, s, u, "acme-session", time.Hour)
	if _, err := s.RecordFailure(ctx, "acme:user@acme.test", "10.0.0.1", func(auth.FailureCounts) (time.Duration, time.Duration) { return time.Hour, 0 }, auth.Event{}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTenant(ctx, "acme", false, auth.Event{}); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("DeleteTenant with users, not forced = %v, want ErrConflict", err)
	}
	if _, err := s.UserByID(ctx, u.ID); err != nil {
		t.Errorf("a refused delete removed the user: %v", err)
	}
	if err := s.DeleteTenant(ctx, "acme", true, auth.Event{Kind: "tenant_deleted"}); err != nil {
		t.Fatalf("forced DeleteTenant: %v", err)
	}
	if _, err := s.UserByID(ctx, u.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("after a forced delete the user reads %v, want ErrNotFound", err)
	}
	if _, err := s.SessionForRefresh(ctx, Hash("acme-session")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("after a forced delete the session reads %v, want ErrNotFound", err)
	}
	if w, err := s.LockedUntil(ctx, "acme:user@acme.test", "10.0.0.1"); err != nil || w != 0 {
		t.Errorf("after a forced delete the tenant's throttle says wait %v (%v), want none", w, err)
	}
	if err := s.DeleteTenant(ctx, "b-2", false, auth.Event{}); err != nil {
		t.Errorf("DeleteTenant of an empty tenant: %v", err)
	}
	if err := s.DeleteTenant(ctx, "acme", false, auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("DeleteTenant(deleted) = %v, want ErrNotFound", err)
	}
	if diff := cmp.Diff([]string{"a_1", "default"}, ids("", 0)); diff != "" {
		t.Errorf("tenants left (-want +got):\n%s", diff)
	}
}

func suiteUpdateUser(t *testing.T, open Opener) {
	s := open(t, NewClock().Now)
	ctx := context.Background()
	u := mustUser(t, s, "roles@example.test")
	admin := "admin"
	got, err := s.UpdateUser(ctx, u.ID, auth.UserChanges{Role: &admin}, auth.Event{UserID: u.ID, Kind: "user_updated"})
	if err != nil || got.Role != "admin" || string(got.Metadata) != "{}" {
		t.Fatalf("UpdateUser(role) = %+v, %v", got, err)
	}
	got, err = s.UpdateUser(ctx, u.ID, auth.UserChanges{Metadata: json.RawMessage(`{"plan":"pro"}`)}, auth.Event{})
	if err != nil || got.Role != "admin" || string(got.Metadata) != `{"plan":"pro"}` {
		t.Fatalf("UpdateUser(metadata) = %+v, %v", got, err)
	}
	read, err := s.UserByID(ctx, u.ID)
	if err != nil || read.Role != "admin" || string(read.Metadata) != `{"plan":"pro"}` {
		t.Errorf("UserByID after updates = %+v, %v", read, err)
	}
	if _, err := s.UpdateUser(ctx, "b0d1e0a1-0000-4000-8000-000000000000", auth.UserChanges{Role: &admin}, auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("UpdateUser(unknown) = %v, want ErrNotFound", err)
	}
}

func suiteIssueCodeLimits(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	u := mustUser(t, s, "codes@example.test")

	first, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h1"))
	if err != nil || first.Replaced {
		t.Fatalf("first issue = %+v, %v", first, err)
	}
	_, err = issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h2"))
	var lim *auth.LimitError
	if !errors.As(err, &lim) || !lim.Cooldown || lim.RetryAfter != time.Minute {
		t.Fatalf("issue within cooldown = %v, want cooldown LimitError of 1m", err)
	}
	clk.Advance(61 * time.Second)
	second, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h2"))
	if err != nil || !second.Replaced {
		t.Fatalf("second issue = %+v, %v; want Replaced", second, err)
	}
	live, err := s.LiveCode(ctx, u.ID, auth.PurposeLogin)
	if err != nil || live.ID != second.CodeID || string(live.Hash) != "h2" {
		t.Fatalf("live code = %+v, %v; want %s with hash h2", live, err, second.CodeID)
	}
	// Another purpose has its own cooldown and its own hourly cap (3 here): a reset code, which anyone
	// can ask for with an address alone, spends none of the login codes.
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeReset, []byte("h3")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(61 * time.Second)
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h4")); err != nil {
		t.Fatalf("third login code email in an hour, after a reset code: %v", err)
	}
	clk.Advance(61 * time.Second)
	_, err = issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h5"))
	if !errors.As(err, &lim) || lim.Cooldown {
		t.Fatalf("fourth login code email in an hour = %v, want hourly LimitError", err)
	}
	if want := time.Hour - 183*time.Second; lim.RetryAfter != want {
		t.Errorf("hourly RetryAfter = %s, want %s", lim.RetryAfter, want)
	}
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeReset, []byte("h6")); err != nil {
		t.Errorf("a reset code once the login codes are used up: %v", err)
	}
}

// suiteUsedCodeEndsCooldown: once the newest code of a purpose was used, another may be sent at once
// (the owner logging in again); a replaced or merely expired one keeps the cooldown, and the hourly
// cap counts every email.
func suiteUsedCodeEndsCooldown(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	u := mustUser(t, s, "again@example.test")
	var lim *auth.LimitError
	for i := range 3 {
		iss, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte(fmt.Sprint("h", i)))
		if err != nil {
			t.Fatalf("login code %d right after the previous one was used: %v", i+1, err)
		}
		clk.Advance(time.Second)
		if _, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("unused")); !errors.As(err, &lim) || !lim.Cooldown {
			t.Fatalf("a code while code %d is unused = %v, want the cooldown", i+1, err)
		}
		if _, err := s.OpenSession(ctx, auth.NewSession{CodeID: iss.CodeID, UserID: u.ID, TenantID: u.TenantID, AMR: "pwd otp",
			RefreshRotation: true, IdleTTL: Rules.IdleTTL, MaxAge: time.Hour, RefreshHash: Hash(fmt.Sprint("again-", i))}); err != nil {
			t.Fatal(err)
		}
	}
	// The cap (3 an hour here) still counts the emails whose codes were used.
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h4")); !errors.As(err, &lim) || lim.Cooldown {
		t.Fatalf("a fourth login code email in an hour = %v, want the hourly cap", err)
	}
	// Within the same instant as a used code's email, a new unused one still starts a cooldown.
	clk.Advance(time.Hour)
	iss, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("same-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenSession(ctx, auth.NewSession{CodeID: iss.CodeID, UserID: u.ID, TenantID: u.TenantID, AMR: "pwd otp",
		RefreshRotation: true, IdleTTL: Rules.IdleTTL, MaxAge: time.Hour, RefreshHash: Hash("again-same")}); err != nil {
		t.Fatal(err)
	}
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("same-2")); err != nil {
		t.Fatalf("a code at the instant the previous one was used: %v", err)
	}
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("same-3")); !errors.As(err, &lim) || !lim.Cooldown {
		t.Fatalf("a third code while the second, stamped like the used first, is unused = %v, want the cooldown", err)
	}
	// A signup code is another purpose: its own cooldown, not ended by a used login code.
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeSignup, []byte("s1")); err != nil {
		t.Fatal(err)
	}
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeSignup, []byte("s2")); !errors.As(err, &lim) || !lim.Cooldown {
		t.Fatalf("a second signup code at once = %v, want the cooldown", err)
	}
}

func suiteCodeAttempts(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	u := mustUser(t, s, "tries@example.test")
	iss, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, dead := 0, 0
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.CountCodeAttempt(ctx, iss.CodeID)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, auth.ErrCodeDead):
				dead++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if diff := cmp.Diff([2]int{5, 7}, [2]int{ok, dead}); diff != "" {
		t.Errorf("attempts (ok, dead) mismatch (-want +got):\n%s", diff)
	}

	// An expired code takes no tries at all.
	u2 := mustUser(t, s, "late@example.test")
	late, err := issue(s, clk.Now(), u2.ID, auth.PurposeLogin, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	if _, err := s.CountCodeAttempt(ctx, late.CodeID); !errors.Is(err, auth.ErrCodeDead) {
		t.Errorf("a try on an expired code = %v, want ErrCodeDead", err)
	}
}

func suiteCodeConsumedOnce(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	u := mustUser(t, s, "once@example.test")
	iss, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	won, dead := race(t, n, func(i int) error {
		_, err := s.OpenSession(ctx, auth.NewSession{CodeID: iss.CodeID, UserID: u.ID, TenantID: u.TenantID, MarkVerified: true,
			AMR: "pwd otp", IdleTTL: time.Hour, MaxAge: 24 * time.Hour, RefreshHash: Hash(fmt.Sprintf("once-%d", i))})
		return err
	})
	if diff := cmp.Diff([2]int{1, n - 1}, [2]int{won, dead}); diff != "" {
		t.Errorf("sessions opened with one code (won, refused) (-want +got):\n%s", diff)
	}
	got, err := s.UserByID(ctx, u.ID)
	if err != nil || got.EmailVerifiedAt == nil {
		t.Errorf("after validating a code the email is not verified: %+v, %v", got, err)
	}
}

func suiteRotateExactlyOnce(t *testing.T, open Opener) {
	s := open(t, NewClock().Now)
	ctx := context.Background()
	u := mustUser(t, s, "rot@example.test")
	sess := mustSession(t, s, u, "r0", 24*time.Hour)
	const n = 20
	var wg sync.WaitGroup
	wins := make(chan auth.Rotated, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Rotate(ctx, Hash("r0"), Hash("r1"), Rules.IdleTTL)
			if err == nil {
				wins <- r
			} else if !errors.Is(err, auth.ErrNotFound) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	if len(wins) != 1 {
		t.Fatalf("%d rotations won, want exactly 1", len(wins))
	}
	want := auth.Rotated{SessionID: sess.ID, UserID: u.ID, TenantID: u.TenantID, Email: u.Email, Role: auth.DefaultRole, AMR: "pwd otp",
		ExpiresAt: sess.ExpiresAt, SessionStart: sess.CreatedAt}
	if diff := cmp.Diff(want, <-wins); diff != "" {
		t.Errorf("rotated (-want +got):\n%s", diff)
	}
	st, err := s.RefreshState(ctx, Hash("r0"))
	if err != nil {
		t.Fatal(err)
	}
	if st.UsedAt == nil || string(st.SuccessorHash) != string(Hash("r1")) || st.SuccessorUsedAt != nil || !st.SessionStart.Equal(sess.CreatedAt) {
		t.Errorf("state after rotation = %+v", st)
	}
}

// suiteRotateAgreesWithTheClassifier puts tokens in every state the rule tells apart, then checks two
// things for each: the state read back classifies as expected, and Rotate succeeds exactly when the
// verdict is rotate (and changes nothing otherwise).
func suiteRotateAgreesWithClassifier(t *testing.T, open Opener) {
	const long = 30 * 24 * time.Hour
	for _, c := range []struct {
		name string
		// setup brings a session to its state and returns the token to present.
		setup func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string
		want  auth.RefreshVerdict
	}{
		{"fresh", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			return "a"
		}, auth.RefreshRotate},
		{"one microsecond inside the idle window", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			clk.Advance(Rules.IdleTTL - time.Microsecond)
			return "a"
		}, auth.RefreshRotate},
		{"idle for exactly the idle TTL", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			clk.Advance(Rules.IdleTTL)
			return "a"
		}, auth.RefreshExpired},
		{"past the absolute end though active", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "t0", 2*time.Hour)
			for i := range 2 {
				clk.Advance(50 * time.Minute)
				mustRotate(t, s, fmt.Sprintf("t%d", i), fmt.Sprintf("t%d", i+1))
			}
			clk.Advance(20 * time.Minute)
			return "t2"
		}, auth.RefreshExpired},
		{"revoked session", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			sess := mustSession(t, s, u, "a", long)
			if err := s.RevokeSession(context.Background(), u.ID, sess.ID, "logout", auth.Event{}); err != nil {
				t.Fatal(err)
			}
			return "a"
		}, auth.RefreshRevoked},
		{"disabled user", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			if err := s.SetUserStatus(context.Background(), u.ID, auth.StatusDisabled, auth.Event{}); err != nil {
				t.Fatal(err)
			}
			return "a"
		}, auth.RefreshDisabled},
		{"spent, replayed within the grace", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			mustRotate(t, s, "a", "b")
			clk.Advance(Rules.Grace)
			return "a"
		}, auth.RefreshGrace},
		{"spent, replayed after the grace", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			mustRotate(t, s, "a", "b")
			clk.Advance(Rules.Grace + time.Microsecond)
			return "a"
		}, auth.RefreshReused},
		{"spent, its successor spent too", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			mustRotate(t, s, "a", "b")
			mustRotate(t, s, "b", "c")
			return "a"
		}, auth.RefreshReused},
		{"spent long ago on a session still in use", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "t0", long)
			for i := range 3 {
				clk.Advance(50 * time.Minute)
				mustRotate(t, s, fmt.Sprintf("t%d", i), fmt.Sprintf("t%d", i+1))
			}
			return "t0"
		}, auth.RefreshReused},
		{"spent on a session idle since", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			mustRotate(t, s, "a", "b")
			clk.Advance(Rules.IdleTTL)
			return "a"
		}, auth.RefreshExpired},
		{"unknown token", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustSession(t, s, u, "a", long)
			return "never issued"
		}, auth.RefreshUnknown},
		{"kept: fresh", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustKeptSession(t, s, u, "k", long)
			return "k"
		}, auth.RefreshKeep},
		{"kept: used again at once", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustKeptSession(t, s, u, "k", long)
			mustKeep(t, s, "k")
			mustKeep(t, s, "k")
			return "k"
		}, auth.RefreshKeep},
		{"kept: last used inside the idle window, made before it", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustKeptSession(t, s, u, "k", long)
			clk.Advance(50 * time.Minute)
			mustKeep(t, s, "k")
			clk.Advance(50 * time.Minute)
			return "k"
		}, auth.RefreshKeep},
		{"kept: idle for exactly the idle TTL since its last use", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustKeptSession(t, s, u, "k", long)
			clk.Advance(10 * time.Minute)
			mustKeep(t, s, "k")
			clk.Advance(Rules.IdleTTL)
			return "k"
		}, auth.RefreshExpired},
		{"kept: past the absolute end though active", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustKeptSession(t, s, u, "k", 2*time.Hour)
			for range 2 {
				clk.Advance(50 * time.Minute)
				mustKeep(t, s, "k")
			}
			clk.Advance(20 * time.Minute)
			return "k"
		}, auth.RefreshExpired},
		{"kept: revoked session", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			sess := mustKeptSession(t, s, u, "k", long)
			mustKeep(t, s, "k")
			if err := s.RevokeSession(context.Background(), u.ID, sess.ID, "logout", auth.Event{}); err != nil {
				t.Fatal(err)
			}
			return "k"
		}, auth.RefreshRevoked},
		{"kept: disabled user", func(t *testing.T, s auth.Store, clk *Clock, u auth.User) string {
			mustKeptSession(t, s, u, "k", long)
			if err := s.SetUserStatus(context.Background(), u.ID, auth.StatusDisabled, auth.Event{}); err != nil {
				t.Fatal(err)
			}
			return "k"
		}, auth.RefreshDisabled},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := NewClock()
			s := open(t, clk.Now)
			ctx := context.Background()
			u := mustUser(t, s, "rule@example.test")
			presented := c.setup(t, s, clk, u)

			st, err := s.RefreshState(ctx, Hash(presented))
			var state *auth.RefreshState
			switch {
			case err == nil:
				state = &st
			case !errors.Is(err, auth.ErrNotFound):
				t.Fatal(err)
			}
			verdict := auth.ClassifyRefresh(state, clk.Now(), Rules)
			if verdict != c.want {
				t.Errorf("verdict %v, want %v (state %+v)", verdict, c.want, st)
			}
			r, err := s.Rotate(ctx, Hash(presented), Hash(presented+"'"), Rules.IdleTTL)
			accepted := verdict == auth.RefreshRotate || verdict == auth.RefreshKeep
			if (err == nil) != accepted {
				t.Errorf("Rotate error %v on a token classified %v", err, verdict)
			}
			if err != nil && !errors.Is(err, auth.ErrNotFound) {
				t.Errorf("Rotate refused with %v, want ErrNotFound", err)
			}
			if err == nil && r.Kept != (verdict == auth.RefreshKeep) {
				t.Errorf("Rotate answered Kept %v on a token classified %v", r.Kept, verdict)
			}
			if verdict == auth.RefreshKeep {
				// Kept: still the session's token, unspent, with no successor, and its idle window
				// now runs from this use.
				after, err := s.RefreshState(ctx, Hash(presented))
				if err != nil || after.UsedAt != nil || after.SuccessorHash != nil || after.TokenLastUsedAt == nil ||
					!after.TokenLastUsedAt.Equal(clk.Now()) || !after.NewestTokenAt.Equal(clk.Now()) {
					t.Errorf("after a kept use the token reads %+v (%v)", after, err)
				}
				if _, err := s.RefreshState(ctx, Hash(presented+"'")); !errors.Is(err, auth.ErrNotFound) {
					t.Errorf("a kept use stored a successor (%v)", err)
				}
			}
			if accepted {
				return
			}
			after, err := s.RefreshState(ctx, Hash(presented))
			if state != nil && (err != nil || !cmp.Equal(st, after)) {
				t.Errorf("a refused rotation changed the token: before %+v, after %+v (%v)", st, after, err)
			}
		})
	}
}

func mustKeep(t *testing.T, s auth.Store, token string) {
	t.Helper()
	r, err := s.Rotate(context.Background(), Hash(token), Hash(token+"-never"), Rules.IdleTTL)
	if err != nil || !r.Kept {
		t.Fatalf("use of kept token %s: %+v, %v", token, r, err)
	}
}

func mustRotate(t *testing.T, s auth.Store, from, to string) {
	t.Helper()
	if _, err := s.Rotate(context.Background(), Hash(from), Hash(to), Rules.IdleTTL); err != nil {
		t.Fatalf("rotate %s -> %s: %v", from, to, err)
	}
}

func suiteRevocation(t *testing.T, open Opener) {
	s := open(t, NewClock().Now)
	ctx := context.Background()
	u := mustUser(t, s, "rev@example.test")
	other := mustUser(t, s, "other@example.test")
	keep := mustSession(t, s, u, "keep", time.Hour*24)
	gone := mustSession(t, s, u, "gone", time.Hour*24)
	theirs := mustSession(t, s, other, "theirs", time.Hour*24)

	if err := s.RevokeSession(ctx, other.ID, keep.ID, "x", auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoking another user's session = %v, want ErrNotFound", err)
	}
	if err := s.RevokeUserSessions(ctx, u.ID, keep.ID, "logout", auth.Event{UserID: u.ID, Kind: "logout_all"}); err != nil {
		t.Fatal(err)
	}
	live := func(userID string) []string {
		list, err := s.ListSessions(ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, x := range list {
			ids = append(ids, x.ID)
		}
		return ids
	}
	if diff := cmp.Diff([]string{keep.ID}, live(u.ID)); diff != "" {
		t.Errorf("live sessions after revoking all but one (-want +got):\n%s", diff)
	}
	if _, err := s.LiveSession(ctx, gone.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("LiveSession(revoked) = %v, want ErrNotFound", err)
	}
	if err := s.RevokeSession(ctx, u.ID, gone.ID, "x", auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoking an ended session = %v, want ErrNotFound", err)
	}
	sess, err := s.SessionForRefresh(ctx, Hash("gone"))
	if err != nil || sess.ID != gone.ID || sess.RevokedAt == nil {
		t.Errorf("SessionForRefresh(revoked) = %+v, %v; want the revoked session", sess, err)
	}
	if err := s.SetUserStatus(ctx, u.ID, auth.StatusDisabled, auth.Event{UserID: u.ID, Kind: "user_disabled"}); err != nil {
		t.Fatal(err)
	}
	if ids := live(u.ID); len(ids) != 0 {
		t.Errorf("disabling left %d sessions live", len(ids))
	}
	if diff := cmp.Diff([]string{theirs.ID}, live(other.ID)); diff != "" {
		t.Errorf("another user's sessions (-want +got):\n%s", diff)
	}
}

func suiteThrottle(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	lock := func(c auth.FailureCounts) (time.Duration, time.Duration) {
		perIP, total := time.Duration(0), time.Duration(0)
		if c.PerIP >= 2 {
			perIP = time.Minute
		}
		if c.Total >= 3 {
			total = time.Hour
		}
		return perIP, total
	}
	var got []auth.FailureCounts
	for _, ip := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.2"} {
		c, err := s.RecordFailure(ctx, "t:ann@example.test", ip, lock, auth.Event{Kind: "login_failed", IP: ip, Detail: "ann@example.test"})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	want := []auth.FailureCounts{{PerIP: 1, Total: 1}, {PerIP: 2, Total: 2}, {PerIP: 1, Total: 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failure counts (-want +got):\n%s", diff)
	}
	waits := func() [3]time.Duration {
		var out [3]time.Duration
		for i, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
			w, err := s.LockedUntil(ctx, "t:ann@example.test", ip)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = w
		}
		return out
	}
	if diff := cmp.Diff([3]time.Duration{time.Hour, time.Hour, time.Hour}, waits()); diff != "" {
		t.Errorf("waits with the subject-wide lock (-want +got):\n%s", diff)
	}
	if err := s.ResetFailures(ctx, "t:ann@example.test"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([3]time.Duration{}, waits()); diff != "" {
		t.Errorf("waits after a reset (-want +got):\n%s", diff)
	}
}

// atOnce runs f from n goroutines released together and counts the calls that succeeded; any error
// other than ErrNotFound fails the test.
func atOnce(t *testing.T, n int, f func() error) int {
	t.Helper()
	var wg sync.WaitGroup
	wins := make(chan struct{}, n)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			err := f()
			if err == nil {
				wins <- struct{}{}
			} else if !errors.Is(err, auth.ErrNotFound) {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	return len(wins)
}

func suiteTOTPFactor(t *testing.T, open Opener) {
	s := open(t, NewClock().Now)
	ctx := context.Background()
	u := mustUser(t, s, "totp@example.test")
	other := mustUser(t, s, "other@example.test")
	enabled := func(id string) bool {
		t.Helper()
		byID, err := s.UserByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		byEmail, err := s.UserByEmail(ctx, byID.TenantID, byID.Email)
		if err != nil {
			t.Fatal(err)
		}
		if byID.TOTPEnabled != byEmail.User.TOTPEnabled {
			t.Errorf("UserByID says TOTPEnabled %v, UserByEmail %v", byID.TOTPEnabled, byEmail.User.TOTPEnabled)
		}
		return byID.TOTPEnabled
	}

	if _, err := s.TOTPFactor(ctx, u.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Fatalf("TOTPFactor before setup = %v, want ErrNotFound", err)
	}
	for _, sealed := range []string{"sealed-1", "sealed-2"} {
		if err := s.SetPendingTOTP(ctx, u.ID, []byte(sealed), auth.Event{UserID: u.ID, Kind: "totp_setup"}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := s.TOTPFactor(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.TOTPFactor{UserID: u.ID, Secret: []byte("sealed-2")}, f); diff != "" {
		t.Errorf("pending factor (-want +got):\n%s", diff)
	}
	if enabled(u.ID) {
		t.Error("a pending factor counts as enabled")
	}
	if err := s.AcceptTOTPStep(ctx, u.ID, 100); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("AcceptTOTPStep on a pending factor = %v, want ErrNotFound", err)
	}

	enable := auth.EnableTOTP{UserID: u.ID, Sealed: []byte("sealed-1"), Step: 100, RecoveryHashes: []string{"h1", "h2", "h3"},
		Event: auth.Event{UserID: u.ID, Kind: "totp_enabled"}}
	if err := s.EnableTOTP(ctx, enable); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("EnableTOTP with a replaced secret = %v, want ErrNotFound", err)
	}
	enable.Sealed = []byte("sealed-2")
	if wins := atOnce(t, 8, func() error { return s.EnableTOTP(ctx, enable) }); wins != 1 {
		t.Errorf("%d concurrent enables won, want 1", wins)
	}
	f, err = s.TOTPFactor(ctx, u.ID)
	if err != nil || f.EnabledAt == nil || f.LastStep != 100 {
		t.Errorf("enabled factor = %+v, %v; want enabled at step 100", f, err)
	}
	if !enabled(u.ID) || enabled(other.ID) {
		t.Error("TOTPEnabled does not follow the enabled factor")
	}
	if err := s.SetPendingTOTP(ctx, u.ID, []byte("sealed-3"), auth.Event{}); !errors.Is(err, auth.ErrConflict) {
		t.Errorf("SetPendingTOTP over an enabled factor = %v, want ErrConflict", err)
	}
	if f, _ := s.TOTPFactor(ctx, u.ID); string(f.Secret) != "sealed-2" {
		t.Errorf("a refused setup changed the secret to %q", f.Secret)
	}

	if err := s.ResealTOTP(ctx, u.ID, []byte("sealed-1"), []byte("resealed")); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("ResealTOTP of a secret no longer stored = %v, want ErrNotFound", err)
	}
	if err := s.ResealTOTP(ctx, u.ID, []byte("sealed-2"), []byte("resealed")); err != nil {
		t.Fatal(err)
	}
	if f, _ := s.TOTPFactor(ctx, u.ID); string(f.Secret) != "resealed" || f.EnabledAt == nil || f.LastStep != 100 {
		t.Errorf("after a reseal the factor is %+v", f)
	}
	if err := s.DisableTOTP(ctx, other.ID, auth.Event{}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("DisableTOTP without a factor = %v, want ErrNotFound", err)
	}
	if err := s.DisableTOTP(ctx, u.ID, auth.Event{UserID: u.ID, Kind: "totp_disabled"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TOTPFactor(ctx, u.ID); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("TOTPFactor after disabling = %v, want ErrNotFound", err)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, []string{"h1"}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("a recovery code after disabling = %v, want ErrNotFound", err)
	}
	if enabled(u.ID) {
		t.Error("TOTPEnabled after disabling")
	}
	// Enrolling again starts afresh: the old recovery codes stay gone.
	if err := s.SetPendingTOTP(ctx, u.ID, []byte("sealed-4"), auth.Event{}); err != nil {
		t.Fatal(err)
	}
	if err := s.EnableTOTP(ctx, auth.EnableTOTP{UserID: u.ID, Sealed: []byte("sealed-4"), Step: 5, RecoveryHashes: []string{"h9"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, []string{"h2"}); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("an old recovery code after enrolling again = %v, want ErrNotFound", err)
	}
}

func suiteTOTPOnce(t *testing.T, open Opener) {
	s := open(t, NewClock().Now)
	ctx := context.Background()
	u := mustUser(t, s, "once@example.test")
	other := mustUser(t, s, "other@example.test")
	for _, x := range []auth.User{u, other} {
		if err := s.SetPendingTOTP(ctx, x.ID, []byte("sealed"), auth.Event{}); err != nil {
			t.Fatal(err)
		}
		if err := s.EnableTOTP(ctx, auth.EnableTOTP{UserID: x.ID, Sealed: []byte("sealed"), Step: 100, RecoveryHashes: []string{"h1", "h2"}}); err != nil {
			t.Fatal(err)
		}
	}
	var got []bool
	for _, step := range []int64{100, 99, 101, 101, 103, 102} {
		got = append(got, s.AcceptTOTPStep(ctx, u.ID, step) == nil)
	}
	if diff := cmp.Diff([]bool{false, false, true, false, true, false}, got); diff != "" {
		t.Errorf("steps 100, 99, 101, 101, 103, 102 accepted (-want +got):\n%s", diff)
	}
	if wins := atOnce(t, 8, func() error { return s.AcceptTOTPStep(ctx, u.ID, 104) }); wins != 1 {
		t.Errorf("%d concurrent acceptances of one step won, want 1", wins)
	}
	// Another user's steps are their own.
	if err := s.AcceptTOTPStep(ctx, other.ID, 101); err != nil {
		t.Errorf("another user's step: %v", err)
	}

	if wins := atOnce(t, 8, func() error { return s.UseRecoveryCode(ctx, u.ID, []string{"old-key-hash", "h1"}) }); wins != 1 {
		t.Errorf("%d concurrent uses of one recovery code won, want 1", wins)
	}
	for _, hashes := range [][]string{{"h1"}, {"unknown"}, nil} {
		if err := s.UseRecoveryCode(ctx, u.ID, hashes); !errors.Is(err, auth.ErrNotFound) {
			t.Errorf("UseRecoveryCode(%v) = %v, want ErrNotFound", hashes, err)
		}
	}
	if err := s.UseRecoveryCode(ctx, other.ID, []string{"h1"}); err != nil {
		t.Errorf("another user's recovery code: %v", err)
	}
}
