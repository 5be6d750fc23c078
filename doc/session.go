package doc

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Session is one peer's membership of a room, returned by Registry.Join. Its
// methods hand the peer's messages to the room in order; they wait while the
// room's inbox is full, which slows the peer's reads down (back-pressure), and
// return at once when the room is finished. A Session is used by one
// goroutine, the connection's reader. The byte slices passed in belong to the
// room afterwards: the caller must not modify them.
type Session struct {
	room *room
	id   uint64
	peer Peer
	left bool

	// Owned by the room's goroutine.
	joined  bool // the room has added the peer
	dropped bool // the room has removed the peer: its messages are ignored
}

// ID is the session's id, unique in its Registry: the owner of the awareness
// states the peer sets.
func (s *Session) ID() uint64 { return s.id }

// Doc is the document id of the session's room.
func (s *Session) Doc() string { return s.room.id }

// SyncStep1 hands the room the peer's sync step 1 (its encoded state vector);
// the room answers with sync step 2 through the Peer.
func (s *Session) SyncStep1(stateVector []byte) {
	s.room.post(message{kind: msgStep1, sess: s, data: stateVector})
}

// Update hands the room an update from the peer (sync step 2 or update). It
// is committed and broadcast, or refused whole: then the peer is closed with
// CloseInvalidData.
func (s *Session) Update(update []byte) {
	s.room.post(message{kind: msgUpdate, sess: s, data: update})
}

// Awareness hands the room an encoded awareness update from the peer.
func (s *Session) Awareness(update []byte) {
	s.room.post(message{kind: msgAwareness, sess: s, data: update})
}

// QueryAwareness asks the room to send the peer every awareness state.
func (s *Session) QueryAwareness() {
	s.room.post(message{kind: msgQueryAwareness, sess: s})
}

// Leave removes the peer from the room (its awareness states are removed and
// the other peers told) and releases the room. Call it once, when the
// connection has ended; later calls do nothing.
func (s *Session) Leave() {
	if s.left {
		return
	}
	s.left = true
	s.room.post(message{kind: msgLeave, sess: s})
	s.room.reg.release(s.room)
}

// Handle gives Go code a document without a connection: read it, apply
// updates. It keeps the room loaded until Close. Its methods are safe for
// concurrent use and are served by the room in order with everything else.
type Handle struct {
	room   *room
	closed atomic.Bool
}

// call runs fn on the room's goroutine once the document is loaded and waits
// for its result.
func (h *Handle) call(ctx context.Context, fn func(*room) error) error {
	c := &call{fn: fn, done: make(chan error, 1)}
	return h.wait(ctx, c, message{kind: msgCall, call: c})
}

func (h *Handle) wait(ctx context.Context, c *call, m message) error {
	if err := h.room.postCtx(ctx, m); err != nil {
		return err
	}
	select {
	case err := <-c.done:
		return err
	case <-h.room.done:
		// The room may have answered just before finishing.
		select {
		case err := <-c.done:
			return err
		default:
			return ErrClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ID is the document id.
func (h *Handle) ID() string { return h.room.id }

// Text returns the text of the document's root Y.Text called name (the editor
// uses "content"); an absent root reads as "".
func (h *Handle) Text(ctx context.Context, name string) (string, error) {
	var text string
	err := h.call(ctx, func(rm *room) error {
		text = rm.doc.text(name)
		return nil
	})
	return text, err
}

// State returns the whole document as one Yjs v1 update.
func (h *Handle) State(ctx context.Context) ([]byte, error) {
	var state []byte
	err := h.call(ctx, func(rm *room) error {
		// The cached encoding is shared with the peers: hand out a copy.
		state = append([]byte(nil), rm.fullUpdate()...)
		return nil
	})
	return state, err
}

// Diff returns what a peer with the encoded state vector sv lacks, as one
// Yjs v1 update (Y.encodeStateAsUpdate(doc, sv)).
func (h *Handle) Diff(ctx context.Context, sv []byte) ([]byte, error) {
	var diff []byte
	err := h.call(ctx, func(rm *room) error {
		var err error
		diff, err = rm.doc.encodeStateAsUpdate(sv)
		if err != nil {
			return fmt.Errorf("%w: state vector: %w", ErrInvalidUpdate, err)
		}
		return nil
	})
	return diff, err
}

// StateVector returns the document's encoded state vector.
func (h *Handle) StateVector(ctx context.Context) ([]byte, error) {
	var sv []byte
	err := h.call(ctx, func(rm *room) error {
		sv = rm.doc.encodeStateVector()
		return nil
	})
	return sv, err
}

// ApplyUpdate applies a Yjs v1 update as if a peer had sent it: it is
// validated in full (an error wrapping ErrInvalidUpdate if it does not decode;
// nothing of it is applied), committed to the store, and sent to every peer.
// When it returns nil the change is durable. The room keeps update: do not
// modify it afterwards.
func (h *Handle) ApplyUpdate(ctx context.Context, update []byte) error {
	c := &call{done: make(chan error, 1)}
	return h.wait(ctx, c, message{kind: msgUpdate, data: update, call: c})
}

// Peers returns the number of peers connected to the document.
func (h *Handle) Peers() int { return int(h.room.npeers.Load()) }

// Close releases the document; the room unloads once nothing has used it for
// the registry's IdleTimeout. Later calls do nothing.
func (h *Handle) Close() {
	if h.closed.CompareAndSwap(false, true) {
		h.room.reg.release(h.room)
	}
}
