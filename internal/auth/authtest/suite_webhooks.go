package authtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
)

// routeAll makes one delivery of every event to each endpoint named.
func routeAll(endpoints ...string) func(auth.LoggedEvent) []auth.WebhookDelivery {
	return func(ev auth.LoggedEvent) []auth.WebhookDelivery {
		var out []auth.WebhookDelivery
		for _, e := range endpoints {
			out = append(out, auth.WebhookDelivery{ID: newID(), Endpoint: e, EventType: ev.Kind, Body: `{"kind":"` + ev.Kind + `"}`})
		}
		return out
	}
}

// suiteWebhookFanOut: each event is fanned out once, whoever asks and however often, with what the
// route made of it; a delivery is claimed by one claim until its lease runs out.
func suiteWebhookFanOut(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	u := auth.User{TenantID: "acme", Email: "hook@acme.test"}
	if err := s.CreateUser(ctx, &u, "h", auth.Event{Kind: "user_created"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordEvent(ctx, auth.Event{UserID: u.ID, Kind: "login_failed"}); err != nil {
		t.Fatal(err)
	}

	// Concurrent fan-outs (instances) take each event once.
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Go(func() {
			n, err := s.FanOutEvents(ctx, 1, routeAll("a", "b"))
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	for {
		n, err := s.FanOutEvents(ctx, 10, routeAll("a", "b"))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		counts = append(counts, n)
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 2 {
		t.Errorf("events fanned out %d times in all (%v), want 2", total, counts)
	}

	claimed, err := s.ClaimWebhooks(ctx, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Endpoint, Type, Tenant, Body, Status string
		Attempts                             int
	}
	got := map[row]int{}
	for _, d := range claimed {
		got[row{d.Endpoint, d.EventType, d.TenantID, d.Body, d.Status, d.Attempts}]++
		if d.Claim == "" || d.EventID == 0 {
			t.Errorf("claimed delivery without claim or event: %+v", d)
		}
	}
	want := map[row]int{
		{"a", "user_created", "acme", `{"kind":"user_created"}`, auth.DeliveryPending, 1}: 1,
		{"b", "user_created", "acme", `{"kind":"user_created"}`, auth.DeliveryPending, 1}: 1,
		{"a", "login_failed", "acme", `{"kind":"login_failed"}`, auth.DeliveryPending, 1}: 1,
		{"b", "login_failed", "acme", `{"kind":"login_failed"}`, auth.DeliveryPending, 1}: 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("claimed (-want +got):\n%s", diff)
	}
	if again, err := s.ClaimWebhooks(ctx, time.Minute, 10); err != nil || len(again) != 0 {
		t.Errorf("claim under lease = %d, %v; want none", len(again), err)
	}
	clk.Advance(time.Minute)
	again, err := s.ClaimWebhooks(ctx, time.Minute, 10)
	if err != nil || len(again) != 4 || again[0].Attempts != 2 || again[0].Claim == claimed[0].Claim {
		t.Fatalf("claim after the lease ran out = %+v, %v; want all four again, a second attempt, a new claim", again, err)
	}
	// The old claim lost them.
	err = s.FinishWebhookAttempt(ctx, auth.WebhookAttempt{ID: claimed[0].ID, Claim: claimed[0].Claim, Status: auth.DeliveryDelivered})
	if !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("finish by a lost claim = %v, want ErrNotFound", err)
	}
}

// suiteWebhookOutcomes: delivered, retried later, dead and retried by an operator, as the admin view
// and the stats show them.
func suiteWebhookOutcomes(t *testing.T, open Opener) {
	clk := NewClock()
	s := open(t, clk.Now)
	ctx := context.Background()
	mustTenant(t, s, "acme")
	start := clk.Now()
	for _, tenant := range []string{"acme", "acme", "acme", auth.DefaultTenantID} {
		if err := s.RecordEvent(ctx, auth.Event{Kind: "login_failed", TenantID: tenant}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.FanOutEvents(ctx, 10, routeAll("a")); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimWebhooks(ctx, time.Minute, 10)
	if err != nil || len(claimed) != 4 {
		t.Fatalf("claim = %d, %v", len(claimed), err)
	}
	var acme []auth.WebhookDelivery
	var otherTenant auth.WebhookDelivery
	for _, d := range claimed {
		if d.TenantID == "acme" {
			acme = append(acme, d)
		} else {
			otherTenant = d
		}
	}
	delivered, failed, dead := acme[0], acme[1], acme[2]
	finish := func(d auth.WebhookDelivery, status string, next time.Time, httpStatus int, cause string) {
		t.Helper()
		if err := s.FinishWebhookAttempt(ctx, auth.WebhookAttempt{ID: d.ID, Claim: d.Claim, Status: status, Next: next,
			HTTPStatus: httpStatus, Error: cause}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Second)
	finish(delivered, auth.DeliveryDelivered, time.Time{}, 204, "")
	finish(failed, auth.DeliveryPending, clk.Now().Add(time.Hour), 500, "the endpoint answered 500")
	finish(dead, auth.DeliveryDead, time.Time{}, 0, "no answer within 1s")
	finish(otherTenant, auth.DeliveryDead, time.Time{}, 410, "the endpoint answered 410")

	if due, err := s.ClaimWebhooks(ctx, time.Minute, 10); err != nil || len(due) != 0 {
		t.Errorf("claim before the retry is due = %d, %v; want none", len(due), err)
	}
	st, err := s.WebhookStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Dead != 2 || st.Oldest == nil || !st.Oldest.Equal(start) {
		t.Errorf("stats = %+v (oldest %v), want 1 pending from %v, 2 dead", st, st.Oldest, start)
	}

	type row struct {
		ID, Status, Error string
		HTTP, Attempts    int
		Finished          bool
	}
	list := func(q auth.WebhookQuery) []row {
		t.Helper()
		if q.Limit == 0 {
			q.Limit = 10
		}
		ds, err := s.ListWebhookDeliveries(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		out := []row{}
		for _, d := range ds {
			out = append(out, row{d.ID, d.Status, d.LastError, d.LastStatus, d.Attempts, d.FinishedAt != nil})
		}
		return out
	}
	failedRow := row{failed.ID, auth.DeliveryPending, "the endpoint answered 500", 500, 1, false}
	deadRow := row{dead.ID, auth.DeliveryDead, "no answer within 1s", 0, 1, true}
	if diff := cmp.Diff([]row{failedRow}, list(auth.WebhookQuery{Status: auth.DeliveryFailed, TenantID: "acme"})); diff != "" {
		t.Errorf("failed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]row{deadRow}, list(auth.WebhookQuery{Status: auth.DeliveryDead, TenantID: "acme"})); diff != "" {
		t.Errorf("dead of acme (-want +got):\n%s", diff)
	}
	if got := list(auth.WebhookQuery{}); len(got) != 3 {
		t.Errorf("failed and dead of every tenant = %v, want 3", got)
	}
	// Pages: the same order, a position at a time.
	all, err := s.ListWebhookDeliveries(ctx, auth.WebhookQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var paged []string
	q := auth.WebhookQuery{Limit: 1}
	for range 5 {
		page, err := s.ListWebhookDeliveries(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page[0].ID)
		q.BeforeCreated, q.BeforeID = page[0].CreatedAt, page[0].ID
	}
	var ids []string
	for _, d := range all {
		ids = append(ids, d.ID)
	}
	if diff := cmp.Diff(ids, paged); diff != "" {
		t.Errorf("paged (-all +paged):\n%s", diff)
	}

	// An operator retries the dead one: due at once, with a fresh budget, and recorded.
	ev := auth.Event{Kind: "webhook_retried", Actor: auth.Actor{Type: auth.ActorAdminKey, ID: "k", Name: "ops"}}
	if _, err := s.RetryWebhookDelivery(ctx, dead.ID, auth.DefaultTenantID, ev); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("retry from another tenant = %v, want ErrNotFound", err)
	}
	if _, err := s.RetryWebhookDelivery(ctx, failed.ID, "", ev); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("retry of a pending delivery = %v, want ErrNotFound", err)
	}
	d, err := s.RetryWebhookDelivery(ctx, dead.ID, "acme", ev)
	if err != nil || d.Status != auth.DeliveryPending || d.Attempts != 0 || d.FinishedAt != nil {
		t.Fatalf("retry = %+v, %v", d, err)
	}
	due, err := s.ClaimWebhooks(ctx, time.Minute, 10)
	if err != nil || len(due) != 1 || due[0].ID != dead.ID || due[0].Attempts != 1 {
		t.Fatalf("claim after retry = %+v, %v; want the retried one, first attempt", due, err)
	}
	logged, err := s.ListEvents(ctx, auth.EventQuery{Kind: "webhook_retried", Limit: 10})
	if err != nil || len(logged) != 1 || logged[0].TenantID != "acme" || logged[0].Actor != ev.Actor {
		t.Errorf("retry event = %+v, %v; want one of acme by the key", logged, err)
	}
}
