//go:build linux

package server

import (
	"syscall"
	"unsafe"
)

// nonBlockingWrites: on Linux the room writes to sockets itself with a
// non-blocking writev.
const nonBlockingWrites = true

// tryWrite writes as much of bufs as the socket takes now, in one writev,
// without waiting. wouldBlock reports that the socket's buffer is full.
func (s *sock) tryWrite(bufs [][]byte) (n int, wouldBlock bool, err error) {
	if s.raw == nil {
		return 0, true, nil
	}
	var iov [2 * maxGather]syscall.Iovec
	k, total := 0, 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		iov[k].Base = &b[0]
		iov[k].SetLen(len(b))
		k++
		total += len(b)
	}
	if k == 0 {
		return 0, false, nil
	}
	var werr error
	rerr := s.raw.Write(func(fd uintptr) bool {
		for {
			r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
			switch e {
			case 0:
				n = int(r)
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				wouldBlock = true
			default:
				werr = e
			}
			return true // never wait here: the writer goroutine does
		}
	})
	if rerr != nil {
		return n, false, rerr
	}
	if werr != nil {
		return n, false, werr
	}
	return n, wouldBlock || n < total, nil
}
