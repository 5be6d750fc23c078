package limits

import (
	"fmt"
	"sync"
	"time"
)

// PenaltyConfig configures the penalty box. The ban after an offence is
//
//	0                                  for the first Free offences,
//	Base * 2^(offences-Free-1)         after that, at most Max,
//
// and one offence is forgiven for every Forgive that passes after the ban
// ends without a new one. With the defaults (Free 2, Base 1 s, Max 5 min,
// Forgive 1 min) a client whose token expired and who reconnects with a new
// one never notices, while a script that is refused every time it comes back
// waits 1, 2, 4, 8 ... seconds, then five minutes, and must behave for as many
// minutes as it offended to be let go.
type PenaltyConfig struct {
	// Base is the first ban. Zero disables the penalty box.
	Base time.Duration
	// Max caps the ban.
	Max time.Duration
	// Free is how many offences are remembered without a ban, so that an
	// honest client that makes one mistake (an expired token, a brief burst)
	// is not locked out while it recovers.
	Free int
	// Forgive is how long an address must stay out of trouble, after its ban
	// ends, for one offence to be forgotten.
	Forgive time.Duration
	// MaxEntries bounds the addresses remembered. When the box is full and
	// no entry has expired, a new offender is not recorded (it is still
	// refused by whatever refused it): failing open bounds memory and CPU,
	// and an attacker with that many addresses defeats per-address limits anyway.
	MaxEntries int
}

// DefaultPenaltyConfig returns the penalty box Quire ships with.
func DefaultPenaltyConfig() PenaltyConfig {
	return PenaltyConfig{
		Base:       time.Second,
		Max:        5 * time.Minute,
		Free:       2,
		Forgive:    time.Minute,
		MaxEntries: 100_000,
	}
}

// Validate reports a penalty configuration that cannot work.
func (c PenaltyConfig) Validate() error {
	if c.Base == 0 {
		return nil
	}
	switch {
	case c.Base < 0:
		return fmt.Errorf("penalty base %s is negative", c.Base)
	case c.Max < c.Base:
		return fmt.Errorf("penalty max %s is below its base %s", c.Max, c.Base)
	case c.Free < 0:
		return fmt.Errorf("penalty free offences %d is negative", c.Free)
	case c.Forgive <= 0:
		return fmt.Errorf("penalty forgive interval %s must be positive", c.Forgive)
	case c.MaxEntries <= 0:
		return fmt.Errorf("penalty max entries %d must be positive", c.MaxEntries)
	}
	return nil
}

// banFor returns the ban after the given number of remembered offences.
func (c PenaltyConfig) banFor(offences int) time.Duration {
	n := offences - c.Free - 1
	if n < 0 {
		return 0
	}
	d := c.Base
	for ; n > 0 && d < c.Max; n-- {
		d *= 2
	}
	return min(d, c.Max)
}

// sweepEvery throttles the scans for expired entries when the box is full, so
// that a flood of new addresses costs at most one scan per second.
const sweepEvery = time.Second

// PenaltyBox remembers the offences of client addresses (refused upgrades,
// connections cut off for breaking a limit) and bans repeat offenders for a
// growing period. It is safe for concurrent use, starts no goroutines, and
// forgets lazily: an entry is updated when it is looked at, and dropped once
// its ban is over and every offence is forgiven.
type PenaltyBox struct {
	cfg           PenaltyConfig
	now           func() time.Time
	limitLoopback bool

	mu        sync.Mutex
	m         map[Key]*penalty
	lastSweep time.Time
	dropped   uint64
}

type penalty struct {
	offences int
	until    time.Time // end of the current ban (or of the last offence if it carried none)
	ref      time.Time // start of the forgiveness clock: offences drop one per Forgive after it
}

// NewPenaltyBox returns an empty box reading the time from now (nil:
// time.Now). Loopback addresses are never penalized unless limitLoopback is
// set (see Config.LimitLoopback). A config with Base 0 gives a box that bans nobody.
func NewPenaltyBox(cfg PenaltyConfig, limitLoopback bool, now func() time.Time) *PenaltyBox {
	return &PenaltyBox{cfg: cfg, now: nowFunc(now), limitLoopback: limitLoopback, m: make(map[Key]*penalty)}
}

func (b *PenaltyBox) exempt(k Key) bool {
	return b == nil || b.cfg.Base <= 0 || (!b.limitLoopback && isLoopback(k))
}

// forgive applies the forgiveness earned by p up to t and reports whether p
// is now empty (no ban, no offence left), i.e. can be dropped.
func (b *PenaltyBox) forgive(p *penalty, t time.Time) bool {
	if p.offences > 0 && t.After(p.ref) {
		n := int(t.Sub(p.ref) / b.cfg.Forgive)
		if n >= p.offences {
			p.offences = 0
		} else {
			p.offences -= n
			// Keep the partial progress towards the next forgiveness.
			p.ref = p.ref.Add(time.Duration(n) * b.cfg.Forgive)
		}
	}
	return p.offences == 0 && !t.Before(p.until)
}

// Check says whether k may come in now. It returns nil, or an *Error of
// KindPenalized with RetryAfter set to the rest of its ban. A refusal by Check
// is not an offence: waiting clients are not punished for knocking, and a
// refusal here costs a map lookup.
func (b *PenaltyBox) Check(k Key) error {
	if b.exempt(k) {
		return nil
	}
	t := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[k]
	if p == nil {
		return nil
	}
	if b.forgive(p, t) {
		delete(b.m, k)
		return nil
	}
	if t.Before(p.until) {
		return &Error{Kind: KindPenalized, RetryAfter: p.until.Sub(t)}
	}
	return nil
}

// Strike records one offence of k and returns the ban it earned (0 while the
// offence is one of the free ones, or when k is exempt or not recorded).
func (b *PenaltyBox) Strike(k Key) time.Duration {
	if b.exempt(k) {
		return 0
	}
	t := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[k]
	if p == nil {
		if len(b.m) >= b.cfg.MaxEntries && !b.sweep(t) {
			b.dropped++
			return 0
		}
		p = &penalty{}
		b.m[k] = p
	} else {
		b.forgive(p, t)
	}
	p.offences++
	ban := b.cfg.banFor(p.offences)
	if end := t.Add(ban); end.After(p.until) {
		p.until = end
	}
	p.ref = p.until
	return ban
}

// sweep drops the entries that are empty at t and reports whether there is
// room for one more; it scans at most once per sweepEvery.
func (b *PenaltyBox) sweep(t time.Time) bool {
	if !b.lastSweep.IsZero() && t.Sub(b.lastSweep) < sweepEvery && t.After(b.lastSweep) {
		return false
	}
	b.lastSweep = t
	for k, p := range b.m {
		if b.forgive(p, t) {
			delete(b.m, k)
		}
	}
	return len(b.m) < b.cfg.MaxEntries
}

// Offences returns the offences remembered for k at the current time.
func (b *PenaltyBox) Offences(k Key) int {
	if b == nil {
		return 0
	}
	t := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.m[k]
	if p == nil {
		return 0
	}
	b.forgive(p, t)
	return p.offences
}

// Len returns how many addresses the box remembers (for metrics).
func (b *PenaltyBox) Len() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// Dropped returns how many offences were not recorded because the box was full.
func (b *PenaltyBox) Dropped() uint64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}
