package doc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/quirehq/quire/presence"
	"github.com/quirehq/quire/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type harness struct {
	t     *testing.T
	reg   *Registry
	store *testStore
	clock *fakeClock
	stats *engineStats
}

// newHarness makes a Registry on a testStore with the fake engine, a fake
// clock and no ticker: the test drives time with clock.Advance and reg.Tick.
func newHarness(t *testing.T, configure func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, store: newTestStore(), clock: newFakeClock(), stats: &engineStats{}}
	cfg := Config{
		Store:        h.store,
		Logger:       slog.New(slog.DiscardHandler),
		TickInterval: -1,
		IdleTimeout:  time.Minute,
		Now:          h.clock.Now,
		newEngine:    h.stats.newEngine,
	}
	if configure != nil {
		configure(&cfg)
	}
	reg, err := NewRegistry(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.reg = reg
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := reg.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// join connects a fake peer to doc id and waits until the room has handled it.
func (h *harness) join(id, name string) (*fakePeer, *Session) {
	h.t.Helper()
	p := &fakePeer{name: name, log: h.store.log}
	s, err := h.reg.Join(id, p)
	if err != nil {
		h.t.Fatalf("Join(%s): %v", id, err)
	}
	settle(s.room)
	return p, s
}

// joinTwo connects fake peers "a" and "b" to doc id and drains what the
// room greeted them with.
func (h *harness) joinTwo(id string) (a *fakePeer, sa *Session, b *fakePeer, sb *Session) {
	h.t.Helper()
	a, sa = h.join(id, "a")
	b, sb = h.join(id, "b")
	a.received(h.t)
	b.received(h.t)
	return a, sa, b, sb
}

// announce sends the awareness update u from s and checks that every one of
// peers, the sender's own included, receives it.
func announce(t *testing.T, s *Session, u presence.Update, peers ...*fakePeer) {
	t.Helper()
	s.Awareness(presence.EncodeUpdate(u))
	settle(s.room)
	for _, p := range peers {
		wantMessages(t, p, awarenessMsg(t, u))
	}
}

// settle waits until rm has handled every message posted before.
func settle(rm *room) {
	c := &call{fn: func(*room) error { return nil }, done: make(chan error, 1)}
	if !rm.post(message{kind: msgCall, call: c}) {
		return
	}
	select {
	case <-c.done:
	case <-rm.done:
	}
}

// seed commits updates to doc id directly in the store.
func (h *harness) seed(id string, updates ...[]byte) {
	h.t.Helper()
	for _, u := range updates {
		if _, err := h.store.Store.Append(context.Background(), id, u); err != nil {
			h.t.Fatal(err)
		}
	}
}

// refs returns how many users hold doc id's room.
func (h *harness) refs(id string) int {
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	if rm := h.reg.rooms[id]; rm != nil {
		return rm.refs
	}
	return 0
}

func (h *harness) text(id string) string {
	h.t.Helper()
	hd, err := h.reg.Open(context.Background(), id)
	if err != nil {
		h.t.Fatalf("Open(%s): %v", id, err)
	}
	defer hd.Close()
	text, err := hd.Text(context.Background(), "content")
	if err != nil {
		h.t.Fatal(err)
	}
	return text
}

// storedText rebuilds doc id from the store alone.
func (h *harness) storedText(id string) string {
	h.t.Helper()
	l, err := h.store.Store.Load(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	e := h.stats.newEngine()
	if l.Snapshot != nil {
		if err := e.applyUpdate(l.Snapshot); err != nil {
			h.t.Fatal(err)
		}
	}
	for _, u := range l.Updates {
		if err := e.applyUpdate(u); err != nil {
			h.t.Fatal(err)
		}
	}
	return e.text("content")
}

func syncMsg(typ protocol.SyncType, payload []byte) protocol.Message {
	return protocol.Message{Type: protocol.TypeSync, Sync: typ, Payload: payload}
}

func awarenessMsg(t *testing.T, u presence.Update) protocol.Message {
	t.Helper()
	return protocol.Message{Type: protocol.TypeAwareness, Payload: presence.EncodeUpdate(u)}
}

func equalMessages(a, b []protocol.Message) bool {
	return slices.EqualFunc(a, b, func(x, y protocol.Message) bool {
		return x.Type == y.Type && x.Sync == y.Sync && bytes.Equal(x.Payload, y.Payload) && x.Reason == y.Reason
	})
}

func wantMessages(t *testing.T, p *fakePeer, want ...protocol.Message) {
	t.Helper()
	got := p.received(t)
	if !equalMessages(got, want) {
		t.Fatalf("peer %s received\n%s\nwant\n%s", p.name, fmtMessages(got), fmtMessages(want))
	}
}

func fmtMessages(ms []protocol.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "  %s/%s %x %q\n", m.Type, m.Sync, m.Payload, m.Reason)
	}
	if len(ms) == 0 {
		b.WriteString("  (nothing)\n")
	}
	return b.String()
}

func wantClosed(t *testing.T, p *fakePeer, code CloseCode, reasonPart string) {
	t.Helper()
	closed, got, reason := p.closedWith()
	if !closed {
		t.Fatalf("peer %s is open, want closed with %d", p.name, code)
	}
	if got != code || !strings.Contains(reason, reasonPart) {
		t.Fatalf("peer %s closed with %d %q, want %d and a reason with %q", p.name, got, reason, code, reasonPart)
	}
	if len(reason) > maxReasonLen {
		t.Fatalf("close reason of %d bytes", len(reason))
	}
}

func wantOpen(t *testing.T, p *fakePeer) {
	t.Helper()
	if closed, code, reason := p.closedWith(); closed {
		t.Fatalf("peer %s closed with %d %q", p.name, code, reason)
	}
}

func TestJoinSyncHandshake(t *testing.T) {
	h := newHarness(t, nil)
	h.seed("d", item(1, 0, 'h'), item(1, 1, 'i'), item(2, 0, '!'))
	a, s := h.join("d", "a")
	// On join: sync step 1 with the room's state vector, no awareness yet.
	wantMessages(t, a, syncMsg(protocol.SyncStep1, []byte{2, 1, 2, 2, 1}))

	// An empty state vector gets the whole document.
	s.SyncStep1([]byte{0})
	settle(s.room)
	wantMessages(t, a, syncMsg(protocol.SyncStep2, []byte{1, 0, 'h', 2, 0, '!', 1, 1, 'i'}))

	// A partial one gets the diff.
	s.SyncStep1([]byte{1, 1, 1})
	settle(s.room)
	wantMessages(t, a, syncMsg(protocol.SyncStep2, []byte{2, 0, '!', 1, 1, 'i'}))

	// A state vector that does not decode closes the peer.
	s.SyncStep1([]byte{7})
	settle(s.room)
	wantMessages(t, a)
	wantClosed(t, a, CloseInvalidData, "invalid state vector")
	s.Leave()
}

func TestUpdateCommittedBeforeBroadcast(t *testing.T) {
	h := newHarness(t, nil)
	a, sa, b, sb := h.joinTwo("d")
	h.store.log.events = nil

	sa.Update(item(1, 0, 'x'))
	settle(sa.room)
	if got, want := h.store.log.list(), []string{"append 010078", "send b"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q: commit first, then the other peer", got, want)
	}
	wantMessages(t, b, syncMsg(protocol.SyncUpdate, item(1, 0, 'x')))
	wantMessages(t, a) // the sole sender gets no echo

	// A duplicate changes nothing: no commit, no message.
	sb.Update(item(1, 0, 'x'))
	settle(sa.room)
	if n := h.store.appends.Load(); n != 1 {
		t.Fatalf("%d appends, want 1", n)
	}
	wantMessages(t, a)
	wantMessages(t, b)
	if got := h.storedText("d"); got != "x" {
		t.Fatalf("stored text %q", got)
	}
	sa.Leave()
	sb.Leave()
}

func TestBatchOneTransactionOneAppendOneMessage(t *testing.T) {
	h := newHarness(t, nil)
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	c, sc := h.join("d", "c")
	for _, p := range []*fakePeer{a, b, c} {
		p.received(t)
	}
	g := newGate()
	h.store.appendGate.Store(g)
	// The first update's commit is held, so the room is busy while the next
	// updates, from two peers, queue up in its inbox. (The poster of a
	// message to an idle room runs it, so the first one is posted from a
	// goroutine of its own.)
	go sa.Update(item(1, 0, 'a'))
	g.await()
	transacts := h.stats.transacts.Load()
	sa.Update(item(1, 1, 'b'))
	sb.Update(item(2, 0, 'c'))
	sa.Update(item(1, 2, 'd'))
	g.open()
	g.await() // the batch's commit
	h.store.appendGate.Store(nil)
	g.open()
	settle(sa.room)

	if n := h.store.appends.Load(); n != 2 {
		t.Fatalf("%d appends, want 2 (the first update, then the batch of three)", n)
	}
	if n := h.stats.transacts.Load() - transacts; n != 1 {
		t.Fatalf("%d transactions for the batch, want 1", n)
	}
	merged := syncMsg(protocol.SyncUpdate, []byte{1, 1, 'b', 2, 0, 'c', 1, 2, 'd'})
	// Several senders: everyone gets the merged update once.
	wantMessages(t, a, merged)
	wantMessages(t, b, syncMsg(protocol.SyncUpdate, item(1, 0, 'a')), merged)
	wantMessages(t, c, syncMsg(protocol.SyncUpdate, item(1, 0, 'a')), merged)
	if got := h.text("d"); got != "acbd" {
		t.Fatalf("text %q", got)
	}
	sa.Leave()
	sb.Leave()
	sc.Leave()
}

func TestBadUpdateCostsOnlyItsSender(t *testing.T) {
	h := newHarness(t, nil)
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	c, sc := h.join("d", "c")
	for _, p := range []*fakePeer{a, b, c} {
		p.received(t)
	}
	g := newGate()
	h.store.appendGate.Store(g)
	go sc.Update(item(3, 0, 'z')) // keeps the room busy in its commit
	g.await()
	sa.Update(item(1, 0, 'a'))
	sb.Update([]byte{0xff, 0, 'X'}) // bad
	sb.Update(item(2, 1, 'y'))      // after its bad one: dropped with it
	sa.Update(item(1, 1, 'b'))
	g.open()
	g.await()
	h.store.appendGate.Store(nil)
	g.open()
	settle(sa.room)

	wantClosed(t, b, CloseInvalidData, "invalid update")
	wantOpen(t, a)
	wantOpen(t, c)
	if got := h.text("d"); got != "azb" {
		t.Fatalf("text %q, want the good updates only", got)
	}
	if got := h.storedText("d"); got != "azb" {
		t.Fatalf("stored text %q", got)
	}
	// The bad peer's later messages are ignored.
	sb.Update(item(2, 5, 'q'))
	settle(sa.room)
	if got := h.text("d"); got != "azb" {
		t.Fatalf("text %q after a dropped peer's update", got)
	}
	sa.Leave()
	sb.Leave()
	sc.Leave()
}

func TestLoadFailureClosesAndNeverWrites(t *testing.T) {
	h := newHarness(t, nil)
	h.seed("d", item(1, 0, 'k'))
	boom := errors.New("disk on fire")
	h.store.loadErr.Store(&boom)
	a, sa := h.join("d", "a")
	wantClosed(t, a, CloseInternalError, "disk on fire")
	wantMessages(t, a)
	sa.Update(item(2, 0, 'x'))
	settle(sa.room)
	if _, err := h.reg.Open(context.Background(), "d"); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Open after a failed load: %v", err)
	}
	sa.Leave()
	if n := h.store.appends.Load(); n != 0 {
		t.Fatalf("%d appends after a failed load", n)
	}
	// Once the store works, the next user gets a fresh room.
	h.store.loadErr.Store(nil)
	if got := h.text("d"); got != "k" {
		t.Fatalf("text %q after the store recovered", got)
	}
}

func TestLoadWaitsBeforeServing(t *testing.T) {
	h := newHarness(t, nil)
	h.seed("d", item(1, 0, 'k'))
	h.store.loadGate = make(chan struct{})
	p := &fakePeer{name: "a"}
	joined := make(chan *Session, 1)
	go func() {
		// The poster of a message to an idle room runs it: this one waits
		// in the load.
		s, err := h.reg.Join("d", p)
		if err != nil {
			t.Error(err)
		}
		joined <- s
	}()
	for h.store.loads.Load() == 0 {
		runtime.Gosched()
	}
	// Nothing may reach the peer while the load is in progress; once it is
	// done the peer gets the loaded document.
	if msgs := p.received(t); len(msgs) != 0 {
		t.Fatalf("peer served during the load: %s", fmtMessages(msgs))
	}
	close(h.store.loadGate)
	s := <-joined
	s.SyncStep1([]byte{0})
	settle(s.room)
	wantMessages(t, p, syncMsg(protocol.SyncStep1, []byte{1, 1, 1}), syncMsg(protocol.SyncStep2, item(1, 0, 'k')))
	s.Leave()
}

func TestCommitFailureDiscardsTheRoom(t *testing.T) {
	h := newHarness(t, nil)
	h.seed("d", item(1, 0, 'k'))
	a, sa, b, sb := h.joinTwo("d")
	boom := errors.New("disk full")
	h.store.appendErr.Store(&boom)
	sa.Update(item(1, 1, 'x'))
	settle(sa.room)
	wantClosed(t, a, CloseInternalError, "disk full")
	wantClosed(t, b, CloseInternalError, "disk full")
	wantMessages(t, b) // the uncommitted update never left
	h.store.appendErr.Store(nil)
	// A Handle ApplyUpdate on the new room works, and the room did not keep
	// the uncommitted change.
	hd, err := h.reg.Open(context.Background(), "d")
	if err != nil {
		t.Fatal(err)
	}
	if hd.room == sa.room {
		t.Fatal("the failed room is still in use")
	}
	if text, _ := hd.Text(context.Background(), "content"); text != "k" {
		t.Fatalf("text %q, want the stored state only", text)
	}
	hd.Close()
	sa.Leave()
	sb.Leave()
	select {
	case <-sa.room.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the failed room did not finish once its peers left")
	}
}

func TestSlowPeerIsDropped(t *testing.T) {
	h := newHarness(t, nil)
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	slow := &fakePeer{name: "slow", capacity: 2}
	ss, err := h.reg.Join("d", slow)
	if err != nil {
		t.Fatal(err)
	}
	settle(ss.room)
	a.received(t)
	b.received(t)
	// slow holds its step 1; two more messages overflow it.
	ss.Awareness(presence.EncodeUpdate(presence.Update{{ClientID: 30, Clock: 1, State: []byte(`{"n":3}`)}}))
	sa.Update(item(1, 0, 'x'))
	settle(sa.room)
	wantClosed(t, slow, CloseTryAgainLater, "outbox full")
	wantOpen(t, a)
	wantOpen(t, b)
	// The others saw slow's awareness come and go.
	joined := awarenessMsg(t, presence.Update{{ClientID: 30, Clock: 1, State: []byte(`{"n":3}`)}})
	// A removal keeps the clock, as y-protocols' removeAwarenessStates does.
	gone := awarenessMsg(t, presence.Update{{ClientID: 30, Clock: 1, State: []byte(`null`)}})
	update := syncMsg(protocol.SyncUpdate, item(1, 0, 'x'))
	wantMessages(t, b, joined, update, gone)
	if n := h.reg.Peers("d"); n != 2 {
		t.Fatalf("%d peers, want 2", n)
	}
	sa.Leave()
	sb.Leave()
	ss.Leave()
}

func TestAwarenessEchoJoinLeave(t *testing.T) {
	h := newHarness(t, nil)
	a, sa, b, sb := h.joinTwo("d")
	state := presence.Update{{ClientID: 10, Clock: 1, State: []byte(`{"user":{"name":"Ann"}}`)}}
	// The sender gets it too: that is what keeps a lone editor's connection alive.
	announce(t, sa, state, a, b)

	// A late joiner gets step 1 and the current states; a query gets them too.
	c, sc := h.join("d", "c")
	wantMessages(t, c, syncMsg(protocol.SyncStep1, []byte{0}), awarenessMsg(t, state))
	sc.QueryAwareness()
	settle(sc.room)
	wantMessages(t, c, awarenessMsg(t, state))

	// A malformed awareness update costs its sender the connection.
	sc.Awareness([]byte{1, 2})
	settle(sc.room)
	wantClosed(t, c, CloseInvalidData, "invalid awareness update")

	// When a leaves, the others learn its state is gone.
	sa.Leave()
	settle(sb.room)
	wantMessages(t, b, awarenessMsg(t, presence.Update{{ClientID: 10, Clock: 1, State: []byte("null")}}))
	sb.Leave()
	sc.Leave()
}

func TestAwarenessExpiresOnTick(t *testing.T) {
	h := newHarness(t, nil)
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	state := presence.Update{{ClientID: 10, Clock: 4, State: []byte(`{}`)}}
	sa.Awareness(presence.EncodeUpdate(state))
	settle(sa.room)
	a.received(t)
	b.received(t)
	h.clock.Advance(presence.Timeout - time.Second)
	h.reg.Tick()
	settle(sa.room)
	wantMessages(t, b)
	h.clock.Advance(time.Second)
	h.reg.Tick()
	settle(sa.room)
	gone := awarenessMsg(t, presence.Update{{ClientID: 10, Clock: 4, State: []byte("null")}})
	wantMessages(t, a, gone)
	wantMessages(t, b, gone)
	sa.Leave()
	sb.Leave()
}

func TestIdleRoomUnloads(t *testing.T) {
	h := newHarness(t, nil)
	_, s := h.join("d", "a")
	rm := s.room
	s.Leave()
	h.clock.Advance(time.Minute - time.Second)
	h.reg.Tick()
	if n := h.reg.Rooms(); n != 1 {
		t.Fatalf("%d rooms before the idle timeout, want 1", n)
	}
	h.clock.Advance(time.Second)
	h.reg.Tick()
	if n := h.reg.Rooms(); n != 0 {
		t.Fatalf("%d rooms after the idle timeout, want 0", n)
	}
	<-rm.done
	// A Handle keeps a room loaded like a peer does.
	hd, err := h.reg.Open(context.Background(), "d")
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	h.reg.Tick()
	if n := h.reg.Rooms(); n != 1 {
		t.Fatalf("%d rooms with an open Handle, want 1", n)
	}
	hd.Close()
	hd.Close() // harmless
	h.clock.Advance(time.Minute)
	h.reg.Tick()
	if n := h.reg.Rooms(); n != 0 {
		t.Fatalf("%d rooms after the Handle closed, want 0", n)
	}
}

func TestConcurrentOpensShareOneLoad(t *testing.T) {
	h := newHarness(t, nil)
	h.seed("d", item(1, 0, 'k'))
	h.store.loadGate = make(chan struct{})
	var wg sync.WaitGroup
	handles := make([]*Handle, 20)
	errs := make([]error, 20)
	for i := range handles {
		wg.Go(func() { handles[i], errs[i] = h.reg.Open(context.Background(), "d") })
	}
	// Wait until all of them hold the room while its load is still held.
	for h.refs("d") < len(handles) {
		runtime.Gosched()
	}
	close(h.store.loadGate)
	wg.Wait()
	for i, hd := range handles {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		hd.Close()
	}
	if n := h.store.loads.Load(); n != 1 {
		t.Fatalf("%d loads, want 1", n)
	}
}

func TestFullStateEncodedOncePerChange(t *testing.T) {
	h := newHarness(t, nil)
	h.seed("d", item(1, 0, 'k'))
	var sessions []*Session
	for i := range 50 {
		p := &fakePeer{name: fmt.Sprint(i)}
		s, err := h.reg.Join("d", p)
		if err != nil {
			t.Fatal(err)
		}
		s.SyncStep1([]byte{0})
		sessions = append(sessions, s)
	}
	settle(sessions[0].room)
	if n := h.stats.fullEncodes.Load(); n != 1 {
		t.Fatalf("%d full encodings for 50 joins, want 1", n)
	}
	sessions[0].Update(item(2, 0, 'x'))
	sessions[1].SyncStep1([]byte{0})
	sessions[2].SyncStep1([]byte{0})
	settle(sessions[0].room)
	if n := h.stats.fullEncodes.Load(); n != 2 {
		t.Fatalf("%d full encodings, want 2 (one more after the change)", n)
	}
	for _, s := range sessions {
		s.Leave()
	}
}

func TestCompaction(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CompactRows = 3 })
	_, s := h.join("d", "a")
	for i := range byte(5) {
		s.Update(item(1, i, 'a'+i))
		settle(s.room)
	}
	if n := h.store.compacts.Load(); n != 1 {
		t.Fatalf("%d compactions, want 1 (after the third row)", n)
	}
	meta, err := h.store.GetDoc(context.Background(), "d")
	if err != nil {
		t.Fatal(err)
	}
	if meta.LogLen != 2 {
		t.Fatalf("log has %d rows after compaction, want 2", meta.LogLen)
	}
	if got := h.storedText("d"); got != "abcde" {
		t.Fatalf("stored text %q", got)
	}
	s.Leave()
}

func TestHandle(t *testing.T) {
	h := newHarness(t, nil)
	a, sa := h.join("d", "a")
	a.received(t)
	hd, err := h.reg.Open(context.Background(), "d")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()
	ctx := context.Background()
	if err := hd.ApplyUpdate(ctx, []byte{0xff, 1, 2}); !errors.Is(err, ErrInvalidUpdate) {
		t.Fatalf("ApplyUpdate of a bad update: %v, want ErrInvalidUpdate", err)
	}
	if err := hd.ApplyUpdate(ctx, item(5, 0, 'q')); err != nil {
		t.Fatal(err)
	}
	// Durable when it returns, and the peers got it.
	if got := h.storedText("d"); got != "q" {
		t.Fatalf("stored %q", got)
	}
	wantMessages(t, a, syncMsg(protocol.SyncUpdate, item(5, 0, 'q')))
	wantOpen(t, a)
	if text, err := hd.Text(ctx, "content"); err != nil || text != "q" {
		t.Fatalf("Text = %q, %v", text, err)
	}
	state, err := hd.State(ctx)
	if err != nil || !bytes.Equal(state, item(5, 0, 'q')) {
		t.Fatalf("State = %x, %v", state, err)
	}
	sv, err := hd.StateVector(ctx)
	if err != nil || !bytes.Equal(sv, []byte{1, 5, 1}) {
		t.Fatalf("StateVector = %x, %v", sv, err)
	}
	if diff, err := hd.Diff(ctx, sv); err != nil || len(diff) != 0 {
		t.Fatalf("Diff(own sv) = %x, %v", diff, err)
	}
	if _, err := hd.Diff(ctx, []byte{9}); !errors.Is(err, ErrInvalidUpdate) {
		t.Fatalf("Diff of a bad state vector: %v", err)
	}
	if hd.Peers() != 1 || hd.ID() != "d" {
		t.Fatalf("Peers %d ID %q", hd.Peers(), hd.ID())
	}
	if live := h.reg.Live(); live["d"] != 1 {
		t.Fatalf("Live = %v", live)
	}
	sa.Leave()
	sa.Leave() // harmless
}

func TestInvalidIDs(t *testing.T) {
	h := newHarness(t, nil)
	for _, id := range []string{"", "a/b", "a b", "ü", strings.Repeat("x", 129), "%2F"} {
		if _, err := h.reg.Join(id, &fakePeer{}); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Join(%q): %v, want ErrInvalidID", id, err)
		}
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
	}
	for _, id := range []string{"a", "A.b-c_9", strings.Repeat("x", 128), "..", "e3f1c2a4-8b6d-4c3e-9f1a-2b3c4d5e6f70"} {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
}

func TestShutdownCommitsQueuedUpdatesThenCloses(t *testing.T) {
	h := newHarness(t, nil)
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	g := newGate()
	h.store.appendGate.Store(g)
	go sa.Update(item(1, 0, 'x')) // held in its commit
	g.await()
	sa.Update(item(1, 1, 'y')) // waits in the inbox
	closed := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- h.reg.Close(ctx)
	}()
	g.open()
	g.await()
	h.store.appendGate.Store(nil)
	g.open()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wantClosed(t, a, CloseGoingAway, "shutting down")
	wantClosed(t, b, CloseGoingAway, "shutting down")
	if got := h.storedText("d"); got != "xy" {
		t.Fatalf("stored %q, want every update received before the shutdown", got)
	}
	if _, err := h.reg.Join("d", &fakePeer{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Join after Close: %v", err)
	}
	sa.Leave()
	sb.Leave()
}

func TestCloseReason(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	got := closeReason(long)
	if len(got) > maxReasonLen || !strings.HasPrefix(long, got) || len(got) < maxReasonLen-1 {
		t.Fatalf("closeReason cut to %d bytes: %q", len(got), got)
	}
	if closeReason("short") != "short" {
		t.Fatal("short reason changed")
	}
}

func TestPanicCostsOnlyTheRoom(t *testing.T) {
	h := newHarness(t, nil)
	h.seed("d", item(1, 0, 'k'))
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	sa.Update(item(0xfe, 0, '!'))
	settle(sa.room)
	wantClosed(t, a, CloseInternalError, "internal error")
	wantClosed(t, b, CloseInternalError, "internal error")
	if n := h.store.appends.Load(); n != 0 {
		t.Fatalf("%d appends after a panic", n)
	}
	sa.Leave()
	sb.Leave()
	if got := h.text("d"); got != "k" {
		t.Fatalf("text %q after the failed room", got)
	}
}

// sizeErr is a refusal that names its close code, as limits errors do.
type sizeErr struct{}

func (sizeErr) Error() string  { return "document over its size limit" }
func (sizeErr) CloseCode() int { return 4413 }

func TestSizeLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.CheckSize = func(current, n int64) error {
			if current+n > 9 {
				return sizeErr{}
			}
			return nil
		}
	})
	h.seed("d", item(1, 0, 'a'), item(1, 1, 'b')) // 6 bytes stored
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	sa.Update(item(1, 2, 'c')) // 9: fits
	settle(sa.room)
	sb.Update(item(2, 0, 'x')) // 12: refused
	settle(sa.room)
	wantOpen(t, a)
	wantClosed(t, b, 4413, "size limit")
	hd, err := h.reg.Open(context.Background(), "d")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()
	if err := hd.ApplyUpdate(context.Background(), item(3, 0, 'y')); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ApplyUpdate over the limit: %v, want ErrTooLarge", err)
	}
	if got := h.storedText("d"); got != "abc" {
		t.Fatalf("stored %q", got)
	}
	sa.Leave()
	sb.Leave()
}

// A connection that claims more awareness clients than one may speak for is
// closed with 1008, and none of the update is applied or broadcast; its
// neighbours keep their states.
func TestAwarenessClientCap(t *testing.T) {
	h := newHarness(t, nil)
	a, sa, b, sb := h.joinTwo("d")
	own := presence.Update{{ClientID: 10, Clock: 1, State: []byte(`{"user":{"name":"Ann"}}`)}}
	announce(t, sa, own, a, b)

	var flood presence.Update
	for i := range presence.MaxOwned + 1 {
		flood = append(flood, presence.Entry{ClientID: uint64(1000 + i), Clock: 1, State: []byte(`{}`)})
	}
	sb.Awareness(presence.EncodeUpdate(flood))
	settle(sb.room)
	wantClosed(t, b, ClosePolicyViolation, "too many awareness clients")
	wantOpen(t, a)
	// a hears nothing of the flood; the room holds only a's state.
	wantMessages(t, a)
	if got := sa.room.aware.Len(); got != 1 {
		t.Fatalf("%d live awareness states, want 1", got)
	}
	sa.Leave()
	sb.Leave()
}
