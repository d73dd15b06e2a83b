package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/auth/authtest"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// TestPurgeWebhooks: delivered webhooks go after retention.outbox like sent mail, dead ones after
// retention.events (the operator's audit), pending ones never.
func TestPurgeWebhooks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		clk := authtest.NewClock()
		s.Now = clk.Now
		day := 24 * time.Hour
		queue := func(outcomes ...string) {
			t.Helper()
			for range outcomes {
				if err := s.RecordEvent(ctx, auth.Event{Kind: "login_failed", TenantID: auth.DefaultTenantID}); err != nil {
					t.Fatal(err)
				}
			}
			route := func(ev auth.LoggedEvent) []auth.WebhookDelivery {
				return []auth.WebhookDelivery{{Endpoint: "e", EventType: auth.WebhookLoginFailed, Body: "{}"}}
			}
			if _, err := s.FanOutEvents(ctx, 100, route); err != nil {
				t.Fatal(err)
			}
			claimed, err := s.ClaimWebhooks(ctx, time.Minute, 100)
			if err != nil || len(claimed) != len(outcomes) {
				t.Fatalf("claimed %d, %v; want %d", len(claimed), err, len(outcomes))
			}
			for i, d := range claimed {
				a := auth.WebhookAttempt{ID: d.ID, Claim: d.Claim, Status: outcomes[i], Next: clk.Now().Add(365 * day)}
				if err := s.FinishWebhookAttempt(ctx, a); err != nil {
					t.Fatal(err)
				}
			}
		}
		queue(auth.DeliveryDelivered, auth.DeliveryDead, auth.DeliveryPending)
		clk.Advance(2 * day)
		queue(auth.DeliveryDelivered, auth.DeliveryDead)

		p, err := s.Purge(ctx, store.Retention{Events: 90 * day, Sessions: 7 * day, Codes: day, LoginFailures: day, Outbox: day})
		if err != nil {
			t.Fatal(err)
		}
		if p.Webhooks != 1 {
			t.Errorf("purged %d webhooks at day 2, want the old delivered one", p.Webhooks)
		}
		clk.Advance(89 * day)
		if p, err = s.Purge(ctx, store.Retention{Events: 90 * day, Sessions: 7 * day, Codes: day, LoginFailures: day, Outbox: day}); err != nil {
			t.Fatal(err)
		}
		// The first dead one (91 days old) and the second delivered one; the events went too.
		if diff := cmp.Diff(store.Purged{Events: 3, Webhooks: 2}, p); diff != "" {
			t.Errorf("purged at day 91 (-want +got):\n%s", diff)
		}
		var left []string
		rows, err := s.SQLDB().Query(`SELECT status FROM webhook_deliveries ORDER BY status`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var st string
			if err := rows.Scan(&st); err != nil {
				t.Fatal(err)
			}
			left = append(left, st)
		}
		if diff := cmp.Diff([]string{"dead", "pending"}, left); diff != "" {
			t.Errorf("left (-want +got):\n%s", diff)
		}
	})
}

// BenchmarkWebhookFanOut measures the fan-out of one event to two endpoints, in batches of 200 as the
// worker takes them, and the claim and record of one delivery: the write cost webhooks add per event.
func BenchmarkWebhookFanOut(b *testing.B) {
	s := storetest.Open(b, store.Postgres)
	ctx := context.Background()
	route := func(ev auth.LoggedEvent) []auth.WebhookDelivery {
		return []auth.WebhookDelivery{{Endpoint: "a", EventType: auth.WebhookLoginFailed, Body: `{"type":"login.failed"}`},
			{Endpoint: "b", EventType: auth.WebhookLoginFailed, Body: `{"type":"login.failed"}`}}
	}
	fanOut := func(b *testing.B, n int) {
		for done := 0; done < n; {
			k, err := s.FanOutEvents(ctx, 200, route)
			if err != nil || k == 0 {
				b.Fatalf("fan-out after %d of %d: %v", done, n, err)
			}
			done += k
		}
	}
	record := func(b *testing.B, n int) {
		for range n {
			if err := s.RecordEvent(ctx, auth.Event{Kind: "login_failed", TenantID: auth.DefaultTenantID}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("fanout", func(b *testing.B) {
		record(b, b.N)
		b.ResetTimer()
		fanOut(b, b.N)
	})
	b.Run("claim+finish", func(b *testing.B) {
		record(b, (b.N+1)/2)
		fanOut(b, (b.N+1)/2)
		b.ResetTimer()
		for range b.N {
			ds, err := s.ClaimWebhooks(ctx, time.Minute, 1)
			if err != nil || len(ds) != 1 {
				b.Fatalf("claim: %d, %v", len(ds), err)
			}
			if err := s.FinishWebhookAttempt(ctx, auth.WebhookAttempt{ID: ds[0].ID, Claim: ds[0].Claim, Status: auth.DeliveryDelivered}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestWebhookMigrationLeavesOldEventsAlone: turning webhooks on must not replay the log. Events
// written before migration 00010 are not fanned out; one written after is.
func TestWebhookMigrationLeavesOldEventsAlone(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.OpenAt(t, d, 9)
			for range 3 {
				if err := s.RecordEvent(ctx, auth.Event{Kind: "login_failed", TenantID: auth.DefaultTenantID}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordEvent(ctx, auth.Event{Kind: "login_failed", TenantID: auth.DefaultTenantID}); err != nil {
				t.Fatal(err)
			}
			var fanned []int64
			n, err := s.FanOutEvents(ctx, 100, func(ev auth.LoggedEvent) []auth.WebhookDelivery {
				fanned = append(fanned, ev.ID)
				return nil
			})
			if err != nil || n != 1 || len(fanned) != 1 || fanned[0] != 4 {
				t.Errorf("fan-out after the migration = %d events %v, %v; want the one written after it (id 4)", n, fanned, err)
			}
		})
	}
}
