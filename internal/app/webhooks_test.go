package app_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/webhook"
)

// TestWebhookLoginEvents: a signup and logins send user.created, user.verified, login.succeeded and
// login.failed, signed with the endpoint's secret, with no address, password or token in them.
func TestWebhookLoginEvents(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		rcv := apptest.NewReceiver(t)
		h := apptest.New(t, d, apptest.WithWebhook(rcv, "crm", 2*time.Second, 3, auth.WebhookUserCreated, auth.WebhookUserVerified,
			auth.WebhookLoginSucceeded, auth.WebhookLoginFailed))
		const email = "hooked@example.test"
		pair := h.Signup(t, email, apptest.Password)
		me := h.Me(t, pair.AccessToken)
		h.Login(t, email, apptest.Password)
		apptest.WantStatus(t, h.LoginStep(t, email, "wrong password, long enough"), http.StatusUnauthorized)

		for _, typ := range []string{auth.WebhookUserCreated, auth.WebhookUserVerified, auth.WebhookLoginSucceeded, auth.WebhookLoginFailed} {
			got := rcv.WaitFor(t, typ, 1)
			if len(got) != 1 {
				t.Errorf("%s delivered %d times, want once", typ, len(got))
			}
			dl := got[0]
			if err := dl.Verify(apptest.WebhookSecret); err != nil {
				t.Errorf("%s: signature under the endpoint's secret: %v", typ, err)
			}
			if err := dl.Verify("another secret of the same 32+ length!!"); !errors.Is(err, webhook.ErrBadSignature) {
				t.Errorf("%s: signature under another secret = %v, want ErrBadSignature", typ, err)
			}
			if dl.Header.Get(webhook.HeaderID) != dl.Parsed.ID || dl.Parsed.ID == "" || dl.Header.Get(webhook.HeaderEvent) != typ {
				t.Errorf("%s: id header %q, body id %q, event header %q", typ, dl.Header.Get(webhook.HeaderID), dl.Parsed.ID, dl.Header.Get(webhook.HeaderEvent))
			}
			if dl.Parsed.Tenant != auth.DefaultTenantID || dl.Parsed.Data["userId"] != me.ID || dl.Parsed.CreatedAt.IsZero() {
				t.Errorf("%s: body %s", typ, dl.Body)
			}
			for _, secret := range []string{email, apptest.Password, pair.AccessToken, pair.RefreshToken} {
				if strings.Contains(string(dl.Body), secret) {
					t.Errorf("%s: body holds %q: %s", typ, secret, dl.Body)
				}
			}
		}
		// Not subscribed: never sent.
		if got := rcv.Of(auth.WebhookSessionRevoked); len(got) != 0 {
			t.Errorf("unsubscribed type delivered: %v", got)
		}
	})
}

// TestWebhookRetriedAfter500: a receiver answering 500 gets the same delivery again once the backoff
// has passed, and it counts as delivered at its 200.
func TestWebhookRetriedAfter500(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		rcv := apptest.NewReceiver(t)
		rcv.Answer(func(n int) int {
			if n == 1 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		h := apptest.New(t, d, apptest.WithWebhook(rcv, "flaky", 2*time.Second, 5, auth.WebhookLoginFailed))
		key := h.AdminKey(t, "ops", "")
		apptest.WantStatus(t, h.LoginStep(t, "nobody@example.test", apptest.Password), http.StatusUnauthorized)

		failed := h.WaitDelivery(t, key, "failed", auth.WebhookLoginFailed)
		if failed.LastStatus == nil || *failed.LastStatus != 500 || failed.Attempts != 1 || failed.Endpoint != "flaky" {
			t.Errorf("failed delivery = %+v, want one attempt answered 500", failed)
		}
		// Not before its backoff (10 s at most after a first failure)...
		time.Sleep(100 * time.Millisecond) // several polls of the worker
		if n := len(rcv.Deliveries()); n != 1 {
			t.Fatalf("%d requests before the backoff passed, want 1", n)
		}
		// ...and at once after.
		h.Clock.Advance(11 * time.Second)
		got := rcv.WaitFor(t, auth.WebhookLoginFailed, 2)
		if got[0].Parsed.ID != got[1].Parsed.ID || string(got[0].Body) != string(got[1].Body) {
			t.Errorf("the retry is not the same webhook: %s vs %s", got[0].Body, got[1].Body)
		}
		apptest.Eventually(t, "no failed delivery left", func() bool { return len(h.WebhookDeliveries(t, key, "")) == 0 })
		for result, want := range map[string]string{"failed": "1", "delivered": "1", "dead": "absent"} {
			if got := h.MetricValue(t, `latch_webhook_deliveries_total{endpoint="flaky",result="`+result+`"}`); got != want {
				t.Errorf("deliveries %s = %s, want %s", result, got, want)
			}
		}
		if got := h.MetricValue(t, "latch_webhook_pending"); got != "0" {
			t.Errorf("latch_webhook_pending = %s, want 0", got)
		}
	})
}

// TestWebhookHangingReceiver: a receiver that never answers holds no request, its attempt times out
// and is retried.
func TestWebhookHangingReceiver(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		rcv := apptest.NewReceiver(t)
		rcv.Hang()
		h := apptest.New(t, d, apptest.WithWebhook(rcv, "slow", 2*time.Second, 5, auth.WebhookLoginFailed))
		key := h.AdminKey(t, "ops", "")
		apptest.WantStatus(t, h.LoginStep(t, "first@example.test", apptest.Password), http.StatusUnauthorized)
		apptest.Eventually(t, "the receiver holds a delivery", func() bool { return rcv.InFlight() == 1 })

		// Another request, and its event, while the receiver holds the first.
		start := time.Now()
		apptest.WantStatus(t, h.LoginStep(t, "second@example.test", apptest.Password), http.StatusUnauthorized)
		took := time.Since(start)
		if rcv.InFlight() == 0 {
			t.Fatalf("the receiver let go before the request ended (%v): the test proves nothing", took)
		}

		// Both attempts time out; the clock moves only once both wait for their retry.
		var failed []apptest.AdminDelivery
		apptest.Eventually(t, "both attempts timed out", func() bool {
			failed = h.WebhookDeliveries(t, key, "failed")
			return len(failed) == 2
		})
		for _, f := range failed {
			if f.LastStatus != nil || !strings.Contains(f.LastError, "no answer within 2s") {
				t.Errorf("timed-out delivery = %+v", f)
			}
		}
		rcv.Release()
		h.Clock.Advance(time.Minute)
		apptest.Eventually(t, "both events delivered", func() bool {
			return len(h.WebhookDeliveries(t, key, "")) == 0 && len(uniqueIDs(rcv.Of(auth.WebhookLoginFailed))) == 2
		})
	})
}

func uniqueIDs(ds []apptest.Delivery) map[string]int {
	ids := map[string]int{}
	for _, d := range ds {
		ids[d.Parsed.ID]++
	}
	return ids
}

// TestWebhookDeadAndRetried: after max_attempts failures a delivery is dead, shown by the admin view,
// and an operator's retry delivers it.
func TestWebhookDeadAndRetried(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		rcv := apptest.NewReceiver(t)
		var mu sync.Mutex
		status := http.StatusServiceUnavailable
		rcv.Answer(func(int) int { mu.Lock(); defer mu.Unlock(); return status })
		h := apptest.New(t, d, apptest.WithWebhook(rcv, "down", 2*time.Second, 2, auth.WebhookLoginFailed))
		key := h.AdminKey(t, "ops", "")
		h.CreateTenant(t, "acme", apptest.Settings{})
		acmeKey := h.AdminKey(t, "acme ops", "acme")
		apptest.WantStatus(t, h.LoginStep(t, "nobody@example.test", apptest.Password), http.StatusUnauthorized)

		h.WaitDelivery(t, key, "failed", auth.WebhookLoginFailed)
		h.Clock.Advance(time.Minute)
		dead := h.WaitDelivery(t, key, "dead", auth.WebhookLoginFailed)
		if dead.Attempts != 2 || dead.LastStatus == nil || *dead.LastStatus != 503 || dead.TenantID != auth.DefaultTenantID {
			t.Errorf("dead delivery = %+v, want 2 attempts, last 503", dead)
		}
		if got := h.WebhookDeliveries(t, key, "failed"); len(got) != 0 {
			t.Errorf("failed view holds the dead one: %+v", got)
		}
		if got := h.MetricValue(t, "latch_webhook_dead"); got != "1" {
			t.Errorf("latch_webhook_dead = %s, want 1", got)
		}
		h.Clock.Advance(time.Hour)
		time.Sleep(100 * time.Millisecond) // several polls: a dead delivery is not tried again
		if n := len(rcv.Deliveries()); n != 2 {
			t.Errorf("%d requests, want the 2 attempts", n)
		}

		// Bad input answers problem+json.
		apptest.WantProblem(t, h.Get(t, "/v2/admin/webhooks/deliveries?status=gone", apptest.Bearer(key)...), http.StatusBadRequest, "validation_failed")
		apptest.WantProblem(t, h.Post(t, "/v2/admin/webhooks/deliveries/not-an-id/retry", nil, apptest.Bearer(key)...), http.StatusNotFound, "not_found")
		apptest.WantProblem(t, h.Post(t, "/v2/admin/webhooks/deliveries/"+dead.ID+"/retry", nil), http.StatusUnauthorized, "admin_key_required")
		// Another tenant's key sees nothing of the default tenant's deliveries.
		if got := h.WebhookDeliveries(t, acmeKey, ""); len(got) != 0 {
			t.Errorf("acme's key sees %+v", got)
		}
		apptest.WantProblem(t, h.Post(t, "/v2/admin/webhooks/deliveries/"+dead.ID+"/retry", nil, apptest.Bearer(acmeKey)...), http.StatusNotFound, "not_found")

		mu.Lock()
		status = http.StatusNoContent
		mu.Unlock()
		r := h.Post(t, "/v2/admin/webhooks/deliveries/"+dead.ID+"/retry", nil, apptest.Bearer(key)...)
		apptest.WantStatus(t, r, http.StatusAccepted)
		var retried apptest.AdminDelivery
		r.JSON(t, &retried)
		if retried.ID != dead.ID || retried.Status != "failed" || retried.Attempts != 0 {
			t.Errorf("retry answered %+v", retried)
		}
		apptest.Eventually(t, "the retried delivery arrives", func() bool { return len(rcv.Deliveries()) == 3 })
		apptest.Eventually(t, "nothing failed or dead", func() bool { return len(h.WebhookDeliveries(t, key, "")) == 0 })
		apptest.WantProblem(t, h.Post(t, "/v2/admin/webhooks/deliveries/"+dead.ID+"/retry", nil, apptest.Bearer(key)...), http.StatusNotFound, "not_found")
		if n := h.EventCount(t, "webhook_retried"); n != 1 {
			t.Errorf("webhook_retried events = %d, want 1", n)
		}
	})
}

// TestWebhookTwoInstancesDeliverOnce: two instances on one Postgres both fan out and deliver, and
// each event reaches the receiver once.
func TestWebhookTwoInstancesDeliverOnce(t *testing.T) {
	rcv := apptest.NewReceiver(t)
	a := apptest.New(t, store.Postgres, apptest.WithWebhook(rcv, "crm", 2*time.Second, 3, "*"))
	b := a.StartPeer(t)
	const n = 30
	for i := range n {
		in := a
		if i%2 == 1 {
			in = b
		}
		apptest.WantStatus(t, in.LoginStep(t, "nobody"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+"@example.test", apptest.Password), http.StatusUnauthorized)
	}
	apptest.Eventually(t, "every event delivered and none pending", func() bool {
		st, err := a.App.Store.WebhookStats(t.Context())
		return err == nil && st.Pending == 0 && len(uniqueIDs(rcv.Of(auth.WebhookLoginFailed))) == n
	})
	ids := uniqueIDs(rcv.Deliveries())
	want := map[string]int{}
	for id := range ids {
		want[id] = 1
	}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("deliveries per webhook id (-once +got):\n%s", diff)
	}
}
