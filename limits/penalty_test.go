package limits

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func testPenalty() PenaltyConfig {
	return PenaltyConfig{Base: time.Second, Max: 30 * time.Second, Free: 2, Forgive: time.Minute, MaxEntries: 100}
}

func TestPenaltyGrowth(t *testing.T) {
	t.Parallel()
	clk := newClock()
	b := NewPenaltyBox(testPenalty(), false, clk.Now)
	k := key(t, "198.51.100.1")
	want := []time.Duration{0, 0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i, w := range want {
		if err := b.Check(k); err != nil {
			t.Fatalf("offence %d: still banned when the last ban ended: %v", i+1, err)
		}
		got := b.Strike(k)
		if got != w {
			t.Fatalf("offence %d: ban %s, want %s", i+1, got, w)
		}
		if w > 0 {
			err := b.Check(k)
			e, ok := AsError(err)
			if !ok || e.Kind != KindPenalized || e.RetryAfter != w || e.HTTPStatus() != 429 {
				t.Fatalf("offence %d: Check = %v, want penalized for %s", i+1, err, w)
			}
			clk.Advance(w - time.Millisecond)
			e, _ = AsError(b.Check(k))
			if e == nil || e.RetryAfter != time.Millisecond {
				t.Fatalf("offence %d: 1 ms before the end: %v", i+1, e)
			}
			clk.Advance(time.Millisecond)
		}
	}
	if got := b.Offences(k); got != len(want) {
		t.Fatalf("offences %d, want %d", got, len(want))
	}
	// Another address is not affected.
	if err := b.Check(key(t, "198.51.100.2")); err != nil {
		t.Fatalf("innocent address banned: %v", err)
	}
}

func TestPenaltyCheckIsNotAnOffence(t *testing.T) {
	t.Parallel()
	clk := newClock()
	b := NewPenaltyBox(testPenalty(), false, clk.Now)
	k := key(t, "198.51.100.1")
	for i := 0; i < 3; i++ {
		b.Strike(k)
	}
	for i := 0; i < 50; i++ {
		if b.Check(k) == nil {
			t.Fatal("not banned")
		}
	}
	if got := b.Offences(k); got != 3 {
		t.Fatalf("knocking during a ban changed the offences to %d", got)
	}
	clk.Advance(time.Second)
	if err := b.Check(k); err != nil {
		t.Fatalf("ban did not end: %v", err)
	}
}

func TestPenaltyForgiveness(t *testing.T) {
	t.Parallel()
	clk := newClock()
	b := NewPenaltyBox(testPenalty(), false, clk.Now)
	k := key(t, "2001:db8::1")
	for i := 0; i < 5; i++ {
		b.Strike(k) // bans 0, 0, 1, 2, 4 s, each starting at the same instant
	}
	// The ban runs 4 s; forgiveness starts when it ends.
	clk.Advance(4*time.Second + time.Minute - time.Millisecond)
	if got := b.Offences(k); got != 5 {
		t.Fatalf("forgiven before Forgive passed after the ban: offences %d", got)
	}
	clk.Advance(time.Millisecond)
	if got := b.Offences(k); got != 4 {
		t.Fatalf("after one Forgive: offences %d, want 4", got)
	}
	// Partial progress is kept: 1.5 more intervals forgive one, then half
	// an interval more forgives another.
	clk.Advance(90 * time.Second)
	if got := b.Offences(k); got != 3 {
		t.Fatalf("after 2.5 Forgive: offences %d, want 3", got)
	}
	clk.Advance(30 * time.Second)
	if got := b.Offences(k); got != 2 {
		t.Fatalf("after 3 Forgive: offences %d, want 2", got)
	}
	// A new offence now counts from 2: the third, a 1 s ban, not an 8 s one.
	if got := b.Strike(k); got != time.Second {
		t.Fatalf("ban after partial forgiveness %s, want 1s", got)
	}
	// Three Forgive intervals after that ban the address is forgotten.
	clk.Advance(time.Second + 3*time.Minute)
	if err := b.Check(k); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Fatalf("fully forgiven address still remembered (%d entries)", b.Len())
	}
}

func TestPenaltyStrikeDuringBanExtends(t *testing.T) {
	t.Parallel()
	clk := newClock()
	b := NewPenaltyBox(PenaltyConfig{Base: 10 * time.Second, Max: time.Hour, Forgive: time.Minute, MaxEntries: 10}, false, clk.Now)
	k := key(t, "198.51.100.1")
	b.Strike(k) // 10 s
	clk.Advance(5 * time.Second)
	// A connection admitted before the ban is cut off now: 20 s from now.
	if got := b.Strike(k); got != 20*time.Second {
		t.Fatalf("second ban %s", got)
	}
	e, _ := AsError(b.Check(k))
	if e == nil || e.RetryAfter != 20*time.Second {
		t.Fatalf("Check = %v, want 20s left", e)
	}
}

func TestPenaltyExempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		cfg           PenaltyConfig
		limitLoopback bool
		addr          string
		wantBanned    bool
	}{
		{"remote", testPenalty(), false, "198.51.100.1", true},
		{"loopback exempt", testPenalty(), false, "127.0.0.1", false},
		{"loopback v6 exempt", testPenalty(), false, "::1", false},
		{"loopback limited when asked", testPenalty(), true, "127.0.0.1", true},
		{"box disabled", PenaltyConfig{}, true, "198.51.100.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewPenaltyBox(tt.cfg, tt.limitLoopback, newClock().Now)
			k := key(t, tt.addr)
			for i := 0; i < 10; i++ {
				b.Strike(k)
			}
			if banned := b.Check(k) != nil; banned != tt.wantBanned {
				t.Fatalf("banned %v, want %v", banned, tt.wantBanned)
			}
		})
	}
	var nilBox *PenaltyBox
	if nilBox.Check(Key{}) != nil || nilBox.Strike(Key{}) != 0 || nilBox.Len() != 0 || nilBox.Offences(Key{}) != 0 || nilBox.Dropped() != 0 {
		t.Fatal("a nil box must ban nobody")
	}
}

func TestPenaltyBoxIsBounded(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := testPenalty()
	cfg.MaxEntries = 2
	b := NewPenaltyBox(cfg, false, clk.Now)
	a, c, d := key(t, "198.51.100.1"), key(t, "198.51.100.2"), key(t, "198.51.100.3")
	b.Strike(a)
	b.Strike(c)
	if b.Strike(d) != 0 || b.Len() != 2 || b.Dropped() != 1 {
		t.Fatalf("full box: len %d dropped %d", b.Len(), b.Dropped())
	}
	// Known addresses are still counted while the box is full.
	b.Strike(a)
	if b.Strike(a) != time.Second {
		t.Fatal("a known offender was not recorded in a full box")
	}
	// c is forgiven after one Forgive; the next sweep makes room for d.
	clk.Advance(cfg.Forgive)
	for i := 0; i < 3; i++ {
		b.Strike(d)
	}
	if b.Offences(d) != 3 || b.Dropped() != 1 {
		t.Fatalf("after the sweep: d offences %d, dropped %d", b.Offences(d), b.Dropped())
	}
	// Sweeps are throttled: a second full box within sweepEvery fails open
	// without scanning.
	e := key(t, "198.51.100.4")
	b.Strike(e)
	if b.Dropped() != 2 {
		t.Fatalf("dropped %d, want 2", b.Dropped())
	}
}

// TestReconnectStormIsBounded plays a client that reconnects 200 ms after
// every close, as the stock provider does after a synced connection, and is
// cut off right after every upgrade (a flooder). Without the penalty box it
// would be upgraded and synced 3,000 times in ten minutes.
func TestReconnectStormIsBounded(t *testing.T) {
	t.Parallel()
	clk := newClock()
	b := NewPenaltyBox(DefaultPenaltyConfig(), false, clk.Now)
	k := key(t, "198.51.100.1")
	upgrades, refusals := 0, 0
	for elapsed := time.Duration(0); elapsed < 10*time.Minute; elapsed += 200 * time.Millisecond {
		if b.Check(k) != nil {
			refusals++
		} else {
			upgrades++
			b.Strike(k)
		}
		clk.Advance(200 * time.Millisecond)
	}
	// Bans 0, 0, 1, 2, ... 256 s, then 300 s: 12 upgrades in the first ten minutes.
	if upgrades > 12 {
		t.Fatalf("%d upgrades in ten minutes, want at most 12 (%d refused before the upgrade)", upgrades, refusals)
	}
	t.Logf("%d upgrades, %d refusals before the upgrade", upgrades, refusals)
}

func ExamplePenaltyBox() {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	box := NewPenaltyBox(DefaultPenaltyConfig(), false, clock)
	client := KeyOf(netip.MustParseAddr("203.0.113.9"))

	// A client that is cut off every time it comes back.
	for i := 1; i <= 6; i++ {
		if err := box.Check(client); err != nil {
			fmt.Println("refused before the upgrade:", err)
		}
		fmt.Printf("offence %d: banned for %s\n", i, box.Strike(client))
		var e *Error
		if errors.As(box.Check(client), &e) {
			now = now.Add(e.RetryAfter) // it waits out the ban
		}
	}
	// Output:
	// offence 1: banned for 0s
	// offence 2: banned for 0s
	// offence 3: banned for 1s
	// offence 4: banned for 2s
	// offence 5: banned for 4s
	// offence 6: banned for 8s
}
