package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app"
	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
)

// failedOnce waits until the worker has tried a pending message to the address and failed.
func failedOnce(t *testing.T, h *apptest.Instance, to string) {
	t.Helper()
	apptest.Eventually(t, "the worker tried and failed to send to "+to, func() bool {
		for _, r := range h.OutboxRowsTo(t, to) {
			if !r.Sent && r.Attempts >= 1 && r.LastError != nil {
				return true
			}
		}
		return false
	})
}

// parkLoginCode signs an account up, then stops the SMTP server and asks for a login code: the send
// fails and its retry waits for the clock. The SMTP server stays down.
func parkLoginCode(t *testing.T, h *apptest.Instance, email string) {
	t.Helper()
	h.Signup(t, email, apptest.Password)
	h.SMTP.Stop()
	apptest.WantStatus(t, h.LoginStep(t, email, apptest.Password), http.StatusOK)
	failedOnce(t, h, email)
}

func TestOutboxSMTPDownAtLogin(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "down@example.test"
		parkLoginCode(t, h, email)
		if err := h.SMTP.Start(); err != nil {
			t.Fatal(err)
		}
		// The retry is due RetryBase after the failure on the instance's clock.
		h.Clock.Advance(time.Second)
		code := h.CodeFor(t, email)
		apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode(email, code)), http.StatusOK)
	})
}

// TestOutboxLeaseComesBack: a message claimed by a worker that died before marking it is sent by
// another worker once the lease runs out, and not before.
func TestOutboxLeaseComesBack(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email = "lease@example.test"
		parkLoginCode(t, h, email)

		// A worker of another instance, whose clock is a little ahead, claims it and crashes.
		crashed, err := app.OpenSealedStore(context.Background(), h.Config, h.Clock.Now, false, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer crashed.Close()
		crashed.Now = func() time.Time { return h.Clock.Now().Add(time.Second) }
		const lease = time.Minute
		claimed, err := crashed.ClaimOutbox(context.Background(), lease, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 1 || claimed[0].To != email {
			t.Fatalf("the crashed worker claimed %+v, want the one message to %s", claimed, email)
		}

		if err := h.SMTP.Start(); err != nil {
			t.Fatal(err)
		}
		h.Clock.Advance(lease - time.Second) // due by its retry time, still leased
		again, err := h.App.Store.ClaimOutbox(context.Background(), lease, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Fatalf("a leased message was claimed again: %+v", again)
		}
		h.Clock.Advance(2 * time.Second) // the lease has run out
		code := h.CodeFor(t, email)
		apptest.WantStatus(t, h.Post(t, "/v2/auth/validate-login", apptest.EmailCode(email, code)), http.StatusOK)
		apptest.Eventually(t, "the message is marked sent", func() bool {
			rows := h.OutboxRowsTo(t, email)
			return len(rows) == 2 && rows[1].Sent
		})
		if got := h.OutboxRowsTo(t, email)[1].Attempts; got != 3 {
			t.Errorf("attempts = %d, want 3 (failed, crashed, sent)", got)
		}
	})
}

// TestOutboxTwoInstances: two instances on one Postgres share the outbox, and every message goes out
// exactly once.
func TestOutboxTwoInstances(t *testing.T) {
	a := apptest.New(t, store.Postgres)
	b := a.StartPeer(t)
	instances := []*apptest.Instance{a, b}
	const n = 20
	emails := make([]string, n)
	for i := range emails {
		emails[i] = fmt.Sprintf("pair%02d@example.test", i)
	}
	answers := apptest.AtOnce(t, n, func(i int) (apptest.Response, error) {
		return instances[i%2].Send(http.MethodPost, "/v2/auth/register", apptest.Credentials(emails[i], apptest.Password))
	})
	for i, r := range answers {
		if r.Status != http.StatusCreated {
			t.Fatalf("register %s: %d %s", emails[i], r.Status, r.Body)
		}
	}
	apptest.Eventually(t, "every message is marked sent", func() bool {
		rows := a.OutboxRows(t)
		for _, r := range rows {
			if !r.Sent {
				return false
			}
		}
		return len(rows) == n
	})
	// A row claimed twice would show two attempts, even if the second send is still in flight.
	for _, r := range a.OutboxRows(t) {
		if r.Attempts != 1 {
			t.Errorf("message to %s was claimed %d times", r.To, r.Attempts)
		}
	}
	want := make(map[string]int, n)
	for _, e := range emails {
		want[e] = 1
	}
	got := make(map[string]int, n)
	for _, m := range a.SMTP.Messages() {
		for _, to := range m.To {
			got[strings.ToLower(to)]++
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages per recipient (-want +got):\n%s", diff)
	}
	// Both instances' codes work on either instance.
	for i, email := range emails[:2] {
		inst := []*apptest.Instance{b, a}[i]
		apptest.WantStatus(t, inst.Post(t, "/v2/auth/validate-register", apptest.EmailCode(email, a.CodeFor(t, email))), http.StatusOK)
	}
}
