package limits

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func key(t *testing.T, s string) Key {
	t.Helper()
	return KeyOf(netip.MustParseAddr(s))
}

func TestKeyOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string
	}{
		{"203.0.113.7", "203.0.113.7/32"},
		{"::ffff:203.0.113.7", "203.0.113.7/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"::1", "::1/128"},
	}
	for _, tt := range tests {
		if got := KeyOf(netip.MustParseAddr(tt.addr)); got.String() != tt.want {
			t.Errorf("KeyOf(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
	if KeyOf(netip.Addr{}).IsValid() {
		t.Error("KeyOf(zero) should be the zero Key")
	}
	if !isLoopback(key(t, "127.0.0.1")) || !isLoopback(key(t, "::1")) || !isLoopback(key(t, "::ffff:127.0.0.2")) {
		t.Error("loopback addresses not recognised")
	}
	if isLoopback(key(t, "192.0.2.1")) || isLoopback(Key{}) {
		t.Error("non-loopback address taken for loopback")
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrustedProxies([]string{"10.0.0.0/8", "192.0.2.9", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
		wantErr bool
	}{
		{"direct", "203.0.113.5:4242", nil, trusted, "203.0.113.5", false},
		{"direct v6", "[2001:db8::1]:4242", nil, trusted, "2001:db8::1", false},
		{"no port", "203.0.113.5", nil, trusted, "203.0.113.5", false},
		{"garbage", "not-an-ip:1", nil, trusted, "", true},
		{"untrusted peer's header is ignored", "203.0.113.5:1", []string{"198.51.100.1"}, trusted, "203.0.113.5", false},
		{"header ignored without trusted proxies", "10.1.2.3:1", []string{"198.51.100.1"}, nil, "10.1.2.3", false},
		{"trusted proxy", "10.1.2.3:1", []string{"198.51.100.1"}, trusted, "198.51.100.1", false},
		{"forged left entries are skipped", "10.1.2.3:1", []string{"6.6.6.6, 198.51.100.1"}, trusted, "198.51.100.1", false},
		{"chain of trusted proxies", "10.1.2.3:1", []string{"198.51.100.1, 192.0.2.9", "10.9.9.9"}, trusted, "198.51.100.1", false},
		{"all hops trusted", "10.1.2.3:1", []string{"10.0.0.1"}, trusted, "10.0.0.1", false},
		{"unreadable hop stops the walk", "10.1.2.3:1", []string{"198.51.100.1, junk, 10.0.0.7"}, trusted, "10.0.0.7", false},
		{"trusted proxy without header", "[::1]:1", nil, trusted, "::1", false},
		{"mapped peer", "[::ffff:10.1.2.3]:1", []string{"198.51.100.1"}, trusted, "198.51.100.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "http://quire.test/ws/doc", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, err := ClientAddr(r, tt.trusted)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got.String() != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTrustedProxiesErrors(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "10.0.0.0/33", "example.com", "10.0.0.1/x"} {
		if _, err := ParseTrustedProxies([]string{v}); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", v)
		}
	}
	got, err := ParseTrustedProxies([]string{"10.1.2.3/8", " ::ffff:192.0.2.1 "})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].String() != "10.0.0.0/8" || got[1].String() != "192.0.2.1/32" {
		t.Fatalf("got %v", got)
	}
}

func TestConnLimiter(t *testing.T) {
	t.Parallel()
	a, b := key(t, "203.0.113.1"), key(t, "203.0.113.2")
	l := NewConnLimiter(2, false)
	r1, err := l.Acquire(a)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Acquire(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(a); !errors.Is(err, &Error{Kind: KindTooManyConns}) {
		t.Fatalf("third connection: err = %v, want too many conns", err)
	}
	if got := l.Count(a); got != 2 {
		t.Fatalf("refused acquire was counted: count %d", got)
	}
	rb, err := l.Acquire(b)
	if err != nil {
		t.Fatalf("another address is limited by the first: %v", err)
	}
	r1()
	r1() // a second release of the same connection must not free a slot
	if got := l.Count(a); got != 1 {
		t.Fatalf("after release: count %d, want 1", got)
	}
	r3, err := l.Acquire(a)
	if err != nil {
		t.Fatalf("slot not freed by release: %v", err)
	}
	if _, err := l.Acquire(a); err == nil {
		t.Fatal("double release freed a second slot")
	}
	r2()
	r3()
	rb()
	if l.Addresses() != 0 || l.Count(a) != 0 {
		t.Fatalf("addresses %d after every release, want 0", l.Addresses())
	}
}

func TestConnLimiterLoopbackAndUnlimited(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		max           int
		limitLoopback bool
		addr          string
		wantRefusedAt int // 0: never within 10
	}{
		{"loopback exempt", 2, false, "127.0.0.1", 0},
		{"loopback v6 exempt", 2, false, "::1", 0},
		{"loopback limited when asked", 2, true, "127.0.0.1", 3},
		{"remote limited", 2, false, "198.51.100.7", 3},
		{"unlimited", 0, true, "198.51.100.7", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewConnLimiter(tt.max, tt.limitLoopback)
			k := key(t, tt.addr)
			refusedAt := 0
			for i := 1; i <= 10; i++ {
				if _, err := l.Acquire(k); err != nil {
					refusedAt = i
					break
				}
			}
			if refusedAt != tt.wantRefusedAt {
				t.Fatalf("refused at connection %d, want %d", refusedAt, tt.wantRefusedAt)
			}
		})
	}
}

// TestConnLimiterConcurrent is for the race detector: the count must never
// pass the limit and must return to zero.
func TestConnLimiterConcurrent(t *testing.T) {
	t.Parallel()
	const max = 5
	l := NewConnLimiter(max, true)
	k := key(t, "198.51.100.1")
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		over bool
	)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				release, err := l.Acquire(k)
				if err != nil {
					continue
				}
				if l.Count(k) > max {
					mu.Lock()
					over = true
					mu.Unlock()
				}
				release()
			}
		}()
	}
	wg.Wait()
	if over {
		t.Fatal("count went past the limit")
	}
	if l.Count(k) != 0 || l.Addresses() != 0 {
		t.Fatalf("count %d after all released", l.Count(k))
	}
}

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := Config{UpdatesPerSecond: 10, UpdateBurst: 3}
	r := cfg.NewRateLimiter(clk.Now)
	for i := 0; i < 3; i++ {
		if err := r.Allow(); err != nil {
			t.Fatalf("message %d within the burst refused: %v", i, err)
		}
	}
	err := r.Allow()
	if !errors.Is(err, &Error{Kind: KindRateLimited}) {
		t.Fatalf("message past the burst: err = %v", err)
	}
	e, _ := AsError(err)
	if e.CloseCode() != CloseRateLimited || !strings.Contains(e.Error(), "10 messages per second") {
		t.Fatalf("close %d reason %q", e.CloseCode(), e.Error())
	}
	clk.Advance(99 * time.Millisecond)
	if r.Allow() == nil {
		t.Fatal("token refilled before 1/rate")
	}
	clk.Advance(time.Millisecond)
	if err := r.Allow(); err != nil {
		t.Fatalf("token not refilled after 1/rate: %v", err)
	}
	// A steady 10/s is allowed forever.
	for i := 0; i < 100; i++ {
		clk.Advance(100 * time.Millisecond)
		if err := r.Allow(); err != nil {
			t.Fatalf("steady rate refused at %d: %v", i, err)
		}
	}
	// No rate: nil limiter, everything allowed.
	var none *RateLimiter = Config{}.NewRateLimiter(clk.Now)
	if none != nil || none.Allow() != nil {
		t.Fatal("a config without a rate must give a nil limiter that allows everything")
	}
}

func TestCheckDocSize(t *testing.T) {
	t.Parallel()
	c := Config{MaxDocBytes: 100}
	tests := []struct {
		cur, n int64
		ok     bool
	}{{0, 100, true}, {50, 50, true}, {50, 51, false}, {100, 1, false}, {100, 0, true}}
	for _, tt := range tests {
		err := c.CheckDocSize(tt.cur, tt.n)
		if (err == nil) != tt.ok {
			t.Errorf("CheckDocSize(%d, %d) = %v, want ok %v", tt.cur, tt.n, err, tt.ok)
		}
		if err != nil {
			e, _ := AsError(err)
			if e.Kind != KindDocTooLarge || e.CloseCode() != CloseDocTooLarge || e.HTTPStatus() != 413 {
				t.Errorf("wrong error %+v", e)
			}
		}
	}
	if err := (Config{}).CheckDocSize(1<<40, 1<<40); err != nil {
		t.Errorf("no limit configured, got %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	mod := func(f func(*Config)) Config {
		c := DefaultConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"zero (no limits)", Config{}, true},
		{"negative message", mod(func(c *Config) { c.MaxMessageBytes = -1 }), false},
		{"negative rate", mod(func(c *Config) { c.UpdatesPerSecond = -1 }), false},
		{"rate without burst", mod(func(c *Config) { c.UpdateBurst = 0 }), false},
		{"no rate, no burst", mod(func(c *Config) { c.UpdatesPerSecond, c.UpdateBurst = 0, 0 }), true},
		{"negative conns", mod(func(c *Config) { c.MaxConnsPerIP = -1 }), false},
		{"negative doc", mod(func(c *Config) { c.MaxDocBytes = -1 }), false},
		{"penalty off", mod(func(c *Config) { c.Penalty = PenaltyConfig{} }), true},
		{"penalty max below base", mod(func(c *Config) { c.Penalty.Max = time.Millisecond }), false},
		{"penalty negative base", mod(func(c *Config) { c.Penalty.Base = -time.Second }), false},
		{"penalty negative free", mod(func(c *Config) { c.Penalty.Free = -1 }), false},
		{"penalty no forgiveness", mod(func(c *Config) { c.Penalty.Forgive = 0 }), false},
		{"penalty no entries", mod(func(c *Config) { c.Penalty.MaxEntries = 0 }), false},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestErrorReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    *Error
		status int
		code   int
		want   string
	}{
		{&Error{Kind: KindTooManyConns, Limit: 64}, 429, CloseRateLimited, "too many connections from your address (limit 64)"},
		{&Error{Kind: KindPenalized, RetryAfter: 1500 * time.Millisecond}, 429, CloseRateLimited, "too many refused or cut-off connections: retry in 2 s"},
		{&Error{Kind: KindRateLimited, Limit: 200}, 429, CloseRateLimited, "rate limit exceeded: more than 200 messages per second"},
		{&Error{Kind: KindMessageTooBig, Limit: 8 << 20}, 413, CloseMessageTooBig, "message too big: the limit is 8388608 bytes"},
		{&Error{Kind: KindDocTooLarge, Limit: 32 << 20}, 413, CloseDocTooLarge, "document is full: its size limit is 33554432 bytes"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s: reason %q, want %q", tt.err.Kind, got, tt.want)
		}
		if len(tt.err.Error()) > 123 {
			t.Errorf("%s: reason longer than a close frame allows", tt.err.Kind)
		}
		if tt.err.HTTPStatus() != tt.status || tt.err.CloseCode() != tt.code {
			t.Errorf("%s: status %d code %d, want %d %d", tt.err.Kind, tt.err.HTTPStatus(), tt.err.CloseCode(), tt.status, tt.code)
		}
		if tt.err.Kind.String() == "" || strings.HasPrefix(tt.err.Kind.String(), "kind(") {
			t.Errorf("kind %d has no name", tt.err.Kind)
		}
	}
	if (&Error{Kind: KindPenalized}).RetryAfterSeconds() != 0 {
		t.Error("no wait should give Retry-After 0")
	}
}
