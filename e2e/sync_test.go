package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestConcurrentEditorsConverge: four stock y-websocket clients type random
// edits into one document at the same time. They must all end with the same
// text and state vector, and the server's own CRDT must agree: its text
// endpoint and its full state as decoded by Yjs.
func TestConcurrentEditorsConverge(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{})
	const doc = "converge"
	var clients []*Client
	for i := range 4 {
		c := startClient(t, s, fmt.Sprintf("editor%d", i), doc, i+1)
		clients = append(clients, c)
	}
	for _, c := range clients {
		c.waitSynced(t)
	}
	edits(t, 150, 2, clients...)
	got := converge(t, clients...)
	if len(got.SV) != len(clients) {
		t.Fatalf("state vector %v: want an entry for each of the %d clients", got.SV, len(clients))
	}
	for _, c := range clients {
		if got.SV[strconv.FormatUint(c.ClientID, 10)] == 0 {
			t.Fatalf("state vector %v lacks %s (client %d)", got.SV, c.Name, c.ClientID)
		}
	}
	checkServerHas(t, s, doc, got)
}

// TestLateJoinerAndOfflineEdits: a client that joins after the others edited
// receives everything on sync; a client that went offline and edited while
// the others kept editing merges both ways on reconnect.
func TestLateJoinerAndOfflineEdits(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{})
	const doc = "late-and-offline"
	a := startClient(t, s, "a", doc, 11)
	b := startClient(t, s, "b", doc, 12)
	a.waitSynced(t)
	b.waitSynced(t)
	edits(t, 100, 1, a, b)
	before := converge(t, a, b)

	// The late joiner must have the whole state as soon as it is synced: the
	// server relayed every edit of a and b, so it holds them all.
	late := startClient(t, s, "late", doc, 13)
	late.waitSynced(t)
	if r := late.report(t); r.Text != before.Text || r.SV.String() != before.SV.String() {
		t.Fatalf("late joiner after sync: sv %v text %q..., want sv %v text %q...", r.SV, head(r.Text), before.SV, head(before.Text))
	}

	// b goes offline and edits; a edits meanwhile.
	b.do(t, map[string]any{"cmd": "disconnect"})
	edits(t, 60, 1, a, b)
	aNow, bNow := a.report(t), b.report(t)
	aKey, bKey := strconv.FormatUint(a.ClientID, 10), strconv.FormatUint(b.ClientID, 10)
	if bNow.SV[aKey] != before.SV[aKey] {
		t.Fatalf("offline client received a's edits (clock %d, was %d): it was not offline", bNow.SV[aKey], before.SV[aKey])
	}
	if aNow.SV[bKey] != before.SV[bKey] {
		t.Fatalf("a received the offline client's edits (clock %d, was %d)", aNow.SV[bKey], before.SV[bKey])
	}
	b.do(t, map[string]any{"cmd": "connect"})
	b.waitSynced(t)
	after := converge(t, a, b, late)
	if after.SV[aKey] != aNow.SV[aKey] || after.SV[bKey] != bNow.SV[bKey] {
		t.Fatalf("after reconnect sv %v, want a's %d and b's %d edits", after.SV, aNow.SV[aKey], bNow.SV[bKey])
	}
	checkServerHas(t, s, doc, after)
}

// TestRestartKeepsEverything: after a clean stop (SIGTERM, exit 0) and a
// start on the same database, a fresh client gets exactly the state the
// editors converged on. The editors are killed before the stop, and a client
// that stays connected (it must be closed with 1001) is killed before the
// restart, so nothing can come back from them: only the database. Two rounds, so the second
// restart loads a document written across two server lifetimes. A low
// compaction threshold makes the store snapshot the document several times,
// so loading goes through a snapshot plus the log after it.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{Args: []string{compactRowsFlag, "50", "--log-level", "debug"}})
	const doc = "restart"
	var want Report
	for round := range 2 {
		a := startClient(t, s, "a", doc, 100+round)
		b := startClient(t, s, "b", doc, 200+round)
		idle := startClient(t, s, "idle", doc, 250+round) // stays connected through the stop
		a.waitSynced(t)
		b.waitSynced(t)
		idle.waitSynced(t)
		if round > 0 {
			if r := a.report(t); r.Text != want.Text || r.SV.String() != want.SV.String() {
				t.Fatalf("round %d: after restart a client sees sv %v text %q..., want sv %v text %q...", round, r.SV, head(r.Text), want.SV, head(want.Text))
			}
		}
		edits(t, 300, 0, a, b)
		want = converge(t, a, b)
		checkServerHas(t, s, doc, want)
		a.Kill()
		b.Kill()
		s.Stop(t)
		// A stopping server closes its WebSockets as "going away" (1001).
		var closed struct {
			Code   int    `json:"code"`
			Reason string `json:"reason"`
		}
		idle.Expect(t, cmdTimeout, "close", &closed)
		if closed.Code != 1001 {
			t.Fatalf("round %d: on SIGTERM a connected client was closed with %d %q, want 1001 (going away)", round, closed.Code, closed.Reason)
		}
		idle.Kill() // before the restart: it must not bring its state back
		s.Restart(t)
		checkServerHas(t, s, doc, want)
	}
	t.Logf("server log: %d lines, %d mention compaction", strings.Count(s.Log(), "\n"), strings.Count(s.Log(), "compact"))
	fresh := startClient(t, s, "fresh", doc, 300)
	fresh.waitSynced(t)
	if r := fresh.report(t); r.Text != want.Text || r.SV.String() != want.SV.String() {
		t.Fatalf("after restart a fresh client sees sv %v text %q..., want sv %v text %q...", r.SV, head(r.Text), want.SV, head(want.Text))
	}
}

// TestUpdateAheadOfItsDependencySurvivesRestart: an update that builds on
// one the server has not seen (its sender got that one elsewhere) cannot
// integrate yet. The server keeps it, across a restart, and it shows up when
// the update it waits for arrives.
func TestUpdateAheadOfItsDependencySurvivesRestart(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{})
	const doc = "ahead"
	first := writeTemp(t, "first.bin", nil)
	second := writeTemp(t, "second.bin", nil)
	var made Decoded
	ytool(t, &made, "make-update", "--out", first, "--text", "written first")
	ytool(t, &made, "make-update", "--base", first, "--out", second, "--text", ", then more")
	post := func(file string) {
		t.Helper()
		update, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if code, body := s.Do(t, http.MethodPost, docPath(doc)+"/update", "application/octet-stream", update); code/100 != 2 {
			t.Fatalf("POST update: status %d %q", code, body)
		}
	}
	post(second)
	if got := serverText(t, s, doc); got != "" {
		t.Fatalf("with its dependency missing the server shows %q", got)
	}
	s.Stop(t)
	s.Restart(t)
	watcher := startClient(t, s, "watcher", doc, 61)
	watcher.waitSynced(t)
	post(first)
	if got := serverText(t, s, doc); got != made.Text {
		t.Fatalf("after the dependency arrived the server shows %q, want %q", got, made.Text)
	}
	watcher.do(t, map[string]any{"cmd": "waitText", "text": made.Text})
	if got := decodeUpdate(t, s.Get(t, docPath(doc)+"/update")).Text; got != made.Text {
		t.Fatalf("the server's state decoded by Yjs has text %q, want %q", got, made.Text)
	}
}
