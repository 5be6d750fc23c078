package main

import (
	"bytes"
	"encoding/binary"
	"time"
)

// flowKey names one direction of a TCP connection.
type flowKey struct {
	srcIP, dstIP     string
	srcPort, dstPort uint16
}

// stream rebuilds the bytes of one direction of a connection from its
// segments and cuts them into WebSocket messages. Only connections whose SYN
// is in the capture are followed: a stream joined in the middle has no frame
// boundary to start from.
type stream struct {
	next   uint32 // the sequence number of the next byte
	broken bool   // a gap (bytes the capture lost): nothing more is parsed
	http   bool   // still in the HTTP upgrade, before the first frame
	buf    []byte
	msg    []byte // the fragments of a message so far
}

func newStream(isn uint32) *stream { return &stream{next: isn + 1, http: true} }

// add appends a segment's payload and calls onMessage, with the time of
// the segment that completed it, for every whole data message (text or
// binary, unmasked) it completes.
func (s *stream) add(seq uint32, payload []byte, t time.Duration, onMessage func([]byte, time.Duration)) {
	if s.broken || len(payload) == 0 {
		return
	}
	switch d := int32(seq - s.next); {
	case d > 0:
		s.broken = true
		return
	case d < 0: // a retransmission, in part or whole
		if int(-d) >= len(payload) {
			return
		}
		payload = payload[-d:]
	}
	s.next += uint32(len(payload))
	s.buf = append(s.buf, payload...)
	if s.http {
		i := bytes.Index(s.buf, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		// Only WebSocket upgrades (the request and its 101 answer) carry
		// frames; a plain HTTP exchange (a health probe) is ignored.
		head := bytes.ToLower(s.buf[:i])
		if !bytes.Contains(head, []byte("upgrade: websocket")) {
			s.broken = true
			s.buf = nil
			return
		}
		s.buf = s.buf[i+4:]
		s.http = false
	}
	for {
		n, fin, opcode, data, ok := parseFrame(s.buf)
		if !ok {
			break
		}
		s.buf = s.buf[n:]
		if opcode >= 8 { // control frames never fragment data messages
			continue
		}
		s.msg = append(s.msg, data...)
		if fin {
			onMessage(s.msg, t)
			s.msg = nil
		}
	}
	if len(s.buf) == 0 {
		s.buf = nil // let the consumed bytes go
	}
}

// parseFrame reads one WebSocket frame from b: its length in b, FIN, the
// opcode and the unmasked payload (a copy), or ok false when b holds only
// part of it.
func parseFrame(b []byte) (n int, fin bool, opcode byte, data []byte, ok bool) {
	if len(b) < 2 {
		return 0, false, 0, nil, false
	}
	fin, opcode = b[0]&0x80 != 0, b[0]&0x0f
	masked := b[1]&0x80 != 0
	length := uint64(b[1] & 0x7f)
	n = 2
	switch length {
	case 126:
		if len(b) < 4 {
			return 0, false, 0, nil, false
		}
		length, n = uint64(binary.BigEndian.Uint16(b[2:4])), 4
	case 127:
		if len(b) < 10 {
			return 0, false, 0, nil, false
		}
		length, n = binary.BigEndian.Uint64(b[2:10]), 10
	}
	var key [4]byte
	if masked {
		if len(b) < n+4 {
			return 0, false, 0, nil, false
		}
		copy(key[:], b[n:n+4])
		n += 4
	}
	if uint64(len(b)-n) < length {
		return 0, false, 0, nil, false
	}
	data = bytes.Clone(b[n : n+int(length)])
	if masked {
		for i := range data {
			data[i] ^= key[i&3]
		}
	}
	return n + int(length), fin, opcode, data, true
}
