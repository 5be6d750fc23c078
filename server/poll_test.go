//go:build linux

package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/quirehq/quire/presence"
	"github.com/quirehq/quire/protocol"
)

// The tests of this file drive the read loops (poll_linux.go) and the
// WebSocket code of conn.go that replaces the library once a loop reads a
// socket: the close handshake, pings, fragments, pipelined bytes and
// keep-alive. Most use rawPeer, a client written by hand, so that they can
// send what a library would not (unmasked or fragmented frames, bytes behind
// the handshake) and see every byte the server sends, and so that a client
// costs no goroutine.

// readModes are the two ways the server reads WebSockets.
var readModes = []struct {
	name   string
	loops  int  // Config.ReadLoops
	polled bool // read by the loops
}{
	{"read loops", 0, true},
	{"reader goroutines", -1, false},
}

// requireReadMode fails unless ts reads every connection it has the way
// polled says: a test must exercise the mode it names.
func requireReadMode(t *testing.T, ts *testServer, polled bool) {
	t.Helper()
	if (ts.srv.poller != nil) != polled {
		t.Fatalf("server has read loops: %v, want %v", ts.srv.poller != nil, polled)
	}
	ts.srv.mu.Lock()
	defer ts.srv.mu.Unlock()
	if len(ts.srv.conns) == 0 {
		t.Fatal("no connection to check the read mode of")
	}
	for c := range ts.srv.conns {
		if (c.raw != nil) != polled || (c.c == nil) != polled {
			t.Fatalf("connection %d read by a loop: %v, want %v", c.id, c.raw != nil, polled)
		}
	}
}

// setCloseHandshakeTimeout changes closeHandshakeTimeout for one test. Call
// it before newTestServer, so that it is restored after the server is closed.
func setCloseHandshakeTimeout(t *testing.T, d time.Duration) {
	old := closeHandshakeTimeout
	closeHandshakeTimeout = d
	t.Cleanup(func() { closeHandshakeTimeout = old })
}

// waitFor polls cond until it holds, failing with what after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawPeer is a WebSocket client written by hand over TCP. Its methods that
// return an error may be called from any goroutine; the others fail the test.
type rawPeer struct {
	t *testing.T
	c *net.TCPConn
	r *bufio.Reader
}

// rawKey masks every frame a rawPeer sends (a key with no zero byte, so that
// a server that does not unmask sees garbage).
const rawKey = 0xa1b2c3d4

// tBin is a masked, final binary frame holding msg.
func tBin(msg []byte) tFrame { return tData(wsOpBinary, true, string(msg), rawKey) }

// tCtl is a masked control frame.
func tCtl(op byte, payload []byte) tFrame {
	f := tData(op, true, "", rawKey)
	f.payload = payload
	return f
}

// rawDial opens a WebSocket to /ws/docID: the upgrade request and the
// pipelined frames go out in one write, before the response is read.
func (ts *testServer) rawDial(t *testing.T, docID string, pipelined ...tFrame) *rawPeer {
	t.Helper()
	return ts.rawDialBytes(t, docID, tStream(pipelined...))
}

// rawDialBytes is rawDial with any bytes behind the upgrade request.
func (ts *testServer) rawDialBytes(t *testing.T, docID string, pipelined []byte) *rawPeer {
	t.Helper()
	addr := ts.http.Listener.Addr().String()
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{t: t, c: c.(*net.TCPConn), r: bufio.NewReader(c)}
	t.Cleanup(func() { p.c.Close() })
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET /ws/" + docID + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\n\r\n"
	p.write(append([]byte(req), pipelined...))
	p.c.SetReadDeadline(time.Now().Add(testTimeout))
	resp, err := http.ReadResponse(p.r, nil)
	if err != nil {
		t.Fatalf("upgrade response: %v", err)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("upgrade answered %s, Sec-WebSocket-Accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	return p
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if err := p.writeErr(b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) writeErr(b []byte) error {
	p.c.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := p.c.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (p *rawPeer) send(frames ...tFrame) {
	p.t.Helper()
	p.write(tStream(frames...))
}

// readFrame reads the server's next frame: its opcode and payload.
func (p *rawPeer) readFrame() (byte, []byte, error) {
	p.c.SetReadDeadline(time.Now().Add(testTimeout))
	b0, payload, err := readFrameRaw(p.r)
	if err != nil {
		return 0, nil, fmt.Errorf("read a frame: %w", err)
	}
	if b0&0xf0 != 0x80 {
		return 0, nil, fmt.Errorf("server frame starts with %#x: want FIN and no reserved bits", b0)
	}
	return b0 & 0x0f, payload, nil
}

func (p *rawPeer) next() (byte, []byte) {
	p.t.Helper()
	op, payload, err := p.readFrame()
	if err != nil {
		p.t.Fatal(err)
	}
	return op, payload
}

// msg reads the next frame, which must be a binary y-protocols message.
func (p *rawPeer) msg() protocol.Message {
	p.t.Helper()
	op, b := p.next()
	if op != wsOpBinary {
		p.t.Fatalf("server sent opcode %d (%q), want a binary message", op, b)
	}
	m, err := protocol.Decode(b)
	if err != nil {
		p.t.Fatalf("server sent %x: %v", b, err)
	}
	return m
}

// expectSync reads the next message, which must be the sync message st.
func (p *rawPeer) expectSync(st protocol.SyncType) protocol.Message {
	p.t.Helper()
	m := p.msg()
	if m.Type != protocol.TypeSync || m.Sync != st {
		p.t.Fatalf("server sent %v/%v, want sync %v", m.Type, m.Sync, st)
	}
	return m
}

// expectClose reads the next frame, which must be a close frame, and
// returns its body.
func (p *rawPeer) expectClose() []byte {
	p.t.Helper()
	op, b := p.next()
	if op != wsOpClose {
		p.t.Fatalf("server sent opcode %d (%x), want a close frame", op, b)
	}
	return b
}

// waitEnd reads until the server ends the TCP connection; any byte before
// the end is an error.
func (p *rawPeer) waitEnd() error {
	p.c.SetReadDeadline(time.Now().Add(testTimeout))
	var b [512]byte
	n, err := p.r.Read(b[:])
	switch {
	case n > 0:
		return fmt.Errorf("server sent %q, want the end of the connection", b[:n])
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return nil
	}
	return fmt.Errorf("connection not ended by the server: %w", err)
}

func (p *rawPeer) expectEnd() {
	p.t.Helper()
	if err := p.waitEnd(); err != nil {
		p.t.Fatal(err)
	}
}

// checkCloseBody fails unless body is a close body with code and a reason
// containing reason.
func checkCloseBody(t *testing.T, body []byte, code uint16, reason string) {
	t.Helper()
	if len(body) < 2 || binary.BigEndian.Uint16(body) != code || !strings.Contains(string(body[2:]), reason) {
		t.Fatalf("close body %q, want code %d and a reason with %q", body, code, reason)
	}
}

// TestCoreScenarioBothReadModes runs what every peer does (sync, awareness,
// large messages) and the bad inputs that cost only their sender, with the
// read loops (the default, and three of them, so that peers of one document
// are read by different loops) and with a reader goroutine per connection,
// through the websocket library as a client. (The tests of server_test.go
// run with the default, the read loops.)
func TestCoreScenarioBothReadModes(t *testing.T) {
	const limit = 256 << 10
	modes := append(readModes[:len(readModes):len(readModes)], readModes[0])
	modes[len(modes)-1].name, modes[len(modes)-1].loops = "three read loops", 3
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) {
				c.ReadLoops = mode.loops
				c.ReadLimit = limit
			})
			a := ts.join("notes")
			b := ts.join("notes")
			requireReadMode(t, ts, mode.polled)

			// Edits in turn, then concurrent ones: both editors and the
			// server converge.
			ann, bob := newEditor(t, 11), newEditor(t, 22)
			a.send(protocol.EncodeUpdate(ann.insert(0, "hello")))
			applyNext(t, b, bob)
			b.send(protocol.EncodeUpdate(bob.insert(5, " world")))
			applyNext(t, a, ann)
			a.send(protocol.EncodeUpdate(ann.insert(0, "<")))
			b.send(protocol.EncodeUpdate(bob.insert(11, ">")))
			applyNext(t, a, ann)
			applyNext(t, b, bob)
			at, bt := ann.d.GetText("content").String(), bob.d.GetText("content").String()
			if at != bt || len(at) != 13 {
				t.Fatalf("editors diverged: %q and %q", at, bt)
			}
			if code, body, _ := ts.get("/api/docs/notes/text"); code != 200 || body != at {
				t.Fatalf("server text = %d %q, editors have %q", code, body, at)
			}

			// A message larger than a loop's read buffer arrives in pieces.
			big := strings.Repeat("0123456789abcdef", 150<<10/16)
			a.send(protocol.EncodeUpdate(ann.insert(0, big)))
			applyNext(t, b, bob)
			if got := bob.d.GetText("content").String(); got != big+at {
				t.Fatalf("b has %d characters after the large update, want %d", len(got), len(big+at))
			}

			// Awareness reaches the other peer.
			state := presence.EncodeUpdate(presence.Update{{ClientID: 11, Clock: 1, State: json.RawMessage(`{"user":{"name":"Ann"}}`)}})
			a.send(protocol.EncodeAwareness(state))
			for name, p := range map[string]*peer{"sender": a, "other": b} {
				if m := p.read(); m.Type != protocol.TypeAwareness || !bytes.Equal(m.Payload, state) {
					t.Fatalf("%s got %v %x, want the awareness update", name, m.Type, m.Payload)
				}
			}

			tests := []struct {
				name   string
				typ    websocket.MessageType
				frame  []byte
				code   websocket.StatusCode
				reason string
			}{
				{"malformed message", websocket.MessageBinary, []byte{0xde, 0xad, 0xbe, 0xef}, websocket.StatusProtocolError, "malformed"},
				{"invalid update", websocket.MessageBinary, protocol.EncodeUpdate([]byte{5, 1, 2, 3, 4, 5}), websocket.StatusInvalidFramePayloadData, "invalid update"},
				{"text frame", websocket.MessageText, []byte("hi"), websocket.StatusUnsupportedData, "text frames"},
				{"over the read limit", websocket.MessageBinary, protocol.EncodeUpdate(make([]byte, limit+1)), websocket.StatusMessageTooBig, ""},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					ts.t = t
					a := &peer{t: t, c: a.c} // fails this subtest
					bad := ts.join("notes")
					requireReadMode(t, ts, mode.polled)
					ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
					defer cancel()
					if err := bad.c.Write(ctx, tt.typ, tt.frame); err != nil {
						t.Fatal(err)
					}
					if code, reason := bad.closed(); code != tt.code || !strings.Contains(reason, tt.reason) {
						t.Fatalf("closed with %d %q, want %d and a reason with %q", code, reason, tt.code, tt.reason)
					}
					// The others carry on, the document unchanged.
					sv := ann.d.EncodeStateVector()
					a.send(protocol.EncodeSyncStep1(sv))
					if m := a.read(); m.Sync != protocol.SyncStep2 || !bytes.Equal(m.Payload, []byte{0, 0}) {
						t.Fatalf("a got %v/%v %x, want an empty step 2", m.Type, m.Sync, m.Payload)
					}
					waitFor(t, "the offender has left", func() bool { return ts.srv.Docs().Peers("notes") == 2 })
				})
			}
		})
	}
}

// applyNext reads an update from p and applies it to e.
func applyNext(t *testing.T, p *peer, e *yeditor) {
	t.Helper()
	m := p.read()
	if m.Type != protocol.TypeSync || m.Sync != protocol.SyncUpdate {
		t.Fatalf("got %v/%v, want an update", m.Type, m.Sync)
	}
	if _, err := e.d.ApplyUpdate(m.Payload); err != nil {
		t.Fatal(err)
	}
}

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(t *testing.T, fn string) int {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// TestIdleConnectionsCostNoGoroutine holds 200 synced, idle connections
// (hand-written clients, which hold no goroutine): with the read loops the
// process has no goroutine in a method of a connection and hardly more
// goroutines than before, with reader goroutines it has one per connection.
func TestIdleConnectionsCostNoGoroutine(t *testing.T) {
	const n = 200
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.ReadLoops = mode.loops })
			// Goroutines in a method of a connection (readers, pingers,
			// closers), of which the reader goroutines.
			const perConn = "quire/server.(*wsConn)."
			const readers = perConn + "readLoop"
			base := runtime.NumGoroutine()
			peers := make([]*rawPeer, n)
			for i := range peers {
				p := ts.rawDial(t, fmt.Sprintf("idle%d", i))
				p.expectSync(protocol.SyncStep1)
				p.send(tBin(protocol.EncodeSyncStep1([]byte{0})))
				p.expectSync(protocol.SyncStep2)
				peers[i] = p
			}
			requireReadMode(t, ts, mode.polled)
			if mode.polled {
				// The HTTP server's goroutines of the last upgrades end
				// after their handlers returned.
				waitFor(t, fmt.Sprintf("no goroutine of a connection and fewer than 20 goroutines more than the %d before dialing", base),
					func() bool { return goroutinesIn(t, perConn) == 0 && runtime.NumGoroutine()-base < 20 })
			} else {
				if r := goroutinesIn(t, readers); r != n {
					t.Fatalf("%d reader goroutines, want %d", r, n)
				}
				if g := runtime.NumGoroutine(); g-base < n-5 {
					t.Fatalf("%d goroutines, %d before dialing: want one more per connection", g, base)
				}
			}
			t.Logf("%d idle connections: %d goroutines (%d of a connection), %d before dialing",
				n, runtime.NumGoroutine(), goroutinesIn(t, perConn), base)
			// Clients that go away without a close frame are cleaned up.
			for _, p := range peers {
				p.c.Close()
			}
			waitFor(t, "every connection has finished", func() bool { return ts.connCount() == 0 })
		})
	}
}

// TestLoopCloseFromPeer: a peer's close frame is answered with its code (an
// empty body with an empty one), then the server closes TCP; what the peer
// sent behind its close frame is not handled.
func TestLoopCloseFromPeer(t *testing.T) {
	tests := []struct {
		name string
		body []byte
		want []byte
	}{
		{"normal closure with a reason", tCloseBody(1000, "bye"), tCloseBody(1000, "")},
		{"no body", nil, nil},
		{"going away", tCloseBody(1001, ""), tCloseBody(1001, "")},
		{"application code", tCloseBody(4000, "done"), tCloseBody(4000, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.ReadLoops = 0 })
			p := ts.rawDial(t, "d")
			p.expectSync(protocol.SyncStep1)
			requireReadMode(t, ts, true)
			// A step 1 behind the close frame would be answered with step 2
			// if the server went on parsing.
			p.send(tCtl(wsOpClose, tt.body), tBin(protocol.EncodeSyncStep1([]byte{0})))
			if got := p.expectClose(); !bytes.Equal(got, tt.want) {
				t.Fatalf("server answered close %x, want %x", got, tt.want)
			}
			p.expectEnd()
			waitFor(t, "the peer has left", func() bool { return ts.connCount() == 0 && ts.srv.Docs().Peers("d") == 0 })
		})
	}
}

// TestLoopCloseFromServer: a peer that breaks the framing or the protocol
// gets a close frame with the code for its fault. When it answers (closing
// its end too when its stream was broken: the server parses nothing more
// from it, RFC 6455 section 7.1.7) the server closes TCP at once; when it
// does not, the server closes TCP after closeHandshakeTimeout.
func TestLoopCloseFromServer(t *testing.T) {
	const limit = 1024
	fragments := tData(wsOpBinary, false, string(make([]byte, 600)), rawKey)
	last := tData(wsOpContinuation, true, string(make([]byte, 600)), rawKey)
	unmasked := tBin(protocol.EncodeSyncStep1([]byte{0}))
	unmasked.unmasked = true
	reserved := tBin(protocol.EncodeSyncStep1([]byte{0}))
	reserved.rsv = 0x40
	tests := []struct {
		name   string
		frames []tFrame
		code   uint16
		reason string
		broken bool // the server stops parsing the peer's bytes
	}{
		{"unmasked frame", []tFrame{unmasked}, 1002, "not masked", true},
		{"reserved bits", []tFrame{reserved}, 1002, "reserved bits", true},
		{"text frame", []tFrame{tData(wsOpText, true, "hello", rawKey)}, 1003, "text frames", false},
		{"message over the read limit", []tFrame{tBin(make([]byte, 2*limit))}, 1009, "too big", true},
		{"fragments over the read limit", []tFrame{fragments, last}, 1009, "too big", true},
		{"malformed y-protocols message", []tFrame{tBin([]byte{0xde, 0xad})}, 1002, "malformed", false},
		{"invalid update", []tFrame{tBin(protocol.EncodeUpdate([]byte{5, 1, 2, 3, 4, 5}))}, 1007, "invalid update", false},
		{"close frame with code 999", []tFrame{tCtl(wsOpClose, tCloseBody(999, ""))}, 1002, "", true},
		{"close reason not UTF-8", []tFrame{tCtl(wsOpClose, tCloseBody(1000, "\xff"))}, 1007, "", true},
	}
	for _, tt := range tests {
		for _, answers := range []bool{true, false} {
			name := tt.name + "/peer answers"
			timeout := time.Hour // only the answer can end the connection in time
			if !answers {
				name = tt.name + "/peer is silent"
				if !tt.broken {
					timeout = 100 * time.Millisecond
				}
			}
			t.Run(name, func(t *testing.T) {
				setCloseHandshakeTimeout(t, timeout)
				ts := newTestServer(t, func(c *Config) { c.ReadLimit, c.ReadLoops = limit, 0 })
				p := ts.rawDial(t, "d")
				p.expectSync(protocol.SyncStep1)
				requireReadMode(t, ts, true)
				start := time.Now()
				p.send(tt.frames...)
				checkCloseBody(t, p.expectClose(), tt.code, tt.reason)
				if answers {
					// Data after the server's close frame is not handled:
					// no step 2 comes before the end.
					p.send(tBin(protocol.EncodeSyncStep1([]byte{0})), tCtl(wsOpClose, tCloseBody(tt.code, "")))
					if tt.broken {
						p.c.CloseWrite()
					}
				}
				p.expectEnd()
				// A broken stream is failed at once: the server's end of
				// the stream follows its close frame (the hour-long
				// handshake timeout cannot be what ended it), and the
				// peer, which sent no close frame, closes its end on
				// seeing it. Otherwise the silent peer gets the whole
				// timeout to answer.
				if !answers && tt.broken {
					p.c.Close()
				}
				if !answers && !tt.broken && time.Since(start) < timeout {
					t.Fatalf("TCP closed %v after the fault, before the peer's %v to answer", time.Since(start), timeout)
				}
				waitFor(t, "the peer has left", func() bool { return ts.connCount() == 0 && ts.srv.Docs().Peers("d") == 0 })
			})
		}
	}
}

// TestLoopControlFrames: pings are answered with their payload, also between
// the fragments of a message, which is handled once complete; unsolicited
// pongs are ignored. Each stream is sent whole, a frame per write and a byte
// per write, so that the parser resumes across reads.
func TestLoopControlFrames(t *testing.T) {
	step1 := protocol.EncodeSyncStep1([]byte{0})
	step2 := protocol.EncodeSyncStep2([]byte{0, 0}) // of the empty document
	long := bytes.Repeat([]byte{'x'}, 125)
	type reply struct {
		op      byte
		payload []byte
	}
	tests := []struct {
		name   string
		frames []tFrame
		want   []reply
	}{
		{"ping", []tFrame{tCtl(wsOpPing, []byte("abc"))}, []reply{{wsOpPong, []byte("abc")}}},
		{"empty ping", []tFrame{tCtl(wsOpPing, nil)}, []reply{{wsOpPong, nil}}},
		{"longest ping", []tFrame{tCtl(wsOpPing, long)}, []reply{{wsOpPong, long}}},
		{"fragmented step 1 with a ping inside", []tFrame{
			tData(wsOpBinary, false, string(step1[:1]), rawKey),
			tCtl(wsOpPing, []byte("p")),
			tData(wsOpContinuation, false, string(step1[1:3]), rawKey),
			tData(wsOpContinuation, true, string(step1[3:]), rawKey),
		}, []reply{{wsOpPong, []byte("p")}, {wsOpBinary, step2}}},
		{"unsolicited pong", []tFrame{tCtl(wsOpPong, []byte("?")), tBin(step1)}, []reply{{wsOpBinary, step2}}},
	}
	chunkings := []struct {
		name  string
		split func([]tFrame) [][]byte
	}{
		{"one write", func(fs []tFrame) [][]byte { return [][]byte{tStream(fs...)} }},
		{"a frame per write", func(fs []tFrame) [][]byte {
			var out [][]byte
			for _, f := range fs {
				out = append(out, f.encode())
			}
			return out
		}},
		{"a byte per write", func(fs []tFrame) [][]byte { return tBytewise(tStream(fs...)) }},
	}
	ts := newTestServer(t, func(c *Config) { c.ReadLoops = 0 })
	for _, tt := range tests {
		for _, ch := range chunkings {
			t.Run(tt.name+"/"+ch.name, func(t *testing.T) {
				p := ts.rawDial(t, "d")
				p.expectSync(protocol.SyncStep1)
				requireReadMode(t, ts, true)
				for _, b := range ch.split(tt.frames) {
					p.write(b)
				}
				for _, w := range tt.want {
					if op, b := p.next(); op != w.op || !bytes.Equal(b, w.payload) {
						t.Fatalf("server sent opcode %d %q, want %d %q", op, b, w.op, w.payload)
					}
				}
				// Nothing else came: the next frame is the answer to a new step 1.
				p.send(tBin(step1))
				if op, b := p.next(); op != wsOpBinary || !bytes.Equal(b, step2) {
					t.Fatalf("server sent opcode %d %x, want step 2", op, b)
				}
			})
		}
	}
}

// TestLoopPipelinedFrames: frames sent in the same write as the upgrade
// request, read by the HTTP server before the loop owns the socket, are
// handled first.
func TestLoopPipelinedFrames(t *testing.T) {
	setCloseHandshakeTimeout(t, time.Hour) // only the peer's answer can end it in time
	ts := newTestServer(t, func(c *Config) { c.ReadLoops = 0 })
	step1 := tBin(protocol.EncodeSyncStep1([]byte{0}))
	unmasked := step1
	unmasked.unmasked = true

	t.Run("sync step 1", func(t *testing.T) {
		p := ts.rawDial(t, "a", step1)
		p.expectSync(protocol.SyncStep1)
		if m := p.expectSync(protocol.SyncStep2); !bytes.Equal(m.Payload, []byte{0, 0}) {
			t.Fatalf("step 2 = %x", m.Payload)
		}
		requireReadMode(t, ts, true)
		// The loop reads what follows.
		p.send(tCtl(wsOpPing, []byte("after")))
		if op, b := p.next(); op != wsOpPong || string(b) != "after" {
			t.Fatalf("server sent opcode %d %q, want the pong", op, b)
		}
	})
	t.Run("sync step 1 and close", func(t *testing.T) {
		p := ts.rawDial(t, "b", step1, tCtl(wsOpClose, tCloseBody(1000, "")))
		// The answer to step 1 may be dropped by the close.
		for {
			op, b := p.next()
			if op == wsOpClose {
				if !bytes.Equal(b, tCloseBody(1000, "")) {
					t.Fatalf("close %x, want 1000", b)
				}
				break
			}
			if op != wsOpBinary {
				t.Fatalf("server sent opcode %d before the close frame", op)
			}
		}
		p.expectEnd()
		waitFor(t, "the peer has left", func() bool { return ts.srv.Docs().Peers("b") == 0 })
	})
	t.Run("half a frame", func(t *testing.T) {
		b := step1.encode()
		p := ts.rawDialBytes(t, "d", b[:3])
		p.expectSync(protocol.SyncStep1)
		p.write(b[3:])
		if m := p.expectSync(protocol.SyncStep2); !bytes.Equal(m.Payload, []byte{0, 0}) {
			t.Fatalf("step 2 = %x", m.Payload)
		}
	})
	t.Run("unmasked frame", func(t *testing.T) {
		p := ts.rawDial(t, "c", unmasked)
		for {
			op, b := p.next()
			if op == wsOpClose {
				checkCloseBody(t, b, 1002, "not masked")
				break
			}
			if op != wsOpBinary {
				t.Fatalf("server sent opcode %d before the close frame", op)
			}
		}
		p.c.CloseWrite()
		p.expectEnd()
		waitFor(t, "the peer has left", func() bool { return ts.srv.Docs().Peers("c") == 0 })
	})
}

// TestKeepAlive: a quiet peer that answers the server's pings stays
// connected for many ping intervals; one that does not answer is closed
// without a close frame (it does not read anyway).
func TestKeepAlive(t *testing.T) {
	const interval = 200 * time.Millisecond
	for _, mode := range readModes {
		t.Run(mode.name, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) {
				c.ReadLoops = mode.loops
				c.PingInterval = interval
				c.PongTimeout = interval
			})
			t.Run("peer answers", func(t *testing.T) {
				start := time.Now()
				p := ts.rawDial(t, "answers")
				p.expectSync(protocol.SyncStep1)
				requireReadMode(t, ts, mode.polled)
				// Each ping comes after an interval without a frame from
				// the peer (the handshake, then its last pong): six of them
				// take 1.2 s.
				for range 6 {
					op, b := p.next()
					if op != wsOpPing {
						t.Fatalf("server sent opcode %d %q, want a ping", op, b)
					}
					p.send(tCtl(wsOpPong, b))
				}
				if d := time.Since(start); d < time.Second {
					t.Fatalf("6 pings within %v", d)
				}
				p.send(tBin(protocol.EncodeSyncStep1([]byte{0})))
				for {
					op, b := p.next()
					if op == wsOpPing {
						p.send(tCtl(wsOpPong, b))
						continue
					}
					if op != wsOpBinary || !bytes.Equal(b, protocol.EncodeSyncStep2([]byte{0, 0})) {
						t.Fatalf("server sent opcode %d %x, want step 2", op, b)
					}
					break
				}
				if n := ts.srv.Docs().Peers("answers"); n != 1 {
					t.Fatalf("%d peers", n)
				}
			})
			t.Run("peer is silent", func(t *testing.T) {
				// (It may be gone before its mode could be checked: the
				// answering peer's check covers this server.)
				p := ts.rawDial(t, "silent")
				waitFor(t, "the silent peer is closed", func() bool {
					return ts.srv.Docs().Peers("silent") == 0 && ts.connCount() == 0
				})
				p.expectSync(protocol.SyncStep1)
				pings := 0
				for {
					op, b, err := p.readFrame()
					if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if op != wsOpPing {
						t.Fatalf("server sent opcode %d %q, want pings only", op, b)
					}
					pings++
				}
				if pings == 0 {
					t.Fatal("closed without a ping")
				}
			})
		})
	}
}

// TestCloseWithLoopConnections: Server.Close sends 1001 to every peer read
// by a loop, those in the middle of a message too, returns once the peers
// answered (or after closeHandshakeTimeout when they do not), and leaves no
// goroutine behind, read loops included.
func TestCloseWithLoopConnections(t *testing.T) {
	for _, answers := range []bool{true, false} {
		name := "peers answer"
		if !answers {
			name = "peers are silent"
		}
		t.Run(name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			if answers {
				setCloseHandshakeTimeout(t, time.Hour)
			} else {
				setCloseHandshakeTimeout(t, 200*time.Millisecond)
			}
			ts := newTestServer(t, func(c *Config) { c.ReadLoops = 0 })
			var peers []*rawPeer
			for i := range 6 {
				p := ts.rawDial(t, fmt.Sprintf("d%d", i%3))
				p.expectSync(protocol.SyncStep1)
				peers = append(peers, p)
			}
			// One peer is in the middle of a fragmented message.
			peers[0].send(tData(wsOpBinary, false, "\x00", rawKey))
			requireReadMode(t, ts, true)
			if ts.srv.poller == nil {
				t.Fatal("no read loops")
			}
			results := make(chan error, len(peers))
			for _, p := range peers {
				go func() { results <- closedGoingAway(p, answers) }()
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := ts.srv.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for range peers {
				if err := <-results; err != nil {
					t.Error(err)
				}
			}
			ts.http.Close()
			goleak.VerifyNone(t, before)
		})
	}
}

// closedGoingAway reads p until the server's close frame, which must say
// 1001, answers it if answer, and waits for the end of the connection.
func closedGoingAway(p *rawPeer, answer bool) error {
	for {
		op, b, err := p.readFrame()
		if err != nil {
			return err
		}
		if op != wsOpClose {
			return fmt.Errorf("server sent opcode %d before its close frame", op)
		}
		if len(b) < 2 || binary.BigEndian.Uint16(b) != 1001 || !strings.Contains(string(b[2:]), "shutting down") {
			return fmt.Errorf("close body %q, want 1001", b)
		}
		break
	}
	if answer {
		if err := p.writeErr(tStream(tCtl(wsOpClose, tCloseBody(1001, "")))); err != nil {
			return err
		}
	}
	return p.waitEnd()
}

// Every connection to a document is read by the same loop, so its room is
// never posted to from two loops at once; documents spread over the loops.
func TestLoopPerDocument(t *testing.T) {
	p, err := newPoller(4)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	used := map[*pollLoop]bool{}
	for i := range 200 {
		id := fmt.Sprintf("doc-%d", i)
		l := p.loopFor(id)
		for range 3 {
			if p.loopFor(id) != l {
				t.Fatalf("%s: connections on different loops", id)
			}
		}
		used[l] = true
	}
	if len(used) != 4 {
		t.Errorf("200 documents used %d of 4 loops", len(used))
	}
}
