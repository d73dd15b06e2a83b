package auth

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The spec's defaults: five free failures, then 30 s doubling to 15 min; the account-wide wait starts
// past the ceiling.
var specThrottle = ThrottleConfig{FreeFailures: 5, BaseDelay: 30 * time.Second, MaxDelay: 15 * time.Minute, Ceiling: 100}

func TestThrottlePerIPBackoffTable(t *testing.T) {
	want := map[int]time.Duration{
		0: 0, 1: 0, 4: 0, 5: 0,
		6:  30 * time.Second,
		7:  time.Minute,
		8:  2 * time.Minute,
		9:  4 * time.Minute,
		10: 8 * time.Minute,
		11: 15 * time.Minute, // 16 min capped
		12: 15 * time.Minute,
		50: 15 * time.Minute,
		// Far past the cap the doubling must neither overflow nor go negative.
		100_000: 15 * time.Minute,
	}
	got := map[int]time.Duration{}
	for n := range want {
		got[n], _ = specThrottle.waits(FailureCounts{PerIP: n})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("per-IP wait by failure count (-want +got):\n%s", diff)
	}
}

func TestThrottleAccountCeiling(t *testing.T) {
	c := specThrottle
	c.Ceiling = 8
	want := map[int]time.Duration{
		0: 0, 5: 0, 8: 0,
		9:  30 * time.Second,
		10: time.Minute,
		11: 2 * time.Minute,
		20: 15 * time.Minute,
	}
	got := map[int]time.Duration{}
	for n := range want {
		// Spread across IPs: no single IP is past its free failures.
		perIP, total := c.waits(FailureCounts{PerIP: 1, Total: n})
		if perIP != 0 {
			t.Errorf("total %d: per-IP wait %v for a single failure from that IP", n, perIP)
		}
		got[n] = total
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("account-wide wait by failure count (-want +got):\n%s", diff)
	}
}

func TestThrottleNeverMoreThanHundredFreeFailures(t *testing.T) {
	// NIST SP 800-63B: at most 100 consecutive failures without a wait, with the default ceiling.
	_, total := specThrottle.waits(FailureCounts{PerIP: 1, Total: 101})
	if total <= 0 {
		t.Errorf("101 failures across IPs: account-wide wait %v, want > 0", total)
	}
}

func TestThrottleZeroBaseDelayDisables(t *testing.T) {
	c := ThrottleConfig{FreeFailures: 0, BaseDelay: 0, MaxDelay: 0, Ceiling: 0}
	perIP, total := c.waits(FailureCounts{PerIP: 1000, Total: 1000})
	if diff := cmp.Diff([2]time.Duration{0, 0}, [2]time.Duration{perIP, total}); diff != "" {
		t.Errorf("waits with base_delay 0 (-want +got):\n%s", diff)
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0:                      time.Second,
		time.Millisecond:       time.Second,
		time.Second:            time.Second,
		29*time.Second + 1:     30 * time.Second,
		30 * time.Second:       30 * time.Second,
		59*time.Second + 999e6: time.Minute,
	} {
		if got := roundUp(in); got != want {
			t.Errorf("roundUp(%v) = %v, want %v", in, got, want)
		}
	}
}
