package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// capture builds a pcap file of TCP segments over IPv4 on Ethernet, as
// tcpdump -i lo writes them.
type capture struct {
	buf  bytes.Buffer
	seqs map[flowKey]uint32
}

func newCapture() *capture {
	c := &capture{seqs: map[flowKey]uint32{}}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], linkEthernet)
	c.buf.Write(h[:])
	return c
}

// segment records a segment from port src to port dst at time t; syn
// opens that direction (its first sequence number is then 1000*src).
func (c *capture) segment(t time.Duration, src, dst uint16, syn, ack bool, payload []byte) {
	k := flowKey{"127.0.0.1", "127.0.0.1", src, dst}
	if syn {
		c.seqs[k] = uint32(src) * 1000
	}
	seq := c.seqs[k]
	if syn {
		c.seqs[k] = seq + 1
	} else {
		c.seqs[k] = seq + uint32(len(payload))
	}
	c.raw(t, src, dst, seq, syn, ack, payload)
}

func (c *capture) raw(t time.Duration, src, dst uint16, seq uint32, syn, ack bool, payload []byte) {
	tcp := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(tcp[0:], src)
	binary.BigEndian.PutUint16(tcp[2:], dst)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12] = 5 << 4
	if syn {
		tcp[13] |= 0x02
	}
	if ack {
		tcp[13] |= 0x10
	}
	tcp = append(tcp, payload...)
	ip := make([]byte, 20, 20+len(tcp))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(tcp)))
	ip[9] = 6
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	ip = append(ip, tcp...)
	frame := append(make([]byte, 14), ip...)
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	var rec [16]byte
	binary.LittleEndian.PutUint32(rec[0:], uint32(t/time.Second))
	binary.LittleEndian.PutUint32(rec[4:], uint32((t%time.Second)/time.Microsecond))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
	c.buf.Write(rec[:])
	c.buf.Write(frame)
}

// dial records a client connecting from port client to port srv with a
// WebSocket upgrade (upgrade false: a plain HTTP request).
func (c *capture) dial(t time.Duration, client, srv uint16, upgrade bool) {
	c.segment(t, client, srv, true, false, nil)
	c.segment(t, srv, client, true, true, nil)
	req, resp := "GET /ws/doc HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
	if upgrade {
		req = "GET /ws/doc HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
		resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
	}
	c.segment(t, client, srv, false, true, []byte(req))
	body := []byte(resp)
	if !upgrade {
		body = append(body, wsFrame([]byte{0, 2}, false)...) // looks like a frame, is a body
	}
	c.segment(t, srv, client, false, true, body)
}

// wsFrame frames msg as a final binary frame, masked as clients send.
func wsFrame(msg []byte, masked bool) []byte {
	f := []byte{0x82}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	switch {
	case len(msg) < 126:
		f = append(f, mbit|byte(len(msg)))
	case len(msg) < 1<<16:
		f = append(f, mbit|126, byte(len(msg)>>8), byte(len(msg)))
	default:
		f = append(f, mbit|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(msg)))
	}
	if !masked {
		return append(f, msg...)
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	f = append(f, key[:]...)
	for i, b := range msg {
		f = append(f, b^key[i&3])
	}
	return f
}

func analyse(t *testing.T, c *capture) *analysis {
	t.Helper()
	r, err := newPcapReader(bytes.NewReader(c.buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	a := newAnalysis()
	for {
		p, err := r.next()
		if err != nil {
			break
		}
		a.add(p)
	}
	return a
}

func ms2(d float64) time.Duration { return time.Duration(d * float64(time.Millisecond)) }

func TestDeliveryDelays(t *testing.T) {
	const srv, a1, a2, a3, probe = 8000, 40001, 40002, 40003, 40004
	c := newCapture()
	for _, p := range []uint16{a1, a2, a3} {
		c.dial(ms2(1), p, srv, true)
	}
	c.dial(ms2(1), probe, srv, false)
	// Every client greets with the same sync step 1: ambiguous, never matched,
	// though the server sends the same bytes.
	greet := []byte{0, 0, 1, 0}
	for _, p := range []uint16{a1, a2, a3} {
		c.segment(ms2(2), p, srv, false, true, wsFrame(greet, true))
	}
	c.segment(ms2(2.5), srv, a1, false, true, wsFrame(greet, false))

	// a1 types u1; the server relays it to a2 after 0.2 ms and to a3 after
	// 0.5 ms, the frame to a3 split across two segments.
	u1 := []byte{0, 2, 9, 1, 1, 200, 1, 0, 4, 1, 1, 'x', 0}
	c.segment(ms2(10), a1, srv, false, true, wsFrame(u1, true))
	c.segment(ms2(10.2), srv, a2, false, true, wsFrame(u1, false))
	out := wsFrame(u1, false)
	c.segment(ms2(10.3), srv, a3, false, true, out[:5])
	c.segment(ms2(10.5), srv, a3, false, true, out[5:])
	// A retransmission of the same bytes changes nothing.
	c.raw(ms2(10.6), srv, a3, c.seqs[flowKey{"127.0.0.1", "127.0.0.1", srv, a3}]-uint32(len(out)), false, true, out)

	// a2 types u2, a large one; the server relays it to a1 after 1 ms, with
	// a ping before it.
	u2 := append([]byte{0, 2}, bytes.Repeat([]byte{7}, 70000)...)
	in := wsFrame(u2, true)
	c.segment(ms2(20), a2, srv, false, true, in[:1000])
	c.segment(ms2(20.05), a2, srv, false, true, in[1000:40000])
	c.segment(ms2(20.1), a2, srv, false, true, in[40000:])
	out = append([]byte{0x89, 0}, wsFrame(u2, false)...)
	c.segment(ms2(21), srv, a1, false, true, out[:30000])
	c.segment(ms2(21.1), srv, a1, false, true, out[30000:])

	a := analyse(t, c)
	if len(a.order) != 1 || a.order[0].port != srv {
		t.Fatalf("servers %v, want the one on %d", a.order, srv)
	}
	s := a.order[0]
	got := slices.Clone(s.delays)
	slices.Sort(got)
	want := []time.Duration{ms2(0.2), ms2(0.5), ms2(1)}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if s.msgsIn != 5 {
		t.Errorf("%d messages in, want 5 (3 greetings, 2 updates; nothing of the probe)", s.msgsIn)
	}
	if d := s.lastDelay[string(u1)]; d != ms2(0.5) {
		t.Errorf("last delivery of u1 after %v, want 0.5ms", d)
	}

	var report strings.Builder
	a.report(&report, []string{"quire"})
	if !strings.Contains(report.String(), "| quire | 8000 | 5 | 2 | 3 | 0.500 |") {
		t.Errorf("report:\n%s", report.String())
	}
}

// A gap in a stream (a segment the capture lost) stops that stream: what
// follows could start anywhere in a frame.
func TestGapStopsStream(t *testing.T) {
	const srv, a1, a2 = 8000, 40001, 40002
	c := newCapture()
	c.dial(0, a1, srv, true)
	c.dial(0, a2, srv, true)
	u := []byte{0, 2, 1, 2, 3}
	c.segment(ms2(1), a1, srv, false, true, wsFrame(u, true))
	k := flowKey{"127.0.0.1", "127.0.0.1", srv, a2}
	c.seqs[k] += 100 // lost bytes
	c.segment(ms2(2), srv, a2, false, true, wsFrame(u, false))
	if d := analyse(t, c).order[0].delays; len(d) != 0 {
		t.Errorf("delays %v after a gap, want none", d)
	}
}

func TestNotPcap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pcapng")
	if err := os.WriteFile(path, []byte("\x0a\x0d\x0d\x0a0123456789abcdefghij"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(path, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "not a pcap file") {
		t.Errorf("run on pcapng: %v, want a clear error", err)
	}
}
