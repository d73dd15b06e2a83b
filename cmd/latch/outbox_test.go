package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/store"
)

// obFailedOnce waits until the worker has tried a pending message to the address and failed.
func obFailedOnce(t testing.TB, h *harness, to string) {
	t.Helper()
	cdEventually(t, "the worker tried and failed to send to "+to, func() bool {
		for _, r := range cdOutboxRowsTo(t, h, to) {
			if !r.Sent && r.Attempts >= 1 && r.LastError != nil {
				return true
			}
		}
		return false
	})
}

func TestOutboxSMTPDownAtLogin(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		const email = "down@example.test"
		h.signup(email, cdPassword)
		h.smtp.Stop()
		expect(t, h.post("/v2/auth/login", cdCreds(email, cdPassword)), http.StatusOK)
		obFailedOnce(t, h, email)
		if err := h.smtp.Start(); err != nil {
			t.Fatal(err)
		}
		// The retry is due RetryBase after the failure on the instance's clock.
		h.clock.Advance(time.Second)
		code := h.codeFor(email)
		expect(t, h.post("/v2/auth/validate-login", cdEmailCode(email, code)), http.StatusOK)
	})
}

// TestOutboxLeaseComesBack: a message claimed by a worker that died before marking it is sent by
// another worker once the lease runs out, and not before.
func TestOutboxLeaseComesBack(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		const email = "lease@example.test"
		h.signup(email, cdPassword)
		// Park the login code in the outbox: the send fails and its retry waits for the clock.
		h.smtp.Stop()
		expect(t, h.post("/v2/auth/login", cdCreds(email, cdPassword)), http.StatusOK)
		obFailedOnce(t, h, email)

		// A worker of another instance, whose clock is a little ahead, claims it and crashes.
		crashed, err := store.Open(context.Background(), h.cfg.Database.URL, store.Options{MaxOpenConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer crashed.Close()
		crashed.Now = func() time.Time { return h.clock.Now().Add(time.Second) }
		const lease = time.Minute
		claimed, err := crashed.ClaimOutbox(context.Background(), lease, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 1 || claimed[0].To != email {
			t.Fatalf("the crashed worker claimed %+v, want the one message to %s", claimed, email)
		}

		if err := h.smtp.Start(); err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(lease - time.Second) // due by its retry time, still leased
		again, err := h.app.Store.ClaimOutbox(context.Background(), lease, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Fatalf("a leased message was claimed again: %+v", again)
		}
		h.clock.Advance(2 * time.Second) // the lease has run out
		code := h.codeFor(email)
		expect(t, h.post("/v2/auth/validate-login", cdEmailCode(email, code)), http.StatusOK)
		cdEventually(t, "the message is marked sent", func() bool {
			rows := cdOutboxRowsTo(t, h, email)
			return len(rows) == 2 && rows[1].Sent
		})
		if got := cdOutboxRowsTo(t, h, email)[1].Attempts; got != 3 {
			t.Errorf("attempts = %d, want 3 (failed, crashed, sent)", got)
		}
	})
}

// TestOutboxTwoInstances: two instances on one Postgres share the outbox, and every message goes out
// exactly once.
func TestOutboxTwoInstances(t *testing.T) {
	a := newHarness(t, store.Postgres)
	b := startHarness(t, a.cfg, a.smtp, a.clock)
	const n = 20
	emails := make([]string, n)
	for i := range emails {
		emails[i] = fmt.Sprintf("pair%02d@example.test", i)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, email := range emails {
		inst := []*harness{a, b}[i%2]
		wg.Go(func() {
			body, _ := json.Marshal(cdCreds(email, cdPassword))
			r, err := cdSend(inst, http.MethodPost, "/v2/auth/register", "application/json", bytes.NewReader(body))
			if err == nil && r.Status != http.StatusCreated {
				err = fmt.Errorf("register %s: %d %s", email, r.Status, r.Body)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	cdEventually(t, "every message is marked sent", func() bool {
		rows := cdOutboxRows(t, a)
		for _, r := range rows {
			if !r.Sent {
				return false
			}
		}
		return len(rows) == n
	})
	// A row claimed twice would show two attempts, even if the second send is still in flight.
	for _, r := range cdOutboxRows(t, a) {
		if r.Attempts != 1 {
			t.Errorf("message to %s was claimed %d times", r.To, r.Attempts)
		}
	}
	want := make(map[string]int, n)
	for _, e := range emails {
		want[e] = 1
	}
	got := make(map[string]int, n)
	for _, m := range a.smtp.Messages() {
		for _, to := range m.To {
			got[strings.ToLower(to)]++
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages per recipient (-want +got):\n%s", diff)
	}
	// Both instances' codes work on either instance.
	for i, email := range emails[:2] {
		inst := []*harness{b, a}[i]
		expect(t, inst.post("/v2/auth/validate-register", cdEmailCode(email, a.codeFor(email))), http.StatusOK)
	}
}
