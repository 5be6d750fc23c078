package auth

import (
	"bytes"
	"testing"
	"time"

	"github.com/quirehq/quire/limits"
)

func TestGuard(t *testing.T) {
	t.Parallel()
	type step struct {
		kind  Inbound
		token string
		want  Verdict // Reply compared as "non-nil", Ban ignored
	}
	f := newGateFixture(t)
	denied := AppendPermissionDenied(nil, ErrReadOnly.Reason())
	tests := []struct {
		name  string
		opts  reqOpts
		steps []step
	}{
		{"read-write peer", reqOpts{token: f.rw}, []step{
			{InSyncStep1, "", Verdict{Apply: true}},
			{InSyncStep2, "", Verdict{Apply: true}},
			{InUpdate, "", Verdict{Apply: true}},
			{InAwareness, "", Verdict{Apply: true}},
			{InQueryAwareness, "", Verdict{Apply: true}},
		}},
		{"read-only peer", reqOpts{token: f.ro}, []step{
			{InSyncStep1, "", Verdict{Apply: true}},
			{InSyncStep2, "", Verdict{}}, // dropped, no reply
			{InAwareness, "", Verdict{Apply: true}},
			{InUpdate, "", Verdict{Reply: denied}},
			{InUpdate, "", Verdict{Reply: denied}},
			{InSyncStep1, "", Verdict{Apply: true}}, // still connected and reading
		}},
		{"read-only peer upgraded by a fresh token", reqOpts{token: f.ro}, []step{
			{InUpdate, "", Verdict{Reply: denied}},
			{InAuth, f.rw, Verdict{}},
			{InUpdate, "", Verdict{Apply: true}},
		}},
		{"fresh token for another doc", reqOpts{token: f.rw}, []step{
			{InAuth, f.other, Verdict{CloseCode: CloseForbidden, CloseReason: ErrWrongDoc.Reason()}},
		}},
		{"deferred auth", reqOpts{query: "auth=message"}, []step{
			{InAuth, f.rw, Verdict{Authenticated: true}},
			{InSyncStep1, "", Verdict{Apply: true}},
			{InUpdate, "", Verdict{Apply: true}},
		}},
		{"deferred auth, read-only", reqOpts{query: "auth=message"}, []step{
			{InAuth, f.ro, Verdict{Authenticated: true}},
			{InUpdate, "", Verdict{Reply: denied}},
		}},
		{"deferred auth, sync first", reqOpts{query: "auth=message"}, []step{
			{InSyncStep1, "", Verdict{CloseCode: CloseUnauthorized, CloseReason: "authentication required: send an auth message with a token first"}},
		}},
		{"deferred auth, expired", reqOpts{query: "auth=message"}, []step{
			{InAuth, f.exp, Verdict{CloseCode: CloseUnauthorized, CloseReason: ErrExpired.Reason()}},
		}},
		{"deferred auth, garbage", reqOpts{query: "auth=message"}, []step{
			{InAuth, "x", Verdict{CloseCode: CloseUnauthorized, CloseReason: ErrMalformed.Reason()}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			adm, err := f.gate.Admit(request("/ws/doc", tt.opts), "doc")
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Release()
			g := NewGuard(adm, limits.DefaultConfig(), f.clk.Now)
			if g.Admission() != adm {
				t.Fatal("Admission()")
			}
			for i, s := range tt.steps {
				got := g.Inbound(s.kind, s.token)
				if got.Apply != s.want.Apply || got.Authenticated != s.want.Authenticated ||
					got.CloseCode != s.want.CloseCode || got.CloseReason != s.want.CloseReason ||
					!bytes.Equal(got.Reply, s.want.Reply) {
					t.Fatalf("step %d (%d): got %+v, want %+v", i, s.kind, got, s.want)
				}
			}
		})
		f.clk.Advance(time.Hour)
	}
}

// TestGuardFlooder: a peer that sends faster than its rate is cut off with
// 4429 and its address struck, while a normal peer from another address on
// the same gate carries on.
func TestGuardFlooder(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	lim := limits.Config{UpdatesPerSecond: 20, UpdateBurst: 10}
	floodAdm, err := f.gate.Admit(request("/ws/doc", reqOpts{addr: "203.0.113.66:1", token: f.rw}), "doc")
	if err != nil {
		t.Fatal(err)
	}
	defer floodAdm.Release()
	calmAdm, err := f.gate.Admit(request("/ws/doc", reqOpts{addr: "203.0.113.67:1", token: f.rw}), "doc")
	if err != nil {
		t.Fatal(err)
	}
	defer calmAdm.Release()
	flood, calm := NewGuard(floodAdm, lim, f.clk.Now), NewGuard(calmAdm, lim, f.clk.Now)

	cutAt := 0
	for i := 1; i <= 100 && cutAt == 0; i++ {
		if v := flood.Inbound(InUpdate, ""); v.CloseCode != 0 {
			if v.CloseCode != limits.CloseRateLimited || v.CloseReason != "rate limit exceeded: more than 20 messages per second" {
				t.Fatalf("flooder closed with %d %q", v.CloseCode, v.CloseReason)
			}
			cutAt = i
		}
		if i%5 == 0 {
			f.clk.Advance(50 * time.Millisecond) // the calm peer types 20/s
			if v := calm.Inbound(InUpdate, ""); !v.Apply {
				t.Fatalf("calm peer refused: %+v", v)
			}
		}
	}
	// The burst of 10, plus the 2 tokens refilled in the 100 ms the calm
	// peer's two keystrokes took.
	if cutAt != 13 {
		t.Fatalf("flooder cut off at message %d, want 13", cutAt)
	}
	if f.gate.Penalty.Offences(floodAdm.Key) != 1 || f.gate.Penalty.Offences(calmAdm.Key) != 0 {
		t.Fatal("offence not recorded against the flooder alone")
	}
	// Refused writes count against the rate too.
	roAdm, err := f.gate.Admit(request("/ws/doc", reqOpts{addr: "203.0.113.68:1", token: f.ro}), "doc")
	if err != nil {
		t.Fatal(err)
	}
	defer roAdm.Release()
	ro := NewGuard(roAdm, lim, f.clk.Now)
	for i := 0; i < 10; i++ {
		if v := ro.Inbound(InUpdate, ""); v.Reply == nil {
			t.Fatalf("write %d not denied: %+v", i, v)
		}
	}
	if v := ro.Inbound(InUpdate, ""); v.CloseCode != limits.CloseRateLimited {
		t.Fatalf("read-only writer past the rate: %+v", v)
	}
}

func TestGuardUnknownKind(t *testing.T) {
	t.Parallel()
	adm, err := (&Gate{}).Admit(request("/ws/doc", reqOpts{}), "doc")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(adm, limits.Config{}, nil)
	if v := g.Inbound(Inbound(99), ""); v.CloseCode != 1011 || v.Ban != 0 {
		t.Fatalf("unknown kind: %+v", v)
	}
	var manual Admission // not from a Gate: must not panic
	if manual.Offence() != 0 || manual.Authenticate("x") != nil {
		t.Fatal("a bare Admission")
	}
}

// A token that was valid once closes the peer without a strike in the
// penalty box (a page that outlived its token retries it); a forged one
// strikes.
func TestGuardExpiredTokenIsNoOffence(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	tests := []struct {
		token  string
		struck bool
	}{
		{f.exp, false},
		{"x", true},
		{f.rw[:len(f.rw)-3], true},
	}
	for _, tt := range tests {
		adm, err := f.gate.Admit(request("/ws/doc", reqOpts{query: "auth=message"}), "doc")
		if err != nil {
			t.Fatal(err)
		}
		before := f.gate.Penalty.Offences(adm.Key)
		v := NewGuard(adm, limits.DefaultConfig(), f.clk.Now).Inbound(InAuth, tt.token)
		if v.CloseCode != CloseUnauthorized {
			t.Fatalf("token %.10q: verdict %+v, want a close with %d", tt.token, v, CloseUnauthorized)
		}
		if struck := f.gate.Penalty.Offences(adm.Key) > before; struck != tt.struck {
			t.Errorf("token %.10q: struck %v, want %v", tt.token, struck, tt.struck)
		}
		adm.Release()
		f.clk.Advance(time.Hour)
	}
}
