package doc

import (
	"sync"
	"sync/atomic"
)

// inbox is a room's queue of messages: senders append under a lock, the room
// takes everything queued in one step. It replaced a buffered channel, whose
// buffer (Config.Inbox messages) every open room paid for while idle: 1 KB of
// the 6 KB a room with two peers cost in ../shared/bench W2. A queue holds
// only what it was last asked to hold (one or two messages in a quiet room),
// and the room hands back the slice it handled as the next queue, so a busy
// room reuses two buffers rather than allocating.
//
// A full inbox (limit messages) makes senders wait: back-pressure on the
// connections that feed a room that is behind.
type inbox struct {
	mu     sync.Mutex
	q      []message
	n      atomic.Int32 // len(q), read without the lock
	limit  int
	closed bool
	// space is made by the first sender to find the inbox full and closed
	// when the room takes messages, waking every sender that waited.
	space chan struct{}
}

// len returns how many messages wait.
func (b *inbox) len() int { return int(b.n.Load()) }

// put queues m. When the inbox is full it queues nothing and returns a
// channel that is closed once there may be space; ok is false when the
// inbox is closed.
func (b *inbox) put(m message) (ok bool, wait <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false, nil
	}
	if len(b.q) >= b.limit {
		if b.space == nil {
			b.space = make(chan struct{})
		}
		return true, b.space
	}
	b.q = append(b.q, m)
	b.n.Store(int32(len(b.q)))
	return true, nil
}

// take returns up to max queued messages, oldest first. spare is a handled
// batch whose messages are zeroed: it becomes the queue's buffer when take
// can hand over the whole queue without copying.
func (b *inbox) take(spare []message, max int) []message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []message
	if len(b.q) <= max {
		out, b.q = b.q, spare[:0]
	} else {
		out = append(spare[:0], b.q[:max]...)
		rest := copy(b.q, b.q[max:])
		clear(b.q[rest:])
		b.q = b.q[:rest]
	}
	b.n.Store(int32(len(b.q)))
	if len(out) > 0 && b.space != nil {
		close(b.space)
		b.space = nil
	}
	return out
}

// close makes every later put fail, drops what is queued and wakes the
// senders that wait for space.
func (b *inbox) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.q = nil
	b.n.Store(0)
	if b.space != nil {
		close(b.space)
		b.space = nil
	}
}
