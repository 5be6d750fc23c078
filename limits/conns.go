package limits

import "sync"

// ConnLimiter counts the open connections of each client address and refuses
// one more past the limit. It is safe for concurrent use. Memory is bounded by
// the number of open connections: an address whose count drops to zero is
// forgotten.
type ConnLimiter struct {
	max           int
	limitLoopback bool

	mu sync.Mutex
	n  map[Key]int
}

// NewConnLimiter returns a limiter allowing max connections per address; max
// <= 0 means no limit (connections are still counted). Loopback addresses are
// counted but not limited unless limitLoopback is set (see Config.LimitLoopback).
func NewConnLimiter(max int, limitLoopback bool) *ConnLimiter {
	return &ConnLimiter{max: max, limitLoopback: limitLoopback, n: make(map[Key]int)}
}

// Acquire counts one more connection for k. It returns a release func to call
// when that connection ends (calling it more than once releases once), or an
// *Error of KindTooManyConns when k already holds the maximum; then nothing
// was counted and there is nothing to release.
func (l *ConnLimiter) Acquire(k Key) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.n[k] >= l.max && (l.limitLoopback || !isLoopback(k)) {
		return nil, &Error{Kind: KindTooManyConns, Limit: float64(l.max)}
	}
	l.n[k]++
	var once sync.Once
	return func() { once.Do(func() { l.release(k) }) }, nil
}

func (l *ConnLimiter) release(k Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[k] <= 1 {
		delete(l.n, k)
		return
	}
	l.n[k]--
}

// Count returns how many connections k holds now.
func (l *ConnLimiter) Count(k Key) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n[k]
}

// Addresses returns how many addresses hold at least one connection.
func (l *ConnLimiter) Addresses() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.n)
}
