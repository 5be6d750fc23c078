// Command writefloor measures what the hot-room load (W1 of ../shared/bench)
// costs a server that does nothing but the writes: one small write per
// delivery to each of 49 loopback TCP sockets, 200 times a second, read by a
// Node process as the load generator reads them. It prints the CPU this
// process used, as a percentage of one core and per write: the floor under
// any server that sends every update to every peer as it comes, since on
// loopback the kernel charges the receiving side of each segment to the
// sender too.
//
//	go run ./scripts/writefloor [-peers 49] [-rate 200] [-bytes 24] [-duration 10s]
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// receiver is the reading side, as the bench's generator: one Node process,
// every socket with TCP_NODELAY, every byte read and dropped.
const receiver = `
import net from 'node:net';
const [host, port] = process.argv[2].split(':');
for (let i = 0; i < +process.argv[3]; i++) {
  const s = net.connect(+port, host);
  s.setNoDelay(true);
  s.on('data', () => {});
  s.on('error', () => process.exit(0));
  s.on('close', () => process.exit(0));
}
`

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		log.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	peers := flag.Int("peers", 49, "sockets written per delivery round")
	rate := flag.Int("rate", 200, "delivery rounds per second")
	size := flag.Int("bytes", 24, "bytes per write (a keystroke update in a WebSocket frame)")
	dur := flag.Duration("duration", 10*time.Second, "how long to measure")
	flag.Parse()

	dir, err := os.MkdirTemp("", "writefloor")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "receiver.mjs")
	if err := os.WriteFile(script, []byte(receiver), 0o644); err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command("node", script, ln.Addr().String(), strconv.Itoa(*peers))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		log.Fatalf("start the Node receiver: %v", err)
	}
	defer cmd.Process.Kill()
	var conns []*net.TCPConn
	for range *peers {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		tc.SetNoDelay(true)
		conns = append(conns, tc)
	}
	msg := make([]byte, *size)
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	start, c0 := time.Now(), cpuTime()
	writes := 0
	for time.Since(start) < *dur {
		<-tick.C
		for _, c := range conns {
			if _, err := c.Write(msg); err != nil {
				log.Fatalf("write: %v", err)
			}
			writes++
		}
	}
	el, cpu := time.Since(start), cpuTime()-c0
	fmt.Printf("%d writes/s of %d bytes to %d sockets: %.1f%% of a core, %.2f us of CPU per write\n",
		int(float64(writes)/el.Seconds()), *size, *peers, 100*cpu.Seconds()/el.Seconds(),
		float64(cpu.Nanoseconds())/1e3/float64(writes))
}
