package limits

import (
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter limits the messages of one connection: a token bucket of
// UpdateBurst tokens refilled at UpdatesPerSecond. It is owned by the
// connection's reader goroutine and, like rate.Limiter, safe for concurrent use.
type RateLimiter struct {
	l     *rate.Limiter
	now   func() time.Time
	limit float64
}

// NewRateLimiter returns the limiter for one new connection, reading the time
// from now (nil: time.Now). It returns nil when c has no rate limit; a nil
// *RateLimiter allows everything.
func (c Config) NewRateLimiter(now func() time.Time) *RateLimiter {
	if c.UpdatesPerSecond <= 0 {
		return nil
	}
	return &RateLimiter{
		l:     rate.NewLimiter(rate.Limit(c.UpdatesPerSecond), c.UpdateBurst),
		now:   nowFunc(now),
		limit: c.UpdatesPerSecond,
	}
}

// Allow takes one token for a message just received. It returns nil, or an
// *Error of KindRateLimited when the bucket is empty: the caller closes the
// connection (CloseCode) and strikes its address in the penalty box. Dropping
// the message and carrying on instead would let a flooder keep the reader
// busy forever.
func (r *RateLimiter) Allow() error {
	if r == nil || r.l.AllowN(r.now(), 1) {
		return nil
	}
	return &Error{Kind: KindRateLimited, Limit: r.limit}
}
