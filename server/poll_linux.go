//go:build linux

package server

import (
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"runtime"
	"sync"
	"syscall"

	"github.com/quirehq/quire/doc"
)

// The read side of WebSockets on Linux: readiness instead of a goroutine per
// connection. A goroutine blocked in a read holds its stack (8 KiB and more
// once a message has been handled on it) for as long as the peer is quiet;
// with 2,000 idle sockets that was 17 MB, a quarter of the server's memory.
// Here a few loops, each with an epoll instance of its own, wait for
// sockets to become readable, read what arrived into one buffer per loop
// and hand the bytes to the connection's parser (wsParser); a connection
// costs no goroutine and no buffer between messages. A loop waits for its
// epoll instance in Go's own poller (the instance is itself a pollable
// descriptor), not in a blocking epoll_wait: a thread blocked in a system
// call loses its processor, and getting one back on every wake-up cost a
// third more CPU than a goroutine per connection in the hot-room load. A connection belongs
// to one loop for its life, so its bytes are parsed and its messages
// handled in order, on that loop's goroutine, as its reader goroutine did.
//
// The socket stays registered with Go's own poller too, which the write
// side (sock) uses to wait for a full socket to drain; reads never wait
// there. Each read holds the descriptor through syscall.RawConn, so that a
// concurrent Close can never let the number be reused under a read.

// pollReadBuf is the size of a loop's read buffer: one read takes what a
// socket has up to this, a larger message arrives over several reads.
const pollReadBuf = 64 << 10

// poller is the set of read loops.
type poller struct {
	loops []*pollLoop
	seed  maphash.Seed // picks a document's loop
	wg    sync.WaitGroup
}

// pollLoop is one epoll instance and the connections registered with it.
type pollLoop struct {
	epfd  int
	file  *os.File        // epfd, registered with Go's poller; closing it stops the loop
	rc    syscall.RawConn // of file
	mu    sync.Mutex
	conns map[uint64]*wsConn // by wsConn.id, the token in the epoll event
	// turn collects the rooms posted to while handling one wake-up's
	// events; they run once all the events are handled (see doc.Turn).
	turn doc.Turn
}

// newPoller starts n read loops.
func newPoller(n int) (_ *poller, err error) {
	p := &poller{seed: maphash.MakeSeed()}
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	for range n {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return nil, fmt.Errorf("poller: epoll_create1: %w", err)
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return nil, fmt.Errorf("poller: epoll instance: %w", err)
		}
		// A non-blocking descriptor: os.NewFile registers it with Go's poller.
		l := &pollLoop{epfd: fd, file: os.NewFile(uintptr(fd), "epoll"), conns: make(map[uint64]*wsConn)}
		p.loops = append(p.loops, l)
		if l.rc, err = l.file.SyscallConn(); err != nil {
			return nil, fmt.Errorf("poller: epoll instance: %w", err)
		}
	}
	for _, l := range p.loops {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			l.run()
		}()
	}
	return p, nil
}

// defaultPollLoops is one loop per processor the Go runtime uses: a loop
// handles its messages one at a time, rooms and commits included.
func defaultPollLoops() int { return max(1, runtime.GOMAXPROCS(0)) }

func setToken(ev *syscall.EpollEvent, tok uint64) {
	ev.Fd = int32(uint32(tok))
	ev.Pad = int32(uint32(tok >> 32))
}

func token(ev *syscall.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// loopFor returns the loop that reads every connection to the document:
// its room's messages then arrive on one goroutine, which runs the room
// inline (doc.Turn) without handing messages over between threads, while
// different documents still spread over the loops. Spread by connection
// instead, every room was posted to from each loop: in the hot room of
// ../shared/bench at 196,000 deliveries/s (W1 with 50 writers at 80 keys/s,
// 2 cores, 3 runs beside each other) that cost 45% of a core against 31%
// now, and p99 2.2 ms against 1.75; the 1,000 rooms of W2 are unchanged.
func (p *poller) loopFor(docID string) *pollLoop {
	if len(p.loops) == 1 {
		return p.loops[0]
	}
	return p.loops[maphash.String(p.seed, docID)%uint64(len(p.loops))]
}

// add registers wc, whose socket is raw, with its document's loop; from then
// on that loop reads it.
func (p *poller) add(wc *wsConn, raw syscall.RawConn) error {
	l := p.loopFor(wc.docID)
	wc.loop = l
	l.mu.Lock()
	l.conns[wc.id] = wc
	l.mu.Unlock()
	var err error
	cerr := raw.Control(func(fd uintptr) {
		// Level-triggered: a loop reads at most pollReadBuf per turn and
		// is told again while bytes remain.
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP}
		setToken(&ev, wc.id)
		err = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err = errors.Join(cerr, err); err != nil {
		wc.loop = nil // never read by the loop: the caller finishes it
		l.mu.Lock()
		delete(l.conns, wc.id)
		l.mu.Unlock()
		return fmt.Errorf("poller: watch socket: %w", err)
	}
	return nil
}

// remove stops watching wc's socket. Called by wc's loop before the socket
// is closed.
func (l *pollLoop) remove(wc *wsConn, raw syscall.RawConn) {
	l.mu.Lock()
	delete(l.conns, wc.id)
	l.mu.Unlock()
	_ = raw.Control(func(fd uintptr) {
		// ENOENT or EBADF only if it was never added or is closed already.
		_ = syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

func (l *pollLoop) run() {
	w := &epollWaiter{events: make([]syscall.EpollEvent, 128)}
	w.fn = w.wait
	r := newSockReader(pollReadBuf)
	for {
		err := l.rc.Read(w.fn)
		if err != nil || w.err != nil {
			// The file was closed (stop), or the instance is unusable.
			return
		}
		for i := range w.events[:w.n] {
			tok := token(&w.events[i])
			l.mu.Lock()
			wc := l.conns[tok]
			l.mu.Unlock()
			if wc != nil {
				wc.readable(r)
			}
		}
		l.turn.Run()
	}
}

// The system calls of a read loop go through RawConn with closures made
// once per loop: a closure made per call escapes to the heap with the
// variables it sets, which was three allocations per read (and, with the
// write side's, five per delivery and 10 MB/s of garbage in the hot room).

// epollWaiter takes the ready events of a loop's epoll instance.
type epollWaiter struct {
	events []syscall.EpollEvent
	n      int
	err    error
	fn     func(fd uintptr) bool // w.wait
}

func (w *epollWaiter) wait(fd uintptr) bool {
	for {
		w.n, w.err = syscall.EpollWait(int(fd), w.events, 0)
		if w.err != syscall.EINTR {
			break
		}
	}
	return w.n > 0 || w.err != nil // none ready: wait in Go's poller
}

// sockReader reads sockets into one buffer without waiting.
type sockReader struct {
	buf []byte
	n   int
	err error
	fn  func(fd uintptr) bool // r.read
}

func newSockReader(size int) *sockReader {
	r := &sockReader{buf: make([]byte, size)}
	r.fn = r.read
	return r
}

func (r *sockReader) read(fd uintptr) bool {
	for {
		r.n, r.err = syscall.Read(int(fd), r.buf)
		if r.err != syscall.EINTR {
			return true // never wait in Go's poller
		}
	}
}

// stop ends the loops (once every connection has finished) and releases
// the poller.
func (p *poller) stop() {
	p.release() // a loop waiting in Go's poller returns at once
	p.wg.Wait()
}

func (p *poller) release() {
	for _, l := range p.loops {
		_ = l.file.Close()
	}
}

// readSocket reads what raw's socket has into r's buffer without waiting.
// An empty read with a nil error is the end of the stream; errAgain means
// nothing was there (the readiness was stale). The bytes are valid until
// r's next read.
func readSocket(raw syscall.RawConn, r *sockReader) ([]byte, error) {
	if cerr := raw.Read(r.fn); cerr != nil {
		return nil, cerr
	}
	if r.err == syscall.EAGAIN {
		return nil, errAgain
	}
	return r.buf[:max(r.n, 0)], r.err
}

// shutdownSocket ends both directions of raw's socket without closing the
// descriptor: its loop then reads the end of the stream and finishes the
// connection on its own goroutine.
func shutdownSocket(raw syscall.RawConn) {
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR)
	})
}

// shutdownWrite ends our direction of raw's socket (a FIN after what was
// written); the peer's direction stays open for its answer.
func shutdownWrite(raw syscall.RawConn) {
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.Shutdown(int(fd), syscall.SHUT_WR)
	})
}
