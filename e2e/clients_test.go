package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Deadlines for the client side. Convergence on a loaded two-core machine can
// take seconds; these only bound the wait.
const (
	cmdTimeout  = 60 * time.Second // one client command (edit batch, wait for a state)
	nodeTimeout = 60 * time.Second // one short node run
)

// SV is a Yjs state vector as the scripts print it: client id -> clock.
type SV map[string]uint64

// String prints the entries sorted by client id, so equal vectors print alike.
func (sv SV) String() string {
	keys := slices.Sorted(maps.Keys(sv))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, sv[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// union is the smallest state vector covering all of svs.
func union(svs ...SV) SV {
	out := SV{}
	for _, sv := range svs {
		for k, v := range sv {
			out[k] = max(out[k], v)
		}
	}
	return out
}

// covers reports whether a has every clock of b.
func (sv SV) covers(b SV) bool {
	for k, v := range b {
		if sv[k] < v {
			return false
		}
	}
	return true
}

// Report is a client's answer to the "report" command.
type Report struct {
	ClientID uint64 `json:"clientID"`
	SV       SV     `json:"sv"`
	Len      int    `json:"len"`   // text length in UTF-16 units
	Hash     string `json:"hash"`  // sha256 of the text, hex
	Text     string `json:"text"`  // unless asked without
	JSON     string `json:"json"`  // with --profile and text: the other roots, canonical JSON
	State    string `json:"state"` // base64 of Y.encodeStateAsUpdate, if asked for
}

// StateBytes is the client's full state as a v1 update.
func (r Report) StateBytes(t testing.TB) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(r.State)
	if err != nil {
		t.Fatalf("report state: %v", err)
	}
	return b
}

// Client is one e2e/js/client.mjs process: a stock WebsocketProvider on one document.
type Client struct {
	*NodeProc
	Name     string
	ClientID uint64
	nextID   int
	aware    []string // user names in its last awareness event
}

// startClient starts a client of doc on s; flags are extra client.mjs flags.
func startClient(t *testing.T, s *Server, name, doc string, seed int, flags ...string) *Client {
	t.Helper()
	args := append([]string{"--url", s.WS, "--doc", doc, "--seed", fmt.Sprint(seed)}, flags...)
	c := &Client{NodeProc: StartNode(t, "client.mjs", args...), Name: name}
	var ready struct {
		ClientID uint64 `json:"clientID"`
	}
	c.Expect(t, cmdTimeout, "ready", &ready)
	c.ClientID = ready.ClientID
	return c
}

// send queues one command without waiting; finish waits for its "done".
func (c *Client) send(t testing.TB, cmd map[string]any) int {
	t.Helper()
	c.nextID++
	cmd["id"] = c.nextID
	c.Send(t, cmd)
	return c.nextID
}

// finish waits for the "done" of command id.
func (c *Client) finish(t testing.TB, id int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(cmdTimeout)
	for {
		var done map[string]any
		c.Expect(t, time.Until(deadline), "done", &done)
		if got, _ := done["id"].(float64); int(got) == id {
			return done
		}
	}
}

// do runs one command to completion.
func (c *Client) do(t testing.TB, cmd map[string]any) map[string]any {
	t.Helper()
	return c.finish(t, c.send(t, cmd))
}

func (c *Client) waitSynced(t testing.TB) { t.Helper(); c.do(t, map[string]any{"cmd": "waitSynced"}) }

func (c *Client) waitSV(t testing.TB, sv SV) {
	t.Helper()
	c.do(t, map[string]any{"cmd": "waitSV", "sv": sv})
}

// report asks for the client's state vector and text.
func (c *Client) report(t testing.TB) Report {
	t.Helper()
	return c.reportOpts(t, true, false)
}

// reportState asks for the client's state vector, text and full state.
func (c *Client) reportState(t testing.TB) Report {
	t.Helper()
	return c.reportOpts(t, true, true)
}

func (c *Client) reportOpts(t testing.TB, text, state bool) Report {
	t.Helper()
	id := c.send(t, map[string]any{"cmd": "report", "text": text, "state": state})
	var r Report
	c.Expect(t, cmdTimeout, "report", &r)
	c.finish(t, id)
	return r
}

// edits runs n random edits on every client at once and waits for all.
func edits(t testing.TB, n, delayMS int, clients ...*Client) {
	t.Helper()
	ids := make([]int, len(clients))
	for i, c := range clients {
		ids[i] = c.send(t, map[string]any{"cmd": "edit", "n": n, "delay": delayMS})
	}
	for i, c := range clients {
		c.finish(t, ids[i])
	}
}

// converge waits until every client has every edit any of them made, then
// until they agree on text and state vector; it returns the common report.
// Deletions do not advance a state vector, so covering the union of the
// state vectors is not enough: the reports are compared until they match.
func converge(t testing.TB, clients ...*Client) Report {
	t.Helper()
	var svs []SV
	for _, c := range clients {
		svs = append(svs, c.reportOpts(t, false, false).SV)
	}
	want := union(svs...)
	ids := make([]int, len(clients))
	for i, c := range clients {
		ids[i] = c.send(t, map[string]any{"cmd": "waitSV", "sv": want})
	}
	for i, c := range clients {
		c.finish(t, ids[i])
	}
	deadline := time.Now().Add(cmdTimeout)
	for {
		reports := make([]Report, len(clients))
		for i, c := range clients {
			reports[i] = c.reportOpts(t, false, false)
		}
		diff := ""
		for i, r := range reports[1:] {
			if r.Hash != reports[0].Hash {
				diff = fmt.Sprintf("clients diverge: %s has %d chars (sha256 %.12s), %s has %d chars (sha256 %.12s)",
					clients[0].Name, reports[0].Len, reports[0].Hash, clients[i+1].Name, r.Len, r.Hash)
				break
			}
			if r.SV.String() != reports[0].SV.String() {
				diff = fmt.Sprintf("state vectors diverge: %s %v, %s %v", clients[0].Name, reports[0].SV, clients[i+1].Name, r.SV)
				break
			}
		}
		if diff == "" {
			if !reports[0].SV.covers(want) {
				t.Fatalf("converged state vector %v misses %v", reports[0].SV, want)
			}
			final := clients[0].report(t)
			if final.Hash != reports[0].Hash || final.SV.String() != reports[0].SV.String() {
				t.Fatalf("%s changed after convergence: no client was editing", clients[0].Name)
			}
			return final
		}
		if time.Now().After(deadline) {
			t.Fatal(diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func head(s string) string {
	if len(s) > 60 {
		return s[:60]
	}
	return s
}

// docPath is the HTTP API path of a document.
func docPath(doc string) string { return "/api/docs/" + url.PathEscape(doc) }

// serverText is GET /api/docs/{doc}/text?name=content.
func serverText(t testing.TB, s *Server, doc string) string {
	t.Helper()
	return serverTextOf(t, s, doc, "content")
}

// serverTextOf is GET /api/docs/{doc}/text?name=root.
func serverTextOf(t testing.TB, s *Server, doc, root string) string {
	t.Helper()
	return string(s.Get(t, docPath(doc)+"/text?name="+url.QueryEscape(root)))
}

// Decoded is what Yjs makes of an update (ytool.mjs decode).
type Decoded struct {
	Text  string `json:"text"`
	SV    SV     `json:"sv"`
	Bytes int    `json:"bytes"`
	JSON  string `json:"json"` // with --xml-root: as Report.JSON
}

// writeTemp writes b to a new file in the test's temp dir.
func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// ytool runs e2e/js/ytool.mjs and decodes its one JSON line into v.
func ytool(t *testing.T, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	out, err := RunNode(t, ctx, "ytool.mjs", args...)
	if err != nil {
		t.Fatalf("ytool %s: %v", args[0], err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ytool %s: %v in %q", args[0], err, truncate(out, 300))
	}
}

// decodeUpdate has Yjs decode a v1 update; flags are extra ytool.mjs decode flags.
func decodeUpdate(t *testing.T, update []byte, flags ...string) Decoded {
	t.Helper()
	var d Decoded
	ytool(t, &d, append([]string{"decode", writeTemp(t, "update.bin", update)}, flags...)...)
	return d
}

// checkServerHas checks the server's own view of doc (its text, and its full
// state decoded by Yjs) against a client's converged report; for clients with
// a --profile, the other roots too.
func checkServerHas(t *testing.T, s *Server, doc string, want Report) {
	t.Helper()
	checkServerHasRoot(t, s, doc, "content", want)
}

// checkServerHasRoot is checkServerHas for the root Y.Text named root.
func checkServerHasRoot(t *testing.T, s *Server, doc, root string, want Report) {
	t.Helper()
	if got := serverTextOf(t, s, doc, root); got != want.Text {
		t.Fatalf("server text (%d chars) %q... differs from the clients' (%d chars) %q...", len(got), head(got), len(want.Text), head(want.Text))
	}
	flags := []string{"--root", root}
	if want.JSON != "" {
		flags = append(flags, "--xml-root", richXMLRoot)
	}
	d := decodeUpdate(t, s.Get(t, docPath(doc)+"/update"), flags...)
	if want.JSON != "" && d.JSON != want.JSON {
		t.Fatalf("server update decoded by Yjs: roots meta, list, %s\n%s\ndiffer from the clients'\n%s", richXMLRoot, d.JSON, want.JSON)
	}
	if d.Text != want.Text {
		t.Fatalf("server update decoded by Yjs: text %q... differs from the clients' %q...", head(d.Text), head(want.Text))
	}
	if fmt.Sprint(d.SV) != fmt.Sprint(want.SV) {
		t.Fatalf("server update decoded by Yjs: state vector %v, clients %v", d.SV, want.SV)
	}
}
