package presence

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/internal/lib0"
)

// testEpoch is an arbitrary origin for the times passed to a Set.
var testEpoch = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func e(id, clock uint64, state string) Entry {
	return Entry{ClientID: id, Clock: clock, State: json.RawMessage(state)}
}

// TestRulesMatchYProtocols replays the scenarios of testdata/rules, whose
// expected results come from y-protocols' applyAwarenessUpdate: after each
// update, the clients reported as changed and the live states must be the
// same.
func TestRulesMatchYProtocols(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("testdata", "rules", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no scenarios in testdata/rules: run node presence/testdata/gen.mjs")
	}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".json"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var sc struct {
				Steps []struct {
					Update  string               `json:"update"`
					Changed []uint64             `json:"changed"`
					States  [][3]json.RawMessage `json:"states"`
				} `json:"steps"`
			}
			if err := json.Unmarshal(data, &sc); err != nil {
				t.Fatal(err)
			}
			s := NewSet()
			for i, step := range sc.Steps {
				b, err := hex.DecodeString(step.Update)
				if err != nil {
					t.Fatal(err)
				}
				u, err := DecodeUpdate(b)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				got := s.Apply(u, 1, testEpoch)
				ids := make([]uint64, len(got))
				for j, g := range got {
					ids[j] = g.ClientID
				}
				slices.Sort(ids)
				if !slices.Equal(ids, step.Changed) && (len(ids) > 0 || len(step.Changed) > 0) {
					t.Fatalf("step %d: %s: changed %v, y-protocols %v", i, fmtUpdate(u), ids, step.Changed)
				}
				want := make(Update, len(step.States))
				for j, st := range step.States {
					var id, clock uint64
					var text string
					for k, dst := range []any{&id, &clock, &text} {
						if err := json.Unmarshal(st[k], dst); err != nil {
							t.Fatalf("step %d: state %d: %v", i, j, err)
						}
					}
					want[j] = e(id, clock, text)
				}
				if cur := s.Current(); !equalUpdates(cur, want) {
					t.Fatalf("step %d: %s: Current %s, y-protocols %s", i, fmtUpdate(u), fmtUpdate(cur), fmtUpdate(want))
				}
				checkInvariants(t, s)
			}
		})
	}
}

// op is one call on a Set in a rule scenario.
type op struct {
	at    time.Duration // since testEpoch
	kind  string        // "apply", "remove" (RemoveOwner) or "expire"
	owner uint64
	u     Update
	want  Update // what the call returns
}

func apply(at time.Duration, owner uint64, u Update, want Update) op {
	return op{at: at, kind: "apply", owner: owner, u: u, want: want}
}

func removeOwner(at time.Duration, owner uint64, want Update) op {
	return op{at: at, kind: "remove", owner: owner, want: want}
}

func expire(at time.Duration, want Update) op {
	return op{at: at, kind: "expire", want: want}
}

func TestSetRules(t *testing.T) {
	t.Parallel()
	const A, B, C = 11, 12, 13
	s1, s2, s3 := `{"v":1}`, `{"v":2}`, `{"v":3}`
	ttl := TombstoneTTL
	tests := []struct {
		name    string
		ops     []op
		current Update
	}{
		{"stale clock ignored", []op{
			apply(0, 1, Update{e(A, 2, s2)}, Update{e(A, 2, s2)}),
			apply(0, 1, Update{e(A, 1, s1)}, nil),
		}, Update{e(A, 2, s2)}},
		{"equal clock with a state ignored", []op{
			apply(0, 1, Update{e(A, 2, s2)}, Update{e(A, 2, s2)}),
			apply(0, 1, Update{e(A, 2, s3)}, nil),
		}, Update{e(A, 2, s2)}},
		{"first state at clock 0 ignored", []op{
			apply(0, 1, Update{e(A, 0, `{}`)}, nil),
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
		}, Update{e(A, 1, s1)}},
		{"equal clock with null removes", []op{
			apply(0, 1, Update{e(A, 2, s2), e(B, 1, s1)}, Update{e(A, 2, s2), e(B, 1, s1)}),
			apply(0, 2, Update{e(A, 2, `null`)}, Update{e(A, 2, `null`)}),
		}, Update{e(B, 1, s1)}},
		{"removal then older update ignored", []op{
			apply(0, 1, Update{e(A, 3, s3)}, Update{e(A, 3, s3)}),
			apply(0, 1, Update{e(A, 4, `null`)}, Update{e(A, 4, `null`)}),
			apply(0, 1, Update{e(A, 3, s3)}, nil),
			apply(0, 1, Update{e(A, 4, s1)}, nil),
			apply(0, 1, Update{e(A, 4, `null`)}, nil),
			apply(0, 1, Update{e(A, 5, s1)}, Update{e(A, 5, s1)}),
		}, Update{e(A, 5, s1)}},
		{"null for an unknown client is remembered, not reported", []op{
			apply(0, 1, Update{e(A, 3, `null`)}, nil),
			apply(0, 1, Update{e(A, 2, s2)}, nil),
			apply(0, 1, Update{e(A, 4, s1)}, Update{e(A, 4, s1)}),
		}, Update{e(A, 4, s1)}},
		{"null with whitespace is null", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			apply(0, 1, Update{e(A, 2, " null\n")}, Update{e(A, 2, `null`)}),
		}, Update{}},
		{"one entry per client, final state, first-appearance order", []op{
			apply(0, 1, Update{e(B, 1, s1), e(A, 1, s1), e(B, 2, s2), e(C, 5, `null`), e(A, 1, `null`)},
				Update{e(B, 2, s2), e(A, 1, `null`)}),
		}, Update{e(B, 2, s2)}},
		{"renewal with the same state is reported", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			apply(15*time.Second, 1, Update{e(A, 2, s1)}, Update{e(A, 2, s1)}),
		}, Update{e(A, 2, s1)}},
		{"ownership moves to the newest sender", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			apply(0, 2, Update{e(A, 2, s2)}, Update{e(A, 2, s2)}),
			removeOwner(0, 1, nil),
			removeOwner(0, 2, Update{e(A, 2, `null`)}),
		}, Update{}},
		{"an echo does not take ownership", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			apply(0, 2, Update{e(A, 1, s1)}, nil),
			removeOwner(0, 2, nil),
			removeOwner(0, 1, Update{e(A, 1, `null`)}),
		}, Update{}},
		{"RemoveOwner removes only its clients, sorted", []op{
			apply(0, 1, Update{e(C, 1, s1), e(A, 7, s1)}, Update{e(C, 1, s1), e(A, 7, s1)}),
			apply(0, 2, Update{e(B, 1, s1)}, Update{e(B, 1, s1)}),
			removeOwner(time.Second, 1, Update{e(A, 7, `null`), e(C, 1, `null`)}),
			removeOwner(time.Second, 1, nil),
			// the client back on a new connection with its old clock, as
			// the stock provider does: refused until it renews
			apply(time.Second, 3, Update{e(A, 7, s2)}, nil),
			apply(time.Second, 3, Update{e(A, 8, s2)}, Update{e(A, 8, s2)}),
		}, Update{e(A, 8, s2), e(B, 1, s1)}},
		{"a null from a peer releases ownership", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			apply(0, 2, Update{e(A, 1, `null`)}, Update{e(A, 1, `null`)}),
			removeOwner(0, 1, nil),
			removeOwner(0, 2, nil),
		}, Update{}},
		{"RemoveOwner of an unknown owner", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			removeOwner(0, 9, nil),
		}, Update{e(A, 1, s1)}},
		{"Expire at 29.9 s keeps, at 30 s removes", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			apply(time.Second, 1, Update{e(B, 4, s1)}, Update{e(B, 4, s1)}),
			expire(29900*time.Millisecond, nil),
			expire(30*time.Second, Update{e(A, 1, `null`)}),
			expire(30*time.Second, nil),
			expire(31*time.Second, Update{e(B, 4, `null`)}),
			removeOwner(31*time.Second, 1, nil),
		}, Update{}},
		{"a renewal restarts the timeout", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			apply(20*time.Second, 1, Update{e(A, 2, s1)}, Update{e(A, 2, s1)}),
			expire(30*time.Second, nil),
			expire(49900*time.Millisecond, nil),
			expire(50*time.Second, Update{e(A, 2, `null`)}),
		}, Update{}},
		{"a refused update does not renew", []op{
			apply(0, 1, Update{e(A, 2, s1)}, Update{e(A, 2, s1)}),
			apply(20*time.Second, 1, Update{e(A, 2, s1)}, nil),
			expire(30*time.Second, Update{e(A, 2, `null`)}),
		}, Update{}},
		{"an expired client is no longer owned", []op{
			apply(0, 1, Update{e(A, 1, s1)}, Update{e(A, 1, s1)}),
			expire(30*time.Second, Update{e(A, 1, `null`)}),
			apply(31*time.Second, 2, Update{e(A, 3, s3)}, Update{e(A, 3, s3)}),
			removeOwner(31*time.Second, 1, nil),
			removeOwner(31*time.Second, 2, Update{e(A, 3, `null`)}),
		}, Update{}},
		{"tombstone remembered for TombstoneTTL, then forgotten", []op{
			apply(0, 1, Update{e(A, 5, s1)}, Update{e(A, 5, s1)}),
			apply(time.Second, 1, Update{e(A, 5, `null`)}, Update{e(A, 5, `null`)}),
			expire(time.Second+ttl-time.Nanosecond, nil),
			apply(time.Second+ttl-time.Nanosecond, 1, Update{e(A, 4, s2)}, nil),
			expire(time.Second+ttl, nil),
			apply(time.Second+ttl, 1, Update{e(A, 4, s2)}, Update{e(A, 4, s2)}),
		}, Update{e(A, 4, s2)}},
		{"removal at 2^53-1 keeps the clock", []op{
			apply(0, 1, Update{e(A, lib0.MaxSafeInteger, s1)}, Update{e(A, lib0.MaxSafeInteger, s1)}),
			removeOwner(0, 1, Update{e(A, lib0.MaxSafeInteger, `null`)}),
			apply(0, 1, Update{e(A, lib0.MaxSafeInteger, s1)}, nil),
		}, Update{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewSet()
			for i, o := range tt.ops {
				now := testEpoch.Add(o.at)
				var got Update
				switch o.kind {
				case "apply":
					got = s.Apply(o.u, o.owner, now)
				case "remove":
					got = s.RemoveOwner(o.owner, now)
				case "expire":
					got = s.Expire(now)
				}
				if !equalUpdates(got, o.want) {
					t.Fatalf("op %d (%s owner %d %s at %v) = %s, want %s", i, o.kind, o.owner, fmtUpdate(o.u), o.at, fmtUpdate(got), fmtUpdate(o.want))
				}
				checkInvariants(t, s)
			}
			if cur := s.Current(); !equalUpdates(cur, tt.current) {
				t.Fatalf("Current = %s, want %s", fmtUpdate(cur), fmtUpdate(tt.current))
			}
			if s.Len() != len(tt.current) {
				t.Fatalf("Len = %d, want %d", s.Len(), len(tt.current))
			}
		})
	}
}

// checkInvariants checks the Set's internal bookkeeping: the live count,
// and that ownership is recorded on both sides and only for live clients.
func checkInvariants(t *testing.T, s *Set) {
	t.Helper()
	live := 0
	for id, c := range s.clients {
		if c.state != nil {
			live++
		}
		if c.owned {
			if c.state == nil {
				t.Fatalf("client %d is owned by %d but removed", id, c.owner)
			}
			if _, ok := s.byOwner[c.owner][id]; !ok {
				t.Fatalf("client %d owned by %d is missing from byOwner", id, c.owner)
			}
		}
	}
	if live != s.live || live != s.Len() {
		t.Fatalf("live count %d, Len %d, counted %d", s.live, s.Len(), live)
	}
	for owner, ids := range s.byOwner {
		if len(ids) == 0 {
			t.Fatalf("owner %d has an empty client set", owner)
		}
		for id := range ids {
			if c := s.clients[id]; c == nil || !c.owned || c.owner != owner {
				t.Fatalf("byOwner[%d] lists client %d which it does not own", owner, id)
			}
		}
	}
}

// TestConvergence applies the same updates, sent by several owners, in many
// orders: every order gives the same Current, the one where each client has
// the state of its highest clock. As with real clients, a client never sends
// two different states under one clock.
func TestConvergence(t *testing.T) {
	t.Parallel()
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		clients := []uint64{1, 2, rng.Uint64N(1 << 32), rng.Uint64N(lib0.MaxSafeInteger) + 1}
		stateFor := func(id, clock uint64) string {
			if (id*31+clock*17)%4 == 0 {
				return "null"
			}
			return fmt.Sprintf(`{"id":%d,"clock":%d}`, id, clock)
		}
		var updates []Update
		var owners []uint64
		maxClock := map[uint64]uint64{}
		for range 1 + rng.IntN(30) {
			var u Update
			for range 1 + rng.IntN(3) {
				id := clients[rng.IntN(len(clients))]
				clock := rng.Uint64N(11)
				u = append(u, e(id, clock, stateFor(id, clock)))
				maxClock[id] = max(maxClock[id], clock)
			}
			updates = append(updates, u)
			owners = append(owners, 1+rng.Uint64N(3))
		}
		want := Update{}
		for _, id := range clients {
			if m, ok := maxClock[id]; ok && m > 0 && stateFor(id, m) != "null" {
				if !slices.ContainsFunc(want, func(x Entry) bool { return x.ClientID == id }) {
					want = append(want, e(id, m, stateFor(id, m)))
				}
			}
		}
		sortByClient(want)
		for perm := range 8 {
			order := rng.Perm(len(updates))
			s := NewSet()
			for _, i := range order {
				s.Apply(updates[i], owners[i], testEpoch)
				checkInvariants(t, s)
			}
			if cur := s.Current(); !equalUpdates(cur, want) {
				t.Fatalf("seed %d, order %d %v: Current %s, want %s", seed, perm, order, fmtUpdate(cur), fmtUpdate(want))
			}
		}
	}
}

// TestFollowerConverges drives a Set (the server) with random updates from
// several connections, disconnections and expiries, and applies everything
// it returns to a second Set (a peer that hears only the broadcasts, through
// the codec): the peer must always see the same live states as the server.
func TestFollowerConverges(t *testing.T) {
	t.Parallel()
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 42))
		leader, follower := NewSet(), NewSet()
		now := testEpoch
		clients := []uint64{5, 6, 7, 8, 1 << 40}
		relay := func(u Update) {
			t.Helper()
			if len(u) == 0 {
				return
			}
			dec, err := DecodeUpdate(EncodeUpdate(u))
			if err != nil {
				t.Fatalf("seed %d: broadcast does not decode: %v", seed, err)
			}
			follower.Apply(dec, 0, now)
		}
		for step := range 150 {
			now = now.Add(time.Duration(rng.Int64N(int64(10 * time.Second))))
			switch r := rng.IntN(20); {
			case r < 13:
				var u Update
				for range 1 + rng.IntN(3) {
					id := clients[rng.IntN(len(clients))]
					var cur uint64
					if c := leader.clients[id]; c != nil {
						cur = c.clock
					}
					clock := cur + rng.Uint64N(3) - min(cur, rng.Uint64N(2)) // stale, equal or newer
					state := "null"
					if rng.IntN(4) > 0 {
						state = fmt.Sprintf(`{"n":%d}`, rng.IntN(3))
					}
					u = append(u, e(id, clock, state))
				}
				relay(leader.Apply(u, 1+rng.Uint64N(3), now))
			case r < 16:
				relay(leader.RemoveOwner(1+rng.Uint64N(3), now))
			default:
				relay(leader.Expire(now))
				// The peer expires on its own too, at the same moments: it
				// must find nothing the server has not already told it.
				if got := follower.Expire(now); len(got) > 0 {
					t.Fatalf("seed %d step %d: the peer expired %s on its own", seed, step, fmtUpdate(got))
				}
			}
			checkInvariants(t, leader)
			if l, f := leader.Current(), follower.Current(); !equalUpdates(l, f) {
				t.Fatalf("seed %d step %d: server %s, peer %s", seed, step, fmtUpdate(l), fmtUpdate(f))
			}
		}
	}
}

// Admit counts what Apply would do: for random updates from random owners,
// Admit refuses exactly those after which the owner would speak for more
// than MaxOwned states.
func TestAdmitMatchesApply(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	s := NewSet()
	now := testEpoch
	refused := 0
	for round := range 5000 {
		owner := uint64(1 + rng.IntN(3))
		var u Update
		for range 1 + rng.IntN(24) {
			state := `{"r":` + fmt.Sprint(round) + `}`
			if rng.IntN(4) == 0 {
				state = `null`
			}
			u = append(u, e(uint64(100+rng.IntN(40)), uint64(rng.IntN(8)), state))
		}
		err := s.Admit(u, owner)
		s.Apply(u, owner, now)
		owned := len(s.byOwner[owner])
		if (err != nil) != (owned > MaxOwned) {
			t.Fatalf("round %d: Admit = %v, but Apply leaves owner %d with %d states (max %d)", round, err, owner, owned, MaxOwned)
		}
		if err != nil {
			refused++
			s.RemoveOwner(owner, now)
		}
		now = now.Add(time.Second)
	}
	if refused == 0 {
		t.Fatal("no update was over MaxOwned: the test proves nothing")
	}
}

func TestAdmitLimits(t *testing.T) {
	t.Parallel()
	many := func(n int, first uint64, state string) Update {
		var u Update
		for i := range n {
			u = append(u, e(first+uint64(i), 1, state))
		}
		return u
	}
	tests := []struct {
		name    string
		setup   Update // applied first, owned by owner 2
		u       Update // from owner 1
		refused bool
	}{
		{"own state", nil, Update{e(1, 1, `{}`)}, false},
		{"MaxOwned states", nil, many(MaxOwned, 1, `{}`), false},
		{"one over MaxOwned", nil, many(MaxOwned+1, 1, `{}`), true},
		{"one client named many times", nil, Update{e(1, 1, `{}`), e(1, 2, `{}`), e(1, 3, `{}`)}, false},
		{"echo of others' states", many(40, 1, `{}`), many(40, 1, `{}`), false},
		{"taking over others' states counts", many(40, 1, `{}`), func() Update {
			u := many(MaxOwned+1, 1, `{}`)
			for i := range u {
				u[i].Clock = 2
			}
			return u
		}(), true},
		{"MaxNewPerUpdate removals of unknown clients", nil, many(MaxNewPerUpdate, 1, `null`), false},
		{"one unknown client too many", nil, many(MaxNewPerUpdate+1, 1, `null`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSet()
			if tt.setup != nil {
				s.Apply(tt.setup, 2, testEpoch)
			}
			err := s.Admit(tt.u, 1)
			if (err != nil) != tt.refused {
				t.Fatalf("Admit = %v, want refused %v", err, tt.refused)
			}
			if err != nil && !errors.Is(err, ErrTooManyClients) {
				t.Fatalf("Admit = %v, want ErrTooManyClients", err)
			}
		})
	}
}
