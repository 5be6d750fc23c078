//go:build linux

package server

import (
	"bytes"
	"io"
	"syscall"
	"testing"
	"time"
)

// A delivery the socket takes at once allocates nothing: at 10,000
// deliveries a second every byte of garbage is collected again and again.
func TestSockSendAllocatesNothing(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	srv, cli := tcpPair(t)
	s := newSock(srv, time.Second, 1<<20, 1<<30, func(err error) { t.Errorf("write failed: %v", err) })
	go io.Copy(io.Discard, cli)
	msg := bytes.Repeat([]byte{7}, 24)
	s.send(msg) // the queue's array
	if a := testing.AllocsPerRun(200, func() {
		if !s.send(msg) {
			t.Fatal("outbox full")
		}
	}); a != 0 {
		t.Errorf("send allocates %.1f times", a)
	}
}

// A read loop's read of a socket allocates nothing.
func TestReadSocketAllocatesNothing(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	srv, cli := tcpPair(t)
	raw, err := srv.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	r := newSockReader(64)
	msg := []byte("twelve bytes")
	if a := testing.AllocsPerRun(200, func() {
		if _, err := cli.Write(msg); err != nil {
			t.Fatal(err)
		}
		for got := 0; got < len(msg); {
			b, err := readSocket(raw, r)
			if err != nil && err != errAgain {
				t.Fatal(err)
			}
			got += len(b)
		}
	}); a != 0 {
		t.Errorf("readSocket allocates %.1f times", a)
	}
}
