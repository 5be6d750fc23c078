package e2e

import (
	"testing"
)

// richXMLRoot is the XmlFragment that client.mjs --profile edits: the name
// y-prosemirror gives it by default.
const richXMLRoot = "prosemirror"

// TestRichDocumentsConverge: stock y-websocket clients edit every kind of
// content a Yjs editor binding makes, through the server: formatted text
// with embeds, maps and arrays of every lib0 value, nested types that get
// overwritten and deleted, subdocuments, and a y-prosemirror XML tree with
// marks and attributes (crdt/oracle/gen.mjs's mixed and xml profiles). One
// of them edits offline for a while, a late joiner catches up, and the
// server restarts on a database whose log it has snapshotted several times.
// Every client, and the server's own state decoded by Yjs, must agree on all
// of it, not only on the text.
func TestRichDocumentsConverge(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{Args: []string{compactRowsFlag, "30"}})
	const doc = "rich"
	a := startClient(t, s, "a", doc, 401, "--profile", "mixed")
	b := startClient(t, s, "b", doc, 402, "--profile", "mixed")
	c := startClient(t, s, "c", doc, 403, "--profile", "xml")
	for _, cl := range []*Client{a, b, c} {
		cl.waitSynced(t)
	}
	edits(t, 80, 2, a, b, c)

	c.do(t, map[string]any{"cmd": "disconnect"})
	edits(t, 40, 1, a, c)
	c.do(t, map[string]any{"cmd": "connect"})
	c.waitSynced(t)
	want := converge(t, a, b, c)
	if want.JSON == "" {
		t.Fatal("the clients' report has no JSON of the other roots: the profile did not apply")
	}
	checkServerHas(t, s, doc, want)

	late := startClient(t, s, "late", doc, 404, "--profile", "mixed")
	late.waitSynced(t)
	if r := late.report(t); r.Hash != want.Hash || r.SV.String() != want.SV.String() {
		t.Fatalf("late joiner after sync: sv %v json %s, want sv %v json %s", r.SV, head(r.JSON), want.SV, head(want.JSON))
	}

	for _, cl := range []*Client{a, b, c, late} {
		cl.Kill()
	}
	s.Stop(t)
	s.Restart(t)
	checkServerHas(t, s, doc, want)
	fresh := startClient(t, s, "fresh", doc, 405, "--profile", "xml")
	fresh.waitSynced(t)
	if r := fresh.report(t); r.Hash != want.Hash || r.SV.String() != want.SV.String() {
		t.Fatalf("after restart a fresh client sees sv %v json %s, want sv %v json %s", r.SV, head(r.JSON), want.SV, head(want.JSON))
	}
	// It edits on top of the reloaded state, and the server follows.
	edits(t, 30, 1, fresh)
	checkServerHas(t, s, doc, converge(t, fresh))
}
