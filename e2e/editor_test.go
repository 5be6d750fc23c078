package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// browserTimeout bounds one Playwright script; the scripts bound each of their own waits at 30 s.
const browserTimeout = 3 * time.Minute

// chromiumPath is Debian's chromium, which `make deps-chromium` installs; CHROMIUM overrides it.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// requireChromium skips a browser test when chromium or playwright-core is missing, except in CI
// (env CI set), where that is a failure.
func requireChromium(t *testing.T) {
	t.Helper()
	requireNode(t)
	var why string
	if _, err := os.Stat(chromiumPath()); err != nil {
		why = chromiumPath() + " is missing: run `make deps-chromium`"
	} else if !fileExists(filepath.Join(moduleRoot, "node_modules", "playwright-core", "package.json")) {
		why = "node_modules/playwright-core is missing: run `make deps-npm`"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// artifactsDir is e2e/artifacts (gitignored), where the browser tests leave their screenshots.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(moduleRoot, "e2e", "artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

// runBrowser runs a Playwright script (e2e/js/editor*.mjs) to completion, logs its JSON lines and
// returns the final {"done":true,...} line decoded into v.
func runBrowser(t *testing.T, v any, script string, args ...string) {
	t.Helper()
	requireChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	out, err := RunNode(t, ctx, script, args...)
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		t.Logf("%s: %s", script, truncate(sc.Bytes(), 2000))
		if bytes.Contains(sc.Bytes(), []byte(`"done":true`)) {
			last = append([]byte(nil), sc.Bytes()...)
		}
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	if last == nil {
		t.Fatalf("%s ended without a done line", script)
	}
	if err := json.Unmarshal(last, v); err != nil {
		t.Fatalf("%s: %v in %s", script, err, truncate(last, 500))
	}
}

// createDoc is POST /api/docs (with a name when given); it returns the new document's id.
func createDoc(t *testing.T, s *Server, name string) string {
	t.Helper()
	var body []byte
	if name != "" {
		body, _ = json.Marshal(map[string]string{"name": name})
	}
	code, resp := s.Do(t, http.MethodPost, "/api/docs", "application/json", body)
	if code != http.StatusCreated {
		t.Fatalf("POST /api/docs: status %d %q, want 201", code, truncate(resp, 300))
	}
	var d struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp, &d); err != nil || d.ID == "" {
		t.Fatalf("POST /api/docs: no id in %q (%v)", truncate(resp, 300), err)
	}
	return d.ID
}

// TestEditorTwoPeopleTypeAtOnce: two Chromium pages type into one document at the same moment and
// end with the same text, which is also the text the server's own CRDT renders; Alice's undo takes
// back her typing and never Bob's; Alice's cursor and selection appear on Bob's page with her name
// and color, and a hostile peer's "color" cannot restyle the page (the script fails otherwise);
// the picture of both editors is written to
// e2e/artifacts/editor-side-by-side.png.
func TestEditorTwoPeopleTypeAtOnce(t *testing.T) {
	requireChromium(t)
	s := StartServer(t, ServerOpts{})
	id := createDoc(t, s, "")
	var res struct {
		Text       string `json:"text"`
		Screenshot string `json:"screenshot"`
	}
	runBrowser(t, &res, "editor_collab.mjs", "--base", s.URL, "--doc", id, "--shots", artifactsDir(t))

	for _, want := range []string{
		"Alice types at the end of the document, one key at a time.",
		"Bob types at the start, at the very same moment. ",
		"The middle line.\n",
	} {
		if !strings.Contains(res.Text, want) {
			t.Errorf("final text %q lacks %q", res.Text, want)
		}
	}
	// Each page holds every keystroke of the other, and those went through the server: the server
	// has them all by now, no waiting.
	if got := serverText(t, s, id); got != res.Text {
		t.Fatalf("GET /api/docs/%s/text = %q, the pages show %q", id, got, res.Text)
	}
	png, err := os.ReadFile(res.Screenshot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10_000 {
		t.Fatalf("screenshot %s is not a real PNG (%d bytes)", res.Screenshot, len(png))
	}
	t.Logf("screenshot: %s", res.Screenshot)
}

// TestEditorOfflineReload: page A goes offline, both pages edit, A reloads while still offline and
// still has its edits (the service worker serves the page, y-indexeddb the document), A's status
// says offline with unsent changes; back online, both converge, the server has it all, and A's
// status went offline -> synced.
func TestEditorOfflineReload(t *testing.T) {
	requireChromium(t)
	s := StartServer(t, ServerOpts{})
	id := createDoc(t, s, "")
	var res struct {
		TextA   string   `json:"textA"`
		TextB   string   `json:"textB"`
		StatesA []string `json:"statesA"`
		StatusA struct {
			State   string `json:"state"`
			Pending int    `json:"pending"`
		} `json:"statusA"`
	}
	runBrowser(t, &res, "editor_offline.mjs", "--base", s.URL, "--doc", id)

	if res.TextA != res.TextB {
		t.Fatalf("pages differ after reconnecting:\nA: %q\nB: %q", res.TextA, res.TextB)
	}
	for _, want := range []string{"shared start.", " [A offline]", "[B online] "} {
		if !strings.Contains(res.TextA, want) {
			t.Errorf("final text %q lacks %q", res.TextA, want)
		}
	}
	if got := serverText(t, s, id); got != res.TextA {
		t.Fatalf("GET /api/docs/%s/text = %q, the pages show %q", id, got, res.TextA)
	}
	if res.StatusA.State != "synced" || res.StatusA.Pending != 0 {
		t.Errorf("A's final status %+v, want synced with nothing pending", res.StatusA)
	}
	// The status line told the truth in order: synced, then offline (twice: before and after the
	// reload), then synced again at the end.
	firstSynced, offline, lastSynced := -1, -1, -1
	for i, st := range res.StatesA {
		switch {
		case st == "synced" && firstSynced < 0:
			firstSynced = i
		case st == "offline" && firstSynced >= 0 && offline < 0:
			offline = i
		case st == "synced" && offline >= 0:
			lastSynced = i
		}
	}
	if firstSynced < 0 || offline < 0 || lastSynced < 0 || res.StatesA[len(res.StatesA)-1] != "synced" {
		t.Fatalf("A's status went %v; want synced, then offline, then synced", res.StatesA)
	}
}

// TestEditorDocumentList: the documents page lists a document by name with the two people editing
// it now, and its button creates a document and opens it.
func TestEditorDocumentList(t *testing.T) {
	requireChromium(t)
	s := StartServer(t, ServerOpts{})
	id := createDoc(t, s, "Quarterly plan")
	var meta struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(s.Get(t, docPath(id)), &meta); err != nil {
		t.Fatalf("GET %s: %v", docPath(id), err)
	}
	args := []string{"--base", s.URL, "--doc", id, "--shots", artifactsDir(t)}
	if meta.Name != "" {
		args = append(args, "--name", meta.Name)
	}
	var res struct {
		Listed struct {
			Name   string   `json:"name"`
			Count  int      `json:"count"`
			People []string `json:"people"`
		} `json:"listed"`
		Created string `json:"created"`
	}
	runBrowser(t, &res, "editor_list.mjs", args...)
	if res.Listed.Count != 2 {
		t.Errorf("the list shows %d people in the document, want 2", res.Listed.Count)
	}
	// Names are shown when the API gives them; a bare count is the least the page must show.
	if len(res.Listed.People) > 0 && strings.Join(res.Listed.People, ",") != "Alice,Bob" {
		t.Errorf("the list shows %v editing, want Alice and Bob", res.Listed.People)
	}
	if res.Created == "" || res.Created == id {
		t.Fatalf("the New document button opened %q", res.Created)
	}
	if !listHas(t, s.Get(t, "/api/docs"), res.Created) {
		t.Fatalf("the document the button created (%s) is not in GET /api/docs", res.Created)
	}
}

// TestEditorPassesToken: with auth on, the editor opened with ?token= hands the token to the
// WebSocket (?token=) and to the API (Authorization: Bearer), syncs, and its edit reaches the server;
// opened without a token it says it was refused; opened with a read-only token it shows the text,
// is read-only and says so, and the server's text does not change.
func TestEditorPassesToken(t *testing.T) {
	requireChromium(t)
	const secret = "editor-test-secret-0123456789abcdef"
	s := StartServer(t, ServerOpts{Args: []string{"--auth-secret", secret}})
	id := "editor-token-doc"
	mint := func(extra ...string) string {
		t.Helper()
		cmd := exec.Command(quireBin, append([]string{"token", "--doc", id, "--ttl", "1h"}, extra...)...)
		cmd.Env = append(os.Environ(), "QUIRE_AUTH_SECRET="+secret)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		tok, err := cmd.Output()
		if err != nil {
			t.Fatalf("quire token %v: %v\n%s", extra, err, stderr.String())
		}
		return strings.TrimSpace(string(tok))
	}
	token, roToken := mint(), mint("--read-only")
	const text = "written with a token"
	var res struct {
		Text     string `json:"text"`
		Denied   string `json:"denied"`
		ReadOnly struct {
			AriaReadOnly string `json:"ariaReadOnly"`
		} `json:"readOnly"`
	}
	runBrowser(t, &res, "editor_token.mjs", "--base", s.URL, "--doc", id, "--token", token, "--text", text, "--ro-token", roToken)
	if res.ReadOnly.AriaReadOnly != "true" {
		t.Errorf("the read-only page's editor has aria-readonly=%q, want true", res.ReadOnly.AriaReadOnly)
	}
	if res.Text != text {
		t.Fatalf("the page shows %q, want %q", res.Text, text)
	}
	req, err := http.NewRequest(http.MethodGet, s.URL+docPath(id)+"/text?name=content", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET text: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != text {
		t.Fatalf("GET %s/text with the token: %d %q, want 200 %q", docPath(id), resp.StatusCode, body, text)
	}
	// Without a token the same text is refused: the page's token is what opened the door.
	code, _ := s.Do(t, http.MethodGet, docPath(id)+"/text?"+url.Values{"name": {"content"}}.Encode(), "", nil)
	if code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Fatalf("GET text without a token: status %d, want 401 or 403", code)
	}
}
