package doc

import (
	"sync"
	"testing"
)

func TestInbox(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		puts      int
		max       int
		wantTaken int
		wantLeft  int
		wantFull  int // puts refused for lack of space
	}{
		{"empty", 4, 0, 8, 0, 0, 0},
		{"one", 4, 1, 8, 1, 0, 0},
		{"up to the limit", 4, 4, 8, 4, 0, 0},
		{"past the limit", 4, 6, 8, 4, 0, 2},
		{"more than a batch", 8, 5, 3, 3, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b inbox
			b.limit = tt.limit
			full := 0
			for i := range tt.puts {
				ok, space := b.put(message{kind: msgUpdate, data: []byte{byte(i)}})
				if !ok {
					t.Fatalf("put %d: inbox closed", i)
				}
				if space != nil {
					full++
				}
			}
			if full != tt.wantFull {
				t.Errorf("%d puts found the inbox full, want %d", full, tt.wantFull)
			}
			got := b.take(nil, tt.max)
			if len(got) != tt.wantTaken || b.len() != tt.wantLeft {
				t.Fatalf("took %d, left %d; want %d, %d", len(got), b.len(), tt.wantTaken, tt.wantLeft)
			}
			for i, m := range got {
				if m.data[0] != byte(i) {
					t.Fatalf("message %d is put %d: order lost", i, m.data[0])
				}
			}
			rest := b.take(nil, tt.max)
			for i, m := range rest {
				if m.data[0] != byte(len(got)+i) {
					t.Fatalf("left message %d is put %d: order lost", i, m.data[0])
				}
			}
		})
	}
}

// A sender that found the inbox full is woken by the take that makes space,
// and by close, after which nothing is queued.
func TestInboxWakesWaiters(t *testing.T) {
	var b inbox
	b.limit = 1
	b.put(message{})
	_, space := b.put(message{})
	if space == nil {
		t.Fatal("second put into an inbox of one found space")
	}
	b.take(nil, 8)
	select {
	case <-space:
	default:
		t.Fatal("take did not wake the waiting sender")
	}
	b.put(message{})
	_, space = b.put(message{})
	b.close()
	select {
	case <-space:
	default:
		t.Fatal("close did not wake the waiting sender")
	}
	if ok, _ := b.put(message{}); ok {
		t.Fatal("put into a closed inbox succeeded")
	}
	if b.len() != 0 {
		t.Fatalf("closed inbox holds %d messages", b.len())
	}
}

// Many senders, one taker: every message arrives once, each sender's in
// order, through an inbox far smaller than the load.
func TestInboxConcurrent(t *testing.T) {
	const senders, each = 8, 2000
	var b inbox
	b.limit = 4
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m := message{kind: msgKind(s), data: []byte{byte(i >> 8), byte(i)}}
				for {
					ok, space := b.put(m)
					if !ok {
						t.Error("inbox closed")
						return
					}
					if space == nil {
						break
					}
					<-space
				}
			}
		}()
	}
	next := make([]int, senders)
	var batch []message
	for got := 0; got < senders*each; {
		batch = b.take(batch, 3)
		for i, m := range batch {
			n := int(m.data[0])<<8 | int(m.data[1])
			if n != next[m.kind] {
				t.Fatalf("sender %d: got message %d, want %d", m.kind, n, next[m.kind])
			}
			next[m.kind]++
			batch[i] = message{}
		}
		got += len(batch)
	}
	wg.Wait()
}

// A room that keeps getting a message and handling it reuses the inbox's
// two buffers: no allocation per message.
func TestInboxReusesBuffers(t *testing.T) {
	var b inbox
	b.limit = 16
	var batch []message
	m := message{kind: msgUpdate}
	allocs := testing.AllocsPerRun(100, func() {
		b.put(m)
		b.put(m)
		batch = b.take(batch, 512)
		clear(batch)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per put-put-take, want 0", allocs)
	}
}
