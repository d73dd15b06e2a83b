package auth

import (
	"context"
	"time"
)

// ThrottleConfig is the password-failure backoff (NIST SP 800-63B 5.2.2): the first FreeFailures
// consecutive failures from one IP cost nothing, then each waits BaseDelay doubling up to MaxDelay.
// The wait applies per (account, IP) so a stranger elsewhere cannot lock the owner out; only past
// Ceiling failures from all IPs together does an account-wide wait start.
type ThrottleConfig struct {
	FreeFailures int
	BaseDelay    time.Duration
	MaxDelay     time.Duration
	Ceiling      int
}

func (c ThrottleConfig) backoff(failures, free int) time.Duration {
	if failures <= free || c.BaseDelay <= 0 {
		return 0
	}
	d := c.BaseDelay
	for i := free + 1; i < failures && d < c.MaxDelay; i++ {
		d *= 2
	}
	return min(d, c.MaxDelay)
}

func (c ThrottleConfig) waits(n FailureCounts) (perIP, total time.Duration) {
	return c.backoff(n.PerIP, c.FreeFailures), c.backoff(n.Total, c.Ceiling)
}

// loginSubject keys throttling by tenant and email, so unknown emails are throttled like known ones.
func loginSubject(tenantID, email string) string { return tenantID + ":" + email }

// checkThrottle refuses a password check while the subject waits. A refusal is a security event;
// when it cannot be recorded the request fails rather than go unrecorded.
func (s *Service) checkThrottle(ctx context.Context, subject string, ev Event) error {
	wait, err := s.store.LockedUntil(ctx, subject, ev.IP)
	if err != nil {
		return internal("check throttle", err)
	}
	if wait <= 0 {
		return nil
	}
	ev.Kind = "login_throttled"
	if err := s.store.RecordEvent(ctx, ev); err != nil {
		return internal("record event", err)
	}
	return &Error{Code: CodeLoginThrottled, Detail: "Too many failed attempts; wait before trying again.", RetryAfter: roundUp(wait)}
}

// recordFailure counts a failed check (a wrong password or one-time code) and records its event in
// one write. When that fails the request must fail with it: a failure that could not be counted must
// not pass as an ordinary one, or brute force could hide from both the throttle and the log.
func (s *Service) recordFailure(ctx context.Context, subject string, ev Event) error {
	ev.Kind = "login_failed"
	if _, err := s.store.RecordFailure(ctx, subject, ev.IP, s.cfg.Throttle.waits, ev); err != nil {
		return internal("record login failure", err)
	}
	return nil
}

// roundUp turns a wait into whole seconds for Retry-After, never zero.
func roundUp(d time.Duration) time.Duration {
	s := (d + time.Second - 1) / time.Second * time.Second
	return max(s, time.Second)
}
