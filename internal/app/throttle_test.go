package app_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/latch-auth/latch/internal/app/apptest"
	"github.com/latch-auth/latch/internal/config"
	"github.com/latch-auth/latch/internal/store"
)

// retryAfter returns the Retry-After header in whole seconds, failing unless it is an integer >= 1.
func retryAfter(t *testing.T, r apptest.Response) int {
	t.Helper()
	v := r.Header.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want whole seconds >= 1 (status %d, body %s)", v, r.Status, r.Body)
	}
	return n
}

func forwardedFor(ip string) []string { return []string{"X-Forwarded-For", ip} }

func behindProxy(c *config.Config) { c.Server.TrustedProxies = []string{"127.0.0.1/32"} }

func smallIPBucket(c *config.Config) { c.RateLimit.IPPerMinute, c.RateLimit.IPBurst = 60, 3 }

// createUser inserts an active, verified user with the password hashed by the instance's hasher.
func createUser(t *testing.T, h *apptest.Instance, email, password string) {
	t.Helper()
	h.InsertVerifiedUsers(t, h.HashPassword(t, password), email)
}

func TestThrottleIPBucket(t *testing.T) {
	h := apptest.New(t, store.SQLite, smallIPBucket)
	for i := range 3 {
		apptest.WantProblem(t, h.LoginStep(t, fmt.Sprintf("bucket%d@example.test", i), "wrong password"), http.StatusUnauthorized, "invalid_credentials")
	}
	r := h.LoginStep(t, "bucket3@example.test", "wrong password")
	apptest.WantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	retryAfter(t, r)
	// The bucket covers the other credential-checking routes too.
	r = h.Post(t, "/v2/auth/password/forgot", map[string]string{"email": "bucket@example.test"})
	apptest.WantProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	retryAfter(t, r)
}

func TestThrottleIPBucketTrustsForwardedForOnlyFromProxies(t *testing.T) {
	t.Run("trusted proxy", func(t *testing.T) {
		h := apptest.New(t, store.SQLite, smallIPBucket, behindProxy)
		for i := range 3 {
			apptest.WantStatus(t, h.LoginStep(t, fmt.Sprintf("xff%d@example.test", i), "wrong password", forwardedFor("203.0.113.1")...), http.StatusUnauthorized)
		}
		apptest.WantProblem(t, h.LoginStep(t, "xff@example.test", "wrong password", forwardedFor("203.0.113.1")...), http.StatusTooManyRequests, "rate_limited")
		// Another client behind the same proxy has its own bucket.
		apptest.WantStatus(t, h.LoginStep(t, "xff@example.test", "wrong password", forwardedFor("203.0.113.2")...), http.StatusUnauthorized)
	})
	t.Run("no trusted proxy", func(t *testing.T) {
		h := apptest.New(t, store.SQLite, smallIPBucket)
		for i := range 3 {
			apptest.WantStatus(t, h.LoginStep(t, fmt.Sprintf("xff%d@example.test", i), "wrong password", forwardedFor(fmt.Sprintf("203.0.113.%d", i+1))...), http.StatusUnauthorized)
		}
		// A forged header does not buy a fresh bucket.
		apptest.WantProblem(t, h.LoginStep(t, "xff@example.test", "wrong password", forwardedFor("203.0.113.99")...), http.StatusTooManyRequests, "rate_limited")
	})
}

// attempt is what a login attempt answered, for comparing throttling sequences.
type attempt struct {
	Status     int
	Code       string
	RetryAfter string
}

func loginAttempt(t *testing.T, h *apptest.Instance, email, password string, headers ...string) attempt {
	t.Helper()
	r := h.LoginStep(t, email, password, headers...)
	a := attempt{Status: r.Status, RetryAfter: r.Header.Get("Retry-After")}
	if r.Status != http.StatusOK {
		a.Code = r.Problem(t).Code
	}
	return a
}

var (
	wrongPassword = attempt{http.StatusUnauthorized, "invalid_credentials", ""}
	loggedIn      = attempt{http.StatusOK, "", ""}
	throttled     = func(seconds int) attempt {
		return attempt{http.StatusTooManyRequests, "login_throttled", strconv.Itoa(seconds)}
	}
)

// backoffScript drives one account through the backoff and returns every answer.
func backoffScript(t *testing.T, h *apptest.Instance, email, password string) []attempt {
	t.Helper()
	var got []attempt
	for range 6 {
		got = append(got, loginAttempt(t, h, email, "wrong password"))
	}
	got = append(got, loginAttempt(t, h, email, "wrong password"))
	got = append(got, loginAttempt(t, h, email, password)) // the right password waits too
	h.Clock.Advance(31 * time.Second)
	got = append(got, loginAttempt(t, h, email, "wrong password"))
	got = append(got, loginAttempt(t, h, email, "wrong password"))
	h.Clock.Advance(59 * time.Second)
	got = append(got, loginAttempt(t, h, email, "wrong password"))
	return got
}

func TestThrottleAccountBackoff(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d)
		const email, pw = "backoff@example.test", "right password"
		createUser(t, h, email, pw)

		got := backoffScript(t, h, email, pw)
		want := []attempt{wrongPassword, wrongPassword, wrongPassword, wrongPassword, wrongPassword, wrongPassword,
			throttled(30), throttled(30), // the 6th failure earned 30 s
			wrongPassword, throttled(60), // 31 s later: one more failure doubles the wait
			throttled(1)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("login answers (-want +got):\n%s", diff)
		}

		// After the wait, the right password succeeds and forgets every failure.
		h.Clock.Advance(time.Second)
		if diff := cmp.Diff(loggedIn, loginAttempt(t, h, email, pw)); diff != "" {
			t.Fatalf("login after waiting (-want +got):\n%s", diff)
		}
		got = nil
		for range 7 {
			got = append(got, loginAttempt(t, h, email, "wrong password"))
		}
		want = []attempt{wrongPassword, wrongPassword, wrongPassword, wrongPassword, wrongPassword, wrongPassword, throttled(30)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("answers after a success (-want +got):\n%s", diff)
		}
	})
}

func TestThrottleUnknownEmailLikeKnown(t *testing.T) {
	h := apptest.New(t, store.SQLite)
	createUser(t, h, "exists@example.test", "right password")
	known := backoffScript(t, h, "exists@example.test", "right password")
	unknown := backoffScript(t, h, "missing@example.test", "right password")
	if diff := cmp.Diff(known, unknown); diff != "" {
		t.Errorf("throttling tells a known email from an unknown one (-known +unknown):\n%s", diff)
	}
}

func TestThrottlePerIPThenAccountCeiling(t *testing.T) {
	apptest.EachDialect(t, func(t *testing.T, d store.Dialect) {
		h := apptest.New(t, d, behindProxy, func(c *config.Config) { c.RateLimit.AccountCeiling = 8 })
		const email, pw = "target@example.test", "right password"
		createUser(t, h, email, pw)
		attacker, owner, third := forwardedFor("198.51.100.1"), forwardedFor("198.51.100.2"), forwardedFor("198.51.100.3")

		for range 6 {
			if diff := cmp.Diff(wrongPassword, loginAttempt(t, h, email, "wrong password", attacker...)); diff != "" {
				t.Fatalf("attacker failure (-want +got):\n%s", diff)
			}
		}
		if diff := cmp.Diff(throttled(30), loginAttempt(t, h, email, "wrong password", attacker...)); diff != "" {
			t.Fatalf("attacker after 6 failures (-want +got):\n%s", diff)
		}
		// Another IP is not locked out by the attacker's failures (7 and 8 in total, at the ceiling).
		for range 2 {
			if diff := cmp.Diff(wrongPassword, loginAttempt(t, h, email, "wrong password", owner...)); diff != "" {
				t.Fatalf("other IP below the ceiling (-want +got):\n%s", diff)
			}
		}
		// The 9th failure in total passes the ceiling: now the account waits on every IP.
		if diff := cmp.Diff(wrongPassword, loginAttempt(t, h, email, "wrong password", owner...)); diff != "" {
			t.Fatalf("failure past the ceiling (-want +got):\n%s", diff)
		}
		for _, ip := range [][]string{third, owner} {
			if diff := cmp.Diff(throttled(30), loginAttempt(t, h, email, pw, ip...)); diff != "" {
				t.Errorf("IP %s past the account ceiling (-want +got):\n%s", ip[1], diff)
			}
		}
	})
}

// Postgres only: on SQLite the storm measures its write lock, not the hashing bound, and costs seconds.
func TestThrottleLoginStormBoundsHashing(t *testing.T) {
	h := apptest.New(t, store.Postgres, func(c *config.Config) { c.Password.MaxConcurrent = 2 })
	statuses := loginStorm(t, h, 200)
	t.Logf("storm answers: %v", statuses)
	for s := range statuses {
		if s != http.StatusOK && s != http.StatusTooManyRequests && s != http.StatusServiceUnavailable {
			t.Errorf("storm answered %d (%d times)", s, statuses[s])
		}
	}
	if statuses[http.StatusOK] == 0 {
		t.Errorf("no login of the storm succeeded: %v", statuses)
	}
	if n := h.App.Hasher.MaxInFlightSeen(); n > 2 {
		t.Errorf("hashes in flight peaked at %d, want at most 2", n)
	}
}

func TestThrottleLoginStormShedsWithOverloaded(t *testing.T) {
	h := apptest.New(t, store.Postgres, func(c *config.Config) {
		c.Password.MaxConcurrent, c.Password.QueueTimeout = 1, time.Millisecond
		c.Password.Argon2Memory = 8192 // each hash holds the slot long enough for others to give up
	})
	statuses := loginStorm(t, h, 100)
	t.Logf("storm answers: %v", statuses)
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("no 503 with one hashing slot and a 1 ms queue: %v", statuses)
	}
	for s := range statuses {
		if s != http.StatusOK && s != http.StatusServiceUnavailable {
			t.Errorf("storm answered %d (%d times)", s, statuses[s])
		}
	}
	if n := h.App.Hasher.MaxInFlightSeen(); n != 1 {
		t.Errorf("hashes in flight peaked at %d, want 1", n)
	}
}

// loginStorm logs n distinct users in at once with their right passwords and counts the statuses.
// Every 503 must be a problem "overloaded" with Retry-After.
func loginStorm(t *testing.T, h *apptest.Instance, n int) map[int]int {
	t.Helper()
	emails := make([]string, n)
	for i := range emails {
		emails[i] = fmt.Sprintf("storm%03d@example.test", i)
	}
	h.InsertVerifiedUsers(t, h.HashPassword(t, "storm password"), emails...)

	answers := apptest.AtOnce(t, n, func(i int) (apptest.Response, error) {
		return h.Send(http.MethodPost, "/v2/auth/login", apptest.Credentials(emails[i], "storm password"))
	})
	statuses := map[int]int{}
	for _, r := range answers {
		statuses[r.Status]++
		if r.Status == http.StatusServiceUnavailable {
			apptest.WantProblem(t, r, http.StatusServiceUnavailable, "overloaded")
			retryAfter(t, r)
		}
	}
	return statuses
}
