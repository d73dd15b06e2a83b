package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
	"github.com/latch-auth/latch/internal/store/storetest"
)

// TestGroupedRefreshesKeepExactlyOnce: on Postgres with one group in flight, so that concurrent
// refreshes are grouped, 50 concurrent refreshes of one token among the refreshes of other sessions
// give that token one successor, every replay within the grace gets the same successor, each other
// session rotates once, and every successor works next. me, grouped too, answers each caller with
// its own user.
func TestGroupedRefreshesKeepExactlyOnce(t *testing.T) {
	h := apptest.New(t, store.Postgres, func(c *config.Config) { c.Database.BatchesInFlight = 1 })
	const sessions = 8
	pairs := make([]apptest.TokenPair, sessions)
	emails := make([]string, sessions)
	for i := range sessions {
		emails[i] = fmt.Sprintf("group%d@example.test", i)
		pairs[i] = h.Signup(t, emails[i], apptest.Password)
	}
	// Requests 0..49 present session 0's token; the rest present each other session's token three
	// times and ask me with its access token.
	type ask struct {
		session int
		me      bool
	}
	var asks []ask
	for range 50 {
		asks = append(asks, ask{0, false})
	}
	for s := 1; s < sessions; s++ {
		asks = append(asks, ask{s, false}, ask{s, false}, ask{s, false}, ask{s, true}, ask{s, true})
	}
	groupsBefore := batchCounts(h)
	answers := apptest.AtOnce(t, len(asks), func(i int) (apptest.Response, error) {
		p := pairs[asks[i].session]
		if asks[i].me {
			return h.Send(http.MethodGet, "/v2/auth/me", nil, apptest.Bearer(p.AccessToken)...)
		}
		return h.Send(http.MethodPost, "/v2/auth/refresh", map[string]string{"refreshToken": p.RefreshToken})
	})
	successors := make([]map[string]int, sessions)
	for i := range successors {
		successors[i] = map[string]int{}
	}
	for i, r := range answers {
		a := asks[i]
		if r.Status != http.StatusOK {
			t.Errorf("request %d (session %d, me %v): status %d, want 200: %s", i, a.session, a.me, r.Status, r.Body)
			continue
		}
		if a.me {
			var me apptest.Me
			r.JSON(t, &me)
			if me.Email != emails[a.session] {
				t.Errorf("request %d: me answered %s, want %s", i, me.Email, emails[a.session])
			}
			continue
		}
		successors[a.session][r.TokenPair(t).RefreshToken]++
	}
	for s, succ := range successors {
		if len(succ) != 1 {
			t.Errorf("session %d: %d different successors %v, want exactly one", s, len(succ), succ)
		}
		if n := chainLength(t, h, apptestClaimSID(t, pairs[s])); n != 2 {
			t.Errorf("session %d has %d refresh tokens, want 2", s, n)
		}
		for next := range succ {
			h.Rotate(t, next)
		}
	}
	after := batchCounts(h)
	groups, calls := after[0]-groupsBefore[0], after[1]-groupsBefore[1]
	t.Logf("%d rotations in %d groups", calls, groups)
	if calls <= groups {
		t.Errorf("%d rotations ran in %d groups: no group held more than one, so grouping went untested", calls, groups)
	}
}

func apptestClaimSID(t *testing.T, p apptest.TokenPair) string {
	return apptest.Claim(t, p.AccessToken, "sid")
}

// batchCounts reads the rotation groups run so far and the rotations they held.
func batchCounts(h *apptest.Instance) [2]int64 {
	for _, b := range h.App.Store.Batches() {
		if b.Kind == "rotate" {
			return [2]int64{b.Groups(), b.Calls()}
		}
	}
	return [2]int64{}
}

// TestGroupedRefreshesWhenTheDatabaseFails: a group the database does not answer (a table locked past
// the request deadline, or the server gone) answers every request in it 503 unavailable, never a wrong
// outcome; once the database is back each token rotates as if nothing had happened.
func TestGroupedRefreshesWhenTheDatabaseFails(t *testing.T) {
	dbURL, proxy := storetest.PostgresURLBehindProxy(t)
	h := apptest.New(t, store.Postgres, func(c *config.Config) {
		c.Database.URL = dbURL
		c.Database.BatchesInFlight = 1
		c.Server.RequestTimeout = time.Second
	})
	pairs := make([]apptest.TokenPair, 4)
	for i := range pairs {
		pairs[i] = h.Signup(t, fmt.Sprintf("fail%d@example.test", i), apptest.Password)
	}
	race := func() []apptest.Response {
		// Each token twice, so that groups hold several sessions and a second presentation waits.
		return apptest.AtOnce(t, 2*len(pairs), func(i int) (apptest.Response, error) {
			return h.Send(http.MethodPost, "/v2/auth/refresh", map[string]string{"refreshToken": pairs[i%len(pairs)].RefreshToken})
		})
	}
	for _, fault := range []struct {
		name  string
		start func() (end func())
	}{
		{"locked past the deadline", func() func() { return holdWriteLock(t, h) }},
		{"down", func() func() {
			proxy.Down()
			return func() {
				if err := proxy.Up(); err != nil {
					t.Fatal(err)
				}
			}
		}},
	} {
		t.Run(fault.name, func(t *testing.T) {
			end := fault.start()
			for i, r := range race() {
				if r.Status != http.StatusServiceUnavailable {
					t.Errorf("request %d: status %d, want 503: %s", i, r.Status, r.Body)
					continue
				}
				apptest.WantProblem(t, r, http.StatusServiceUnavailable, "unavailable")
			}
			end()
		})
	}
	for _, p := range pairs {
		h.Rotate(t, p.RefreshToken)
	}
}
