package httpapi

import (
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client IP, in this instance's memory: behind a load balancer each
// instance enforces its own bucket (the account backoff, which must agree, lives in the database).
type ipLimiter struct {
	mu      sync.Mutex
	perSec  rate.Limit
	burst   int
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newIPLimiter(perMinute, burst int) *ipLimiter {
	return &ipLimiter{perSec: rate.Limit(float64(perMinute) / 60), burst: max(burst, 1), buckets: map[string]*bucket{}}
}

// allow takes a token for ip, or says how long until one is available.
func (l *ipLimiter) allow(ip string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		// A bucket idle long enough to have refilled is the same as no bucket.
		full := time.Duration(float64(l.burst)/float64(l.perSec)) * time.Second
		for k, b := range l.buckets {
			if now.Sub(b.seen) > full {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b, ok := l.buckets[ip]
	if !ok {
		b = &bucket{lim: rate.NewLimiter(l.perSec, l.burst)}
		l.buckets[ip] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// throttle applies the per-IP bucket to routes that check passwords or codes or send mail.
func (s *Server) throttle(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.ips != nil {
			if ok, wait := s.ips.allow(c.RealIP(), time.Now()); !ok {
				if s.cfg.Metrics != nil {
					s.cfg.Metrics.Throttled("ip")
				}
				return &httpError{code: codeRateLimited, detail: "Too many requests from this address; slow down.", retryAfter: wait}
			}
		}
		return next(c)
	}
}
