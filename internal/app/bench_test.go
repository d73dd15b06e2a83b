package app_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

// BenchmarkForgotPassword times password/forgot through HTTP on Postgres for an address with an
// account and for one without, one request at a time as a prober would send them. The answers must
// not tell them apart, by content or by time: compare the two sub-benchmarks' percentiles
// (TestForgotPasswordAnswersBeforeItsWork checks why). Between requests, untimed, the instance is
// let finish the work an answer left (issuing the code, sending its mail), as the per-IP bucket (one
// request a second) lets it: the answers are compared, not the load of earlier ones.
func BenchmarkForgotPassword(b *testing.B) {
	for _, account := range []bool{false, true} {
		name := map[bool]string{true: "account", false: "no_account"}[account]
		b.Run(name, func(b *testing.B) {
			h := apptest.New(b, store.Postgres, func(c *config.Config) {
				c.Codes.ResendCooldown, c.Codes.MaxPerHour = 0, 1<<30 // every request of the account issues a code
			})
			email := "nobody@example.test"
			if account {
				email = "forgetful@example.test"
				h.InsertVerifiedUsers(b, h.HashPassword(b, apptest.Password), email)
			}
			body := map[string]string{"email": email}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				r, err := h.Send(http.MethodPost, "/v2/auth/password/forgot", body)
				took = append(took, time.Since(start))
				if err != nil || r.Status != http.StatusAccepted {
					b.Fatalf("forgot: %v %d %s", err, r.Status, r.Body)
				}
				b.StopTimer()
				h.App.Service.Drain()
				for unsentMail(b, h) > 0 {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(5 * time.Millisecond) // the worker's look for more mail after a send
				b.StartTimer()
			}
			slices.Sort(took)
			for _, p := range []struct {
				name string
				q    float64
			}{{"p50-ms", .5}, {"p90-ms", .9}, {"p99-ms", .99}} {
				b.ReportMetric(float64(took[int(p.q*float64(len(took)-1))])/float64(time.Millisecond), p.name)
			}
		})
	}
}

func unsentMail(tb testing.TB, h *apptest.Instance) int {
	tb.Helper()
	var n int
	if err := h.App.Store.SQLDB().QueryRow(`SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
