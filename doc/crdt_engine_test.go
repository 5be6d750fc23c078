package doc

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/quirehq/quire/crdt"
	"github.com/quirehq/quire/persist"
	"github.com/quirehq/quire/protocol"
)

// editor is a client-side crdt document that produces real Yjs updates.
type editor struct {
	t *testing.T
	d *crdt.Doc
}

func newEditor(t *testing.T, clientID uint64) *editor {
	return &editor{t: t, d: crdt.NewDoc(crdt.Options{ClientID: clientID})}
}

// insert types s at pos of the root text "content" and returns the update.
func (e *editor) insert(pos int, s string) []byte {
	e.t.Helper()
	u, err := e.d.Transact(func(tx *crdt.Transaction) error {
		return e.d.GetText("content").Insert(tx, pos, s)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// newRealRegistry is a registry on the crdt engine over a memory store,
// with a fake clock and no ticker; the test's cleanup closes it.
func newRealRegistry(t *testing.T) (*fakeClock, *persist.Memory, *Registry) {
	t.Helper()
	clock := newFakeClock()
	store := persist.NewMemory()
	reg, err := NewRegistry(Config{Store: store, TickInterval: -1, IdleTimeout: time.Minute, Now: clock.Now,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	return clock, store, reg
}

// TestRealDocument runs a room on the crdt package: the same rules, with
// real Yjs updates.
func TestRealDocument(t *testing.T) {
	clock, _, reg := newRealRegistry(t)
	ctx := context.Background()

	ann := newEditor(t, 1001)
	bob := newEditor(t, 2002)
	a := &fakePeer{name: "a"}
	b := &fakePeer{name: "b"}
	sa, err := reg.Join("notes", a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := reg.Join("notes", b)
	if err != nil {
		t.Fatal(err)
	}
	settle(sa.room)
	wantMessages(t, a, syncMsg(protocol.SyncStep1, []byte{0}))
	wantMessages(t, b, syncMsg(protocol.SyncStep1, []byte{0}))

	u1 := ann.insert(0, "hello")
	sa.Update(u1)
	settle(sa.room)
	wantMessages(t, b, syncMsg(protocol.SyncUpdate, u1))
	if _, err := bob.d.ApplyUpdate(u1); err != nil {
		t.Fatal(err)
	}
	u2 := bob.insert(5, " world")
	sb.Update(u2)
	// A truncated update is refused whole and costs its sender the connection.
	sa.Update(u1[:len(u1)-2])
	settle(sa.room)
	wantClosed(t, a, CloseInvalidData, "invalid update")
	wantOpen(t, b)

	// A late joiner's step 1 with an empty state vector gets the whole
	// document, byte for byte what a Yjs document holding it encodes.
	c := &fakePeer{name: "c"}
	sc, err := reg.Join("notes", c)
	if err != nil {
		t.Fatal(err)
	}
	sc.SyncStep1([]byte{0})
	settle(sc.room)
	want, err := bob.d.EncodeStateAsUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := c.received(t)
	if len(msgs) != 2 || msgs[1].Sync != protocol.SyncStep2 || !bytes.Equal(msgs[1].Payload, want) {
		t.Fatalf("late joiner got %s, want step 1 and step 2 %x", fmtMessages(msgs), want)
	}

	hd, err := reg.Open(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	if text, err := hd.Text(ctx, "content"); err != nil || text != "hello world" {
		t.Fatalf("Text = %q, %v", text, err)
	}
	hd.Close()
	sa.Leave()
	sb.Leave()
	sc.Leave()

	// Unload, then load again from the store alone.
	clock.Advance(time.Minute)
	reg.Tick()
	if reg.Rooms() != 0 {
		t.Fatal("room not unloaded")
	}
	hd, err = reg.Open(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()
	if text, err := hd.Text(ctx, "content"); err != nil || text != "hello world" {
		t.Fatalf("Text after reload = %q, %v", text, err)
	}
	state, err := hd.State(ctx)
	if err != nil || !bytes.Equal(state, want) {
		t.Fatalf("State after reload = %x, %v; want %x", state, err, want)
	}
}

// TestPendingIsStored: an update whose dependencies the room has not seen is
// in no changed update, so the room stores it by itself. It survives an
// unload and integrates when what it waits for arrives, later, in a new room.
func TestPendingIsStored(t *testing.T) {
	clock, store, reg := newRealRegistry(t)
	ctx := context.Background()

	// Bob got Ann's "hello" elsewhere (another provider, say) and typed on.
	ann := newEditor(t, 1001)
	bob := newEditor(t, 2002)
	hello := ann.insert(0, "hello")
	if _, err := bob.d.ApplyUpdate(hello); err != nil {
		t.Fatal(err)
	}
	world := bob.insert(5, " world")

	b := &fakePeer{name: "b"}
	sb, err := reg.Join("notes", b)
	if err != nil {
		t.Fatal(err)
	}
	sb.Update(world)
	settle(sb.room)
	wantOpen(t, b)
	rows := func() int {
		l, err := store.Load(ctx, "notes")
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Updates)
	}
	before := rows()
	// The same update again changes nothing that needs storing.
	sb.Update(world)
	settle(sb.room)
	if got := rows(); got != before || before == 0 {
		t.Fatalf("log rows: %d after the pending update, %d after it came again", before, got)
	}
	sb.Leave()
	clock.Advance(time.Minute)
	reg.Tick()
	if reg.Rooms() != 0 {
		t.Fatal("room not unloaded")
	}

	hd, err := reg.Open(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()
	if text, err := hd.Text(ctx, "content"); err != nil || text != "" {
		t.Fatalf("Text before the dependency = %q, %v", text, err)
	}
	if err := hd.ApplyUpdate(ctx, hello); err != nil {
		t.Fatal(err)
	}
	if text, err := hd.Text(ctx, "content"); err != nil || text != "hello world" {
		t.Fatalf("Text after the dependency = %q, %v", text, err)
	}
	want, err := bob.d.EncodeStateAsUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if state, err := hd.State(ctx); err != nil || !bytes.Equal(state, want) {
		t.Fatalf("State = %x, %v; want %x", state, err, want)
	}
}
