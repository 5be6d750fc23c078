package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const connectionsGauge = "quire_websocket_connections" // /metrics: open WebSocket connections

// TestSlowReaderDoesNotStallItsRoom checks DESIGN.md invariant 4: a peer
// that stops reading never blocks its room. A raw client joins a document
// and then stops reading its socket; an editor appends 10 MB in 100 updates,
// far more than the socket buffers hold. The other peer must receive all of
// it while the stalled peer is still connected (the room did not wait for
// it to be dropped), the stalled peer must then be disconnected by the
// server, and the stored document is the editor's.
func TestSlowReaderDoesNotStallItsRoom(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{})
	const doc = "slow-reader"
	ed := startClient(t, s, "editor", doc, 31)
	obs := startClient(t, s, "observer", doc, 32)
	ed.waitSynced(t)
	obs.waitSynced(t)
	slow := StartNode(t, "hostile.mjs", "--url", s.WS, "--doc", doc, "--mode", "stall", "--join", "--timeout", "180000")
	slow.Expect(t, cmdTimeout, "paused", nil)
	if n := metric(t, s, connectionsGauge); n != 3 {
		t.Fatalf("%s = %v with three peers connected", connectionsGauge, n)
	}

	const chunks, size = 100, 100_000
	start := time.Now()
	ed.do(t, map[string]any{"cmd": "bulk", "n": chunks, "size": size})
	got := converge(t, ed, obs)
	t.Logf("%d MB appended and converged in %v", chunks*size>>20, time.Since(start).Round(time.Millisecond))
	if got.Len != chunks*size {
		t.Fatalf("converged on %d characters, want %d", got.Len, chunks*size)
	}
	if n := metric(t, s, connectionsGauge); n != 3 {
		// The stalled peer is normally dropped only once its outbox
		// overflows or a write to it times out (seconds later); if it is
		// gone already, the room may have waited for that.
		t.Fatalf("%s = %v when the observer had everything: the stalled peer was dropped first, so the room may have waited on it", connectionsGauge, n)
	}
	waitFor(t, cmdTimeout, "the stalled peer to be disconnected", func() (bool, string) {
		n := metric(t, s, connectionsGauge)
		return n == 2, fmt.Sprintf("%s = %v", connectionsGauge, n)
	})
	slow.SendLine(t, "resume")
	var closed struct {
		Code     int `json:"code"`
		Received int `json:"received"`
	}
	slow.Expect(t, cmdTimeout, "closed", &closed)
	if closed.Received >= chunks*size {
		t.Fatalf("the stalled peer received %d bytes: everything, so it was not cut off", closed.Received)
	}
	t.Logf("stalled peer: received %d of %d bytes, close code %d", closed.Received, chunks*size, closed.Code)
	for _, c := range []*Client{ed, obs} {
		for _, line := range c.Lines() {
			if strings.Contains(line, `"ev":"close"`) || strings.Contains(line, `"status":"disconnected"`) {
				t.Fatalf("well-behaved client %s lost its connection: %s", c.Name, line)
			}
		}
	}
	if txt := serverText(t, s, doc); txt != got.Text {
		t.Fatalf("server text has %d bytes, the clients %d", len(txt), len(got.Text))
	}
}
