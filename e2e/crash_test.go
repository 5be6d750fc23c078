package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// TestCrashLosesNothingAWatcherSaw checks durability (DESIGN.md invariant 2:
// persist, then broadcast) through kill -9. One client types continuously,
// another only watches. The server is killed while the typing goes on; then
// the typer and the watcher are stopped before the server restarts, so the
// only source of state afterwards is the database. A fresh client's state
// must contain everything the watcher ever received: merging the watcher's
// state into it must change nothing (no struct and no deletion missing).
// The server may have committed more than the watcher saw; that is fine.
// A low compaction threshold makes snapshots frequent, so the kill may well
// land in the middle of one.
func TestCrashLosesNothingAWatcherSaw(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{Args: []string{compactRowsFlag, "20", "--log-level", "debug"}})
	const doc = "crash"
	for cycle := range 3 {
		typer := startClient(t, s, "typer", doc, 500+cycle)
		watcher := startClient(t, s, "watcher", doc, 600+cycle, "--watch")
		typer.waitSynced(t)
		watcher.waitSynced(t)
		typer.do(t, map[string]any{"cmd": "type", "delay": 2})
		// Let the watcher see a good number of the typer's updates, then
		// crash the server in the middle of the stream.
		for range 150 {
			watcher.Expect(t, cmdTimeout, "change", nil)
		}
		s.Kill(t)
		typer.Kill()
		// After the kill nothing can reach the watcher any more: its state
		// now is everything it ever received from the server.
		seen := watcher.reportState(t)
		watcher.Kill()
		if seen.SV[strconv.FormatUint(typer.ClientID, 10)] == 0 {
			t.Fatalf("cycle %d: the watcher saw none of the typer's edits (sv %v)", cycle, seen.SV)
		}

		s.Restart(t)
		fresh := startClient(t, s, "fresh", doc, 700+cycle)
		fresh.waitSynced(t)
		got := fresh.reportState(t)
		fresh.Kill()
		if !got.SV.covers(seen.SV) {
			t.Fatalf("cycle %d: after kill -9 the server's state vector %v lacks updates the watcher received (%v)", cycle, got.SV, seen.SV)
		}
		var cov struct {
			Covered    bool   `json:"covered"`
			ServerText string `json:"serverText"`
			ClientText string `json:"clientText"`
		}
		ytool(t, &cov, "covers", writeTemp(t, "server.bin", got.StateBytes(t)), writeTemp(t, "watcher.bin", seen.StateBytes(t)))
		if !cov.Covered {
			t.Fatalf("cycle %d: after kill -9 the stored document lacks edits the watcher received:\nstored  %q\nwatcher %q", cycle, cov.ServerText, cov.ClientText)
		}
		// The server's own view agrees with what it gave the fresh client.
		checkServerHas(t, s, doc, got)
		t.Logf("cycle %d: watcher saw %d chars, the restarted server has %d; %d log lines mention compaction so far",
			cycle, len([]rune(seen.Text)), len([]rune(got.Text)), strings.Count(s.Log(), "compact"))
	}
}
