package doc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/quirehq/quire/persist"
	"github.com/quirehq/quire/presence"
	"github.com/quirehq/quire/protocol"
)

// msgKind says what an inbox message asks of the room.
type msgKind uint8

const (
	msgJoin           msgKind = iota // sess joins
	msgLeave                         // sess left
	msgStep1                         // sess sent sync step 1 (data: state vector)
	msgUpdate                        // sess (or a Handle: call) sent an update (data)
	msgAwareness                     // sess sent an awareness update (data)
	msgQueryAwareness                // sess asks for every awareness state
	msgCall                          // run call.fn on the loaded document
	msgTick                          // expire awareness states
	msgUnload                        // nothing uses the room: finish it
	msgShutdown                      // the registry closes: close the peers, finish
)

// message is one inbox entry. It is small because a busy room's inbox holds
// up to Config.Inbox of them.
type message struct {
	kind msgKind
	sess *Session
	data []byte
	call *call
}

// call is a request from a Handle, answered on done once handled.
type call struct {
	fn   func(*room) error
	done chan error // buffered: the room never waits for the caller
}

// reply answers c. Every call is answered once; the send never blocks
// because done has room for that one answer.
func (c *call) reply(err error) {
	select {
	case c.done <- err:
	default:
	}
}

// pendingUpdate is an update waiting for the batch's transaction.
type pendingUpdate struct {
	sess *Session // nil for a Handle's update
	data []byte
	call *call // the Handle's call, answered after the commit
	err  error // why the update was refused
}

// room is one open document. Everything below the line is owned by whichever
// goroutine runs the room (at most one at a time, see kick).
type room struct {
	reg   *Registry
	id    string
	inbox inbox
	done  chan struct{} // closed when the room is finished for good

	running atomic.Bool  // a goroutine is running the room
	npeers  atomic.Int32 // len(peers), for Registry.Live

	// Guarded by reg.mu.
	refs      int       // Sessions and Handles using the room
	idleSince time.Time // when refs last dropped to 0

	// ---- owned by the running goroutine ----
	loaded        bool
	failed        error // the load or a commit failed: the room serves nobody
	finished      bool
	finishSoon    bool // failed with no user left: finish after this batch
	doc           engine
	aware         *presence.Set
	peers         []*Session
	lastSeq       int64  // seq of the last committed row, for Compact
	storedPending []byte // the doc's pending part as last stored (see storePending)
	size          int64  // bytes the store holds for the document (snapshot + log)
	batch         []message
	pending       []pendingUpdate
	drops         []drop // peers to drop once the current broadcast is done
	step1Msg      []byte // cached sync step 1 with our state vector
	fullMsg       []byte // cached sync step 2 with the whole state (answer to an empty state vector)
	awareMsg      []byte // cached awareness message with every live state
}

// drop is a peer to remove, with the code and reason it is closed with.
type drop struct {
	sess   *Session
	code   CloseCode
	reason string
}

// logger returns the registry's logger with the document's id. It is made
// when needed: a logger kept per room cost memory in every open room.
func (rm *room) logger() *slog.Logger { return rm.reg.log.With("doc", rm.id) }

func newRoom(reg *Registry, id string) *room {
	rm := &room{
		reg:       reg,
		id:        id,
		done:      make(chan struct{}),
		idleSince: reg.cfg.Now(),
	}
	rm.inbox.limit = reg.cfg.Inbox
	return rm
}

// post queues m, waiting while the inbox is full (back-pressure on the
// sender), and makes sure a goroutine runs the room. It returns false if the
// room is finished.
func (rm *room) post(m message) bool {
	return rm.postCtx(context.Background(), m) == nil
}

// postCtx is post that gives up when ctx ends.
func (rm *room) postCtx(ctx context.Context, m message) error {
	for {
		ok, space := rm.inbox.put(m)
		if !ok {
			return ErrClosed
		}
		if space == nil {
			break
		}
		// The room may have no goroutine yet (a Turn queues without
		// running it): run it here rather than wait for nobody.
		rm.kick()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	rm.kick()
	return nil
}

// tryPost queues m unless the inbox is full (a tick can be skipped: the room
// is busy and will get the next one).
func (rm *room) tryPost(m message) {
	if ok, space := rm.inbox.put(m); ok && space == nil {
		rm.kick()
	}
}

// kick runs the room unless a goroutine runs it already. An idle room is
// run by the goroutine that posted to it, for one batch: the common case (one
// message to an idle room) costs no goroutine start and no wake-up of another
// thread (in a profile of 1,000 rooms with one writer each, those were a
// fifth of the server's CPU). What is left
// after that batch goes to a goroutine of its own, so that a busy room never
// holds a connection's reader for long. Together with run's re-check this
// never leaves a message in the inbox with no goroutine on its way to it.
func (rm *room) kick() {
	if !rm.running.CompareAndSwap(false, true) {
		return
	}
	rm.runSafely(1)
	if rm.finished {
		return
	}
	if rm.inbox.len() > 0 {
		go rm.run()
		return
	}
	rm.running.Store(false)
	if rm.inbox.len() > 0 && rm.running.CompareAndSwap(false, true) {
		go rm.run()
	}
}

// run handles the inbox until it is empty, then lets the goroutine go. A
// finished room keeps running set, so no goroutine is ever started for it
// again.
func (rm *room) run() {
	for {
		rm.runSafely(-1)
		if rm.finished {
			return
		}
		rm.running.Store(false)
		if rm.inbox.len() == 0 || !rm.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// runSafely loads the room if needed and drains its inbox. A panic (a bug,
// perhaps reached by hostile input) costs the room, never the process: the
// room fails as if its store had, without writing anything.
func (rm *room) runSafely(batches int) {
	defer func() {
		if p := recover(); p != nil {
			rm.logger().Error("room panicked", "panic", p, "stack", string(debug.Stack()))
			err := fmt.Errorf("internal error: %v", p)
			rm.answer(rm.pending, err)
			rm.pending = rm.pending[:0]
			rm.drops = rm.drops[:0]
			if rm.failed == nil && !rm.finished {
				rm.fail(err)
			}
			// The rest of the batch is lost with the room's state; the
			// callers among it are answered with the error.
			for _, m := range rm.batch {
				if m.call != nil {
					m.call.reply(err)
				}
			}
			clear(rm.batch)
			rm.batch = rm.batch[:0]
		}
	}()
	if !rm.loaded {
		rm.load()
	}
	rm.drain(batches)
}

// load reads the document from the store. Until it returns no message is
// handled, so no peer is served an incomplete document.
func (rm *room) load() {
	rm.loaded = true
	rm.aware = presence.NewSet()
	start := time.Now()
	err := rm.loadDoc()
	if err != nil {
		rm.fail(fmt.Errorf("load: %w", err))
		return
	}
	rm.logger().Debug("room loaded", "seq", rm.lastSeq, "took", time.Since(start))
}

func (rm *room) loadDoc() error {
	loaded, err := rm.reg.cfg.Store.Load(context.Background(), rm.id)
	if err != nil {
		return err
	}
	d := rm.reg.cfg.newEngine()
	rm.size = int64(len(loaded.Snapshot))
	for _, u := range loaded.Updates {
		rm.size += int64(len(u))
	}
	if len(loaded.Snapshot) > 0 {
		if err := d.applyUpdate(loaded.Snapshot); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	for i, u := range loaded.Updates {
		if err := d.applyUpdate(u); err != nil {
			return fmt.Errorf("log row %d of %d: %w", i+1, len(loaded.Updates), err)
		}
	}
	rm.doc = d
	rm.lastSeq = loaded.LastSeq
	rm.storedPending = d.encodePending()
	return nil
}

// fail puts the room out of service: its peers are closed with
// CloseInternalError, its document is dropped without being written, and the
// next user of the document gets a fresh room that loads it again.
func (rm *room) fail(err error) {
	rm.logger().Error("room failed", "err", err)
	rm.failed = err
	rm.doc = nil
	rm.invalidate()
	reason := closeReason("document unavailable: " + err.Error())
	for _, s := range rm.peers {
		s.dropped = true
		s.peer.Close(CloseInternalError, reason)
	}
	rm.peers = nil
	rm.npeers.Store(0)
	if rm.reg.unmap(rm) {
		// Nobody holds the room and nobody can get it any more: no release
		// will come to finish it.
		rm.finishSoon = true
	}
}

// drain handles the messages in the inbox, in batches of up to MaxBatch,
// until it is empty or (batches >= 0) after that many batches.
func (rm *room) drain(batches int) {
	for ; batches != 0 && !rm.finished; batches-- {
		rm.batch = rm.inbox.take(rm.batch, rm.reg.cfg.MaxBatch)
		if len(rm.batch) == 0 {
			return
		}
		for i := range rm.batch {
			rm.handle(rm.batch[i])
			rm.batch[i] = message{} // let the data go
		}
		rm.flush()
		rm.applyDrops()
		if rm.finishSoon && !rm.finished {
			rm.finish(false)
		}
	}
}

// handle handles one message. Updates wait in pending for the batch's
// transaction; every other message that reads the document or the peer list
// flushes them first, so each sees the effect of everything before it.
func (rm *room) handle(m message) {
	if rm.finished {
		if m.call != nil {
			m.call.reply(ErrClosed)
		}
		return
	}
	switch m.kind {
	case msgUpdate:
		if rm.failed != nil {
			if m.call != nil {
				m.call.reply(rm.unavailable())
			}
			return
		}
		if m.sess != nil && !rm.has(m.sess) {
			return // dropped earlier: its updates no longer count
		}
		rm.pending = append(rm.pending, pendingUpdate{sess: m.sess, data: m.data, call: m.call})
		return
	case msgAwareness:
		rm.awareness(m.sess, m.data)
		rm.applyDrops()
		return
	case msgTick:
		if rm.failed == nil {
			rm.broadcastAwareness(rm.aware.Expire(rm.reg.cfg.Now()), nil)
			rm.applyDrops()
		}
		return
	}
	rm.flush()
	rm.applyDrops()
	switch m.kind {
	case msgJoin:
		rm.join(m.sess)
	case msgLeave:
		rm.leave(m.sess)
	case msgStep1:
		rm.step1(m.sess, m.data)
	case msgQueryAwareness:
		if rm.has(m.sess) {
			rm.send(m.sess, rm.awarenessState())
		}
	case msgCall:
		if rm.failed != nil {
			m.call.reply(rm.unavailable())
		} else {
			m.call.reply(m.call.fn(rm))
		}
	case msgUnload, msgShutdown:
		rm.finish(m.kind == msgShutdown)
	}
	rm.applyDrops()
}

func (rm *room) unavailable() error {
	return fmt.Errorf("doc: document %s unavailable: %w", rm.id, rm.failed)
}

func (rm *room) has(s *Session) bool {
	return s != nil && !s.dropped && s.joined
}

func (rm *room) join(s *Session) {
	if rm.failed != nil {
		s.dropped = true
		s.peer.Close(CloseInternalError, closeReason("document unavailable: "+rm.failed.Error()))
		return
	}
	s.joined = true
	rm.peers = append(rm.peers, s)
	rm.npeers.Store(int32(len(rm.peers)))
	if rm.step1Msg == nil {
		rm.step1Msg = protocol.EncodeSyncStep1(rm.doc.encodeStateVector())
	}
	if !rm.send(s, rm.step1Msg) {
		return
	}
	if rm.aware.Len() > 0 {
		rm.send(s, rm.awarenessState())
	}
}

func (rm *room) leave(s *Session) {
	if !rm.has(s) {
		return
	}
	rm.remove(s)
	rm.broadcastAwareness(rm.aware.RemoveOwner(s.id, rm.reg.cfg.Now()), nil)
}

// remove takes s out of the peer list.
func (rm *room) remove(s *Session) {
	s.dropped = true
	for i, p := range rm.peers {
		if p == s {
			last := len(rm.peers) - 1
			rm.peers[i] = rm.peers[last]
			rm.peers[last] = nil
			rm.peers = rm.peers[:last]
			break
		}
	}
	rm.npeers.Store(int32(len(rm.peers)))
}

// step1 answers a peer's sync step 1 with step 2: what the peer lacks.
func (rm *room) step1(s *Session, sv []byte) {
	if !rm.has(s) {
		return
	}
	if isEmptyStateVector(sv) {
		rm.send(s, rm.fullState())
		return
	}
	diff, err := rm.doc.encodeStateAsUpdate(sv)
	if err != nil {
		rm.dropLater(s, CloseInvalidData, "invalid state vector in sync step 1: "+err.Error())
		return
	}
	rm.send(s, protocol.EncodeSyncStep2(diff))
}

// isEmptyStateVector reports whether sv is the state vector of an empty
// document (no clients), what every new client sends.
func isEmptyStateVector(sv []byte) bool {
	return len(sv) == 0 || (len(sv) == 1 && sv[0] == 0)
}

// fullState returns sync step 2 with the whole document, encoded once per
// change of the document however many peers ask for it.
func (rm *room) fullState() []byte {
	if rm.fullMsg == nil {
		full, err := rm.doc.encodeStateAsUpdate(nil)
		if err != nil {
			// The document encodes what it integrated; failing here is a bug.
			rm.logger().Error("encoding the document failed", "err", err)
			full = []byte{0, 0}
		}
		rm.fullMsg = protocol.EncodeSyncStep2(full)
	}
	return rm.fullMsg
}

// fullUpdate is the whole document as one update, sharing fullState's buffer.
func (rm *room) fullUpdate() []byte {
	msg := rm.fullState()
	m, err := protocol.Decode(msg)
	if err != nil {
		panic("doc: cached step 2 does not decode: " + err.Error())
	}
	return m.Payload
}

// invalidate forgets the encodings cached for the current document.
func (rm *room) invalidate() {
	rm.step1Msg = nil
	rm.fullMsg = nil
}

func (rm *room) awareness(s *Session, data []byte) {
	if !rm.has(s) || rm.failed != nil {
		return
	}
	u, err := presence.DecodeUpdate(data)
	if err != nil {
		rm.dropLater(s, CloseInvalidData, "invalid awareness update: "+err.Error())
		return
	}
	if err := rm.aware.Admit(u, s.id); err != nil {
		rm.dropLater(s, ClosePolicyViolation, err.Error())
		return
	}
	// Every peer gets the change, the sender too: the stock client closes a
	// connection that received nothing for 30 s, and a lone editor's own
	// awareness renewals (every 15 s) are what keeps its connection alive.
	rm.broadcastAwareness(rm.aware.Apply(u, s.id, rm.reg.cfg.Now()), nil)
}

// awarenessState returns the awareness message with every live state.
func (rm *room) awarenessState() []byte {
	if rm.awareMsg == nil {
		rm.awareMsg = protocol.EncodeAwareness(presence.EncodeUpdate(rm.aware.Current()))
	}
	return rm.awareMsg
}

// broadcastAwareness sends the changed entries to every peer but skip.
func (rm *room) broadcastAwareness(changed presence.Update, skip *Session) {
	if len(changed) == 0 {
		return
	}
	rm.awareMsg = nil
	rm.broadcast(protocol.EncodeAwareness(presence.EncodeUpdate(changed)), skip)
}

// broadcast sends msg to every peer but skip.
func (rm *room) broadcast(msg []byte, skip *Session) {
	for _, p := range rm.peers {
		if p != skip {
			rm.send(p, msg)
		}
	}
}

// send queues msg for s; a full outbox drops s (after the current loop over
// the peers).
func (rm *room) send(s *Session, msg []byte) bool {
	if s.peer.Send(msg) {
		return true
	}
	rm.dropLater(s, CloseTryAgainLater, "outbox full: the connection is too slow; reconnect to resync")
	return false
}

func (rm *room) dropLater(s *Session, code CloseCode, reason string) {
	rm.drops = append(rm.drops, drop{sess: s, code: code, reason: reason})
}

// applyDrops removes and closes the peers marked for dropping, telling the
// others that their awareness states are gone (which may mark more).
func (rm *room) applyDrops() {
	for len(rm.drops) > 0 {
		d := rm.drops[0]
		rm.drops = rm.drops[1:]
		if !rm.has(d.sess) {
			continue
		}
		rm.logger().Info("peer dropped", "peer", d.sess.id, "code", int(d.code), "reason", d.reason)
		rm.remove(d.sess)
		d.sess.peer.Close(d.code, closeReason(d.reason))
		rm.broadcastAwareness(rm.aware.RemoveOwner(d.sess.id, rm.reg.cfg.Now()), nil)
	}
	rm.drops = rm.drops[:0]
}

// flush integrates the pending updates in one transaction, commits what
// changed with one Append and then sends it to the peers. An update that does
// not decode is refused whole and costs its sender the connection; the others
// go on.
func (rm *room) flush() {
	if len(rm.pending) == 0 {
		return
	}
	pending := rm.pending
	defer func() {
		for i := range pending {
			pending[i] = pendingUpdate{}
		}
		rm.pending = pending[:0]
	}()
	var refused map[*Session]bool // senders of a refused update: the rest of their batch goes too
	refuse := func(u *pendingUpdate, err error, code CloseCode, reason string) {
		u.err = err
		if u.sess != nil {
			if refused == nil {
				refused = make(map[*Session]bool)
			}
			refused[u.sess] = true
			rm.dropLater(u.sess, code, reason)
		}
	}
	var accepted int64 // bytes of this batch's updates let in so far
	changed, err := rm.doc.transact(func(apply func([]byte) error) {
		for i := range pending {
			u := &pending[i]
			if u.sess != nil && refused[u.sess] {
				continue
			}
			if check := rm.reg.cfg.CheckSize; check != nil {
				if err := check(rm.size+accepted, int64(len(u.data))); err != nil {
					refuse(u, fmt.Errorf("%w: %w", ErrTooLarge, err), closeCodeOf(err), err.Error())
					continue
				}
			}
			if err := apply(u.data); err != nil {
				refuse(u, fmt.Errorf("%w: %w", ErrInvalidUpdate, err), CloseInvalidData, "invalid update: "+err.Error())
				continue
			}
			accepted += int64(len(u.data))
		}
	})
	if err != nil {
		rm.answer(pending, err)
		rm.fail(fmt.Errorf("transaction: %w", err))
		return
	}
	// What could not integrate yet is in no changed update: it is stored on
	// its own, so that it survives an unload or a restart and integrates
	// when its dependencies arrive, then or later.
	var pendingRow []byte
	if p := rm.doc.encodePending(); p == nil {
		rm.storedPending = nil // it integrated: it is in changed
	} else if !bytes.Equal(p, rm.storedPending) {
		pendingRow = p
	}
	if len(changed) > 0 || pendingRow != nil {
		var res persist.AppendResult
		for _, row := range [][]byte{changed, pendingRow} {
			if len(row) == 0 {
				continue
			}
			if res, err = rm.reg.cfg.Store.Append(context.Background(), rm.id, row); err != nil {
				// The document now holds changes that are not stored: it
				// must not serve anyone. The peers reconnect to a fresh room
				// and send their changes again.
				rm.answer(pending, fmt.Errorf("doc: commit: %w", err))
				rm.fail(fmt.Errorf("commit: %w", err))
				return
			}
			rm.lastSeq = res.Seq
			rm.size += int64(len(row))
		}
		if pendingRow != nil {
			rm.storedPending = pendingRow
		}
		rm.invalidate()
		if len(changed) > 0 {
			rm.broadcast(protocol.EncodeUpdate(changed), soleSender(pending))
		}
		if res.LogLen >= rm.reg.cfg.CompactRows || res.LogBytes >= rm.reg.cfg.CompactBytes {
			rm.compact()
		}
	}
	rm.answer(pending, nil)
}

// soleSender returns the session that sent every update of the batch, or nil
// when several peers (or a Handle) contributed: then everyone gets the merged
// update, which is harmless for Yjs clients.
func soleSender(pending []pendingUpdate) *Session {
	s := pending[0].sess
	for _, u := range pending[1:] {
		if u.sess != s {
			return nil
		}
	}
	return s
}

// answer replies to the Handles whose updates were in the batch.
func (rm *room) answer(pending []pendingUpdate, err error) {
	for _, u := range pending {
		if u.call == nil {
			continue
		}
		switch {
		case u.err != nil:
			u.call.reply(u.err)
		default:
			u.call.reply(err)
		}
	}
}

// compact stores the whole state as the document's snapshot, replacing the
// log rows it covers.
func (rm *room) compact() {
	start := time.Now()
	snap := rm.fullUpdate()
	if err := rm.reg.cfg.Store.Compact(context.Background(), rm.id, snap, rm.lastSeq); err != nil {
		// The log stays long; the next commit tries again.
		rm.logger().Warn("compaction failed", "err", err)
		return
	}
	rm.size = int64(len(snap))
	rm.logger().Debug("compacted", "seq", rm.lastSeq, "bytes", len(snap), "took", time.Since(start))
}

// closeCodeOf is the close code an error names (limits errors do), or 1008
// (policy violation).
func closeCodeOf(err error) CloseCode {
	var c interface{ CloseCode() int }
	if errors.As(err, &c) {
		return CloseCode(c.CloseCode())
	}
	return 1008
}

// finish ends the room: on shutdown its peers are closed with
// CloseGoingAway; either way nothing uses it afterwards.
func (rm *room) finish(shutdown bool) {
	if shutdown {
		for _, s := range rm.peers {
			s.dropped = true
			s.peer.Close(CloseGoingAway, "server shutting down")
		}
	} else if len(rm.peers) > 0 {
		// Unload only happens when no Session holds the room.
		rm.logger().Error("room unloaded with peers", "peers", len(rm.peers))
	}
	rm.peers = nil
	rm.npeers.Store(0)
	rm.finished = true
	rm.doc = nil
	rm.aware = nil
	rm.invalidate()
	rm.awareMsg = nil
	rm.inbox.close()
	close(rm.done)
	rm.reg.finished(rm)
	rm.logger().Debug("room closed", "shutdown", shutdown)
}
