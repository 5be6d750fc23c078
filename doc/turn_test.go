package doc

import (
	"testing"

	"github.com/quirehq/quire/protocol"
)

// Updates handed to a room in one Turn wait for Run, then go as one batch:
// one transaction, one Append, one merged message to every peer.
func TestTurnBatchesUpdates(t *testing.T) {
	h := newHarness(t, nil)
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	c, sc := h.join("d", "c")
	for _, p := range []*fakePeer{a, b, c} {
		p.received(t)
	}
	var turn Turn
	sa.UpdateIn(&turn, item(1, 0, 'a'))
	sb.UpdateIn(&turn, item(2, 0, 'b'))
	sa.UpdateIn(&turn, item(1, 1, 'c'))
	if n := h.store.appends.Load(); n != 0 {
		t.Fatalf("%d appends before Run, want 0", n)
	}
	if len(turn.rooms) != 1 {
		t.Fatalf("turn holds %d rooms, want 1", len(turn.rooms))
	}
	turn.Run()
	settle(sa.room)
	if n := h.store.appends.Load(); n != 1 {
		t.Fatalf("%d appends, want 1 for the turn", n)
	}
	merged := syncMsg(protocol.SyncUpdate, []byte{1, 0, 'a', 2, 0, 'b', 1, 1, 'c'})
	wantMessages(t, a, merged)
	wantMessages(t, b, merged)
	wantMessages(t, c, merged)
	if len(turn.rooms) != 0 {
		t.Fatalf("turn holds %d rooms after Run", len(turn.rooms))
	}
	sa.Leave()
	sb.Leave()
	sc.Leave()
}

// A turn that queues more than the inbox holds runs the room itself rather
// than wait for its own Run: nothing blocks, nothing is lost.
func TestTurnRunsAFullInbox(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Inbox = 2 })
	a, sa := h.join("d", "a")
	b, sb := h.join("d", "b")
	a.received(t)
	b.received(t)
	var turn Turn
	want := ""
	for k := range 7 {
		sa.UpdateIn(&turn, item(1, byte(k), byte('a'+k)))
		want += string(rune('a' + k))
	}
	turn.Run()
	settle(sa.room)
	if got := h.text("d"); got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
	if n := h.store.appends.Load(); n < 2 || n > 7 {
		t.Fatalf("%d appends for 7 updates through an inbox of 2, want 2..7", n)
	}
	sa.Leave()
	sb.Leave()
}
