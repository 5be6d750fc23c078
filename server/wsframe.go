package server

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// An incremental parser of the frames a WebSocket client sends (RFC 6455,
// no extensions), for a read loop driven by socket readiness: when a socket
// is readable the loop reads whatever bytes are there into a buffer it shares
// among connections and hands them to the connection's parser. The parser is
// a state machine over bytes only (no I/O, no goroutines, no clocks), and
// feeding a stream in one piece, byte by byte or in any other chunks gives
// the same events and the same error.
//
// Memory is the point: thousands of idle connections must cost only the
// struct. A parser between frames holds no buffer; a frame cut by a chunk
// boundary keeps its header in a fixed array and its payload in a buffer
// grown as the bytes arrive, never by the length a header announces. A
// message whose frames all arrived in one chunk costs one allocation, the
// payload the receiver keeps.

// wsEventKind says what the parser found.
type wsEventKind uint8

const (
	wsMessage wsEventKind = iota + 1 // a complete data message (binary or text, reassembled from fragments)
	wsPing                           // a ping control frame (Payload: its application data, <=125 bytes)
	wsPong                           // a pong control frame
	wsClose                          // a close frame: Code (1005 when the frame had no body) and Reason
)

// wsEvent is one thing the parser found. The parser reuses it: it is valid
// only during the emit callback (Payload of a wsMessage excepted).
type wsEvent struct {
	Kind wsEventKind
	Text bool   // wsMessage: the message's first frame was a text frame (opcode 1)
	Code uint16 // wsClose
	// Payload is unmasked. For wsMessage it is a new slice of exactly the
	// message's length (and capacity) that the receiver may keep; for ping
	// and pong it is the parser's memory, valid only during the callback.
	Payload []byte
	Reason  string // wsClose
}

// Close codes the parser answers a broken peer with (RFC 6455 section 7.4.1).
const (
	wsCodeProtocol    = 1002 // the peer broke the framing rules
	wsCodeNoStatus    = 1005 // reported for a close frame without a body; never sent
	wsCodeInvalidData = 1007 // a close reason that is not UTF-8
	wsCodeTooBig      = 1009 // a data message longer than the parser's limit
)

// wsProtocolError is returned when the peer broke RFC 6455: Code is the close
// code to answer with (1002, 1007 or 1009), Reason a short reason for the
// close frame (at most 123 bytes, so it fits a control frame with the code).
type wsProtocolError struct {
	Code   uint16
	Reason string
}

func (e *wsProtocolError) Error() string {
	return fmt.Sprintf("websocket protocol error %d: %s", e.Code, e.Reason)
}

func wsFail(code uint16, reason string) *wsProtocolError {
	return &wsProtocolError{Code: code, Reason: reason}
}

// Frame opcodes (RFC 6455 section 5.2).
const (
	wsOpContinuation = 0
	wsOpText         = 1
	wsOpBinary       = 2
	wsOpClose        = 8
	wsOpPing         = 9
	wsOpPong         = 10
)

// Parser states.
const (
	wsStHeader  = iota // collecting a frame header into hdr[:hn]
	wsStPayload        // consuming the payload of the frame whose header is hdr[:hn]
	wsStFailed         // a protocol error was returned; feed must not be called again
)

// wsGrowStep bounds how far the assembly buffer grows ahead of the bytes that
// arrived: a peer announcing 16 MB and sending 10 bytes costs 64 KB, not 16 MB.
const wsGrowStep = 64 << 10

// wsParser parses the frames of one client connection. The zero value
// accepts messages of any length; newWSParser sets a limit.
type wsParser struct {
	limit  int64  // max bytes of one reassembled data message; <=0: no limit
	remain uint64 // wsStPayload: payload bytes of the current frame still to come
	// buf assembles a data message whose bytes did not all arrive in one
	// chunk or that came in fragments. nil between messages.
	buf []byte
	// ctl assembles the payload of a control frame (ping, pong, close).
	// nil between frames.
	ctl   []byte
	ev    wsEvent // the event handed to emit, kept here so that emitting does not allocate
	hdr   [14]byte
	hn    uint8 // header bytes in hdr; in wsStPayload, the header's length
	kpos  uint8 // wsStPayload: offset in the mask key of the next payload byte
	msgOp uint8 // opcode of the data message in progress (text or binary); 0: none
	state uint8
}

// newWSParser returns a parser that refuses (1009) data messages longer than
// limit bytes; limit <= 0 means no limit.
func newWSParser(limit int64) wsParser {
	return wsParser{limit: limit}
}

// pending reports how many bytes of memory the parser holds for an
// incomplete frame or message: the header bytes collected plus the capacity
// of its assembly buffers. It is 0 between messages.
func (p *wsParser) pending() int {
	n := cap(p.buf) + cap(p.ctl)
	if p.state == wsStHeader {
		n += int(p.hn)
	}
	return n
}

// feed parses b, calling emit for each event in order. b is not modified and
// not retained: the caller may reuse it once feed returns. If emit returns
// false, feed returns nil at once and the rest of b is discarded (the caller
// is closing). At the first violation of RFC 6455 feed returns a
// *wsProtocolError; the parser must not be fed again after that.
func (p *wsParser) feed(b []byte, emit func(ev *wsEvent) bool) error {
	if p.state == wsStFailed {
		return wsFail(wsCodeProtocol, "read after protocol error")
	}
	for {
		if p.state == wsStHeader {
			if len(b) == 0 {
				return nil
			}
			var ok bool
			var err *wsProtocolError
			b, ok, err = p.readHeader(b)
			if err != nil {
				p.state = wsStFailed
				p.buf, p.ctl = nil, nil
				return err
			}
			if !ok {
				return nil
			}
			op := p.hdr[0] & 0x0f
			if op < wsOpClose && p.msgOp == 0 {
				// The first frame of a data message.
				p.msgOp = op
				if p.hdr[0]&0x80 != 0 && p.remain <= uint64(len(b)) {
					// The whole message is here: one allocation, no copy.
					n := int(p.remain)
					msg := make([]byte, n)
					wsUnmask(msg, b[:n], p.key(), 0)
					b = b[n:]
					p.endFrame()
					p.msgOp = 0
					if !p.emit(emit, wsEvent{Kind: wsMessage, Text: op == wsOpText, Payload: msg}) {
						return nil
					}
					continue
				}
				if p.hdr[0]&0x80 == 0 {
					// Fragmented: if all of it is in b, size the buffer once.
					if total, ok := wsScanMessage(b, p.remain, p.limit); ok && total > 0 {
						p.buf = make([]byte, 0, total)
					}
				}
			}
		}

		// wsStPayload.
		op := p.hdr[0] & 0x0f
		n := len(b)
		if uint64(n) > p.remain {
			n = int(p.remain)
		}
		if n > 0 {
			if op >= wsOpClose {
				if p.ctl == nil {
					p.ctl = make([]byte, 0, p.remain) // at most 125 bytes: checked by readHeader
				}
				l := len(p.ctl)
				p.ctl = p.ctl[:l+n]
				p.kpos = wsUnmask(p.ctl[l:], b[:n], p.key(), p.kpos)
			} else {
				p.grow(n)
				l := len(p.buf)
				p.buf = p.buf[:l+n]
				p.kpos = wsUnmask(p.buf[l:], b[:n], p.key(), p.kpos)
			}
			b = b[n:]
			p.remain -= uint64(n)
		}
		if p.remain > 0 {
			return nil // b is used up
		}

		// The frame is complete.
		fin := p.hdr[0]&0x80 != 0
		p.endFrame()
		var ev wsEvent
		switch op {
		case wsOpClose:
			body := p.ctl
			p.ctl = nil
			var err *wsProtocolError
			ev, err = wsParseClose(body)
			if err != nil {
				p.state = wsStFailed
				p.buf = nil
				return err
			}
		case wsOpPing, wsOpPong:
			ev = wsEvent{Kind: wsPing, Payload: p.ctl}
			if op == wsOpPong {
				ev.Kind = wsPong
			}
			p.ctl = nil
		default:
			if !fin {
				continue
			}
			msg := p.buf
			p.buf = nil
			if msg == nil {
				msg = []byte{} // empty, like a one-frame empty message
			} else if cap(msg) != len(msg) {
				// Not expected (the buffer never grows past the end of the
				// frame being read) but the receiver keeps the slice: no slack.
				msg = append(make([]byte, 0, len(msg)), msg...)
			}
			ev = wsEvent{Kind: wsMessage, Text: p.msgOp == wsOpText, Payload: msg}
			p.msgOp = 0
		}
		if !p.emit(emit, ev) {
			return nil
		}
	}
}

// emit hands ev to the callback through p.ev, then clears p.ev so that the
// parser keeps no reference to the payload.
func (p *wsParser) emit(emit func(ev *wsEvent) bool, ev wsEvent) bool {
	p.ev = ev
	ok := emit(&p.ev)
	p.ev = wsEvent{}
	return ok
}

// key returns the masking key of the current frame, the last 4 header bytes.
func (p *wsParser) key() uint32 {
	return binary.LittleEndian.Uint32(p.hdr[p.hn-4 : p.hn])
}

// endFrame returns the parser to reading a header.
func (p *wsParser) endFrame() {
	p.state = wsStHeader
	p.hn = 0
	p.kpos = 0
}

// readHeader copies header bytes from b into hdr and checks them as soon as
// they are there. It returns the rest of b and whether the header is
// complete; when it is, the parser is in wsStPayload with remain set.
func (p *wsParser) readHeader(b []byte) ([]byte, bool, *wsProtocolError) {
	if p.hn < 2 {
		n := copy(p.hdr[p.hn:2], b)
		p.hn += uint8(n)
		b = b[n:]
		if p.hn < 2 {
			return b, false, nil
		}
		if err := p.checkStart(); err != nil {
			return b, false, err
		}
	}
	need := wsHeaderLen(p.hdr[1])
	n := copy(p.hdr[p.hn:need], b)
	p.hn += uint8(n)
	b = b[n:]
	if int(p.hn) < need {
		return b, false, nil
	}
	var length uint64
	switch l7 := p.hdr[1] & 0x7f; l7 {
	case 126:
		length = uint64(binary.BigEndian.Uint16(p.hdr[2:4]))
	case 127:
		length = binary.BigEndian.Uint64(p.hdr[2:10])
		if length>>63 != 0 {
			return b, false, wsFail(wsCodeProtocol, "frame length has the most significant bit set")
		}
	default:
		length = uint64(l7)
	}
	if p.hdr[0]&0x0f >= wsOpClose {
		if length > 125 {
			return b, false, wsFail(wsCodeProtocol, "control frame longer than 125 bytes")
		}
	} else if p.limit > 0 && length > uint64(p.limit)-uint64(len(p.buf)) {
		// len(buf) <= limit always: every frame before this one passed here.
		return b, false, wsFail(wsCodeTooBig, "message too big")
	}
	p.remain = length
	p.kpos = 0
	p.state = wsStPayload
	return b, true, nil
}

// checkStart checks the first two bytes of a frame header.
func (p *wsParser) checkStart() *wsProtocolError {
	b0, b1 := p.hdr[0], p.hdr[1]
	if b1&0x80 == 0 {
		return wsFail(wsCodeProtocol, "client frame not masked")
	}
	if b0&0x70 != 0 {
		return wsFail(wsCodeProtocol, "reserved bits set")
	}
	switch op := b0 & 0x0f; op {
	case wsOpContinuation:
		if p.msgOp == 0 {
			return wsFail(wsCodeProtocol, "continuation frame without a message")
		}
	case wsOpText, wsOpBinary:
		if p.msgOp != 0 {
			return wsFail(wsCodeProtocol, "new message inside a fragmented message")
		}
	case wsOpClose, wsOpPing, wsOpPong:
		if b0&0x80 == 0 {
			return wsFail(wsCodeProtocol, "fragmented control frame")
		}
		// The length (<= 125) is checked once decoded: like the data
		// frames' lengths, a non-minimal encoding is tolerated.
	default:
		return wsFail(wsCodeProtocol, "unknown opcode")
	}
	return nil
}

// wsHeaderLen is the length of a masked frame header given its second byte.
func wsHeaderLen(b1 byte) int {
	switch b1 & 0x7f {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// grow makes room in buf for n more bytes of the current data frame. The
// buffer grows by doubling, at least by wsGrowStep, but never past the end
// of the current frame: bytes not yet arrived cost at most wsGrowStep, and
// when the message's last frame ends, the buffer is exactly full.
func (p *wsParser) grow(n int) {
	l := len(p.buf)
	if cap(p.buf)-l >= n {
		return
	}
	c := max(l+n, 2*cap(p.buf), wsGrowStep)
	if end := uint64(l) + p.remain; uint64(c) > end {
		c = int(end) // end >= l+n: remain counts the n bytes at hand
	}
	nb := make([]byte, l, c)
	copy(nb, p.buf)
	p.buf = nb
}

// wsScanMessage looks ahead in b, which starts with the payload (first bytes
// remain long) of a message's first, non-final frame, for the message's
// remaining frames. If they all are in b and well formed, it returns the
// message's length, so that the assembly buffer is allocated once. Any doubt
// (a frame cut by the end of b, a broken header, a limit exceeded) returns
// false and leaves the frames to the parser, which grows the buffer as they
// come and reports the errors.
func wsScanMessage(b []byte, remain uint64, limit int64) (int, bool) {
	if remain > uint64(len(b)) {
		return 0, false
	}
	total := remain
	pos := int(remain)
	for {
		if len(b)-pos < 2 {
			return 0, false
		}
		b0, b1 := b[pos], b[pos+1]
		if b1&0x80 == 0 || b0&0x70 != 0 {
			return 0, false
		}
		hl := wsHeaderLen(b1)
		if len(b)-pos < hl {
			return 0, false
		}
		var length uint64
		switch l7 := b1 & 0x7f; l7 {
		case 126:
			length = uint64(binary.BigEndian.Uint16(b[pos+2:]))
		case 127:
			length = binary.BigEndian.Uint64(b[pos+2:])
		default:
			length = uint64(l7)
		}
		pos += hl
		if length > uint64(len(b)-pos) {
			return 0, false
		}
		pos += int(length)
		switch op := b0 & 0x0f; op {
		case wsOpClose, wsOpPing, wsOpPong:
			if b0&0x80 == 0 || length > 125 {
				return 0, false
			}
		case wsOpContinuation:
			total += length
			if limit > 0 && total > uint64(limit) {
				return 0, false
			}
			if b0&0x80 != 0 {
				return int(total), true
			}
		default:
			return 0, false
		}
	}
}

// wsParseClose decodes the body of a close frame (RFC 6455 section 5.5.1).
func wsParseClose(body []byte) (wsEvent, *wsProtocolError) {
	ev := wsEvent{Kind: wsClose, Code: wsCodeNoStatus}
	switch {
	case len(body) == 0:
		return ev, nil
	case len(body) == 1:
		return ev, wsFail(wsCodeProtocol, "close frame body of one byte")
	}
	ev.Code = binary.BigEndian.Uint16(body)
	if !wsValidReceivedCloseCode(ev.Code) {
		return ev, wsFail(wsCodeProtocol, "invalid close code")
	}
	if !utf8.Valid(body[2:]) {
		return ev, wsFail(wsCodeInvalidData, "close reason is not valid UTF-8")
	}
	ev.Reason = string(body[2:])
	return ev, nil
}

// wsValidReceivedCloseCode reports whether a peer may send code in a close
// frame: the codes RFC 6455 section 7.4.1 and the IANA registry define for
// use on the wire (1004 is reserved; 1005, 1006 and 1015 must never be sent),
// and the 3000-4999 range of registered and private codes.
func wsValidReceivedCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// wsUnmask writes src XOR the masking key into dst (len(dst) == len(src)),
// starting at offset pos of the key, and returns the offset after the last
// byte. key holds the 4 key bytes in little-endian order, so that it lines up
// with bytes loaded as a little-endian word.
func wsUnmask(dst, src []byte, key uint32, pos uint8) uint8 {
	end := (int(pos) + len(src)) & 3
	dst = dst[:len(src)]
	k := bits.RotateLeft32(key, -8*int(pos&3))
	if len(src) >= 8 {
		k64 := uint64(k) | uint64(k)<<32
		for len(src) >= 8 {
			binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(src)^k64)
			dst, src = dst[8:], src[8:]
		}
	}
	for i := range src {
		dst[i] = src[i] ^ byte(k)
		k = bits.RotateLeft32(k, -8)
	}
	return uint8(end)
}
