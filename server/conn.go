package server

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/quirehq/quire/auth"
	"github.com/quirehq/quire/doc"
	"github.com/quirehq/quire/protocol"
)

// wsConn is one WebSocket peer of a room. Its frames are read either by a
// read loop of the poller (loop != nil: on Linux, by default), which parses
// them with wsParser and answers pings and the close handshake itself, or by
// a reader goroutine of its own (readLoop) through the websocket library
// (c != nil). Either hands each message to the room, one at a time and in
// order; the room sends through Send, which frames the message and writes it
// to the socket at once if it can (see sock). An idle connection costs its
// structs (and, with a reader goroutine, a parked goroutine).
type wsConn struct {
	s     *Server
	c     *websocket.Conn // nil when a read loop reads
	out   *sock
	id    uint64
	docID string

	// With a read loop: the socket, its parser, and the loop's state of
	// the connection. parser is used only by the loop (or by the handler
	// before the socket is registered).
	loop       *pollLoop
	raw        syscall.RawConn
	netConn    net.Conn
	parser     wsParser
	emit       func(*wsEvent) bool // wc.event, bound once
	endNow     bool                // the close handshake is over: finish
	broken     bool                // the peer broke the framing: its bytes are not parsed any more
	closeTimer *time.Timer         // guarded by mu
	pingSent   atomic.Int64        // unix nanos of an unanswered ping, 0 if none

	// Owned by the reader goroutine (set before it starts, or by it).
	sess      *doc.Session    // nil until joined
	adm       *auth.Admission // nil without a Gate
	guard     *auth.Guard     // nil without a Gate
	authTimer *time.Timer     // closes a peer that does not authenticate in time
	expiry    *time.Timer     // closes a peer whose token ran out (armExpiry)

	lastRead atomic.Int64 // unix nanos of the last frame or pong received
	deadline atomic.Int64 // unix nanos when the peer's token runs out
	pinging  atomic.Bool

	mu       sync.Mutex
	closing  bool // Close was called, or the reader is closing
	finished bool // the reader is done (the socket is closed)
}

// upgrade serves GET /ws/{docID}: the id is checked before the upgrade (a bad
// one gets 400 and no WebSocket), then the Gate (if any) admits the peer or
// refuses it with an HTTP status, still before the upgrade and before any
// document is opened. The connection then joins the document's room, or,
// when its token is to come in an auth message, waits for it. Its reader runs
// in a goroutine of its own, so that the handler's deep stack is released.
func (s *Server) upgrade(c echo.Context) error {
	id := c.Param("*")
	if !doc.ValidID(id) {
		return echo.NewHTTPError(400, "invalid document id: want 1-128 characters of [A-Za-z0-9._-]")
	}
	if s.closing.Load() {
		return echo.NewHTTPError(503, "server shutting down")
	}
	var adm *auth.Admission
	if s.cfg.Gate != nil {
		a, err := s.cfg.Gate.Admit(c.Request(), id)
		if err != nil {
			return s.refuse(c, err)
		}
		adm = a
	}
	wc := &wsConn{s: s, id: s.nextID.Add(1), docID: id, adm: adm}
	hw := &hijackWriter{ResponseWriter: c.Response(), wrap: func(conn net.Conn) *sockConn {
		wc.out = newSock(conn, s.cfg.WriteTimeout, s.cfg.OutboxMessages, s.cfg.OutboxBytes, wc.writeFailed)
		wc.netConn = conn
		return &sockConn{Conn: conn, s: wc.out}
	}}
	ws, err := websocket.Accept(hw, c.Request(), &websocket.AcceptOptions{
		OriginPatterns: s.cfg.OriginPatterns,
		// The Gate has checked the Origin against its own allow-list.
		InsecureSkipVerify: adm != nil,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered the request (400, 403, 426).
		s.log.Debug("websocket upgrade refused", "doc", id, "err", err)
		if adm != nil {
			adm.Release()
		}
		return nil
	}
	ws.SetReadLimit(s.cfg.ReadLimit)
	wc.c = ws
	var prefix []byte
	if s.poller != nil {
		if sc, ok := wc.netConn.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				// From here on the read loop and this package speak
				// WebSocket on the socket; the library's Conn lets go of it
				// (its Close no longer reaches the socket) and is dropped.
				wc.raw = raw
				hw.conn.detached = true
				prefix = hw.prefix
				ws.CloseNow()
				wc.c = nil
				wc.parser = newWSParser(s.cfg.ReadLimit)
				wc.emit = wc.event
			}
		}
	}
	wc.lastRead.Store(time.Now().UnixNano())
	if adm != nil {
		wc.guard = auth.NewGuard(adm, s.cfg.Limits, nil)
	}
	if !s.track(wc) {
		if adm != nil {
			adm.Release()
		}
		if wc.c == nil {
			wc.out.control(wsOpClose, closeBody(uint16(doc.CloseGoingAway), "server shutting down"))
			wc.out.shutdown()
			wc.netConn.Close()
			return nil
		}
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return nil
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		wc.logger().Debug("websocket connected", "remote", c.RealIP(), "pending_auth", adm != nil && adm.Pending)
	}
	if adm != nil && adm.Pending {
		// The token comes in the first message: nothing is opened or sent
		// before it, and a peer that does not send it in time is closed.
		wc.authTimer = time.AfterFunc(auth.DefaultAuthTimeout, func() {
			wc.Close(doc.CloseCode(auth.CloseUnauthorized), "authentication timed out: send an auth message with a token")
		})
	} else {
		wc.join()
		wc.armExpiry()
	}
	if wc.c != nil {
		go wc.readLoop()
		return nil
	}
	// Bytes the client sent right behind its handshake were read by the
	// HTTP server already: they come first.
	if len(prefix) > 0 && wc.consume(prefix) {
		wc.finishPolled()
		return nil
	}
	if err := s.poller.add(wc, wc.raw); err != nil {
		wc.logger().Error("websocket not read", "err", err)
		wc.finishPolled()
	}
	return nil
}

// refuse answers a request the Gate refused, as the auth package writes it
// (status, reason, Retry-After, WWW-Authenticate).
func (s *Server) refuse(c echo.Context, err error) error {
	var ref *auth.Refusal
	if !errors.As(err, &ref) {
		return err
	}
	s.log.Info("request refused", "uri", redactURI(c.Request().RequestURI), "status", ref.Status, "client", ref.Client, "reason", ref.Reason)
	ref.WriteHTTP(c.Response())
	return nil
}

// join adds the connection to its document's room. Called by the handler,
// or by the reader once a pending peer has authenticated.
func (wc *wsConn) join() {
	sess, err := wc.s.reg.Join(wc.docID, wc)
	if err != nil {
		wc.logger().Warn("join failed", "err", err)
		wc.Close(doc.CloseGoingAway, "server shutting down")
		return
	}
	wc.sess = sess
}

// armExpiry schedules the close of a peer whose token runs out, or moves it
// when a fresh token came in an auth message. Called by the reader.
func (wc *wsConn) armExpiry() {
	if wc.adm == nil {
		return
	}
	dl := wc.adm.Deadline()
	if dl.IsZero() {
		return
	}
	wc.deadline.Store(dl.UnixNano())
	d := time.Until(dl)
	if wc.expiry == nil {
		wc.expiry = time.AfterFunc(d, wc.expire)
	} else {
		wc.expiry.Reset(d)
	}
}

// expire closes the peer unless its deadline moved since the timer was set
// (then armExpiry has set it again).
func (wc *wsConn) expire() {
	if time.Now().UnixNano() < wc.deadline.Load() {
		return
	}
	wc.Close(doc.CloseCode(auth.CloseUnauthorized), "token expired: reconnect with a fresh token")
}

// inbound maps a message onto what the Guard decides about.
func inbound(m protocol.Message) auth.Inbound {
	switch m.Type {
	case protocol.TypeSync:
		switch m.Sync {
		case protocol.SyncStep1:
			return auth.InSyncStep1
		case protocol.SyncStep2:
			return auth.InSyncStep2
		}
		return auth.InUpdate
	case protocol.TypeAwareness:
		return auth.InAwareness
	case protocol.TypeQueryAwareness:
		return auth.InQueryAwareness
	}
	return auth.InAuth
}

// readLoop reads frames until the connection ends, then leaves the room.
// A text frame (1003), a frame that is not a y-protocols message (1002) or
// one over the read limit (1009, by the websocket library) closes the
// connection; the Guard closes it for breaking a limit or an access rule
// (44xx), the room for bad payloads (1007).
func (wc *wsConn) readLoop() {
	defer wc.s.connWG.Done()
	defer wc.finish()
	for wc.readOne() {
	}
}

// readOne reads and handles one message; false means the connection is done.
func (wc *wsConn) readOne() bool {
	typ, r, err := wc.c.Reader(context.Background())
	if err != nil {
		wc.logEnd(err)
		return false
	}
	wc.lastRead.Store(time.Now().UnixNano())
	if typ != websocket.MessageBinary {
		wc.closeNow(websocket.StatusUnsupportedData, "text frames are not supported: y-protocols messages are binary")
		return false
	}
	frame, err := readFrame(r)
	if err != nil {
		wc.logEnd(err)
		return false
	}
	return wc.handle(frame)
}

// handle decodes one message and does what it asks; false means the
// connection is closing.
func (wc *wsConn) handle(frame []byte) bool {
	m := wc.s.metrics
	msg, err := protocol.Decode(frame)
	if err != nil {
		wc.closeNow(websocket.StatusProtocolError, closeReason(err.Error()))
		return false
	}
	m.bytesIn.Add(len(frame))
	m.messagesIn[msg.Type].Inc()
	if wc.guard != nil {
		v := wc.guard.Inbound(inbound(msg), msg.Reason)
		if v.CloseCode != 0 {
			if v.Ban > 0 {
				wc.logger().Info("peer banned", "for", v.Ban, "reason", v.CloseReason)
			}
			wc.closeNow(websocket.StatusCode(v.CloseCode), closeReason(v.CloseReason))
			return false
		}
		if v.Reply != nil {
			wc.out.send(v.Reply)
		}
		if msg.Type == protocol.TypeAuth {
			// A token was accepted: the first, or a fresh one that
			// moves the deadline.
			wc.armExpiry()
		}
		if v.Authenticated {
			wc.authTimer.Stop()
			wc.runTurn()
			wc.join()
			return true
		}
		if !v.Apply {
			return true
		}
	}
	sess := wc.sess
	if sess == nil {
		return true // joining failed: the connection is closing
	}
	switch msg.Type {
	case protocol.TypeSync:
		if msg.Sync == protocol.SyncStep1 {
			wc.runTurn()
			sess.SyncStep1(msg.Payload)
		} else {
			m.updatesIn.Inc()
			if wc.loop != nil {
				sess.UpdateIn(&wc.loop.turn, msg.Payload)
			} else {
				sess.Update(msg.Payload)
			}
		}
	case protocol.TypeAwareness:
		if wc.loop != nil {
			sess.AwarenessIn(&wc.loop.turn, msg.Payload)
		} else {
			sess.Awareness(msg.Payload)
		}
	case protocol.TypeQueryAwareness:
		wc.runTurn()
		sess.QueryAwareness()
	case protocol.TypeAuth:
		// Auth is off: a client's auth message needs no answer (the
		// reference server ignores it too).
	}
	return true
}

// readBufs are scratch buffers for reading frames: a connection blocked
// waiting for its next frame holds none, and each frame is copied out into a
// buffer of its exact size, which the room keeps.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBuf keeps a large frame's scratch buffer out of the pool.
const maxPooledBuf = 64 << 10

func readFrame(r io.Reader) ([]byte, error) {
	bp := readBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	frame := make([]byte, len(buf))
	copy(frame, buf)
	if cap(buf) <= maxPooledBuf {
		*bp = buf[:0]
		readBufs.Put(bp)
	}
	return frame, nil
}

// logEnd logs why the reader stopped.
func (wc *wsConn) logEnd(err error) {
	status := websocket.CloseStatus(err)
	switch {
	case status == websocket.StatusNormalClosure || status == websocket.StatusGoingAway || status == websocket.StatusNoStatusRcvd:
		wc.logger().Debug("websocket closed by peer", "code", int(status))
	case status != -1:
		wc.logger().Info("websocket closed by peer", "code", int(status), "reason", closeErrorReason(err))
	case errors.Is(err, websocket.ErrMessageTooBig):
		wc.s.metrics.closed(1009)
		wc.logger().Info("websocket closed: message too big", "err", err)
	default:
		wc.logger().Debug("websocket ended", "err", err)
	}
}

func closeErrorReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

// finish is the end of the reader: the socket is closed, the room told, the
// connection's slot given back.
func (wc *wsConn) finish() {
	wc.mu.Lock()
	wc.finished = true
	wc.closing = true
	if wc.closeTimer != nil {
		wc.closeTimer.Stop()
	}
	wc.mu.Unlock()
	if wc.c != nil {
		wc.c.CloseNow()
	} else {
		if wc.loop != nil {
			wc.loop.remove(wc, wc.raw)
		}
		wc.out.shutdown()
		wc.netConn.Close()
	}
	if wc.authTimer != nil {
		wc.authTimer.Stop()
	}
	if wc.expiry != nil {
		wc.expiry.Stop()
	}
	if wc.sess != nil {
		wc.runTurn()
		wc.sess.Leave()
	}
	if wc.adm != nil {
		wc.adm.Release()
	}
	wc.s.untrack(wc)
}

// closeNow closes the connection from the reader with a close handshake.
func (wc *wsConn) closeNow(code websocket.StatusCode, reason string) {
	if wc.c == nil {
		if wc.beginClose(uint16(code), reason) {
			wc.s.metrics.closed(int(code))
			wc.logger().Info("closing websocket", "code", int(code), "reason", reason)
		}
		return
	}
	wc.mu.Lock()
	wc.closing = true
	wc.mu.Unlock()
	wc.out.drop()
	wc.s.metrics.closed(int(code))
	wc.logger().Info("closing websocket", "code", int(code), "reason", reason)
	wc.c.Close(code, reason)
}

// Send implements doc.Peer: it frames msg and writes it, or queues it when
// the socket is busy; it never blocks. It returns false when the outbox is
// full (the room then drops the peer).
func (wc *wsConn) Send(msg []byte) bool {
	if !wc.out.send(msg) {
		return false
	}
	wc.s.metrics.messagesOut.Inc()
	wc.s.metrics.bytesOut.Add(len(msg))
	return true
}

// writeFailed is called once when a write to the socket failed (the peer is
// gone, or did not read for WriteTimeout): the connection is closed, its
// reader ends and leaves the room.
func (wc *wsConn) writeFailed(err error) {
	wc.mu.Lock()
	gone := wc.finished || wc.closing
	wc.mu.Unlock()
	if !gone {
		wc.logger().Info("websocket write failed", "err", err)
	}
	if wc.c == nil {
		shutdownSocket(wc.raw) // its loop reads the end and finishes it
		return
	}
	go wc.c.CloseNow()
}

// logger returns the server's logger with the connection's attributes. It is
// made when needed: a logger kept per connection costs memory on every idle
// socket.
func (wc *wsConn) logger() *slog.Logger {
	return wc.s.log.With("conn", wc.id, "doc", wc.docID)
}

// Close implements doc.Peer: it closes the connection with code and reason
// in a goroutine of its own (the close handshake waits for the peer) and
// drops what is queued.
func (wc *wsConn) Close(code doc.CloseCode, reason string) {
	if wc.c == nil {
		if wc.beginClose(uint16(code), reason) {
			wc.s.metrics.closed(int(code))
			if code != doc.CloseGoingAway {
				wc.logger().Info("closing websocket", "code", int(code), "reason", reason)
			}
		}
		return
	}
	wc.mu.Lock()
	if wc.finished || wc.closing {
		wc.mu.Unlock()
		return
	}
	wc.closing = true
	// The reader still holds its count of connWG, so this Add cannot race
	// with Server.Close's Wait reaching zero.
	wc.s.connWG.Add(1)
	wc.mu.Unlock()
	wc.out.drop()
	wc.s.metrics.closed(int(code))
	if code != doc.CloseGoingAway {
		wc.logger().Info("closing websocket", "code", int(code), "reason", reason)
	}
	go func() {
		defer wc.s.connWG.Done()
		wc.c.Close(websocket.StatusCode(code), reason)
	}()
}

// ping checks that a quiet peer still answers; one that does not is closed.
func (wc *wsConn) ping() {
	defer wc.s.connWG.Done()
	defer wc.pinging.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), wc.s.cfg.PongTimeout)
	defer cancel()
	if err := wc.c.Ping(ctx); err != nil {
		wc.mu.Lock()
		gone := wc.finished || wc.closing
		wc.mu.Unlock()
		if !gone {
			wc.logger().Info("peer did not answer a ping: closing", "err", err)
			wc.c.CloseNow()
		}
		return
	}
	wc.lastRead.Store(time.Now().UnixNano())
}

// closeReason trims a close reason to the 123 bytes a close frame carries.
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	cut := 123
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut]
}

// closeHandshakeTimeout bounds the wait for the peer's answer to our close
// frame; then the socket is closed anyway.
var closeHandshakeTimeout = 5 * time.Second

// errAgain is readSocket's "nothing to read after all".
var errAgain = errors.New("socket not readable")

// readable is called by wc's read loop when its socket is readable; r is
// the loop's reader.
func (wc *wsConn) readable(r *sockReader) {
	b, err := readSocket(wc.raw, r)
	if errors.Is(err, errAgain) {
		return
	}
	if len(b) > 0 && wc.consume(b) {
		wc.finishPolled()
		return
	}
	if len(b) == 0 || err != nil {
		if err != nil {
			wc.logger().Debug("websocket ended", "err", err)
		} else {
			wc.logger().Debug("websocket closed by peer without a close frame")
		}
		wc.finishPolled()
	}
}

// consume parses bytes read from the socket and handles what they hold;
// true means the connection is to finish now (the close handshake is over).
func (wc *wsConn) consume(b []byte) bool {
	wc.lastRead.Store(time.Now().UnixNano())
	if wc.broken {
		return false
	}
	err := wc.parser.feed(b, wc.emit)
	if wc.endNow {
		return true
	}
	if err != nil {
		var pe *wsProtocolError
		if !errors.As(err, &pe) {
			pe = &wsProtocolError{Code: wsCodeProtocol, Reason: "malformed frame"}
		}
		// The parser cannot go on: what follows is discarded. The close
		// frame is followed by the end of our stream (RFC 6455 7.1.7: fail
		// the connection), so the peer closes its end at once; one that
		// does not is closed after closeHandshakeTimeout. Not a close(2):
		// with unread bytes the kernel would answer with a reset, which
		// can destroy the close frame at the peer.
		wc.broken = true
		wc.closeNow(websocket.StatusCode(pe.Code), pe.Reason)
		if wc.out.idle() {
			shutdownWrite(wc.raw)
		}
	}
	return false
}

// event handles one thing the parser found; false stops the parsing of the
// bytes at hand.
func (wc *wsConn) event(ev *wsEvent) bool {
	switch ev.Kind {
	case wsMessage:
		if wc.isClosing() {
			return true // after our close frame data is discarded (RFC 6455 5.5.1)
		}
		if ev.Text {
			wc.closeNow(websocket.StatusUnsupportedData, "text frames are not supported: y-protocols messages are binary")
			return true
		}
		wc.handle(ev.Payload)
	case wsPing:
		if !wc.isClosing() {
			wc.out.control(wsOpPong, ev.Payload)
		}
	case wsPong:
		// lastRead is already now: keepalive sees the answer.
	case wsClose:
		wc.mu.Lock()
		answered := wc.closing
		wc.closing = true
		wc.mu.Unlock()
		if !answered {
			// The peer closes: answer with its code, then close the socket
			// (the server closes TCP first, RFC 6455 7.1.1).
			wc.out.drop()
			code := ev.Code
			if code == wsCodeNoStatus {
				wc.out.control(wsOpClose, nil)
			} else {
				wc.out.control(wsOpClose, closeBody(code, ""))
			}
			if code == uint16(websocket.StatusNormalClosure) || code == uint16(websocket.StatusGoingAway) || code == wsCodeNoStatus {
				wc.logger().Debug("websocket closed by peer", "code", int(code))
			} else {
				wc.logger().Info("websocket closed by peer", "code", int(code), "reason", ev.Reason)
			}
		}
		wc.endNow = true
		return false
	}
	return true
}

func (wc *wsConn) isClosing() bool {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.closing
}

// beginClose starts the close handshake of a read-loop connection from any
// goroutine: what is queued is dropped, a close frame with code and reason
// is sent, and the socket is shut down when the peer answers or after
// closeHandshakeTimeout. It returns false if the connection was closing
// already.
func (wc *wsConn) beginClose(code uint16, reason string) bool {
	wc.mu.Lock()
	if wc.finished || wc.closing {
		wc.mu.Unlock()
		return false
	}
	wc.closing = true
	wc.closeTimer = time.AfterFunc(closeHandshakeTimeout, func() { shutdownSocket(wc.raw) })
	wc.mu.Unlock()
	wc.out.drop()
	wc.out.control(wsOpClose, closeBody(code, reason))
	return true
}

// finishPolled ends a read-loop connection (on its loop, or on the handler
// before it was registered).
func (wc *wsConn) finishPolled() {
	defer wc.s.connWG.Done()
	wc.finish()
}

// keepalive pings a read-loop connection that has been quiet for quiet
// nanoseconds and closes one that did not answer within pongTimeout. Called
// by the pinger.
func (wc *wsConn) keepalive(now, quiet, pongTimeout int64) {
	last := wc.lastRead.Load()
	sent := wc.pingSent.Load()
	switch {
	case sent != 0 && last >= sent:
		wc.pingSent.Store(0) // it answered (or said something else)
	case sent != 0:
		if now-sent >= pongTimeout && !wc.isClosing() {
			wc.logger().Info("peer did not answer a ping: closing")
			shutdownSocket(wc.raw)
		}
	case now-last >= quiet:
		wc.pingSent.Store(now)
		wc.out.control(wsOpPing, nil)
	}
}

// closeBody is the body of a close frame: code and reason, the reason cut
// to fit a control frame.
func closeBody(code uint16, reason string) []byte {
	reason = closeReason(reason)
	b := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(b, code)
	return append(b, reason...)
}

// runTurn runs the rooms of the read loop's turn before a message that is
// posted to a room at once (and may wait for room in its inbox): a loop
// never waits for a room while messages it queued there wait for the loop,
// so loops cannot wait for each other. A no-op without a read loop.
func (wc *wsConn) runTurn() {
	if wc.loop != nil {
		wc.loop.turn.Run()
	}
}
