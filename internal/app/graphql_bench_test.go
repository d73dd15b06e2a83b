package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/store"
)

// refreshVia is one way to rotate a refresh token over real HTTP.
type refreshVia struct {
	name    string
	path    string
	body    func(refresh string) any
	extract func(body []byte) (string, error)
}

const sdkRefresh = `mutation refreshToken($refreshToken: String!) {
  tokenRefresh(refreshToken: $refreshToken) { token refreshToken errors { code field message } }
}`

var refreshVias = []refreshVia{
	{"rest", "/v2/auth/refresh",
		func(refresh string) any { return map[string]string{"refreshToken": refresh} },
		func(body []byte) (string, error) {
			var p apptest.TokenPair
			err := json.Unmarshal(body, &p)
			return p.RefreshToken, err
		}},
	{"graphql", "/graphql",
		func(refresh string) any {
			return map[string]any{"query": sdkRefresh, "variables": map[string]string{"refreshToken": refresh}}
		},
		func(body []byte) (string, error) {
			var r struct {
				Data struct {
					TokenRefresh struct {
						RefreshToken string `json:"refreshToken"`
					} `json:"tokenRefresh"`
				} `json:"data"`
			}
			err := json.Unmarshal(body, &r)
			return r.Data.TokenRefresh.RefreshToken, err
		}},
}

// BenchmarkRefreshRESTAndGraphQL rotates refresh tokens through /v2/auth/refresh and through
// tokenRefresh on /graphql (the query the Saleor SDK sends, plus refreshToken) against one instance on
// Postgres over real HTTP. Each of 8 goroutines owns a chain of each kind and, per iteration, rotates
// both, in alternating order, timing each; the two are measured in the same run, on the same database
// and the same log, so neither pays for the other's leftovers. It reports the mean latency of each and
// their ratio.
func BenchmarkRefreshRESTAndGraphQL(b *testing.B) {
	h := apptest.New(b, store.Postgres)
	const chains = 8
	var users atomic.Int64
	pool := make(chan [2]string, chains)
	for range chains {
		var pair [2]string
		for i := range refreshVias {
			pair[i] = h.Signup(b, fmt.Sprintf("bench%d@example.test", users.Add(1)), apptest.Password).RefreshToken
		}
		pool <- pair
	}
	var spent [2]atomic.Int64 // nanoseconds per way
	var count atomic.Int64
	b.ResetTimer()
	b.SetParallelism(chains / 2) // RunParallel starts parallelism × GOMAXPROCS goroutines
	b.RunParallel(func(pb *testing.PB) {
		toks := <-pool
		defer func() { pool <- toks }()
		for n := 0; pb.Next(); n++ {
			for k := range refreshVias {
				i := (k + n) % len(refreshVias) // alternate which way goes first
				via := refreshVias[i]
				start := time.Now()
				r, err := h.Send(http.MethodPost, via.path, via.body(toks[i]))
				spent[i].Add(int64(time.Since(start)))
				if err == nil && r.Status != http.StatusOK {
					err = fmt.Errorf("status %d", r.Status)
				}
				var next string
				if err == nil {
					next, err = via.extract(r.Body)
				}
				if err != nil || next == "" {
					b.Errorf("%s: %v (body %s)", via.name, err, r.Body)
					return
				}
				toks[i] = next
			}
			count.Add(1)
		}
	})
	if n := count.Load(); n > 0 {
		rest, gql := float64(spent[0].Load())/float64(n), float64(spent[1].Load())/float64(n)
		b.ReportMetric(rest/1e3, "rest-µs/refresh")
		b.ReportMetric(gql/1e3, "graphql-µs/refresh")
		b.ReportMetric(gql/rest, "graphql/rest")
	}
}
