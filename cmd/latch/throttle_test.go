package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/auth"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

// thrRetryAfter returns the Retry-After header in whole seconds, failing unless it is an integer >= 1.
func thrRetryAfter(t testing.TB, r response) int {
	t.Helper()
	v := r.Header.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1 (status %d, body %s)", v, r.Status, r.Body)
	}
	return n
}

func thrFrom(ip string) []string { return []string{"X-Forwarded-For", ip} }

func thrBehindProxy(c *config.Config) { c.Server.TrustedProxies = []string{"127.0.0.1/32"} }

func thrIPBucket(c *config.Config) { c.RateLimit.IPPerMinute, c.RateLimit.IPBurst = 60, 3 }

// thrCreateUser inserts an active, verified user with the password hashed by the instance's hasher.
func thrCreateUser(t testing.TB, h *harness, email, password string) {
	t.Helper()
	hash, err := h.app.Hasher.Hash(context.Background(), password)
	if err != nil {
		t.Fatal(err)
	}
	thrInsertUsers(t, h, hash, email)
}

func thrInsertUsers(t testing.TB, h *harness, hash string, emails ...string) {
	t.Helper()
	verified := h.clock.Now()
	for _, e := range emails {
		if err := h.app.Store.CreateUser(context.Background(), &auth.User{Email: e, EmailVerifiedAt: &verified}, hash); err != nil {
			t.Fatal(err)
		}
	}
}

func TestThrottleIPBucket(t *testing.T) {
	h := newHarness(t, store.SQLite, thrIPBucket)
	for i := range 3 {
		pwWantProblem(t, pwLoginStep(h, fmt.Sprintf("bucket%d@example.test", i), "wrong password"), http.StatusUnauthorized, "invalid_credentials")
	}
	r := pwLoginStep(h, "bucket3@example.test", "wrong password")
	pwWantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	thrRetryAfter(t, r)
	// The bucket covers the other credential-checking routes too.
	r = h.post("/v2/auth/password/forgot", map[string]string{"email": "bucket@example.test"})
	pwWantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	thrRetryAfter(t, r)
}

func TestThrottleIPBucketTrustsForwardedForOnlyFromProxies(t *testing.T) {
	t.Run("trusted proxy", func(t *testing.T) {
		h := newHarness(t, store.SQLite, thrIPBucket, thrBehindProxy)
		for i := range 3 {
			expect(t, pwLoginStep(h, fmt.Sprintf("xff%d@example.test", i), "wrong password", thrFrom("203.0.113.1")...), http.StatusUnauthorized)
		}
		pwWantProblem(t, pwLoginStep(h, "xff@example.test", "wrong password", thrFrom("203.0.113.1")...), http.StatusTooManyRequests, "rate_limited")
		// Another client behind the same proxy has its own bucket.
		expect(t, pwLoginStep(h, "xff@example.test", "wrong password", thrFrom("203.0.113.2")...), http.StatusUnauthorized)
	})
	t.Run("no trusted proxy", func(t *testing.T) {
		h := newHarness(t, store.SQLite, thrIPBucket)
		for i := range 3 {
			expect(t, pwLoginStep(h, fmt.Sprintf("xff%d@example.test", i), "wrong password", thrFrom(fmt.Sprintf("203.0.113.%d", i+1))...), http.StatusUnauthorized)
		}
		// A forged header does not buy a fresh bucket.
		pwWantProblem(t, pwLoginStep(h, "xff@example.test", "wrong password", thrFrom("203.0.113.99")...), http.StatusTooManyRequests, "rate_limited")
	})
}

// thrAttempt is what a login attempt answered, for comparing throttling sequences.
type thrAttempt struct {
	Status     int
	Code       string
	RetryAfter string
}

func thrLogin(h *harness, email, password string, headers ...string) thrAttempt {
	h.t.Helper()
	r := pwLoginStep(h, email, password, headers...)
	a := thrAttempt{Status: r.Status, RetryAfter: r.Header.Get("Retry-After")}
	if r.Status != http.StatusOK {
		a.Code = r.Problem(h.t).Code
	}
	return a
}

var (
	thrWrong     = thrAttempt{http.StatusUnauthorized, "invalid_credentials", ""}
	thrOK        = thrAttempt{http.StatusOK, "", ""}
	thrThrottled = func(seconds int) thrAttempt {
		return thrAttempt{http.StatusTooManyRequests, "login_throttled", strconv.Itoa(seconds)}
	}
)

// thrBackoffScript drives one account through the backoff and returns every answer.
func thrBackoffScript(h *harness, email, password string) []thrAttempt {
	var got []thrAttempt
	for range 6 {
		got = append(got, thrLogin(h, email, "wrong password"))
	}
	got = append(got, thrLogin(h, email, "wrong password"))
	got = append(got, thrLogin(h, email, password)) // the right password waits too
	h.clock.Advance(31 * time.Second)
	got = append(got, thrLogin(h, email, "wrong password"))
	got = append(got, thrLogin(h, email, "wrong password"))
	h.clock.Advance(59 * time.Second)
	got = append(got, thrLogin(h, email, "wrong password"))
	return got
}

func TestThrottleAccountBackoff(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d)
		const email, pw = "backoff@example.test", "right password"
		thrCreateUser(t, h, email, pw)

		got := thrBackoffScript(h, email, pw)
		want := []thrAttempt{thrWrong, thrWrong, thrWrong, thrWrong, thrWrong, thrWrong,
			thrThrottled(30), thrThrottled(30), // the 6th failure earned 30 s
			thrWrong, thrThrottled(60), // 31 s later: one more failure doubles the wait
			thrThrottled(1)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("login answers (-want +got):\n%s", diff)
		}

		// After the wait, the right password succeeds and forgets every failure.
		h.clock.Advance(time.Second)
		if diff := cmp.Diff(thrOK, thrLogin(h, email, pw)); diff != "" {
			t.Fatalf("login after waiting (-want +got):\n%s", diff)
		}
		got = nil
		for range 7 {
			got = append(got, thrLogin(h, email, "wrong password"))
		}
		want = []thrAttempt{thrWrong, thrWrong, thrWrong, thrWrong, thrWrong, thrWrong, thrThrottled(30)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers after a success (-want +got):\n%s", diff)
		}
	})
}

func TestThrottleUnknownEmailLikeKnown(t *testing.T) {
	h := newHarness(t, store.SQLite)
	thrCreateUser(t, h, "exists@example.test", "right password")
	known := thrBackoffScript(h, "exists@example.test", "right password")
	unknown := thrBackoffScript(h, "missing@example.test", "right password")
	if diff := cmp.Diff(known, unknown); diff != "" {
		t.Errorf("throttling tells a known email from an unknown one (-known +unknown):\n%s", diff)
	}
}

func TestThrottlePerIPThenAccountCeiling(t *testing.T) {
	eachDialect(t, func(t *testing.T, d store.Dialect) {
		h := newHarness(t, d, thrBehindProxy, func(c *config.Config) { c.RateLimit.AccountCeiling = 8 })
		const email, pw = "target@example.test", "right password"
		thrCreateUser(t, h, email, pw)
		attacker, owner, third := thrFrom("198.51.100.1"), thrFrom("198.51.100.2"), thrFrom("198.51.100.3")

		for range 6 {
			if diff := cmp.Diff(thrWrong, thrLogin(h, email, "wrong password", attacker...)); diff != "" {
				t.Fatalf("attacker failure (-want +got):\n%s", diff)
			}
		}
		if diff := cmp.Diff(thrThrottled(30), thrLogin(h, email, "wrong password", attacker...)); diff != "" {
			t.Fatalf("attacker after 6 failures (-want +got):\n%s", diff)
		}
		// Another IP is not locked out by the attacker's failures (7 and 8 in total, at the ceiling).
		for range 2 {
			if diff := cmp.Diff(thrWrong, thrLogin(h, email, "wrong password", owner...)); diff != "" {
				t.Fatalf("other IP below the ceiling (-want +got):\n%s", diff)
			}
		}
		// The 9th failure in total passes the ceiling: now the account waits on every IP.
		if diff := cmp.Diff(thrWrong, thrLogin(h, email, "wrong password", owner...)); diff != "" {
			t.Fatalf("failure past the ceiling (-want +got):\n%s", diff)
		}
		for _, ip := range [][]string{third, owner} {
			if diff := cmp.Diff(thrThrottled(30), thrLogin(h, email, pw, ip...)); diff != "" {
				t.Errorf("IP %s past the account ceiling (-want +got):\n%s", ip[1], diff)
			}
		}
	})
}

// Postgres only: on SQLite the storm measures its write lock, not the hashing bound, and costs seconds.
func TestThrottleLoginStormBoundsHashing(t *testing.T) {
	h := newHarness(t, store.Postgres, func(c *config.Config) { c.Password.MaxConcurrent = 2 })
	statuses := thrStorm(t, h, 200)
	t.Logf("storm answers: %v", statuses)
	for s := range statuses {
		if s != http.StatusOK && s != http.StatusTooManyRequests && s != http.StatusServiceUnavailable {
			t.Errorf("storm answered %d (%d times)", s, statuses[s])
		}
	}
	if statuses[http.StatusOK] == 0 {
		t.Errorf("no login of the storm succeeded: %v", statuses)
	}
	if n := h.app.Hasher.MaxInFlightSeen(); n > 2 {
		t.Errorf("hashes in flight peaked at %d, want at most 2", n)
	}
}

func TestThrottleLoginStormShedsWithOverloaded(t *testing.T) {
	h := newHarness(t, store.Postgres, func(c *config.Config) {
		c.Password.MaxConcurrent, c.Password.QueueTimeout = 1, time.Millisecond
		c.Password.Argon2Memory = 8192 // each hash holds the slot long enough for others to give up
	})
	statuses := thrStorm(t, h, 100)
	t.Logf("storm answers: %v", statuses)
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("no 503 with one hashing slot and a 1 ms queue: %v", statuses)
	}
	for s := range statuses {
		if s != http.StatusOK && s != http.StatusServiceUnavailable {
			t.Errorf("storm answered %d (%d times)", s, statuses[s])
		}
	}
	if n := h.app.Hasher.MaxInFlightSeen(); n != 1 {
		t.Errorf("hashes in flight peaked at %d, want 1", n)
	}
}

// thrStorm logs n distinct users in at once with their right passwords and counts the statuses.
// Every 503 must be a problem "overloaded" with Retry-After.
func thrStorm(t *testing.T, h *harness, n int) map[int]int {
	t.Helper()
	hash, err := h.app.Hasher.Hash(context.Background(), "storm password")
	if err != nil {
		t.Fatal(err)
	}
	emails := make([]string, n)
	for i := range emails {
		emails[i] = fmt.Sprintf("storm%03d@example.test", i)
	}
	thrInsertUsers(t, h, hash, emails...)

	answers := make([]response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, e := range emails {
		wg.Go(func() {
			<-start
			answers[i] = pwLoginStep(h, e, "storm password")
		})
	}
	close(start)
	wg.Wait()

	statuses := map[int]int{}
	for _, r := range answers {
		statuses[r.Status]++
		if r.Status == http.StatusServiceUnavailable {
			pwWantProblem(t, r, http.StatusServiceUnavailable, "overloaded")
			thrRetryAfter(t, r)
		}
	}
	return statuses
}
