package server

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// The write side of a WebSocket, measured and built for the room's fan-out.
//
// coder/websocket reads every frame (masking, fragments, control frames, the
// read limit, the close handshake) and writes the control frames. The data
// frames the server sends are written here instead: one broadcast is framed
// once per peer with a 2-10 byte header in front of the shared message, and
// the room's goroutine writes it to the socket at once with a non-blocking
// writev. Only when a socket's buffer is full does a writer goroutine take
// over, waiting for the socket under a write deadline. In the common case a
// delivery costs one system call and no goroutine switch; a goroutine per
// write added scheduling and the library's write path, about a third of the
// server's CPU in a profile of the hot-room load (scripts/bench-server.sh).
//
// Every byte reaches the socket through one queue per connection, so the
// library's control frames (pong, close) and ours never interleave: the
// library writes through sockConn, whose Write queues a copy of each frame.

// sock is the write queue of one connection.
type sock struct {
	conn    net.Conn
	raw     syscall.RawConn // for non-blocking writes; nil on other platforms
	timeout time.Duration
	onFail  func(error) // called once when a write fails

	maxMsgs  int
	maxBytes int64

	mu       sync.Mutex
	q        []frame
	head     int   // bytes of q[0] already written
	inflight int   // frames at the front of q that the flushing goroutine is writing
	msgs     int   // data frames queued
	bytes    int64 // their payload bytes
	flushing bool  // a goroutine is writing the queue
	dropping bool  // data frames are refused (the peer is being closed)
	closed   bool  // the socket is closed or failed: nothing is written
}

// frame is one queued WebSocket frame: a header we made and the shared
// payload of a data frame, or the whole bytes of a library control frame.
type frame struct {
	hdr  [10]byte
	hlen uint8
	ctrl bool
	data []byte
}

func (f *frame) size() int { return int(f.hlen) + len(f.data) }

// errClosed is what writes get once the socket is closed.
var errClosed = net.ErrClosed

func newSock(conn net.Conn, timeout time.Duration, maxMsgs int, maxBytes int64, onFail func(error)) *sock {
	s := &sock{conn: conn, timeout: timeout, maxMsgs: maxMsgs, maxBytes: maxBytes, onFail: onFail}
	if sc, ok := conn.(syscall.Conn); ok && nonBlockingWrites {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw = raw
		}
	}
	return s
}

// putHeader writes the header of an unmasked, final, binary frame of n bytes
// (RFC 6455 section 5.2) and returns its length.
func putHeader(h *[10]byte, n int) uint8 {
	h[0] = 0x82 // FIN, binary
	switch {
	case n <= 125:
		h[1] = byte(n)
		return 2
	case n <= 0xffff:
		h[1] = 126
		h[2], h[3] = byte(n>>8), byte(n)
		return 4
	}
	h[1] = 127
	for i := 0; i < 8; i++ {
		h[2+i] = byte(uint64(n) >> (56 - 8*i))
	}
	return 10
}

// send queues msg as a binary frame and writes what the socket takes now. It
// returns false when the outbox is full (the peer is too slow).
func (s *sock) send(msg []byte) bool {
	s.mu.Lock()
	if s.closed || s.dropping {
		s.mu.Unlock()
		return true // going away anyway
	}
	if s.msgs >= s.maxMsgs || (s.msgs > 0 && s.bytes+int64(len(msg)) > s.maxBytes) {
		s.mu.Unlock()
		return false
	}
	f := frame{data: msg}
	f.hlen = putHeader(&f.hdr, len(msg))
	s.q = append(s.q, f)
	s.msgs++
	s.bytes += int64(len(msg))
	s.kick()
	return true
}

// writeControl queues a copy of a frame the library wrote (it reuses its
// buffer); control frames are never refused while the socket is open.
func (s *sock) writeControl(p []byte) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, errClosed
	}
	s.q = append(s.q, frame{ctrl: true, data: bytes.Clone(p)})
	s.kick()
	return len(p), nil
}

// control queues a control frame of ours (opcode op: close, ping or pong)
// with payload (at most 125 bytes).
func (s *sock) control(op byte, payload []byte) {
	var f [2 + 125]byte
	f[0] = 0x80 | op
	n := copy(f[2:], payload)
	f[1] = byte(n)
	_, _ = s.writeControl(f[:2+n])
}

// idle reports whether everything queued has been written.
func (s *sock) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q) == 0 && !s.flushing
}

// kick starts writing unless a goroutine already is. Called with mu held;
// returns with it released.
func (s *sock) kick() {
	if s.flushing {
		s.mu.Unlock()
		return
	}
	s.flushing = true
	s.mu.Unlock()
	s.flush()
}

// drop refuses further data frames and forgets the queued ones (the peer is
// being closed); a frame already partly written is finished, and control
// frames (the close frame) still go out.
func (s *sock) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropping = true
	// Frames being written stay: the writer's count of written bytes refers
	// to them, and half a frame would corrupt the stream.
	keep := max(s.inflight, min(s.head, 1))
	kept := s.q[:keep]
	s.msgs, s.bytes = 0, 0
	for _, f := range s.q[:keep] {
		if !f.ctrl {
			s.msgs++
			s.bytes += int64(len(f.data))
		}
	}
	for _, f := range s.q[keep:] {
		if f.ctrl {
			kept = append(kept, f)
		}
	}
	clear(s.q[len(kept):])
	s.q = kept
}

// shutdown marks the socket closed, after a last non-blocking attempt to
// write what is queued (the close frame of a handshake that just ended).
func (s *sock) shutdown() {
	s.mu.Lock()
	if !s.flushing && !s.closed && len(s.q) > 0 && s.raw != nil {
		s.flushing = true
		bufs := s.gather(nil)
		s.mu.Unlock()
		n, _, _ := s.tryWrite(bufs)
		s.mu.Lock()
		s.consume(n)
		s.flushing = false
	}
	s.closed = true
	s.q = nil
	s.mu.Unlock()
}

// maxGather bounds the frames of one writev.
const maxGather = 32

// gather returns the unwritten bytes of the first queued frames. Called with
// mu held; the slices stay valid after it is released because only the
// flushing goroutine removes frames.
func (s *sock) gather(bufs [][]byte) [][]byte {
	skip := s.head
	s.inflight = min(len(s.q), maxGather)
	for i := 0; i < s.inflight; i++ {
		f := &s.q[i]
		h := f.hdr[:f.hlen]
		d := f.data
		if skip > 0 {
			n := min(skip, len(h))
			h, skip = h[n:], skip-n
			d, skip = d[skip:], 0
		}
		if len(h) > 0 {
			bufs = append(bufs, h)
		}
		if len(d) > 0 {
			bufs = append(bufs, d)
		}
	}
	return bufs
}

// consume removes n written bytes from the front of the queue. Called with
// mu held.
func (s *sock) consume(n int) {
	s.inflight = 0
	n += s.head
	i := 0
	for ; i < len(s.q) && n >= s.q[i].size(); i++ {
		n -= s.q[i].size()
		if !s.q[i].ctrl {
			s.msgs--
			s.bytes -= int64(len(s.q[i].data))
		}
	}
	clear(s.q[:i])
	s.head = n
	switch {
	case i < len(s.q):
		s.q = s.q[i:]
	case cap(s.q) > 64:
		s.q, s.head = nil, 0 // a burst is over: do not keep its array
	default:
		// All written, the common case: the next frame goes where this
		// one was (slicing past it would shrink the array until an
		// append allocated a new one, once per delivery).
		s.q, s.head = s.q[:0], 0
	}
}

// flush writes the queue without waiting for the socket; when the socket's
// buffer is full it hands the rest to a writer goroutine that waits. The
// caller set flushing.
func (s *sock) flush() {
	var scratch [2 * maxGather][]byte
	for {
		s.mu.Lock()
		if s.closed || len(s.q) == 0 {
			s.flushing = false
			s.mu.Unlock()
			return
		}
		bufs := s.gather(scratch[:0])
		s.mu.Unlock()
		n, wouldBlock, err := s.tryWrite(bufs)
		s.mu.Lock()
		s.consume(n)
		s.mu.Unlock()
		if err != nil {
			s.fail(err)
			return
		}
		if wouldBlock {
			go s.writeLoop()
			return
		}
	}
}

// writeLoop writes the queue, waiting for the socket under the write
// deadline, until it is empty.
func (s *sock) writeLoop() {
	for {
		s.mu.Lock()
		if s.closed || len(s.q) == 0 {
			s.flushing = false
			s.mu.Unlock()
			return
		}
		bufs := net.Buffers(s.gather(nil))
		s.mu.Unlock()
		s.conn.SetWriteDeadline(time.Now().Add(s.timeout))
		n, err := bufs.WriteTo(s.conn)
		s.mu.Lock()
		s.consume(int(n))
		s.mu.Unlock()
		if err != nil {
			s.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// fail closes the socket for good after a failed write.
func (s *sock) fail(err error) {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.flushing = false
	s.q = nil
	s.mu.Unlock()
	if !already && s.onFail != nil {
		s.onFail(err)
	}
}

// sockConn is the connection the websocket library sees: reads go to the
// socket directly, writes (its control frames) through the queue.
type sockConn struct {
	net.Conn
	s *sock
	// detached: a read loop owns the socket, and the library's Conn, closed
	// and dropped right after the handshake, must not close it.
	detached bool
}

func (c *sockConn) Write(p []byte) (int, error) { return c.s.writeControl(p) }

func (c *sockConn) Close() error {
	if c.detached {
		return nil
	}
	c.s.shutdown()
	return c.Conn.Close()
}

// prefixConn replays bytes the HTTP server had already buffered before the
// connection was hijacked.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Buffer sizes of a WebSocket's bufio reader and writer. net/http hands a
// hijacker 4 KiB of each, 16 MiB for 2,000 idle sockets; frames of a few
// dozen bytes do not need that, and large reads bypass the buffer anyway.
// The writer only ever holds one control frame (at most 127 bytes).
const (
	sockReadBuf  = 512
	sockWriteBuf = 256
)

// hijackWriter wraps the ResponseWriter given to websocket.Accept so that the
// hijacked connection comes with small buffers and writes through a sock.
type hijackWriter struct {
	http.ResponseWriter
	wrap   func(net.Conn) *sockConn
	conn   *sockConn // set by Hijack
	prefix []byte    // set by Hijack: what the client sent behind its handshake
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if brw.Writer.Buffered() > 0 {
		if err := brw.Writer.Flush(); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("flush the handshake: %w", err)
		}
	}
	var in net.Conn = conn
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		w.prefix = bytes.Clone(b)
		in = &prefixConn{Conn: conn, prefix: w.prefix}
	}
	sc := w.wrap(conn)
	sc.Conn = in
	w.conn = sc
	return sc, bufio.NewReadWriter(bufio.NewReaderSize(sc, sockReadBuf), bufio.NewWriterSize(sc, sockWriteBuf)), nil
}
