package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// traceDocs are the whole Yjs documents of ../shared/traces/yjs (README
// there): long real editing sessions, sequential, concurrent and with 194
// authors, 0.5-1.1 MB each as one update.
var traceDocs = []string{"S1", "S2", "C1", "C2", "A1"}

// tracesDir is ../shared/traces beside the module root; the test skips
// without it, except in CI.
func tracesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(moduleRoot, "..", "shared", "traces", "yjs")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("traces not found at %s: %v", dir, err)
		}
		t.Skipf("traces not found at %s", dir)
	}
	return dir
}

// TestTraceDocumentsThroughTheServer: each real document is posted by a
// backend (POST /api/docs/{id}/update), then read back: the server's text of
// root `text` must be the text Yjs renders, its full state decoded by Yjs
// must have the same text and state vector, a stock y-websocket client must
// sync exactly that and edit on top, and all of it must survive a restart.
func TestTraceDocumentsThroughTheServer(t *testing.T) {
	t.Parallel()
	requireNode(t)
	dir := tracesDir(t)
	s := StartServer(t, ServerOpts{})
	want := map[string]Report{}
	for _, name := range traceDocs {
		update, err := os.ReadFile(filepath.Join(dir, name+".v1.yjs"))
		if err != nil {
			t.Fatal(err)
		}
		text, err := os.ReadFile(filepath.Join(dir, name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		doc := "trace-" + name
		if code, body := s.Do(t, http.MethodPost, docPath(doc)+"/update", "application/octet-stream", update); code/100 != 2 {
			t.Fatalf("%s: POST update of %d bytes: %d %s", name, len(update), code, truncate(body, 200))
		}
		orig := decodeUpdate(t, update, "--root", "text")
		if orig.Text != string(text) {
			t.Fatalf("%s: Yjs renders the trace's update differently from %s.txt: the trace files disagree", name, name)
		}
		checkServerHasRoot(t, s, doc, "text", Report{Text: orig.Text, SV: orig.SV})

		c := startClient(t, s, name, doc, 500, "--root", "text")
		c.waitSynced(t)
		if r := c.report(t); r.Text != orig.Text || r.SV.String() != orig.SV.String() {
			t.Fatalf("%s: a client synced %d chars, sv %v; want %d chars, sv %v", name, r.Len, r.SV, len(orig.Text), orig.SV)
		}
		edits(t, 40, 0, c)
		want[name] = converge(t, c)
		checkServerHasRoot(t, s, doc, "text", want[name])
		c.Kill()
	}
	s.Stop(t)
	s.Restart(t)
	for _, name := range traceDocs {
		doc := "trace-" + name
		checkServerHasRoot(t, s, doc, "text", want[name])
		c := startClient(t, s, name+"-after", doc, 501, "--root", "text")
		c.waitSynced(t)
		if r := c.report(t); r.Hash != want[name].Hash || r.SV.String() != want[name].SV.String() {
			t.Fatalf("%s after restart: a client synced %d chars, sv %v; want %d chars, sv %v", name, r.Len, r.SV, want[name].Len, want[name].SV)
		}
		c.Kill()
	}
}
