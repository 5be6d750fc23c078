package e2e

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	scaleDocs     = 200
	roomsGauge    = "quire_rooms" // /metrics: rooms currently loaded
	goroutines    = "go_goroutines"
	unloadTimeout = 30 * time.Second
)

// TestManyRoomsUnloadAndMemoryComesBack opens 200 documents at once (one
// stock provider each, from one Node process), each writes a line, then all
// leave. With a short room idle time every room must unload: the rooms gauge
// returns to 0, and the server's sockets and goroutines return to their
// baseline. A second round on the same documents must find every line of the
// first (loaded back from the store); a third opens 200 other documents.
// Neither may grow the process again by what the first round took: the
// memory of unloaded rooms is reused, not leaked. (RSS is checked loosely:
// Go returns memory to the OS lazily.)
func TestManyRoomsUnloadAndMemoryComesBack(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{Args: []string{roomIdleFlag, "1s"}})
	pid := s.PID()
	if got := metric(t, s, roomsGauge); got != 0 {
		t.Fatalf("%s = %v before any client", roomsGauge, got)
	}
	rss0, sock0 := rssKB(t, pid), socketCount(t, pid)
	g0, hasG := metricMaybe(t, s, goroutines)

	many := StartNode(t, "many.mjs", "--url", s.WS, "--count", strconv.Itoa(scaleDocs))
	rounds := []struct {
		prefix string
		round  int // lines written to these documents so far, this one included
	}{{"scale-a", 1}, {"scale-a", 2}, {"scale-b", 1}}
	var peaks []int
	for _, r := range rounds {
		many.Send(t, map[string]any{"cmd": "open", "prefix": r.prefix, "round": r.round})
		many.Expect(t, 2*cmdTimeout, "done", nil)
		if got := metric(t, s, roomsGauge); got != scaleDocs {
			t.Fatalf("%s round %d: %s = %v with %d documents open, want %d", r.prefix, r.round, roomsGauge, got, scaleDocs, scaleDocs)
		}
		peaks = append(peaks, rssKB(t, pid))
		// The server's own CRDT has every line written so far.
		for i := range scaleDocs {
			want := ""
			for k := 1; k <= r.round; k++ {
				want += fmt.Sprintf("r%d doc %d\n", k, i)
			}
			doc := fmt.Sprintf("%s-%d", r.prefix, i)
			waitFor(t, cmdTimeout, "server text of "+doc, func() (bool, string) {
				got := serverText(t, s, doc)
				return got == want, fmt.Sprintf("%q, want %q", got, want)
			})
		}

		many.Send(t, map[string]any{"cmd": "close"})
		many.Expect(t, cmdTimeout, "done", nil)
		waitFor(t, unloadTimeout, "rooms to unload", func() (bool, string) {
			got := metric(t, s, roomsGauge)
			return got == 0, fmt.Sprintf("%s = %v", roomsGauge, got)
		})
		// Every socket of the 200 connections is closed. (Files are not
		// counted: the store's read pool may keep more of them open.)
		waitFor(t, unloadTimeout, "sockets back to the baseline", func() (bool, string) {
			n := socketCount(t, pid)
			return n <= sock0, fmt.Sprintf("%d sockets open, %d before the clients", n, sock0)
		})
		if hasG {
			waitFor(t, unloadTimeout, "goroutines back to the baseline", func() (bool, string) {
				g := metric(t, s, goroutines)
				return g <= g0+4, fmt.Sprintf("%v goroutines, %v before the clients", g, g0)
			})
		}
		t.Logf("%s round %d: RSS %d kB at start, %d kB with %d rooms, %d kB after unloading", r.prefix, r.round, rss0, peaks[len(peaks)-1], scaleDocs, rssKB(t, pid))
	}
	if !hasG {
		t.Logf("/metrics has no %s: goroutine leak check skipped", goroutines)
	}
	// A leak of the rooms of earlier rounds would add their whole footprint
	// again in each later round: by the third round, twice what the first
	// took. The limit allows one such footprint plus 4 MB, because RSS is
	// sampled at an arbitrary point of the garbage collector's cycle.
	grew := peaks[0] - rss0
	limit := peaks[0] + grew + 4<<10
	for i, p := range peaks[1:] {
		if p > limit {
			t.Fatalf("RSS with %d rooms open in round %d: %d kB, in the first %d kB (from %d kB): the unloaded rooms' memory was not reused (limit %d kB)",
				scaleDocs, i+2, p, peaks[0], rss0, limit)
		}
	}
}

// waitFor polls cond until it holds, failing with its last description at the deadline.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: still %s after %v", what, desc, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric reads one unlabelled sample (or the sum of a metric's labelled
// samples) from GET /metrics; it fails the test if the metric is missing.
func metric(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	v, ok := metricMaybe(t, s, name)
	if !ok {
		t.Fatalf("GET /metrics has no %s", name)
	}
	return v
}

func metricMaybe(t *testing.T, s *Server, name string) (float64, bool) {
	t.Helper()
	body := s.Get(t, "/metrics")
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		key := fields[0]
		if i := strings.IndexByte(key, '{'); i >= 0 {
			key = key[:i]
		}
		if key != name {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			t.Fatalf("/metrics: %s: %v", line, err)
		}
		sum += v
		found = true
	}
	return sum, found
}

// rssKB is the resident set size of a process (VmRSS of /proc/PID/status).
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// socketCount is the number of open sockets of a process.
func socketCount(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	n := 0
	for _, e := range ents {
		// A descriptor closed since ReadDir has no link any more: not counted.
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}
