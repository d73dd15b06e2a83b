package authtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
)

func changeEmailCode(t *testing.T, s auth.Store, now time.Time, u auth.User, to string) auth.Issued {
	t.Helper()
	iss, err := s.IssueCode(context.Background(), auth.IssueCode{
		UserID: u.ID, Purpose: auth.PurposeEmailChange, CodeHash: []byte("h"), PendingEmail: to, TTL: 10 * time.Minute,
		MaxAttempts: 5, Cooldown: 0, MaxPerHour: 10,
		Mail: auth.Email{To: to, Template: "email_change_code", ExpiresAt: now.Add(10 * time.Minute),
			Data: func(bool) (string, error) { return `{"code":"123456"}`, nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func emailChange(u auth.User, codeID, to string) auth.EmailChange {
	return auth.EmailChange{CodeID: codeID, UserID: u.ID, NewEmail: to,
		Mail: auth.Email{To: u.Email, Template: "email_changed", ExpiresAt: time.Now().Add(time.Hour),
			Data: func(bool) (string, error) { return `{}`, nil }},
		Event: auth.Event{UserID: u.ID, Kind: "email_changed"}}
}

// suiteEmailChange: a code carries the address it moves the account to; the change consumes it once,
// marks the address verified, keeps the sessions and writes its mail and event; a taken address is a
// conflict that leaves everything as it was.
func suiteEmailChange(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	u := mustUser(t, s, "old@example.test")
	mustUser(t, s, "taken@example.test")
	sess := mustSession(t, s, u, "change-session", time.Hour)

	iss := changeEmailCode(t, s, clk.Now(), u, "taken@example.test")
	live, err := s.LiveCode(ctx, u.ID, auth.PurposeEmailChange)
	if err != nil || live.PendingEmail != "taken@example.test" {
		t.Fatalf("live code %+v, %v: want the pending address", live, err)
	}
	if err := s.ChangeEmail(ctx, emailChange(u, iss.CodeID, "taken@example.test")); !errors.Is(err, auth.ErrConflict) {
		t.Fatalf("change to a taken address: %v, want ErrConflict", err)
	}
	if got, _ := s.UserByID(ctx, u.ID); got.Email != "old@example.test" {
		t.Errorf("a refused change moved the user to %q", got.Email)
	}
	if _, err := s.LiveCode(ctx, u.ID, auth.PurposeEmailChange); err != nil {
		t.Errorf("a refused change spent the code: %v", err)
	}

	clk.Advance(time.Second)
	iss = changeEmailCode(t, s, clk.Now(), u, "new@example.test")
	const n = 8
	won, dead := race(t, n, func(int) error {
		return s.ChangeEmail(ctx, emailChange(u, iss.CodeID, "new@example.test"))
	})
	if diff := cmp.Diff([2]int{1, n - 1}, [2]int{won, dead}); diff != "" {
		t.Errorf("changes with one code (won, refused) (-want +got):\n%s", diff)
	}
	got, err := s.UserByID(ctx, u.ID)
	if err != nil || got.Email != "new@example.test" || got.EmailVerifiedAt == nil {
		t.Errorf("after the change: %+v, %v", got, err)
	}
	if _, err := s.LiveSession(ctx, sess.ID); err != nil {
		t.Errorf("the change ended the session: %v", err)
	}
	if c, err := s.UserByEmail(ctx, auth.DefaultTenantID, "NEW@example.test"); err != nil || c.User.ID != u.ID {
		t.Errorf("the new address finds %+v, %v", c.User, err)
	}
	if _, err := s.UserByEmail(ctx, auth.DefaultTenantID, "old@example.test"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("the old address still finds the user: %v", err)
	}
	events, err := s.ListEvents(ctx, auth.EventQuery{UserID: u.ID, Kind: "email_changed", Limit: 10})
	if err != nil || len(events) != 1 {
		t.Errorf("email_changed events: %d, %v; want 1", len(events), err)
	}
}

// suiteUserData: everything held about a user, and nothing of anyone else's.
func suiteUserData(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	u := mustUser(t, s, "me@example.test")
	other := mustUser(t, s, "other@example.test")
	first := mustSession(t, s, u, "data-1", time.Hour)
	clk.Advance(time.Second)
	second := mustSession(t, s, u, "data-2", time.Hour)
	mustSession(t, s, other, "data-other", time.Hour)
	if err := s.RevokeSession(ctx, u.ID, first.ID, "logout", auth.Event{UserID: u.ID, Kind: "logout"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if _, err := issue(s, clk.Now(), u.ID, auth.PurposeLogin, []byte("h")); err != nil {
		t.Fatal(err)
	}
	if _, err := issue(s, clk.Now(), other.ID, auth.PurposeLogin, []byte("h")); err != nil {
		t.Fatal(err)
	}

	d, err := s.UserData(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d.User.ID != u.ID || d.User.Email != "me@example.test" {
		t.Errorf("user %+v", d.User)
	}
	type sessionView struct {
		ID      string
		Revoked bool
	}
	var sessions []sessionView
	for _, x := range d.Sessions {
		sessions = append(sessions, sessionView{x.ID, x.RevokedAt != nil})
	}
	if diff := cmp.Diff([]sessionView{{second.ID, false}, {first.ID, true}}, sessions); diff != "" {
		t.Errorf("sessions, newest first (-want +got):\n%s", diff)
	}
	want := []auth.CodeInfo{{Purpose: auth.PurposeLogin, MaxAttempts: 5, CreatedAt: clk.Now().UTC(), ExpiresAt: clk.Now().UTC().Add(10 * time.Minute)}}
	if diff := cmp.Diff(want, d.Codes); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	wantMail := []auth.MailInfo{{Template: "login_code", Purpose: auth.PurposeLogin, To: "a@example.test", CreatedAt: clk.Now().UTC()}}
	if diff := cmp.Diff(wantMail, d.Mail); diff != "" {
		t.Errorf("mail (-want +got):\n%s", diff)
	}
	var kinds []string
	for _, e := range d.Events {
		if e.UserID != u.ID {
			t.Errorf("an event of %s", e.UserID)
		}
		kinds = append(kinds, e.Kind)
	}
	if diff := cmp.Diff([]string{"logout", "login", "login"}, kinds); diff != "" {
		t.Errorf("events, newest first (-want +got):\n%s", diff)
	}
	if _, err := s.UserData(ctx, "6a1f0d4e-0000-4000-8000-000000000000"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("an unknown user: %v, want ErrNotFound", err)
	}
}
