// Command relayfloor is the least a y-websocket server can do, for the load
// benchmark of ../shared/bench to measure beside Quire: it answers the sync
// handshake with an empty document and forwards every other message, as it
// came, to the other peers of the same document, from the reader of the
// sender. No CRDT, no store, no awareness bookkeeping. What the generator
// measures on it (W1 latency, CPU per delivery) is the floor of the harness
// on this machine, under any server that delivers every update to every peer.
// It is not a server: it keeps nothing, so a late joiner gets nothing, and
// the generator's final check of the document's content fails on it.
//
//	go build -o /tmp/relayfloor ./scripts/relayfloor
//	cd ../shared/bench && node bench.mjs --server 'relay=cmd:/tmp/relayfloor -listen 127.0.0.1:{port}' \
//	    --server 'quire=cmd:…' --workload W1 --runs 3
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"
)

// The y-protocols messages the relay answers itself: sync step 1 (any
// state vector) gets step 2 with the empty update; the server greets with
// step 1 of the empty state vector.
var (
	step1Empty = []byte{0, 0, 1, 0}
	step2Empty = []byte{0, 1, 2, 0, 0}
)

type peer struct {
	c *websocket.Conn
}

type relay struct {
	mu    sync.Mutex
	rooms map[string]map[*peer]struct{}
}

func (r *relay) join(doc string, p *peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rooms[doc] == nil {
		r.rooms[doc] = map[*peer]struct{}{}
	}
	r.rooms[doc][p] = struct{}{}
}

func (r *relay) leave(doc string, p *peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.rooms[doc], p)
	if len(r.rooms[doc]) == 0 {
		delete(r.rooms, doc)
	}
}

// others returns the peers of doc but p, at this moment.
func (r *relay) others(doc string, p *peer, buf []*peer) []*peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	buf = buf[:0]
	for q := range r.rooms[doc] {
		if q != p {
			buf = append(buf, q)
		}
	}
	return buf
}

func (r *relay) serve(w http.ResponseWriter, req *http.Request) {
	doc := strings.TrimPrefix(req.URL.Path, "/ws/")
	c, err := websocket.Accept(w, req, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 20)
	ctx := context.Background()
	p := &peer{c: c}
	if err := c.Write(ctx, websocket.MessageBinary, step1Empty); err != nil {
		return
	}
	r.join(doc, p)
	defer r.leave(doc, p)
	var to []*peer
	for {
		_, m, err := c.Read(ctx)
		if err != nil {
			return
		}
		switch {
		case len(m) >= 2 && m[0] == 0 && m[1] == 0: // step 1
			if err := c.Write(ctx, websocket.MessageBinary, step2Empty); err != nil {
				return
			}
		case len(m) >= 2 && m[0] == 0 && m[1] == 1: // step 2: nothing to keep
		default:
			to = r.others(doc, p, to)
			for _, q := range to {
				// A peer that fails is gone; its own reader cleans up.
				_ = q.c.Write(ctx, websocket.MessageBinary, m)
			}
		}
	}
}

func main() {
	addr := flag.String("listen", "127.0.0.1:8090", "address to listen on")
	flag.Parse()
	r := &relay{rooms: map[string]map[*peer]struct{}{}}
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(r.serve)))
}
