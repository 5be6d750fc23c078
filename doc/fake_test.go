package doc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quirehq/quire/persist"
	"github.com/quirehq/quire/protocol"
)

// fakeEngine is a tiny grow-only CRDT that lets the room tests look at the
// room's rules alone. An update is a sequence of 3-byte items
// [client, clock, char]; an item with client 0xff makes the whole update
// invalid; client 0xfe makes the engine panic, as a bug would. The state vector is [n, (client, next clock)*n]. The text is the
// chars ordered by (clock, client).
type fakeEngine struct {
	items   map[[2]byte]byte
	stats   *engineStats
	pending bool
}

// engineStats counts what the rooms of a test asked of their engines.
type engineStats struct {
	fullEncodes atomic.Int64 // encodeStateAsUpdate of the whole state
	transacts   atomic.Int64
}

func (st *engineStats) newEngine() engine {
	return &fakeEngine{items: make(map[[2]byte]byte), stats: st}
}

func fakeValidate(u []byte) error {
	if len(u)%3 != 0 {
		return fmt.Errorf("fake update of %d bytes", len(u))
	}
	for i := 0; i < len(u); i += 3 {
		if u[i] == 0xff {
			return errors.New("fake update with a bad item")
		}
	}
	return nil
}

func (e *fakeEngine) integrate(u []byte) []byte {
	var changed []byte
	for i := 0; i < len(u); i += 3 {
		if u[i] == 0xfe {
			panic("fake engine bug reached")
		}
		k := [2]byte{u[i], u[i+1]}
		if _, ok := e.items[k]; !ok {
			e.items[k] = u[i+2]
			changed = append(changed, u[i:i+3]...)
		}
	}
	return changed
}

func (e *fakeEngine) applyUpdate(u []byte) error {
	if err := fakeValidate(u); err != nil {
		return err
	}
	e.integrate(u)
	return nil
}

func (e *fakeEngine) transact(fn func(apply func([]byte) error)) ([]byte, error) {
	e.stats.transacts.Add(1)
	var changed []byte
	fn(func(u []byte) error {
		if err := fakeValidate(u); err != nil {
			return err
		}
		changed = append(changed, e.integrate(u)...)
		return nil
	})
	return changed, nil
}

func (e *fakeEngine) sv() map[byte]byte {
	sv := make(map[byte]byte)
	for k := range e.items {
		if k[1]+1 > sv[k[0]] {
			sv[k[0]] = k[1] + 1
		}
	}
	return sv
}

func (e *fakeEngine) encodeStateVector() []byte {
	sv := e.sv()
	clients := make([]byte, 0, len(sv))
	for c := range sv {
		clients = append(clients, c)
	}
	slices.Sort(clients)
	out := []byte{byte(len(clients))}
	for _, c := range clients {
		out = append(out, c, sv[c])
	}
	return out
}

func (e *fakeEngine) sortedKeys() [][2]byte {
	keys := make([][2]byte, 0, len(e.items))
	for k := range e.items {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][1] != keys[j][1] {
			return keys[i][1] < keys[j][1]
		}
		return keys[i][0] < keys[j][0]
	})
	return keys
}

func (e *fakeEngine) encodeStateAsUpdate(sv []byte) ([]byte, error) {
	have := map[byte]byte{}
	if len(sv) == 0 || (len(sv) == 1 && sv[0] == 0) {
		e.stats.fullEncodes.Add(1)
	} else {
		if len(sv) != 1+2*int(sv[0]) {
			return nil, errors.New("fake state vector of the wrong length")
		}
		for i := 1; i < len(sv); i += 2 {
			have[sv[i]] = sv[i+1]
		}
	}
	out := []byte{}
	for _, k := range e.sortedKeys() {
		if k[1] >= have[k[0]] {
			out = append(out, k[0], k[1], e.items[k])
		}
	}
	return out, nil
}

// encodePending: the fake integrates every item at once, so nothing waits.
func (e *fakeEngine) encodePending() []byte { return nil }

func (e *fakeEngine) text(string) string {
	var b []byte
	for _, k := range e.sortedKeys() {
		b = append(b, e.items[k])
	}
	return string(b)
}

// item builds a fake update of one item.
func item(client, clock byte, c byte) []byte { return []byte{client, clock, c} }

// fakePeer records what the room sends it and how it is closed.
type fakePeer struct {
	name string
	log  *eventLog

	mu       sync.Mutex
	msgs     [][]byte
	capacity int // Send fails once this many messages are queued (0: never)
	closed   bool
	code     CloseCode
	reason   string
}

func (p *fakePeer) Send(msg []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.capacity > 0 && len(p.msgs) >= p.capacity {
		return false
	}
	p.msgs = append(p.msgs, msg)
	if p.log != nil {
		p.log.add("send " + p.name)
	}
	return true
}

func (p *fakePeer) Close(code CloseCode, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed, p.code, p.reason = true, code, reason
}

// received decodes every message the peer got so far and forgets them.
func (p *fakePeer) received(t *testing.T) []protocol.Message {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []protocol.Message
	for _, b := range p.msgs {
		m, err := protocol.Decode(b)
		if err != nil {
			t.Fatalf("peer %s got a malformed message %x: %v", p.name, b, err)
		}
		out = append(out, m)
	}
	p.msgs = nil
	return out
}

func (p *fakePeer) closedWith() (bool, CloseCode, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed, p.code, p.reason
}

// eventLog orders what the store and the peers saw.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// testStore is a Memory store whose Load and Append can fail or block.
type testStore struct {
	persist.Store
	log *eventLog

	loads      atomic.Int64
	appends    atomic.Int64
	compacts   atomic.Int64
	loadErr    atomic.Pointer[error]
	appendErr  atomic.Pointer[error]
	loadGate   chan struct{}        // if set, Load waits until it is closed
	appendGate atomic.Pointer[gate] // if set, each Append passes through it
}

// gate lets a test hold a goroutine at a point and know that it got there.
type gate struct{ entered, release chan struct{} }

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

// pass is called by the goroutine being held.
func (g *gate) pass() {
	g.entered <- struct{}{}
	<-g.release
}

// await waits until a goroutine is held at the gate.
func (g *gate) await() { <-g.entered }

// open lets the held goroutine go on.
func (g *gate) open() { g.release <- struct{}{} }

func newTestStore() *testStore {
	return &testStore{Store: persist.NewMemory(), log: &eventLog{}}
}

func (s *testStore) Load(ctx context.Context, id string) (persist.Loaded, error) {
	s.loads.Add(1)
	if s.loadGate != nil {
		<-s.loadGate
	}
	if err := s.loadErr.Load(); err != nil {
		return persist.Loaded{}, *err
	}
	return s.Store.Load(ctx, id)
}

func (s *testStore) Append(ctx context.Context, id string, u []byte) (persist.AppendResult, error) {
	if g := s.appendGate.Load(); g != nil {
		g.pass()
	}
	if err := s.appendErr.Load(); err != nil {
		return persist.AppendResult{}, *err
	}
	res, err := s.Store.Append(ctx, id, u)
	s.appends.Add(1)
	s.log.add(fmt.Sprintf("append %x", u))
	return res, err
}

func (s *testStore) Compact(ctx context.Context, id string, snap []byte, through int64) error {
	s.compacts.Add(1)
	return s.Store.Compact(ctx, id, snap, through)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
