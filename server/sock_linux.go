//go:build linux

package server

import (
	"sync"
	"syscall"
	"unsafe"
)

// nonBlockingWrites: on Linux the room writes to sockets itself with a
// non-blocking writev.
const nonBlockingWrites = true

// vecWriter is one writev's vector and results, with the closure RawConn
// runs made once: made per call, the closure and the vector it captures
// escaped to the heap, a kilobyte of garbage per delivery.
type vecWriter struct {
	iov        [2 * maxGather]syscall.Iovec
	k          int // entries of iov in use
	n          int
	wouldBlock bool
	err        error
	fn         func(fd uintptr) bool // w.write
}

var vecWriters = sync.Pool{New: func() any {
	w := new(vecWriter)
	w.fn = w.write
	return w
}}

func (w *vecWriter) write(fd uintptr) bool {
	for {
		r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(w.k))
		switch e {
		case 0:
			w.n = int(r)
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			w.wouldBlock = true
		default:
			w.err = e
		}
		return true // never wait here: the writer goroutine does
	}
}

// tryWrite writes as much of bufs as the socket takes now, in one writev,
// without waiting. wouldBlock reports that the socket's buffer is full.
func (s *sock) tryWrite(bufs [][]byte) (n int, wouldBlock bool, err error) {
	if s.raw == nil {
		return 0, true, nil
	}
	w := vecWriters.Get().(*vecWriter)
	defer func() {
		clear(w.iov[:w.k]) // let the buffers go
		w.k, w.n, w.wouldBlock, w.err = 0, 0, false, nil
		vecWriters.Put(w)
	}()
	total := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		w.iov[w.k].Base = &b[0]
		w.iov[w.k].SetLen(len(b))
		w.k++
		total += len(b)
	}
	if w.k == 0 {
		return 0, false, nil
	}
	if rerr := s.raw.Write(w.fn); rerr != nil {
		return w.n, false, rerr
	}
	if w.err != nil {
		return w.n, false, w.err
	}
	return w.n, w.wouldBlock || w.n < total, nil
}
