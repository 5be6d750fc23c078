package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/quirehq/quire/doc"
	"github.com/quirehq/quire/protocol"
)

// wsConn is one WebSocket peer of a room. Its reader goroutine (readLoop)
// decodes frames and hands them to the room; the room sends through Send,
// which queues in a bounded outbox that a writer goroutine drains. The writer
// exists only while there is something to write, so an idle connection costs
// one parked goroutine.
type wsConn struct {
	s     *Server
	c     *websocket.Conn
	id    uint64
	docID string
	log   *slog.Logger
	sess  *doc.Session // set before the reader starts

	lastRead atomic.Int64 // unix nanos of the last frame or pong received
	pinging  atomic.Bool

	mu       sync.Mutex
	queue    [][]byte // messages waiting for the writer
	queued   int64    // their bytes
	writing  bool     // a writer goroutine is running
	closing  bool     // Close was called: nothing more is queued or written
	finished bool     // the reader is done (the socket is closed)
}

// upgrade serves GET /ws/{docID}: the id is checked before the upgrade (a bad
// one gets 400 and no WebSocket), then the connection joins the document's
// room and its reader runs in a goroutine of its own, so that the handler's
// deep stack is released.
func (s *Server) upgrade(c echo.Context) error {
	id := c.Param("*")
	if !doc.ValidID(id) {
		return echo.NewHTTPError(400, "invalid document id: want 1-128 characters of [A-Za-z0-9._-]")
	}
	if s.closing.Load() {
		return echo.NewHTTPError(503, "server shutting down")
	}
	ws, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{
		OriginPatterns:  s.cfg.OriginPatterns,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered the request (400, 403, 426).
		s.log.Debug("websocket upgrade refused", "doc", id, "err", err)
		return nil
	}
	ws.SetReadLimit(s.cfg.ReadLimit)
	wc := &wsConn{s: s, c: ws, id: s.nextID.Add(1), docID: id}
	wc.log = s.log.With("conn", wc.id, "doc", id)
	wc.lastRead.Store(time.Now().UnixNano())
	if !s.track(wc) {
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return nil
	}
	sess, err := s.reg.Join(id, wc)
	if err != nil {
		wc.log.Warn("join failed", "err", err)
		go wc.readLoop(nil)
		wc.Close(doc.CloseGoingAway, "server shutting down")
		return nil
	}
	wc.log.Debug("websocket connected", "remote", c.RealIP())
	go wc.readLoop(sess)
	return nil
}

// readLoop reads frames until the connection ends, then leaves the room.
// A text frame (1003), a frame that is not a y-protocols message (1002) or
// one over the read limit (1009, by the websocket library) closes the
// connection; the room closes it for bad payloads (1007).
func (wc *wsConn) readLoop(sess *doc.Session) {
	defer wc.s.connWG.Done()
	defer wc.finish(sess)
	if sess == nil {
		// Joining failed: keep reading so that the close handshake completes.
		for {
			if _, _, err := wc.c.Read(context.Background()); err != nil {
				return
			}
		}
	}
	m := wc.s.metrics
	for {
		typ, r, err := wc.c.Reader(context.Background())
		if err != nil {
			wc.logEnd(err)
			return
		}
		wc.lastRead.Store(time.Now().UnixNano())
		if typ != websocket.MessageBinary {
			wc.closeNow(websocket.StatusUnsupportedData, "text frames are not supported: y-protocols messages are binary")
			return
		}
		frame, err := readFrame(r)
		if err != nil {
			wc.logEnd(err)
			return
		}
		msg, err := protocol.Decode(frame)
		if err != nil {
			wc.closeNow(websocket.StatusProtocolError, closeReason(err.Error()))
			return
		}
		m.bytesIn.Add(float64(len(frame)))
		m.messagesIn[msg.Type].Inc()
		switch msg.Type {
		case protocol.TypeSync:
			if msg.Sync == protocol.SyncStep1 {
				sess.SyncStep1(msg.Payload)
			} else {
				m.updatesIn.Inc()
				sess.Update(msg.Payload)
			}
		case protocol.TypeAwareness:
			sess.Awareness(msg.Payload)
		case protocol.TypeQueryAwareness:
			sess.QueryAwareness()
		case protocol.TypeAuth:
			// Auth is off: a client's auth message needs no answer (the
			// reference server ignores it too).
		}
	}
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
		wc.log.Debug("websocket closed by peer", "code", int(status))
	case status != -1:
		wc.log.Info("websocket closed by peer", "code", int(status), "reason", closeErrorReason(err))
	case errors.Is(err, websocket.ErrMessageTooBig):
		wc.s.metrics.closes.WithLabelValues("1009").Inc()
		wc.log.Info("websocket closed: message too big", "err", err)
	default:
		wc.log.Debug("websocket ended", "err", err)
	}
}

func closeErrorReason(err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Reason
	}
	return ""
}

// finish is the end of the reader: the socket is closed, the room told.
func (wc *wsConn) finish(sess *doc.Session) {
	wc.mu.Lock()
	wc.finished = true
	wc.closing = true
	wc.queue = nil
	wc.mu.Unlock()
	wc.c.CloseNow()
	if sess != nil {
		sess.Leave()
	}
	wc.s.untrack(wc)
}

// closeNow closes the connection from the reader with a close handshake.
func (wc *wsConn) closeNow(code websocket.StatusCode, reason string) {
	wc.mu.Lock()
	wc.closing = true
	wc.queue = nil
	wc.mu.Unlock()
	wc.s.metrics.closes.WithLabelValues(strconv.Itoa(int(code))).Inc()
	wc.log.Info("closing websocket", "code", int(code), "reason", reason)
	wc.c.Close(code, reason)
}

// Send implements doc.Peer: it queues msg for the writer and never blocks.
// It returns false when the outbox is full (the room then drops the peer).
func (wc *wsConn) Send(msg []byte) bool {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	if wc.closing {
		return true // the connection is going away anyway
	}
	if len(wc.queue) >= wc.s.cfg.OutboxMessages ||
		(len(wc.queue) > 0 && wc.queued+int64(len(msg)) > wc.s.cfg.OutboxBytes) {
		return false
	}
	wc.queue = append(wc.queue, msg)
	wc.queued += int64(len(msg))
	if !wc.writing {
		wc.writing = true
		go wc.writeLoop()
	}
	return true
}

// writeLoop writes the queued messages in order, each batch under one write
// deadline, and ends when the queue is empty.
func (wc *wsConn) writeLoop() {
	var spare [][]byte
	for {
		wc.mu.Lock()
		if wc.closing || len(wc.queue) == 0 {
			wc.writing = false
			wc.mu.Unlock()
			return
		}
		batch := wc.queue
		wc.queue = spare
		wc.queued = 0
		wc.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), wc.s.cfg.WriteTimeout)
		var n int
		for i, msg := range batch {
			if err := wc.c.Write(ctx, websocket.MessageBinary, msg); err != nil {
				cancel()
				// The library has closed the connection; the reader ends
				// and leaves the room.
				wc.log.Info("websocket write failed", "err", err)
				wc.mu.Lock()
				wc.writing = false
				wc.closing = true
				wc.queue = nil
				wc.mu.Unlock()
				return
			}
			n += len(msg)
			batch[i] = nil
		}
		cancel()
		wc.s.metrics.messagesOut.Add(float64(len(batch)))
		wc.s.metrics.bytesOut.Add(float64(n))
		if cap(batch) <= 64 {
			spare = batch[:0]
		} else {
			spare = nil
		}
	}
}

// Close implements doc.Peer: it closes the connection with code and reason
// in a goroutine of its own (the close handshake waits for the peer) and
// drops what is queued.
func (wc *wsConn) Close(code doc.CloseCode, reason string) {
	wc.mu.Lock()
	if wc.finished || wc.closing {
		wc.mu.Unlock()
		return
	}
	wc.closing = true
	wc.queue = nil
	// The reader still holds its count of connWG, so this Add cannot race
	// with Server.Close's Wait reaching zero.
	wc.s.connWG.Add(1)
	wc.mu.Unlock()
	wc.s.metrics.closes.WithLabelValues(strconv.Itoa(int(code))).Inc()
	if code != doc.CloseGoingAway {
		wc.log.Info("closing websocket", "code", int(code), "reason", reason)
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
			wc.log.Info("peer did not answer a ping: closing", "err", err)
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
