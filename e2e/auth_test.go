package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/quirehq/quire/auth"
)

// The access-control tests: the real binary started with --auth-secret (and
// --limit-loopback where the per-address limits must apply to the tests'
// own 127.0.0.1), refusing handshakes with HTTP statuses before any document
// is opened, refusing a read-only peer's writes, and cutting off a flooder
// without touching the other peers. Each test has a server of its own, so
// that the penalty box of one does not leak into another.

// authSecret signs the tests' tokens; 32 bytes or more, so the server does
// not warn that it is weak.
const authSecret = "e2e-secret-for-quire-auth-tests-0123456789"

// authDeadline bounds every wait of these tests for a handshake, an HTTP
// answer or an event of a client.
const authDeadline = 20 * time.Second

// startAuthServer starts `quire serve --auth-secret ...` with extra flags.
func startAuthServer(t *testing.T, extra ...string) *Server {
	t.Helper()
	return StartServer(t, ServerOpts{Args: append([]string{"--auth-secret", authSecret}, extra...)})
}

// mint signs a token for g with the server's secret, valid for ttl from now.
func mint(t testing.TB, g auth.Grant, ttl time.Duration) string {
	t.Helper()
	return mintAt(t, time.Now(), g, ttl)
}

// mintAt signs a token as if it were now: a token minted two hours ago with
// a ttl of one hour has expired an hour ago, without the test sleeping.
func mintAt(t testing.TB, now time.Time, g auth.Grant, ttl time.Duration) string {
	t.Helper()
	a, err := auth.New([]byte(authSecret), &auth.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	tok, err := a.Mint(g, ttl)
	if err != nil {
		t.Fatalf("mint %+v: %v", g, err)
	}
	return tok
}

func rwToken(t testing.TB, docs ...string) string {
	t.Helper()
	return mint(t, auth.Grant{Docs: docs, Access: auth.ReadWrite}, time.Hour)
}

func roToken(t testing.TB, docs ...string) string {
	t.Helper()
	return mint(t, auth.Grant{Docs: docs, Access: auth.ReadOnly}, time.Hour)
}

// adminToken covers every document (the empty prefix), read-write: what a
// trusted backend holds, and what listing every document needs.
func adminToken(t testing.TB) string {
	t.Helper()
	return mint(t, auth.Grant{Prefixes: []string{""}, Access: auth.ReadWrite}, time.Hour)
}

// cliToken mints a token with the binary: `quire token --doc ID ...` with
// the secret in $QUIRE_AUTH_SECRET, as a script would.
func cliToken(t *testing.T, args ...string) string {
	t.Helper()
	requireBinary(t)
	cmd := exec.Command(quireBin, append([]string{"token"}, args...)...)
	cmd.Env = append(os.Environ(), auth.EnvSecret+"="+authSecret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("quire token %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// tamper changes one character in the middle of a token's signature. (The
// last character of an unpadded base64url signature may carry only padding
// bits, which a lenient decoder ignores: changing it could prove nothing.)
func tamper(t testing.TB, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || len(tok)-i < 10 {
		t.Fatalf("not a signed JWT: %q", tok)
	}
	b := []byte(tok)
	j := i + 5
	if b[j] == 'A' {
		b[j] = 'B'
	} else {
		b[j] = 'A'
	}
	return string(b)
}

// unsignedToken is an `alg: none` JWT granting read-write access to doc:
// the classic forgery a JWT verifier must refuse.
func unsignedToken(doc string) string {
	enc := base64.RawURLEncoding.EncodeToString
	head := enc([]byte(`{"alg":"none","typ":"JWT"}`))
	claims := enc([]byte(fmt.Sprintf(`{"docs":[%q],"access":"read-write","exp":%d}`, doc, time.Now().Add(time.Hour).Unix())))
	return head + "." + claims + "."
}

// wsDialer opens one connection per handshake, so that no refused
// handshake's keep-alive connection lingers in the server.
var wsDialer = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// handshakeResult is how the server answered a WebSocket handshake.
type handshakeResult struct {
	Status int         // 101 when upgraded
	Header http.Header // the response's headers
	Body   string      // the refusal's body (empty when upgraded)
	Conn   *websocket.Conn
}

// handshake asks to open /ws/doc with token as ?token= (none when empty) and
// the given headers. An upgraded connection is closed at the end of the test
// (or earlier by the caller).
func handshake(t *testing.T, s *Server, doc, token string, hdr http.Header) handshakeResult {
	t.Helper()
	u := s.WS + "/" + url.PathEscape(doc)
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), authDeadline)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: wsDialer})
	if resp == nil {
		t.Fatalf("handshake %s: no response: %v", doc, err)
	}
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		return handshakeResult{Status: resp.StatusCode, Header: resp.Header, Conn: c}
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(resp.Body)
	}
	return handshakeResult{Status: resp.StatusCode, Header: resp.Header, Body: strings.TrimSpace(string(body))}
}

// inRoom reads the server's first message on an upgraded connection: a sync
// message (the server's step 1 or 2), which it sends once the peer has
// joined the document's room.
func inRoom(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), authDeadline)
	defer cancel()
	typ, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("no first message from the server: %v", err)
	}
	if typ != websocket.MessageBinary || len(msg) < 2 || msg[0] != 0 {
		t.Fatalf("first message from the server: %v %x, want a binary sync message", typ, truncate(msg, 32))
	}
}

// apiCall sends one HTTP API request with token as "Authorization: Bearer"
// (none when empty) and extra headers; it returns the status, headers and body.
func apiCall(t testing.TB, s *Server, method, path, token string, hdr http.Header, body []byte) (int, http.Header, []byte) {
	t.Helper()
	h := hdr.Clone()
	if h == nil {
		h = http.Header{}
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		h.Set("Content-Type", "application/octet-stream")
	}
	return s.Request(t, method, path, h, body)
}

// textWith is the server's text of doc read with token; it must answer 200.
func textWith(t testing.TB, s *Server, doc, token string) string {
	t.Helper()
	code, _, body := apiCall(t, s, http.MethodGet, docPath(doc)+"/text?name=content", token, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s/text with a token: %d %q", docPath(doc), code, truncate(body, 200))
	}
	return string(body)
}

// startAuthClient starts e2e/js/client.mjs, a stock WebsocketProvider, with
// params {token}; flags are extra client.mjs flags.
func startAuthClient(t *testing.T, s *Server, name, doc, token string, seed int, flags ...string) *Client {
	t.Helper()
	if token != "" {
		flags = append([]string{"--token", token}, flags...)
	}
	return startClient(t, s, name, doc, seed, flags...)
}

// events returns every line the client printed so far whose ev is ev,
// decoded; Expect consumes lines, this reads them all again.
func events(t testing.TB, c *Client, ev string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range c.Lines() {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["ev"] == ev {
			out = append(out, m)
		}
	}
	return out
}

// waitEvent waits until the client has printed an ev event and returns the first.
func waitEvent(t *testing.T, c *Client, ev string) map[string]any {
	t.Helper()
	var got map[string]any
	waitFor(t, authDeadline, c.Name+" "+ev+" event", func() (bool, string) {
		if e := events(t, c, ev); len(e) > 0 {
			got = e[0]
			return true, ""
		}
		return false, "none yet"
	})
	return got
}

// neverDisconnected fails the test if the client's connection was ever
// closed or its provider ever reported "disconnected".
func neverDisconnected(t testing.TB, c *Client) {
	t.Helper()
	if e := events(t, c, "close"); len(e) > 0 {
		t.Fatalf("%s was disconnected: %v", c.Name, e)
	}
	for _, e := range events(t, c, "status") {
		if e["status"] == "disconnected" {
			t.Fatalf("%s reported status disconnected", c.Name)
		}
	}
}

// TestAuthNoTokenOpensNothing: with auth on, a handshake without a token is
// refused with 401 and the RFC 6750 challenge before the document is opened:
// the room gauge stays 0 and the document list (read with a token for every
// document) does not name it. The same handshake with a token then opens the
// room, which shows that both probes see an opened document.
func TestAuthNoTokenOpensNothing(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t)
	const id = "no-token-doc"

	r := handshake(t, s, id, "", nil)
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("handshake without a token: status %d (%q), want 401", r.Status, r.Body)
	}
	if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
		t.Fatalf("401 without a Bearer challenge: WWW-Authenticate %q", ch)
	}
	if g := metric(t, s, roomsGauge); g != 0 {
		t.Fatalf("%s = %v after a refused handshake, want 0: the document was opened", roomsGauge, g)
	}
	admin := adminToken(t)
	code, _, list := apiCall(t, s, http.MethodGet, "/api/docs", admin, nil, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/docs with a token for every document: %d %q", code, truncate(list, 200))
	}
	if listHas(t, list, id) {
		t.Fatalf("GET /api/docs lists %s after a refused handshake: %s", id, truncate(list, 300))
	}
	if strings.Contains(s.Log(), "auth is off") {
		t.Fatal("the server with --auth-secret logged that auth is off")
	}

	// The control: with a token, the same handshake opens the document, and
	// both probes above see it.
	ok := handshake(t, s, id, rwToken(t, id), nil)
	if ok.Status != http.StatusSwitchingProtocols {
		t.Fatalf("handshake with a token: status %d (%q), want 101", ok.Status, ok.Body)
	}
	inRoom(t, ok.Conn)
	if g := metric(t, s, roomsGauge); g != 1 {
		t.Fatalf("%s = %v with one peer in the document, want 1", roomsGauge, g)
	}
	_, _, list = apiCall(t, s, http.MethodGet, "/api/docs", admin, nil, nil)
	if !listHas(t, list, id) {
		t.Fatalf("GET /api/docs does not list %s while a peer has it open: %s", id, truncate(list, 300))
	}
	ok.Conn.Close(websocket.StatusNormalClosure, "")
}

// TestAuthTokenChecks: every bad token is refused before the upgrade with
// the status that says why (401: not proved who you are; 403: proved, but
// not for this document), and none opens the document; good tokens (query
// parameter, Authorization header, read-only, prefix, minted by `quire
// token`) are upgraded. The HTTP API obeys the same tokens, and no token
// appears in the server's log.
func TestAuthTokenChecks(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t)
	const id = "team-notes"
	other := "other-doc"
	good := rwToken(t, id)
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	expired := mintAt(t, time.Now().Add(-2*time.Hour), auth.Grant{Docs: []string{id}, Access: auth.ReadWrite}, time.Hour)
	wrongSecret := func() string {
		a, err := auth.New([]byte("another-secret-another-secret-another-secret"), nil)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := a.Mint(auth.Grant{Docs: []string{id}, Access: auth.ReadWrite}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	tokens := []string{good, expired, wrongSecret}

	refused := []struct {
		name   string
		token  string
		hdr    http.Header
		status int
	}{
		{"expired", expired, nil, http.StatusUnauthorized},
		{"another document", rwToken(t, other), nil, http.StatusForbidden},
		{"another document, read-only", roToken(t, other), nil, http.StatusForbidden},
		{"tampered signature", tamper(t, good), nil, http.StatusUnauthorized},
		{"signed with another secret", wrongSecret, nil, http.StatusUnauthorized},
		{"alg none", unsignedToken(id), nil, http.StatusUnauthorized},
		{"not a JWT", "not-a-token", nil, http.StatusUnauthorized},
		{"expired in the header", "", bearer(expired), http.StatusUnauthorized},
		{"no token, empty Bearer", "", http.Header{"Authorization": {"Bearer "}}, http.StatusUnauthorized},
	}
	for _, tc := range refused {
		r := handshake(t, s, id, tc.token, tc.hdr)
		if r.Status != tc.status {
			t.Errorf("%s: handshake status %d (%q), want %d", tc.name, r.Status, r.Body, tc.status)
			continue
		}
		if r.Body == "" {
			t.Errorf("%s: %d without a reason in the body", tc.name, r.Status)
		}
		if ch := r.Header.Get("WWW-Authenticate"); tc.status == http.StatusUnauthorized && !strings.Contains(ch, `error="invalid_token"`) && tc.name != "no token, empty Bearer" {
			t.Errorf("%s: 401 with WWW-Authenticate %q, want error=\"invalid_token\"", tc.name, ch)
		}
	}
	if g := metric(t, s, roomsGauge); g != 0 {
		t.Fatalf("%s = %v after refused handshakes only, want 0: a document was opened", roomsGauge, g)
	}

	accepted := []struct {
		name  string
		token string
		hdr   http.Header
	}{
		{"read-write, ?token=", good, nil},
		{"read-write, Authorization: Bearer", "", bearer(good)},
		{"read-only", roToken(t, id), nil},
		{"prefix team-", mint(t, auth.Grant{Prefixes: []string{"team-"}, Access: auth.ReadWrite}, time.Hour), nil},
		{"quire token --read-only", cliToken(t, "--doc", id, "--read-only", "--ttl", "10m"), nil},
	}
	for _, tc := range accepted {
		r := handshake(t, s, id, tc.token, tc.hdr)
		if r.Status != http.StatusSwitchingProtocols {
			t.Errorf("%s: handshake status %d (%q), want 101", tc.name, r.Status, r.Body)
			continue
		}
		inRoom(t, r.Conn)
		r.Conn.Close(websocket.StatusNormalClosure, "")
	}
	if t.Failed() {
		return
	}

	// The HTTP API: writes and reads with the same tokens, in the header.
	var made struct {
		Text string `json:"text"`
	}
	upd := writeTemp(t, "update.bin", nil)
	ytool(t, &made, "make-update", "--out", upd, "--text", "posted with a token")
	update, err := os.ReadFile(upd)
	if err != nil {
		t.Fatal(err)
	}
	path := docPath(id)
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"read-only", roToken(t, id), http.StatusForbidden},
		{"another document", rwToken(t, other), http.StatusForbidden},
		{"expired", expired, http.StatusUnauthorized},
		{"read-write", good, http.StatusOK},
	} {
		code, h, body := apiCall(t, s, http.MethodPost, path+"/update", tc.token, nil, update)
		if code != tc.status {
			t.Fatalf("POST %s/update, %s: %d %q, want %d", path, tc.name, code, truncate(body, 200), tc.status)
		}
		if code == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("POST %s/update, %s: 401 with WWW-Authenticate %q", path, tc.name, h.Get("WWW-Authenticate"))
		}
	}
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"another document", rwToken(t, other), http.StatusForbidden},
		{"tampered", tamper(t, good), http.StatusUnauthorized},
		{"read-only", roToken(t, id), http.StatusOK},
		{"read-write", good, http.StatusOK},
	} {
		code, _, body := apiCall(t, s, http.MethodGet, path+"/text?name=content", tc.token, nil, nil)
		if code != tc.status {
			t.Fatalf("GET %s/text, %s: %d %q, want %d", path, tc.name, code, truncate(body, 200), tc.status)
		}
		if code == http.StatusOK && string(body) != made.Text {
			t.Fatalf("GET %s/text, %s: %q, want %q (the refused writes changed it?)", path, tc.name, body, made.Text)
		}
	}
	// The list shows what the token covers, nothing else; creating a
	// document needs a token for every document.
	for _, tc := range []struct {
		name  string
		token string
		lists bool
	}{
		{"this document", good, true},
		{"another document", rwToken(t, other), false},
		{"every document", adminToken(t), true},
	} {
		code, _, list := apiCall(t, s, http.MethodGet, "/api/docs", tc.token, nil, nil)
		if code != http.StatusOK {
			t.Fatalf("GET /api/docs, %s: %d %q", tc.name, code, truncate(list, 200))
		}
		if listHas(t, list, id) != tc.lists {
			t.Fatalf("GET /api/docs with a token for %s: lists %s = %v, want %v (%s)", tc.name, id, !tc.lists, tc.lists, truncate(list, 300))
		}
	}
	if code, _, _ := apiCall(t, s, http.MethodGet, "/api/docs", "", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/docs without a token: %d, want 401", code)
	}
	if code, _, body := apiCall(t, s, http.MethodPost, "/api/docs", good, http.Header{"Content-Type": {"application/json"}}, nil); code != http.StatusForbidden {
		t.Fatalf("POST /api/docs with a token for one document: %d %q, want 403", code, truncate(body, 200))
	}

	// Tokens travel in URLs; the request log must not keep them.
	log := s.Log()
	for _, tok := range tokens {
		if strings.Contains(log, tok) {
			t.Fatalf("the server log holds a token: %.40s...", tok)
		}
	}
	if !strings.Contains(log, "token=REDACTED") {
		t.Fatal("the server log has no redacted ?token= request: is the request log on?")
	}
}

// TestAuthReadOnlyPeer: a stock provider with a read-only token syncs and
// receives a writer's edits; its own edit is refused: it is told with a
// y-protocols permission-denied auth message (which the stock provider
// logs), it stays connected, and neither the server's text nor a third
// peer ever sees the edit.
// TestAuthTokenExpiryClosesPeer: an open connection does not outlive its
// token. At the token's exp the server closes the stock provider with 4401,
// which makes it stop (no reconnect loop with a dead token); what it wrote is
// kept, and a peer with a valid token on the same document carries on.
func TestAuthTokenExpiryClosesPeer(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t)
	const id = "expiring-doc"
	// exp is in whole seconds: this token runs out 2-3 s from now.
	short := mint(t, auth.Grant{Docs: []string{id}, Access: auth.ReadWrite}, 3*time.Second)
	brief := startAuthClient(t, s, "brief", id, short, 1)
	brief.waitSynced(t)
	brief.do(t, map[string]any{"cmd": "insert", "pos": 0, "text": "written before expiry"})
	lasting := startAuthClient(t, s, "lasting", id, rwToken(t, id), 2)
	lasting.waitSynced(t)
	lasting.do(t, map[string]any{"cmd": "waitText", "text": "written before expiry"})

	closed := waitEvent(t, brief, "closed")
	if closed["code"] != float64(auth.CloseUnauthorized) || !strings.Contains(fmt.Sprint(closed["reason"]), "expired") {
		t.Fatalf("the provider stopped with %v, want %d and a reason that says expired", closed, auth.CloseUnauthorized)
	}
	lasting.do(t, map[string]any{"cmd": "insert", "pos": -1, "text": ", and after"})
	tok := rwToken(t, id)
	waitFor(t, authDeadline, "the server's text", func() (bool, string) {
		got := textWith(t, s, id, tok)
		return got == "written before expiry, and after", got
	})
	neverDisconnected(t, lasting)
}

func TestAuthReadOnlyPeer(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t)
	const id = "read-only-doc"
	rw := rwToken(t, id)

	writer := startAuthClient(t, s, "writer", id, rw, 1)
	writer.waitSynced(t)
	writer.do(t, map[string]any{"cmd": "insert", "pos": 0, "text": "shared: "})
	reader := startAuthClient(t, s, "reader", id, roToken(t, id), 2)
	reader.waitSynced(t)
	reader.do(t, map[string]any{"cmd": "waitText", "text": "shared: "}) // the initial sync
	watcher := startAuthClient(t, s, "watcher", id, rw, 3)
	watcher.waitSynced(t)
	writer.do(t, map[string]any{"cmd": "insert", "pos": -1, "text": "live "})
	reader.do(t, map[string]any{"cmd": "waitText", "text": "shared: live "}) // a live update

	// The read-only peer writes. Connecting sent its sync step 2 already,
	// which must be dropped silently: no auth message before this one.
	if e := events(t, reader, "auth"); len(e) != 0 {
		t.Fatalf("the read-only peer was sent auth messages before writing: %v", e)
	}
	reader.do(t, map[string]any{"cmd": "insert", "pos": 0, "text": "READONLY"})
	denied := waitEvent(t, reader, "auth")
	want := auth.AppendPermissionDenied(nil, "read-only access: writes are refused")
	if got := fmt.Sprint(denied["bytes"]); got != fmt.Sprint(bytesAsJSONNumbers(want)) {
		t.Fatalf("the read-only peer got auth message %v, want %v", got, bytesAsJSONNumbers(want))
	}
	if denied["sub"] != float64(0) || !strings.Contains(fmt.Sprint(denied["reason"]), "read-only") {
		t.Fatalf("auth message %v: want permission denied (0) with a read-only reason", denied)
	}
	warned := waitEvent(t, reader, "warn")
	if msg := fmt.Sprint(warned["msg"]); !strings.Contains(msg, "Permission denied") || !strings.Contains(msg, "read-only") {
		t.Fatalf("the stock provider logged %q, want its permission-denied warning with the reason", msg)
	}

	// Barrier: the writer's marker comes after the refused write in the
	// server's order (the refusal was sent before the marker was written);
	// once the watcher has the marker it would have had the write too.
	writer.do(t, map[string]any{"cmd": "insert", "pos": -1, "text": "MARKER"})
	const final = "shared: live MARKER"
	watcher.do(t, map[string]any{"cmd": "waitContains", "text": "MARKER"})
	w := watcher.report(t)
	if w.Text != final {
		t.Fatalf("watcher text %q, want %q: the read-only edit reached another peer", w.Text, final)
	}
	if _, ok := w.SV[strconv.FormatUint(reader.ClientID, 10)]; ok {
		t.Fatalf("watcher state vector %v has the read-only client %d", w.SV, reader.ClientID)
	}
	if got := textWith(t, s, id, rw); got != final {
		t.Fatalf("server text %q, want %q: the read-only edit was stored", got, final)
	}
	if wr := writer.report(t); wr.Text != final {
		t.Fatalf("writer text %q, want %q", wr.Text, final)
	}
	// The read-only peer keeps receiving, and stays connected.
	got := reader.do(t, map[string]any{"cmd": "waitContains", "text": "MARKER"})
	st := reader.do(t, map[string]any{"cmd": "state"})
	if st["wsconnected"] != true {
		t.Fatalf("read-only peer state %v: want still connected", st)
	}
	neverDisconnected(t, reader)
	if n := len(events(t, reader, "auth")); n != 1 {
		t.Fatalf("the read-only peer got %d auth messages for one write, want 1", n)
	}
	t.Logf("read-only peer's own view: %q (its refused edit stays local); the stock provider logged %q", got["text"], warned["msg"])
}

// bytesAsJSONNumbers is b as the JSON decoder gives back an array of bytes.
func bytesAsJSONNumbers(b []byte) []any {
	out := make([]any, len(b))
	for i, c := range b {
		out[i] = float64(c)
	}
	return out
}

// TestAuthForeignOrigin: a browser handshake from an origin that is not
// allowed gets 403 (even with a valid token, and before the token is looked
// at); the server's own origin, an --allowed-origin and a match of an
// --allowed-origin pattern are upgraded, and a client without an Origin (not
// a browser) too. Refusing an origin is no offence: the penalty box, on for
// loopback here, does not ban the address after many of them. The HTTP API
// applies the same rule.
func TestAuthForeignOrigin(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t, "--limit-loopback",
		"--allowed-origin", "https://app.example.com", "--allowed-origin", "https://*.example.org")
	const id = "origin-doc"
	tok := rwToken(t, id)
	port := s.Addr[strings.LastIndexByte(s.Addr, ':')+1:]
	otherPort, _ := strconv.Atoi(port)
	cases := []struct {
		origin string
		status int
	}{
		{"", http.StatusSwitchingProtocols},
		{"http://" + s.Addr, http.StatusSwitchingProtocols},
		{"https://app.example.com", http.StatusSwitchingProtocols},
		{"https://docs.example.org", http.StatusSwitchingProtocols},
		{"https://evil.example", http.StatusForbidden},
		{"http://app.example.com", http.StatusForbidden},
		{"https://app.example.com:8443", http.StatusForbidden},
		{"https://example.org", http.StatusForbidden},
		{"https://app.example.com.evil.example", http.StatusForbidden},
		{"http://127.0.0.1:" + strconv.Itoa(otherPort+1), http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tc := range cases {
		var hdr http.Header
		if tc.origin != "" {
			hdr = http.Header{"Origin": {tc.origin}}
		}
		r := handshake(t, s, id, tok, hdr)
		if r.Status != tc.status {
			t.Errorf("Origin %q: handshake status %d (%q), want %d", tc.origin, r.Status, r.Body, tc.status)
			continue
		}
		if r.Conn != nil {
			inRoom(t, r.Conn)
			r.Conn.Close(websocket.StatusNormalClosure, "")
		}
	}
	if t.Failed() {
		return
	}
	// The origin is checked before the token: no token, foreign origin: 403.
	evil := http.Header{"Origin": {"https://evil.example"}}
	if r := handshake(t, s, id, "", evil); r.Status != http.StatusForbidden {
		t.Fatalf("foreign Origin without a token: %d (%q), want 403", r.Status, r.Body)
	}
	// Seven foreign-origin refusals so far; were they offences, loopback
	// would be banned now (429).
	if r := handshake(t, s, id, tok, http.Header{"Origin": {"http://" + s.Addr}}); r.Status != http.StatusSwitchingProtocols {
		t.Fatalf("own origin after foreign-origin refusals: %d (%q), want 101: a refused origin counted as an offence", r.Status, r.Body)
	}
	// A stock provider on the allowed origin syncs.
	c := startAuthClient(t, s, "allowed-origin", id, tok, 1, "--origin", "https://app.example.com")
	c.waitSynced(t)
	// The HTTP API: a page of a foreign site cannot use a token it holds.
	if code, _, body := apiCall(t, s, http.MethodGet, "/api/docs", adminToken(t), evil, nil); code != http.StatusForbidden {
		t.Fatalf("GET /api/docs from a foreign Origin: %d %q, want 403", code, truncate(body, 200))
	}
	if code, _, body := apiCall(t, s, http.MethodGet, "/api/docs", adminToken(t), http.Header{"Origin": {"https://app.example.com"}}, nil); code != http.StatusOK {
		t.Fatalf("GET /api/docs from an allowed Origin: %d %q, want 200", code, truncate(body, 200))
	}
}

// rawAttempt is one line of auth-raw.mjs: how one flooding connection ended.
type rawAttempt struct {
	I          int    `json:"i"`
	Refused    bool   `json:"refused"`
	Status     int    `json:"status"`
	RetryAfter string `json:"retryAfter"`
	Body       string `json:"body"`
	Joined     bool   `json:"joined"`
	Timeout    bool   `json:"timeout"`
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
	Sent       int    `json:"sent"`
}

// flood runs auth-raw.mjs: attempts connections that each flood the document
// with real updates until the server closes them, pause ms apart.
func flood(t *testing.T, s *Server, doc, token string, attempts, pause int) []rawAttempt {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
	defer cancel()
	out, err := RunNode(t, ctx, "auth-raw.mjs", "--url", s.WS, "--doc", doc, "--token", token,
		"--attempts", strconv.Itoa(attempts), "--pause", strconv.Itoa(pause))
	if err != nil {
		t.Fatalf("flooder: %v", err)
	}
	var res []rawAttempt
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var a struct {
			Ev string `json:"ev"`
			rawAttempt
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("flooder output %q: %v", line, err)
		}
		if a.Ev == "attempt" {
			res = append(res, a.rawAttempt)
		}
	}
	if len(res) != attempts {
		t.Fatalf("flooder reported %d attempts, want %d:\n%s", len(res), attempts, out)
	}
	return res
}

// TestAuthFloodCutsOnlyTheFlooder: while a typist edits at human speed
// (about 20 updates a second) and a watcher follows, a raw client floods the
// document with real updates, and a stock provider sends 2,000 at once.
// Both flooders are closed with 4429 and the reason, and the stock one stops
// (y-websocket does not reconnect after 44xx); the typist is never
// disconnected and the typist, the watcher and the server converge. A
// flooder that keeps reconnecting is then refused before the upgrade with
// 429 and Retry-After (penalty box, --limit-loopback), while the typist,
// already connected from the same address, goes on editing.
func TestAuthFloodCutsOnlyTheFlooder(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t, "--limit-loopback")
	const id = "flood-doc"
	rw := rwToken(t, id)
	typist := startAuthClient(t, s, "typist", id, rw, 11)
	watcher := startAuthClient(t, s, "watcher", id, rw, 12)
	typist.waitSynced(t)
	watcher.waitSynced(t)
	typist.do(t, map[string]any{"cmd": "type", "delay": 50})

	raw := flood(t, s, id, rw, 1, 0)[0]
	if raw.Refused || !raw.Joined || raw.Code != 4429 || !strings.Contains(raw.Reason, "rate limit") {
		t.Fatalf("raw flooder: %+v, want joined then closed with 4429 and a rate-limit reason", raw)
	}
	if raw.Sent <= 400 {
		t.Fatalf("raw flooder sent only %d updates before it was closed: not past the burst of 400", raw.Sent)
	}
	stock := startAuthClient(t, s, "stock flooder", id, rw, 13)
	stock.waitSynced(t)
	stock.do(t, map[string]any{"cmd": "flood", "n": 2000})
	cl := stock.do(t, map[string]any{"cmd": "waitClosed"})
	if cl["code"] != float64(4429) || !strings.Contains(fmt.Sprint(cl["reason"]), "rate limit") {
		t.Fatalf("stock flooder closed with %v, want 4429 and a rate-limit reason", cl)
	}
	if st := stock.do(t, map[string]any{"cmd": "state"}); st["shouldConnect"] != false {
		t.Fatalf("stock flooder after the 4429 close: %v, want shouldConnect false (no reconnect)", st)
	}

	typed := typist.do(t, map[string]any{"cmd": "stop"})
	if n, _ := typed["count"].(float64); n < 5 {
		t.Fatalf("the typist made only %v edits during the floods", typed["count"])
	}
	rep := converge(t, typist, watcher)
	if got := textWith(t, s, id, rw); got != rep.Text {
		t.Fatalf("server text (%d chars) differs from the typist's and watcher's (%d chars)", len(got), len(rep.Text))
	}
	neverDisconnected(t, typist)
	neverDisconnected(t, watcher)
	t.Logf("typist made %v edits; raw flooder sent %d updates before its 4429", typed["count"], raw.Sent)

	// The raw flooder now comes back 100 ms after every cut or refusal, as
	// a careless script would. Two offences are free; from the third on it
	// waits in the penalty box, refused before the upgrade, and each time it
	// is let in and cut off again its ban doubles (1 s, 2 s, 4 s ...).
	const attempts = 15
	storm := flood(t, s, id, rw, attempts, 100)
	t.Logf("storm: %+v", storm)
	first, upgraded, lastBan, grew := 0, 0, 0, false
	for _, a := range storm {
		switch {
		case a.Refused:
			if a.Status != http.StatusTooManyRequests {
				t.Fatalf("attempt %d refused with %d (%q), want 429", a.I, a.Status, a.Body)
			}
			ra, err := strconv.Atoi(a.RetryAfter)
			if err != nil || ra < 1 {
				t.Fatalf("attempt %d: 429 with Retry-After %q, want whole seconds >= 1", a.I, a.RetryAfter)
			}
			if first == 0 {
				first = a.I
			} else if ra > lastBan && upgraded > 1 {
				grew = true
			}
			lastBan = max(lastBan, ra)
		case a.Code == 4429:
			upgraded++
		default:
			t.Fatalf("attempt %d: %+v, want a 429 refusal or a 4429 close", a.I, a)
		}
	}
	if first == 0 || first > 3 {
		t.Fatalf("a flooder reconnecting every 100 ms got its first 429 at attempt %d (0: never), want by the third", first)
	}
	// 15 attempts 100 ms apart take at least 1.5 s: the first ban (1 s) ends
	// within them, the third (4 s) only if they took over 3 s.
	if upgraded > 4 {
		t.Fatalf("%d of %d reconnects of a flooder were upgraded, want at most 4: the penalty box does not hold it", upgraded, attempts)
	}
	if upgraded < 2 || !grew {
		t.Fatalf("the flooder was upgraded %d times and its Retry-After never grew past the first ban: want a second cut and a longer ban", upgraded)
	}
	// The typist, connected from the same (banned) address, is unaffected.
	typist.do(t, map[string]any{"cmd": "insert", "pos": 0, "text": "after the storm "})
	watcher.do(t, map[string]any{"cmd": "waitContains", "text": "after the storm "})
	neverDisconnected(t, typist)
	neverDisconnected(t, watcher)
}

// TestAuthConnsPerIP: with --max-conns-per-ip 3 --limit-loopback, three
// stock providers connect; a fourth handshake gets 429 before the upgrade
// while the three keep working; once one leaves, a new provider gets in, and
// the limit holds again.
func TestAuthConnsPerIP(t *testing.T) {
	t.Parallel()
	s := startAuthServer(t, "--limit-loopback", "--max-conns-per-ip", "3")
	const id = "conns-doc"
	rw := rwToken(t, id)
	var peers []*Client
	for i, name := range []string{"a", "b", "c"} {
		c := startAuthClient(t, s, name, id, rw, i+1)
		c.waitSynced(t)
		peers = append(peers, c)
	}
	r := handshake(t, s, id, rw, nil)
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("fourth connection from one address: status %d (%q), want 429", r.Status, r.Body)
	}
	t.Logf("fourth connection: 429 %q, Retry-After %q", r.Body, r.Header.Get("Retry-After"))
	// The three carry on.
	peers[0].do(t, map[string]any{"cmd": "insert", "pos": 0, "text": "still working"})
	for _, c := range peers[1:] {
		c.do(t, map[string]any{"cmd": "waitText", "text": "still working"})
	}
	for _, c := range peers {
		neverDisconnected(t, c)
	}
	// One leaves; a new stock provider gets its slot (it retries while the
	// server has not yet noticed the departure: a 429 for a full count is no
	// offence) and syncs.
	peers[2].do(t, map[string]any{"cmd": "destroy"})
	d := startAuthClient(t, s, "d", id, rw, 4)
	d.waitSynced(t)
	d.do(t, map[string]any{"cmd": "waitText", "text": "still working"})
	if r := handshake(t, s, id, rw, nil); r.Status != http.StatusTooManyRequests {
		t.Fatalf("with a, b and d connected, another handshake: %d (%q), want 429", r.Status, r.Body)
	}
	d.do(t, map[string]any{"cmd": "insert", "pos": -1, "text": "!"})
	peers[0].do(t, map[string]any{"cmd": "waitText", "text": "still working!"})
	peers[1].do(t, map[string]any{"cmd": "waitText", "text": "still working!"})
	neverDisconnected(t, peers[0])
	neverDisconnected(t, peers[1])
}

// TestAuthOffWarns: without a secret `quire serve` says at startup that it is
// serving unauthenticated; a client without a token is then let in, and a
// foreign Origin is still refused (a page could otherwise write to a server
// on localhost).
func TestAuthOffWarns(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{Env: []string{auth.EnvSecret + "="}})
	log := s.Log()
	if !strings.Contains(log, "auth is off") {
		t.Fatalf("the server without a secret did not log that auth is off; its log:\n%s", tailLines(log, 20))
	}
	if !strings.Contains(log, "level=WARN") {
		t.Fatalf("the auth-off notice is not a warning; log:\n%s", tailLines(log, 20))
	}
	r := handshake(t, s, "open-doc", "", nil)
	if r.Status != http.StatusSwitchingProtocols {
		t.Fatalf("auth off, no token: handshake %d (%q), want 101", r.Status, r.Body)
	}
	inRoom(t, r.Conn)
	r.Conn.Close(websocket.StatusNormalClosure, "")
	if r := handshake(t, s, "open-doc", "", http.Header{"Origin": {"https://evil.example"}}); r.Status != http.StatusForbidden {
		t.Fatalf("auth off, foreign Origin: handshake %d (%q), want 403", r.Status, r.Body)
	}
	if code, _, body := apiCall(t, s, http.MethodGet, "/api/docs", "", nil, nil); code != http.StatusOK {
		t.Fatalf("auth off, GET /api/docs without a token: %d %q", code, truncate(body, 200))
	}
	if code, _, _ := apiCall(t, s, http.MethodGet, "/api/docs", "", http.Header{"Origin": {"https://evil.example"}}, nil); code != http.StatusForbidden {
		t.Fatalf("auth off, GET /api/docs from a foreign Origin: %d, want 403", code)
	}
}
