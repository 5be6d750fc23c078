package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// The capture format tcpdump -w writes: the classic libpcap file, a 24-byte
// header and then one record per packet.

// Link types of the captures this reads: loopback on Linux is Ethernet;
// "-i any" gives Linux cooked headers.
const (
	linkEthernet = 1
	linkLinuxSLL = 113
	linkSLL2     = 276
)

// packet is one TCP segment of the capture.
type packet struct {
	t                time.Duration // since the capture's first packet
	srcPort, dstPort uint16
	srcIP, dstIP     string
	seq              uint32
	syn, ack, fin    bool
	payload          []byte
}

// pcapReader reads the TCP segments of a capture, skipping every other
// packet.
type pcapReader struct {
	r       *bufio.Reader
	order   binary.ByteOrder
	nanos   bool
	link    uint32
	first   time.Duration
	started bool
}

func newPcapReader(r io.Reader) (*pcapReader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var h [24]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	p := &pcapReader{r: br}
	switch magic := binary.LittleEndian.Uint32(h[:4]); magic {
	case 0xa1b2c3d4:
		p.order = binary.LittleEndian
	case 0xa1b23c4d:
		p.order, p.nanos = binary.LittleEndian, true
	case 0xd4c3b2a1:
		p.order = binary.BigEndian
	case 0x4d3cb2a1:
		p.order, p.nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("not a pcap file (magic %#x; pcapng is not read: capture with tcpdump -w)", magic)
	}
	p.link = p.order.Uint32(h[20:24]) & 0x0fffffff
	switch p.link {
	case linkEthernet, linkLinuxSLL, linkSLL2:
	default:
		return nil, fmt.Errorf("pcap link type %d: want Ethernet (1), Linux cooked (113) or SLL2 (276)", p.link)
	}
	return p, nil
}

// next returns the next TCP segment, or io.EOF at the end of the capture.
func (p *pcapReader) next() (packet, error) {
	for {
		var h [16]byte
		if _, err := io.ReadFull(p.r, h[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
				return packet{}, io.EOF // a capture cut short ends there
			}
			return packet{}, err
		}
		sec, frac := p.order.Uint32(h[0:4]), p.order.Uint32(h[4:8])
		capLen, origLen := p.order.Uint32(h[8:12]), p.order.Uint32(h[12:16])
		if capLen > 1<<26 {
			return packet{}, fmt.Errorf("pcap record of %d bytes: corrupt capture", capLen)
		}
		data := make([]byte, capLen)
		if _, err := io.ReadFull(p.r, data); err != nil {
			return packet{}, io.EOF
		}
		t := time.Duration(sec) * time.Second
		if p.nanos {
			t += time.Duration(frac)
		} else {
			t += time.Duration(frac) * time.Microsecond
		}
		if !p.started {
			p.first, p.started = t, true
		}
		pkt, ok := p.decode(data)
		if !ok {
			continue
		}
		if capLen < origLen {
			// A cut segment would break the byte stream: capture with -s 0.
			return packet{}, fmt.Errorf("packet at %v truncated to %d of %d bytes: capture with tcpdump -s 0", t-p.first, capLen, origLen)
		}
		pkt.t = t - p.first
		return pkt, nil
	}
}

// decode parses the link, IP and TCP headers; ok is false for anything but
// TCP over IPv4 or IPv6.
func (p *pcapReader) decode(b []byte) (pkt packet, ok bool) {
	var ethType uint16
	switch p.link {
	case linkEthernet:
		if len(b) < 14 {
			return pkt, false
		}
		ethType, b = binary.BigEndian.Uint16(b[12:14]), b[14:]
	case linkLinuxSLL:
		if len(b) < 16 {
			return pkt, false
		}
		ethType, b = binary.BigEndian.Uint16(b[14:16]), b[16:]
	case linkSLL2:
		if len(b) < 20 {
			return pkt, false
		}
		ethType, b = binary.BigEndian.Uint16(b[0:2]), b[20:]
	}
	var proto byte
	switch ethType {
	case 0x0800: // IPv4
		if len(b) < 20 || b[0]>>4 != 4 {
			return pkt, false
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || total < ihl || len(b) < total {
			return pkt, false
		}
		proto = b[9]
		pkt.srcIP, pkt.dstIP = ipString(b[12:16]), ipString(b[16:20])
		b = b[ihl:total]
	case 0x86dd: // IPv6, without extension headers
		if len(b) < 40 {
			return pkt, false
		}
		plen := int(binary.BigEndian.Uint16(b[4:6]))
		proto = b[6]
		pkt.srcIP, pkt.dstIP = ipString(b[8:24]), ipString(b[24:40])
		if len(b) < 40+plen {
			return pkt, false
		}
		b = b[40 : 40+plen]
	default:
		return pkt, false
	}
	if proto != 6 || len(b) < 20 {
		return pkt, false
	}
	off := int(b[12]>>4) * 4
	if off < 20 || len(b) < off {
		return pkt, false
	}
	pkt.srcPort = binary.BigEndian.Uint16(b[0:2])
	pkt.dstPort = binary.BigEndian.Uint16(b[2:4])
	pkt.seq = binary.BigEndian.Uint32(b[4:8])
	flags := b[13]
	pkt.fin, pkt.syn, pkt.ack = flags&0x01 != 0, flags&0x02 != 0, flags&0x10 != 0
	pkt.payload = b[off:]
	return pkt, true
}

func ipString(b []byte) string {
	if len(b) == 4 {
		return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
	}
	return fmt.Sprintf("%x", b)
}
