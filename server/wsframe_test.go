package server

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/coder/websocket"
)

// tFrame is a client frame for the tests, encoded by the RFC 6455 rules
// (section 5.2) independently of the parser.
type tFrame struct {
	fin      bool
	rsv      byte // RSV1-3 bits, already shifted (0x40, 0x20, 0x10)
	op       byte
	payload  []byte
	key      [4]byte
	unmasked bool
	lenForm  byte   // 0: the minimal length encoding; 126 or 127: force that form
	rawLen   uint64 // with lenForm, announce this length instead of len(payload) when forceLen
	forceLen bool
}

func (f tFrame) encode() []byte {
	b0 := f.rsv | f.op
	if f.fin {
		b0 |= 0x80
	}
	n := uint64(len(f.payload))
	if f.forceLen {
		n = f.rawLen
	}
	form := f.lenForm
	if form == 0 {
		switch {
		case n <= 125:
			form = byte(n)
		case n <= 0xffff:
			form = 126
		default:
			form = 127
		}
	}
	var mbit byte = 0x80
	if f.unmasked {
		mbit = 0
	}
	out := []byte{b0, mbit | form}
	switch form {
	case 126:
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	case 127:
		out = binary.BigEndian.AppendUint64(out, n)
	}
	if f.unmasked {
		return append(out, f.payload...)
	}
	out = append(out, f.key[:]...)
	for i, c := range f.payload {
		out = append(out, c^f.key[i%4])
	}
	return out
}

// Shorthands for frames: masked with key, minimal length encoding.
func tData(op byte, fin bool, payload string, key uint32) tFrame {
	var k [4]byte
	binary.BigEndian.PutUint32(k[:], key)
	return tFrame{fin: fin, op: op, payload: []byte(payload), key: k}
}

func tClose(body []byte) tFrame {
	return tFrame{fin: true, op: wsOpClose, payload: body, key: [4]byte{0x37, 0xfa, 0x21, 0x3d}}
}

func tCloseBody(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

func tStream(frames ...tFrame) []byte {
	var out []byte
	for _, f := range frames {
		out = append(out, f.encode()...)
	}
	return out
}

// tEvent is a wsEvent detached from the parser's memory, comparable with ==.
type tEvent struct {
	Kind    wsEventKind
	Text    bool
	Payload string
	Code    uint16
	Reason  string
}

func (e tEvent) String() string {
	p := e.Payload
	if len(p) > 40 {
		p = fmt.Sprintf("%q...(%d bytes)", p[:40], len(p))
	} else {
		p = fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("{kind %d text %v payload %s code %d reason %q}", e.Kind, e.Text, p, e.Code, e.Reason)
}

func tMsg(text bool, payload string) tEvent {
	return tEvent{Kind: wsMessage, Text: text, Payload: payload}
}

// tResult is everything a stream produced: the events in order, then the
// error (Code 0: none).
type tResult struct {
	events []tEvent
	err    wsProtocolError
}

func (r tResult) String() string {
	var sb strings.Builder
	for _, e := range r.events {
		sb.WriteString(e.String())
		sb.WriteByte('\n')
	}
	fmt.Fprintf(&sb, "error %d %q", r.err.Code, r.err.Reason)
	return sb.String()
}

// tParse feeds chunks to a new parser and checks the invariants that hold
// after every feed: no feed after an error, events only of known kinds, a
// message payload with no spare capacity, and no memory held between
// messages.
func tParse(t testing.TB, limit int64, chunks [][]byte) tResult {
	t.Helper()
	p := newWSParser(limit)
	var res tResult
	emit := func(ev *wsEvent) bool {
		if ev.Kind < wsMessage || ev.Kind > wsClose {
			t.Fatalf("event of unknown kind %d", ev.Kind)
		}
		if ev.Kind == wsMessage && cap(ev.Payload) != len(ev.Payload) {
			t.Fatalf("message payload has len %d cap %d: the receiver keeps it, it must have no slack", len(ev.Payload), cap(ev.Payload))
		}
		res.events = append(res.events, tEvent{Kind: ev.Kind, Text: ev.Text, Payload: string(ev.Payload), Code: ev.Code, Reason: ev.Reason})
		return true
	}
	for _, c := range chunks {
		err := p.feed(c, emit)
		if err != nil {
			var pe *wsProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("feed returned %T %v, want *wsProtocolError", err, err)
			}
			if p.buf != nil || p.ctl != nil {
				t.Fatalf("parser keeps buffers after error %v", err)
			}
			res.err = *pe
			return res
		}
		if p.state == wsStHeader && p.hn == 0 && p.msgOp == 0 {
			if p.pending() != 0 || p.buf != nil || p.ctl != nil {
				t.Fatalf("idle parser holds memory: pending %d, buf cap %d, ctl cap %d", p.pending(), cap(p.buf), cap(p.ctl))
			}
		}
		if p.ev.Payload != nil || p.ev.Kind != 0 {
			t.Fatalf("parser keeps the last event: %+v", p.ev)
		}
	}
	return res
}

// Chunkings of a stream.
func tWhole(b []byte) [][]byte { return [][]byte{b} }

func tBytewise(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

func tSplit(b []byte, i int) [][]byte { return [][]byte{b[:i], b[i:]} }

func tRandomChunks(b []byte, r *rand.Rand, maxChunk int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(1+r.IntN(maxChunk), len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// tCheckChunkings parses stream whole, byte by byte, split at every
// boundary (if short) and in random chunks, and checks that every chunking
// gives want.
func tCheckChunkings(t *testing.T, limit int64, stream []byte, want tResult, seed uint64) {
	t.Helper()
	check := func(how string, chunks [][]byte) {
		t.Helper()
		got := tParse(t, limit, chunks)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got\n%v\nwant\n%v", how, got, want)
		}
	}
	check("whole", tWhole(stream))
	check("byte by byte", tBytewise(stream))
	if len(stream) <= 4096 {
		for i := 1; i < len(stream); i++ {
			check(fmt.Sprintf("split at %d", i), tSplit(stream, i))
		}
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for range 8 {
		check("random chunks", tRandomChunks(stream, r, 1+r.IntN(len(stream)+1)))
	}
	var fixed [][]byte
	for off := 0; off < len(stream); off += 4096 {
		fixed = append(fixed, stream[off:min(off+4096, len(stream))])
	}
	check("4 KB chunks", fixed)
}

func tPattern(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return string(b)
}

type wsCase struct {
	name   string
	limit  int64
	stream []byte
	want   []tEvent
	code   uint16 // the error expected after the events; 0: none
}

func wsCases() []wsCase {
	var cases []wsCase
	keys := []uint32{0, 0x01020304, 0xffffffff, 0xa5c3e17f}
	for i, n := range []int{0, 1, 3, 4, 5, 7, 8, 9, 125, 126, 127, 65535, 65536, 70000} {
		payload := tPattern(n)
		key := keys[i%len(keys)]
		cases = append(cases,
			wsCase{name: fmt.Sprintf("binary %d", n), stream: tStream(tData(wsOpBinary, true, payload, key)), want: []tEvent{tMsg(false, payload)}},
			wsCase{name: fmt.Sprintf("text %d", n), stream: tStream(tData(wsOpText, true, payload, key)), want: []tEvent{tMsg(true, payload)}},
		)
	}
	for _, n := range []int{0, 1, 124, 125} {
		payload := tPattern(n)
		cases = append(cases,
			wsCase{name: fmt.Sprintf("ping %d", n), stream: tStream(tData(wsOpPing, true, payload, 0x11223344)), want: []tEvent{{Kind: wsPing, Payload: payload}}},
			wsCase{name: fmt.Sprintf("pong %d", n), stream: tStream(tData(wsOpPong, true, payload, 0x55667788)), want: []tEvent{{Kind: wsPong, Payload: payload}}},
		)
	}

	nonMinimal16 := tData(wsOpBinary, true, "hello", 9)
	nonMinimal16.lenForm = 126
	nonMinimal64 := tData(wsOpBinary, true, "hello", 9)
	nonMinimal64.lenForm = 127
	cases = append(cases,
		wsCase{name: "non-minimal 16-bit length", stream: tStream(nonMinimal16), want: []tEvent{tMsg(false, "hello")}},
		wsCase{name: "non-minimal 64-bit length", stream: tStream(nonMinimal64), want: []tEvent{tMsg(false, "hello")}},
		wsCase{
			name: "fragmented with control frames between",
			stream: tStream(
				tData(wsOpText, false, "Hel", 1),
				tData(wsOpPing, true, "are you there", 2),
				tData(wsOpContinuation, false, "", 3),
				tData(wsOpPong, true, "", 4),
				tData(wsOpContinuation, false, "lo, ", 5),
				tData(wsOpContinuation, true, "world", 6),
				tData(wsOpBinary, true, "next", 7),
			),
			want: []tEvent{{Kind: wsPing, Payload: "are you there"}, {Kind: wsPong}, tMsg(true, "Hello, world"), tMsg(false, "next")},
		},
		wsCase{
			name:   "fragmented large",
			stream: tStream(tData(wsOpBinary, false, tPattern(70000)[:30000], 1), tData(wsOpContinuation, false, tPattern(70000)[30000:69999], 2), tData(wsOpContinuation, true, tPattern(70000)[69999:], 3)),
			want:   []tEvent{tMsg(false, tPattern(70000))},
		},
		wsCase{
			name:   "fragmented empty",
			stream: tStream(tData(wsOpBinary, false, "", 1), tData(wsOpContinuation, true, "", 2)),
			want:   []tEvent{tMsg(false, "")},
		},
		wsCase{name: "message at the limit", limit: 5, stream: tStream(tData(wsOpBinary, true, "12345", 1)), want: []tEvent{tMsg(false, "12345")}},
		wsCase{name: "fragments at the limit", limit: 5, stream: tStream(tData(wsOpBinary, false, "12", 1), tData(wsOpContinuation, true, "345", 1)), want: []tEvent{tMsg(false, "12345")}},
		wsCase{name: "control frames do not count to the limit", limit: 5, stream: tStream(tData(wsOpBinary, false, "12", 1), tData(wsOpPing, true, "0123456789", 1), tData(wsOpContinuation, true, "345", 1)), want: []tEvent{{Kind: wsPing, Payload: "0123456789"}, tMsg(false, "12345")}},

		// Close frames.
		wsCase{name: "close without body", stream: tStream(tClose(nil)), want: []tEvent{{Kind: wsClose, Code: 1005}}},
		wsCase{name: "close with code", stream: tStream(tClose(tCloseBody(1000, ""))), want: []tEvent{{Kind: wsClose, Code: 1000}}},
		wsCase{name: "close with reason", stream: tStream(tClose(tCloseBody(4001, "ünïcode bye"))), want: []tEvent{{Kind: wsClose, Code: 4001, Reason: "ünïcode bye"}}},
		wsCase{name: "close with longest reason", stream: tStream(tClose(tCloseBody(1001, strings.Repeat("r", 123)))), want: []tEvent{{Kind: wsClose, Code: 1001, Reason: strings.Repeat("r", 123)}}},
		wsCase{name: "close between fragments", stream: tStream(tData(wsOpBinary, false, "ab", 1), tClose(tCloseBody(1000, "x"))), want: []tEvent{{Kind: wsClose, Code: 1000, Reason: "x"}}},
		wsCase{name: "close reason not UTF-8", stream: tStream(tClose(tCloseBody(1000, "a\xffb"))), code: 1007},
		wsCase{name: "close reason cut UTF-8", stream: tStream(tClose(tCloseBody(1000, "\xc3"))), code: 1007},
		wsCase{name: "close body of one byte", stream: tStream(tClose([]byte{3})), code: 1002},

		// Protocol errors.
		wsCase{name: "unmasked frame", stream: tStream(tFrame{fin: true, op: wsOpBinary, payload: []byte("hi"), unmasked: true}), code: 1002},
		wsCase{name: "unmasked ping", stream: tStream(tFrame{fin: true, op: wsOpPing, unmasked: true}), code: 1002},
		wsCase{name: "RSV1", stream: tStream(tFrame{fin: true, rsv: 0x40, op: wsOpBinary, payload: []byte("hi")}), code: 1002},
		wsCase{name: "RSV2", stream: tStream(tFrame{fin: true, rsv: 0x20, op: wsOpBinary}), code: 1002},
		wsCase{name: "RSV3", stream: tStream(tFrame{fin: true, rsv: 0x10, op: wsOpPing}), code: 1002},
		wsCase{name: "fragmented ping", stream: tStream(tData(wsOpPing, false, "x", 1)), code: 1002},
		wsCase{name: "fragmented close", stream: tStream(tFrame{op: wsOpClose}), code: 1002},
		wsCase{name: "ping of 126 bytes", stream: tStream(tData(wsOpPing, true, tPattern(126), 1)), code: 1002},
		wsCase{name: "pong with non-minimal 16-bit length", stream: tStream(tFrame{fin: true, op: wsOpPong, payload: []byte("x"), lenForm: 126}), want: []tEvent{{Kind: wsPong, Payload: "x"}}},
		wsCase{name: "ping with non-minimal 64-bit length", stream: tStream(tFrame{fin: true, op: wsOpPing, payload: []byte("xyz"), lenForm: 127}), want: []tEvent{{Kind: wsPing, Payload: "xyz"}}},
		wsCase{name: "ping of 126 bytes, 16-bit length", stream: tStream(tFrame{fin: true, op: wsOpPing, forceLen: true, rawLen: 126, lenForm: 126}), code: 1002},
		wsCase{name: "close announcing 2^40 bytes", stream: tStream(tFrame{fin: true, op: wsOpClose, forceLen: true, rawLen: 1 << 40}), code: 1002},
		wsCase{name: "continuation without message", stream: tStream(tData(wsOpContinuation, true, "x", 1)), code: 1002},
		wsCase{name: "continuation after complete message", stream: tStream(tData(wsOpText, true, "a", 1), tData(wsOpContinuation, true, "b", 1)), want: []tEvent{tMsg(true, "a")}, code: 1002},
		wsCase{name: "text inside fragmented message", stream: tStream(tData(wsOpBinary, false, "a", 1), tData(wsOpText, true, "b", 1)), code: 1002},
		wsCase{name: "binary inside fragmented message", stream: tStream(tData(wsOpText, false, "a", 1), tData(wsOpPing, true, "p", 1), tData(wsOpBinary, false, "b", 1)), want: []tEvent{{Kind: wsPing, Payload: "p"}}, code: 1002},
		wsCase{name: "64-bit length with MSB", stream: tStream(tFrame{fin: true, op: wsOpBinary, lenForm: 127, forceLen: true, rawLen: 1 << 63}), code: 1002},
		wsCase{name: "64-bit length all ones", stream: tStream(tFrame{fin: true, op: wsOpBinary, lenForm: 127, forceLen: true, rawLen: ^uint64(0)}), code: 1002},
		wsCase{name: "message over the limit", limit: 4, stream: tStream(tData(wsOpBinary, true, "12345", 1)), code: 1009},
		wsCase{name: "fragments over the limit", limit: 4, stream: tStream(tData(wsOpBinary, false, "12", 1), tData(wsOpContinuation, true, "345", 1)), code: 1009},
		wsCase{name: "huge announced length over the limit", limit: 1 << 20, stream: tStream(tFrame{fin: true, op: wsOpBinary, lenForm: 127, forceLen: true, rawLen: 1<<63 - 1}), code: 1009},
		wsCase{name: "events before the error", stream: append(tStream(tData(wsOpBinary, true, "ok", 1), tData(wsOpPing, true, "p", 2)), 0x82, 0x02, 'h', 'i'), want: []tEvent{tMsg(false, "ok"), {Kind: wsPing, Payload: "p"}}, code: 1002},
	)
	for _, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cases = append(cases, wsCase{name: fmt.Sprintf("opcode %d", op), stream: tStream(tData(op, true, "x", 1)), code: 1002})
	}
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cases = append(cases, wsCase{name: fmt.Sprintf("close code %d", code), stream: tStream(tClose(tCloseBody(code, "r"))), want: []tEvent{{Kind: wsClose, Code: code, Reason: "r"}}})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535} {
		cases = append(cases, wsCase{name: fmt.Sprintf("close code %d", code), stream: tStream(tClose(tCloseBody(code, ""))), code: 1002})
	}
	return cases
}

func TestWSParserCases(t *testing.T) {
	t.Parallel()
	for i, tc := range wsCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := tResult{events: tc.want}
			if tc.code != 0 {
				got := tParse(t, tc.limit, tWhole(tc.stream))
				if got.err.Code != tc.code {
					t.Fatalf("error code %d (%q), want %d", got.err.Code, got.err.Reason, tc.code)
				}
				if len(got.err.Reason) == 0 || len(got.err.Reason) > 123 {
					t.Fatalf("error reason %q: want 1 to 123 bytes", got.err.Reason)
				}
				want.err = got.err // the reason text is the parser's; chunkings must agree on it
			}
			tCheckChunkings(t, tc.limit, tc.stream, want, uint64(i))
		})
	}
}

// TestWSParserRandomStreams checks random sequences of valid frames against
// the events they were generated from, under every chunking.
func TestWSParserRandomStreams(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(6455, 1))
	for i := range 300 {
		stream, want := tRandomStream(r, i%60 == 0)
		tCheckChunkings(t, 0, stream, tResult{events: want}, uint64(i))
	}
}

// tRandomStream returns a stream of valid frames and the events it must
// produce: data messages (some fragmented, with control frames between the
// fragments), pings and pongs, sometimes a close at the end.
func tRandomStream(r *rand.Rand, large bool) ([]byte, []tEvent) {
	var frames []tFrame
	var want []tEvent
	frame := func(fin bool, op byte, payload string) {
		f := tData(op, fin, payload, r.Uint32())
		if r.IntN(8) == 0 {
			f.key = [4]byte{}
		}
		if r.IntN(6) == 0 {
			f.lenForm = []byte{126, 127}[r.IntN(2)]
			if f.lenForm == 126 && len(payload) > 0xffff {
				f.lenForm = 127
			}
		}
		frames = append(frames, f)
	}
	control := func() {
		payload := tPattern(r.IntN(126))
		if r.IntN(2) == 0 {
			frame(true, wsOpPing, payload)
			want = append(want, tEvent{Kind: wsPing, Payload: payload})
		} else {
			frame(true, wsOpPong, payload)
			want = append(want, tEvent{Kind: wsPong, Payload: payload})
		}
	}
	for range 1 + r.IntN(8) {
		if r.IntN(4) == 0 {
			control()
			continue
		}
		n := r.IntN(200)
		if large && r.IntN(3) == 0 {
			n = 60000 + r.IntN(20000)
		}
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(r.Uint32())
		}
		text := r.IntN(2) == 0
		op := byte(wsOpBinary)
		if text {
			op = wsOpText
		}
		rest := string(payload)
		for nfrag := r.IntN(4); nfrag > 0; nfrag-- {
			k := r.IntN(len(rest) + 1)
			frame(false, op, rest[:k])
			op = wsOpContinuation
			rest = rest[k:]
			if r.IntN(3) == 0 {
				control()
			}
		}
		frame(true, op, rest)
		want = append(want, tMsg(text, string(payload)))
	}
	if r.IntN(5) == 0 {
		reason := strings.ToValidUTF8(tPattern(r.IntN(20)), "?")
		code := 1000 + uint16(r.IntN(4))
		frames = append(frames, tClose(tCloseBody(code, reason)))
		want = append(want, tEvent{Kind: wsClose, Code: code, Reason: reason})
	}
	return tStream(frames...), want
}

// TestWSParserStopsWhenEmitSaysSo checks that feed returns at once, without
// an error and without further events, when emit returns false.
func TestWSParserStopsWhenEmitSaysSo(t *testing.T) {
	t.Parallel()
	stream := tStream(tData(wsOpBinary, true, "a", 1), tData(wsOpPing, true, "b", 2), tData(wsOpBinary, true, "c", 3))
	for stopAt := 1; stopAt <= 3; stopAt++ {
		p := newWSParser(0)
		var n int
		err := p.feed(stream, func(ev *wsEvent) bool {
			n++
			return n < stopAt
		})
		if err != nil || n != stopAt {
			t.Fatalf("stop at %d: %d events, err %v", stopAt, n, err)
		}
	}
}

func TestWSParserRefusesFeedAfterError(t *testing.T) {
	t.Parallel()
	p := newWSParser(0)
	emit := func(*wsEvent) bool { return true }
	if err := p.feed([]byte{0x82, 0x00}, emit); err == nil {
		t.Fatal("unmasked frame accepted")
	}
	err := p.feed(tStream(tData(wsOpBinary, true, "ok", 1)), emit)
	var pe *wsProtocolError
	if !errors.As(err, &pe) || pe.Code != 1002 {
		t.Fatalf("feed after error: %v, want a 1002 error", err)
	}
}

// TestWSParserMemory checks what a parser holds: nothing between messages,
// bytes as they arrive (not as announced) inside a frame.
func TestWSParserMemory(t *testing.T) {
	t.Parallel()
	t.Logf("unsafe.Sizeof(wsParser{}) = %d bytes", unsafe.Sizeof(wsParser{}))
	if s := unsafe.Sizeof(wsParser{}); s > 160 {
		t.Errorf("wsParser is %d bytes; it is kept per connection, keep it under 160", s)
	}
	emit := func(*wsEvent) bool { return true }

	t.Run("idle after a message", func(t *testing.T) {
		p := newWSParser(0)
		stream := tStream(tData(wsOpBinary, false, tPattern(1000), 1), tData(wsOpPing, true, "p", 1), tData(wsOpContinuation, true, tPattern(1000), 1))
		for _, c := range tRandomChunks(stream, rand.New(rand.NewPCG(1, 2)), 300) {
			if err := p.feed(c, emit); err != nil {
				t.Fatal(err)
			}
		}
		if p.pending() != 0 || p.buf != nil || p.ctl != nil {
			t.Fatalf("after a message: pending %d, buf %v, ctl %v", p.pending(), p.buf != nil, p.ctl != nil)
		}
	})

	t.Run("announced 16 MB, sent 10 bytes", func(t *testing.T) {
		p := newWSParser(32 << 20)
		f := tFrame{fin: true, op: wsOpBinary, payload: []byte(tPattern(10)), forceLen: true, rawLen: 16 << 20}
		if err := p.feed(f.encode(), emit); err != nil {
			t.Fatal(err)
		}
		if p.pending() >= 128<<10 || cap(p.buf) > wsGrowStep {
			t.Fatalf("holds %d bytes (buf cap %d) for 10 bytes received", p.pending(), cap(p.buf))
		}
		if p.pending() < 10 {
			t.Fatalf("pending %d: the 10 bytes received are held", p.pending())
		}
		// The same for a fragment that is not the last one.
		p = newWSParser(0)
		f.fin = false
		for _, c := range tBytewise(f.encode()) {
			if err := p.feed(c, emit); err != nil {
				t.Fatal(err)
			}
		}
		if p.pending() >= 128<<10 {
			t.Fatalf("holds %d bytes for 10 bytes received", p.pending())
		}
	})

	t.Run("grows with the bytes", func(t *testing.T) {
		p := newWSParser(0)
		payload := tPattern(1 << 20)
		stream := tStream(tData(wsOpBinary, true, payload, 7))
		var got []byte
		emitKeep := func(ev *wsEvent) bool { got = ev.Payload; return true }
		for off := 0; off < len(stream); off += 4096 {
			if err := p.feed(stream[off:min(off+4096, len(stream))], emitKeep); err != nil {
				t.Fatal(err)
			}
			if got == nil && cap(p.buf) > max(2*off, wsGrowStep) {
				t.Fatalf("after %d bytes the buffer has cap %d", off+4096, cap(p.buf))
			}
		}
		if string(got) != payload || cap(got) != len(got) {
			t.Fatalf("message of %d bytes, cap %d", len(got), cap(got))
		}
	})

	t.Run("limit before payload", func(t *testing.T) {
		// Only the header of a too-big frame: the error comes at once.
		p := newWSParser(1000)
		hdr := tFrame{fin: true, op: wsOpBinary, forceLen: true, rawLen: 1001}.encode()
		err := p.feed(hdr, emit)
		var pe *wsProtocolError
		if !errors.As(err, &pe) || pe.Code != 1009 {
			t.Fatalf("got %v, want a 1009 error", err)
		}
		if p.buf != nil {
			t.Fatal("buffered a message over the limit")
		}
	})
}

// TestWSParserAllocs checks the allocations per message: one, the payload,
// when the message arrived in one chunk, fragmented or not.
func TestWSParserAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	cases := []struct {
		name   string
		stream []byte
		allocs float64
	}{
		{"one frame", tStream(tData(wsOpBinary, true, tPattern(30), 1)), 1},
		{"one large frame", tStream(tData(wsOpBinary, true, tPattern(70000), 1)), 1},
		{"fragments", tStream(tData(wsOpBinary, false, tPattern(30), 1), tData(wsOpPong, true, "", 1), tData(wsOpContinuation, false, "x", 1), tData(wsOpContinuation, true, tPattern(300), 1)), 1},
		{"three messages", tStream(tData(wsOpBinary, true, "a", 1), tData(wsOpBinary, true, "b", 1), tData(wsOpBinary, true, "c", 1)), 3},
		{"ping", tStream(tData(wsOpPing, true, "keepalive", 1)), 1},
		{"empty ping", tStream(tData(wsOpPing, true, "", 1)), 0},
		{"close without reason", tStream(tClose(tCloseBody(1000, ""))), 1},
	}
	emit := func(*wsEvent) bool { return true }
	p := new(wsParser) // on the heap, as inside a connection
	for _, tc := range cases {
		got := testing.AllocsPerRun(100, func() {
			*p = newWSParser(0)
			if err := p.feed(tc.stream, emit); err != nil {
				t.Fatal(err)
			}
		})
		if got != tc.allocs {
			t.Errorf("%s: %v allocations, want %v", tc.name, got, tc.allocs)
		}
	}
}

// TestWSUnmask checks the word-at-a-time unmasking against the definition,
// for every length, key offset and split point up to 40 bytes.
func TestWSUnmask(t *testing.T) {
	t.Parallel()
	key := [4]byte{0x12, 0x9a, 0xfe, 0x01}
	k := binary.LittleEndian.Uint32(key[:])
	src := []byte(tPattern(40))
	for n := 0; n <= len(src); n++ {
		for start := range 4 {
			want := make([]byte, n)
			for i := range want {
				want[i] = src[i] ^ key[(start+i)%4]
			}
			for cut := 0; cut <= n; cut++ {
				got := make([]byte, n)
				pos := wsUnmask(got[:cut], src[:cut], k, uint8(start))
				pos = wsUnmask(got[cut:], src[cut:n], k, pos)
				if !bytes.Equal(got, want) || int(pos) != (start+n)%4 {
					t.Fatalf("n %d start %d cut %d: got %x pos %d, want %x pos %d", n, start, cut, got, pos, want, (start+n)%4)
				}
			}
		}
	}
}

var wsCapture = flag.Bool("wsframe.capture", false, "TestWSParserCoderClient writes the bytes coder/websocket sent to testdata/wsframe/coder_client.bin")

// TestWSParserCoderClient parses what a real client, coder/websocket, sends:
// a raw server does the handshake by hand and feeds the socket's bytes to
// the parser in reads of at most 500 bytes.
func TestWSParserCoderClient(t *testing.T) {
	t.Parallel()
	results := make(chan tRawResult, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results <- tRawServer(w, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ctx = c.CloseRead(ctx) // reads the raw server's pong and close frames
	if err := tCoderClientSession(ctx, c); err != nil {
		t.Fatal(err)
	}
	res := <-results
	if res.err != nil {
		t.Fatal(res.err)
	}
	if want := tCoderClientEvents(); !reflect.DeepEqual(res.events, want) {
		t.Fatalf("got\n%v\nwant\n%v", tResult{events: res.events}, tResult{events: want})
	}
	if *wsCapture {
		if err := os.WriteFile(filepath.Join("testdata", "wsframe", "coder_client.bin"), res.raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWSParserCapturedClient parses the bytes coder/websocket sent in a
// recorded run of tCoderClientSession (go test -run CoderClient
// -wsframe.capture rewrites the file), under every chunking.
func TestWSParserCapturedClient(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "wsframe", "coder_client.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := tCoderClientEvents()
	// The ping payload is whatever the recorded client chose: take it from
	// the whole parse, then hold every chunking to the same.
	got := tParse(t, 1<<20, tWhole(b))
	for i := range want {
		if i < len(got.events) && want[i].Kind == wsPing {
			want[i].Payload = got.events[i].Payload
		}
	}
	tCheckChunkings(t, 1<<20, b, tResult{events: want}, 42)
}

// tCoderClientSession sends, through a coder/websocket client, the messages
// tCoderClientEvents lists.
func tCoderClientSession(ctx context.Context, c *websocket.Conn) error {
	for _, n := range []int{0, 1, 125, 126, 1000} {
		if err := c.Write(ctx, websocket.MessageBinary, []byte(tPattern(n))); err != nil {
			return fmt.Errorf("write %d bytes: %w", n, err)
		}
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("héllo")); err != nil {
		return fmt.Errorf("write text: %w", err)
	}
	// A fragmented message: coder/websocket sends a frame per Write, then an
	// empty final frame.
	mw, err := c.Writer(ctx, websocket.MessageBinary)
	if err != nil {
		return fmt.Errorf("writer: %w", err)
	}
	for _, part := range []string{"frag", tPattern(300), "ments"} {
		if _, err := mw.Write([]byte(part)); err != nil {
			return fmt.Errorf("write fragment: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("close writer: %w", err)
	}
	if err := c.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	// Last, a message with a 64-bit length, so that the small frames above
	// make the first 4 KB of the recorded stream (the fuzz seed).
	if err := c.Write(ctx, websocket.MessageBinary, []byte(tPattern(65536))); err != nil {
		return fmt.Errorf("write 65536 bytes: %w", err)
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// tCoderClientEvents is what tCoderClientSession sends. The ping's payload is
// a random number chosen by coder/websocket: the raw server records its kind
// only.
func tCoderClientEvents() []tEvent {
	var want []tEvent
	for _, n := range []int{0, 1, 125, 126, 1000} {
		want = append(want, tMsg(false, tPattern(n)))
	}
	return append(want,
		tMsg(true, "héllo"),
		tMsg(false, "frag"+tPattern(300)+"ments"),
		tEvent{Kind: wsPing},
		tMsg(false, tPattern(65536)),
		tEvent{Kind: wsClose, Code: 1000, Reason: "bye"},
	)
}

type tRawResult struct {
	events []tEvent
	raw    []byte // every byte the client sent after the handshake
	err    error
}

// tRawServer accepts a WebSocket by hand and parses the client's frames,
// answering pings and the close frame, until the client closes.
func tRawServer(w http.ResponseWriter, r *http.Request) (res tRawResult) {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		res.err = fmt.Errorf("hijack: %w", err)
		return res
	}
	defer conn.Close()
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	if err := brw.Flush(); err != nil {
		res.err = fmt.Errorf("handshake: %w", err)
		return res
	}
	p := newWSParser(1 << 20)
	buf := make([]byte, 500)
	done := false
	for !done {
		n, err := brw.Reader.Read(buf)
		if err != nil {
			res.err = fmt.Errorf("read: %w", err)
			return res
		}
		res.raw = append(res.raw, buf[:n]...)
		var werr error
		perr := p.feed(buf[:n], func(ev *wsEvent) bool {
			e := tEvent{Kind: ev.Kind, Text: ev.Text, Payload: string(ev.Payload), Code: ev.Code, Reason: ev.Reason}
			switch ev.Kind {
			case wsPing:
				_, werr = conn.Write(append([]byte{0x8a, byte(len(ev.Payload))}, ev.Payload...))
				e.Payload = ""
			case wsClose:
				_, werr = conn.Write([]byte{0x88, 2, byte(ev.Code >> 8), byte(ev.Code)})
				done = true
			}
			res.events = append(res.events, e)
			return werr == nil && !done
		})
		if perr != nil {
			res.err = fmt.Errorf("parse: %w", perr)
			return res
		}
		if werr != nil {
			res.err = fmt.Errorf("write: %w", werr)
			return res
		}
	}
	return res
}

// FuzzWSParser feeds arbitrary bytes whole and in the chunks that cuts
// describes: the parser must not panic, errors must carry a close code it
// may send, and both feeds must give the same events and the same error.
func FuzzWSParser(f *testing.F) {
	for _, tc := range wsCases() {
		if len(tc.stream) <= 4096 {
			f.Add(tc.stream, []byte{byte(tc.limit), 3, 1, 200, 7})
		}
	}
	// The recorded coder/websocket stream, up to its large last message.
	rec, err := os.ReadFile(filepath.Join("testdata", "wsframe", "coder_client.bin"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec[:min(len(rec), 4096)], []byte{0, 1, 2, 3, 250})
	r := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		stream, _ := tRandomStream(r, false)
		f.Add(stream, []byte{0, byte(r.Uint32()), byte(r.Uint32())})
	}
	f.Fuzz(func(t *testing.T, stream []byte, cuts []byte) {
		var limit int64
		if len(cuts) > 0 {
			limit = int64(cuts[0]) * 8 // 0: no limit
		}
		var chunks [][]byte
		rest := stream
		for i := 1; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(int(cuts[i])+1, n)
			}
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}
		whole := tParse(t, limit, tWhole(stream))
		split := tParse(t, limit, chunks)
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("whole:\n%v\nsplit:\n%v", whole, split)
		}
		switch whole.err.Code {
		case 0:
		case 1002, 1007, 1009:
			if len(whole.err.Reason) == 0 || len(whole.err.Reason) > 123 {
				t.Fatalf("reason %q: want 1 to 123 bytes", whole.err.Reason)
			}
		default:
			t.Fatalf("error code %d", whole.err.Code)
		}
	})
}

// BenchmarkWSParser parses a stream of small (12-40 byte) masked binary
// frames, the size of typing updates and awareness, fed in 4 KB chunks.
// An op is one message.
func BenchmarkWSParser(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 2))
	var stream []byte
	var frames int
	for len(stream) < 256<<10 {
		stream = append(stream, tData(wsOpBinary, true, tPattern(12+r.IntN(29)), r.Uint32()).encode()...)
		frames++
	}
	b.SetBytes(int64(len(stream) / frames))
	p := newWSParser(1 << 20)
	var n int
	emit := func(ev *wsEvent) bool { n++; return true }
	b.ReportAllocs()
	b.ResetTimer()
	for off := 0; n < b.N; {
		end := min(off+4096, len(stream))
		if err := p.feed(stream[off:end], emit); err != nil {
			b.Fatal(err)
		}
		off = end
		if off == len(stream) {
			off = 0
		}
	}
}
