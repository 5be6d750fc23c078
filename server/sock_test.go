package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// readFrameRaw reads one unmasked frame and returns its first byte and payload.
func readFrameRaw(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(r, p)
	return h[0], p, err
}

func TestPutHeader(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x82, 0}},
		{125, []byte{0x82, 125}},
		{126, []byte{0x82, 126, 0, 126}},
		{65535, []byte{0x82, 126, 0xff, 0xff}},
		{65536, []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{674157, []byte{0x82, 127, 0, 0, 0, 0, 0, 0x0a, 0x49, 0x6d}},
	} {
		var h [10]byte
		n := putHeader(&h, tt.n)
		if !bytes.Equal(h[:n], tt.want) {
			t.Errorf("putHeader(%d) = %x, want %x", tt.n, h[:n], tt.want)
		}
	}
}

// TestSockWritesInOrder sends many messages of every header size to a reader
// that is slow at first, so that both the direct writes and the writer
// goroutine are used, interleaved with control frames; the reader must get
// every frame whole and in order.
func TestSockWritesInOrder(t *testing.T) {
	srv, cli := tcpPair(t)
	var failed error
	var mu sync.Mutex
	s := newSock(srv, 10*time.Second, 1<<20, 1<<30, func(err error) { mu.Lock(); failed = err; mu.Unlock() })
	var want [][]byte
	sizes := []int{1, 125, 126, 1000, 65535, 65536, 300000}
	for i := range 200 {
		msg := bytes.Repeat([]byte{byte(i)}, sizes[i%len(sizes)])
		want = append(want, msg)
		if !s.send(msg) {
			t.Fatalf("send %d refused", i)
		}
		if i%50 == 0 {
			// A control frame as the library writes it: whole, through the queue.
			ctrl := []byte{0x8a, 1, byte(i)} // pong
			if _, err := s.writeControl(ctrl); err != nil {
				t.Fatal(err)
			}
			want = append(want, nil)
		}
	}
	r := bufio.NewReader(cli)
	for i, w := range want {
		cli.SetReadDeadline(time.Now().Add(testTimeout))
		op, p, err := readFrameRaw(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if w == nil {
			if op != 0x8a {
				t.Fatalf("frame %d: opcode byte %x, want the pong", i, op)
			}
			continue
		}
		if op != 0x82 || !bytes.Equal(p, w) {
			t.Fatalf("frame %d: opcode byte %x, %d bytes, want a binary frame of %d", i, op, len(p), len(w))
		}
	}
	// Wait until the writer has finished, then check the accounting.
	deadline := time.Now().Add(testTimeout)
	for {
		s.mu.Lock()
		idle := !s.flushing
		msgs, n := s.msgs, s.bytes
		s.mu.Unlock()
		if idle {
			if msgs != 0 || n != 0 {
				t.Fatalf("%d messages, %d bytes still counted", msgs, n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writer still busy")
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		t.Fatal(failed)
	}
}

func TestSockDropKeepsStreamWhole(t *testing.T) {
	srv, cli := tcpPair(t)
	s := newSock(srv, 10*time.Second, 1<<20, 1<<30, nil)
	big := bytes.Repeat([]byte{7}, 8<<20) // more than the socket buffers take
	s.send(big)
	s.send([]byte("dropped"))
	s.drop()
	s.send([]byte("refused after drop"))
	s.writeControl([]byte{0x88, 2, 0x03, 0xe8}) // close 1000
	r := bufio.NewReader(cli)
	cli.SetReadDeadline(time.Now().Add(testTimeout))
	op, p, err := readFrameRaw(r)
	if err != nil || op != 0x82 || len(p) != len(big) {
		// The frame being written when drop came is finished.
		t.Fatalf("first frame %x %d %v", op, len(p), err)
	}
	op, p, err = readFrameRaw(r)
	if err != nil || op != 0x88 || !bytes.Equal(p, []byte{0x03, 0xe8}) {
		t.Fatalf("second frame %x %x %v, want the close frame", op, p, err)
	}
}

func TestSockWriteTimeout(t *testing.T) {
	srv, _ := tcpPair(t) // the client never reads
	failed := make(chan error, 1)
	s := newSock(srv, 50*time.Millisecond, 1<<20, 1<<30, func(err error) { failed <- err })
	for range 64 {
		s.send(make([]byte, 1<<20))
	}
	select {
	case err := <-failed:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("failed with %v, want a timeout", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("a peer that does not read was not failed")
	}
	if _, err := s.writeControl([]byte{0x89, 0}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after failure: %v", err)
	}
}
