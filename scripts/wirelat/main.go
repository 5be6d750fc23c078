// Command wirelat measures, from a packet capture of a load benchmark, how
// long a WebSocket server took to pass each message on: from the segment
// that brought a client's message to each segment that carried the same
// message out to another client. It sees the server from the wire, so its
// numbers hold nothing of the clients' own sending, receiving and
// scheduling, which the load generator of ../shared/bench measures too:
// on a 2-core machine that runs the generator beside the server, where the
// kernel puts the generator's thread when the server wakes it moves the
// generator's latency by more than the server's work does.
//
// Every connection whose SYN is in the capture is followed: its bytes are
// put back together, the HTTP upgrade skipped and the frames unmasked. A
// message a server sends is matched to the last identical message a client
// sent it, so it works for any server that relays updates unchanged in
// their bytes (y-websocket, Hocuspocus, Quire, the relay floor).
//
//	tcpdump -i lo -s 0 -U -w /tmp/w1.pcap tcp &   # then run the benchmark; stop tcpdump
//	go run ./scripts/wirelat [-labels quire,relay-floor] /tmp/w1.pcap
//
// Servers are listed in the order they first accepted a connection;
// -labels names them in that order (cycling, as bench.mjs runs its servers
// in the same order in each run and workload). FLOOR=1 WIRE=1
// scripts/bench-server.sh does all of it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// server is one listening port of the capture, with what went through it.
type server struct {
	port      uint16
	inbound   map[string]arrival // a client's message -> when it arrived
	msgsIn    int
	delays    []time.Duration // every delivery: out - in
	lastDelay map[string]time.Duration
}

// arrival is when a message came in, and how many times: one that clients
// sent more than once (the handshake's sync step 1, say) cannot be told
// apart from the server's own message of the same bytes, and is not matched.
type arrival struct {
	t time.Duration
	n int
}

// conn is what a followed direction of a connection is: its stream and the
// server it goes to (toServer) or comes from.
type conn struct {
	s        *stream
	srv      *server
	toServer bool
}

type analysis struct {
	servers map[uint16]*server
	order   []*server
	flows   map[flowKey]*conn
}

func newAnalysis() *analysis {
	return &analysis{servers: map[uint16]*server{}, flows: map[flowKey]*conn{}}
}

func (a *analysis) add(p packet) {
	k := flowKey{p.srcIP, p.dstIP, p.srcPort, p.dstPort}
	if p.syn {
		if !p.ack { // a client opens a connection to p.dstPort
			srv := a.servers[p.dstPort]
			if srv == nil {
				srv = &server{port: p.dstPort, inbound: map[string]arrival{}, lastDelay: map[string]time.Duration{}}
				a.servers[p.dstPort] = srv
				a.order = append(a.order, srv)
			}
			a.flows[k] = &conn{s: newStream(p.seq), srv: srv, toServer: true}
		} else if back := a.flows[flowKey{p.dstIP, p.srcIP, p.dstPort, p.srcPort}]; back != nil && back.toServer {
			a.flows[k] = &conn{s: newStream(p.seq), srv: back.srv}
		}
		return
	}
	c := a.flows[k]
	if c == nil {
		return
	}
	c.s.add(p.seq, p.payload, p.t, func(msg []byte, t time.Duration) {
		if c.toServer {
			a := c.srv.inbound[string(msg)]
			c.srv.inbound[string(msg)] = arrival{t: t, n: a.n + 1}
			c.srv.msgsIn++
			return
		}
		in, ok := c.srv.inbound[string(msg)]
		if !ok || in.n > 1 {
			return
		}
		d := t - in.t
		c.srv.delays = append(c.srv.delays, d)
		c.srv.lastDelay[string(msg)] = max(c.srv.lastDelay[string(msg)], d)
	})
	if p.fin {
		delete(a.flows, k)
	}
}

// quantile returns the q-quantile of sorted ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()*1000) }

func (a *analysis) report(w io.Writer, labels []string) {
	fmt.Fprintln(w, "| server | port | messages in | relayed | deliveries | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | last of a message p50 ms | p99 ms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for i, srv := range a.order {
		label := "-"
		if len(labels) > 0 {
			label = labels[i%len(labels)]
		}
		if len(srv.delays) == 0 {
			fmt.Fprintf(w, "| %s | %d | %d | 0 | 0 | | | | | | | |\n", label, srv.port, srv.msgsIn)
			continue
		}
		slices.Sort(srv.delays)
		last := make([]time.Duration, 0, len(srv.lastDelay))
		for _, d := range srv.lastDelay {
			last = append(last, d)
		}
		slices.Sort(last)
		d := srv.delays
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", label, srv.port, srv.msgsIn, len(last), len(d),
			ms(quantile(d, .5)), ms(quantile(d, .9)), ms(quantile(d, .99)), ms(quantile(d, .999)), ms(d[len(d)-1]),
			ms(quantile(last, .5)), ms(quantile(last, .99)))
	}
}

func run(path string, labels []string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := newPcapReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	a := newAnalysis()
	for {
		p, err := r.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		a.add(p)
	}
	a.report(w, labels)
	return nil
}

func main() {
	labels := flag.String("labels", "", "comma-separated names of the servers, in the order they first accepted a connection (cycled)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: wirelat [-labels a,b,...] capture.pcap")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	var ls []string
	if *labels != "" {
		ls = strings.Split(*labels, ",")
	}
	if err := run(flag.Arg(0), ls, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wirelat:", err)
		os.Exit(1)
	}
}
