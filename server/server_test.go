package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/quirehq/quire/crdt"
	"github.com/quirehq/quire/persist"
	"github.com/quirehq/quire/presence"
	"github.com/quirehq/quire/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait of these tests; it is not what they measure.
const testTimeout = 10 * time.Second

type testServer struct {
	t     *testing.T
	srv   *Server
	http  *httptest.Server
	store persist.Store
	ws    string // ws://HOST:PORT/ws
}

// testReadLoops is Config.ReadLoops for the tests (QUIRE_TEST_READ_LOOPS):
// make test runs the package once with the read loops (the default) and
// once with a reader goroutine per connection (-1).
var testReadLoops, _ = strconv.Atoi(os.Getenv("QUIRE_TEST_READ_LOOPS"))

func newTestServer(t *testing.T, configure func(*Config)) *testServer {
	t.Helper()
	store := persist.NewMemory()
	cfg := Config{Store: store, Logger: testLogger(), ReadLoops: testReadLoops}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ts := &testServer{t: t, srv: srv, http: hs, store: store, ws: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		hs.Close()
		store.Close()
	})
	return ts
}

// peer is a WebSocket client of the test server.
type peer struct {
	t *testing.T
	c *websocket.Conn
}

func (ts *testServer) dial(docID string) *peer {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, ts.ws+"/"+docID, nil)
	if err != nil {
		ts.t.Fatalf("dial %s: %v", docID, err)
	}
	c.SetReadLimit(64 << 20)
	ts.t.Cleanup(func() { c.CloseNow() })
	return &peer{t: ts.t, c: c}
}

// join dials and reads the server's greeting (sync step 1).
func (ts *testServer) join(docID string) *peer {
	ts.t.Helper()
	p := ts.dial(docID)
	m := p.read()
	if m.Type != protocol.TypeSync || m.Sync != protocol.SyncStep1 {
		ts.t.Fatalf("first message %v/%v, want sync step 1", m.Type, m.Sync)
	}
	return p
}

func (p *peer) send(frame []byte) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.c.Write(ctx, websocket.MessageBinary, frame); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

func (p *peer) read() protocol.Message {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, b, err := p.c.Read(ctx)
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageBinary {
		p.t.Fatalf("server sent a %v frame", typ)
	}
	m, err := protocol.Decode(b)
	if err != nil {
		p.t.Fatalf("server sent %x: %v", b, err)
	}
	return m
}

// closed reads until the connection ends and returns its close status.
func (p *peer) closed() (websocket.StatusCode, string) {
	p.t.Helper()
	code, reason, err := p.readToEnd()
	if err != nil {
		p.t.Fatal(err)
	}
	return code, reason
}

// readToEnd reads until the connection ends; it may run in any goroutine.
func (p *peer) readToEnd() (websocket.StatusCode, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, _, err := p.c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return 0, "", errors.New("connection still open")
			}
			var ce websocket.CloseError
			errors.As(err, &ce)
			return websocket.CloseStatus(err), ce.Reason, nil
		}
	}
}

// yeditor makes real Yjs updates.
type yeditor struct {
	t *testing.T
	d *crdt.Doc
}

func newEditor(t *testing.T, id uint64) *yeditor {
	return &yeditor{t: t, d: crdt.NewDoc(crdt.Options{ClientID: id})}
}

func (e *yeditor) insert(pos int, s string) []byte {
	e.t.Helper()
	u, err := e.d.Transact(func(tx *crdt.Transaction) error {
		return e.d.GetText("content").Insert(tx, pos, s)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (ts *testServer) get(path string) (int, string, http.Header) {
	ts.t.Helper()
	resp, err := http.Get(ts.http.URL + path)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (ts *testServer) post(path, contentType string, body []byte) (int, string) {
	ts.t.Helper()
	resp, err := http.Post(ts.http.URL+path, contentType, bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSyncBetweenPeers(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.join("notes")
	b := ts.join("notes")

	// The client's step 1 is answered with step 2: an empty document.
	a.send(protocol.EncodeSyncStep1([]byte{0}))
	if m := a.read(); m.Sync != protocol.SyncStep2 || !bytes.Equal(m.Payload, []byte{0, 0}) {
		t.Fatalf("step 2 = %v %x", m.Sync, m.Payload)
	}
	ann := newEditor(t, 11)
	u := ann.insert(0, "hello")
	a.send(protocol.EncodeUpdate(u))
	if m := b.read(); m.Sync != protocol.SyncUpdate || !bytes.Equal(m.Payload, u) {
		t.Fatalf("b got %v %x, want the update %x", m.Sync, m.Payload, u)
	}
	// The HTTP API sees the server's own document.
	if code, body, h := ts.get("/api/docs/notes/text"); code != 200 || body != "hello" || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET text = %d %q %s", code, body, h.Get("Content-Type"))
	}
	want, _ := ann.d.EncodeStateAsUpdate(nil)
	if code, body, h := ts.get("/api/docs/notes/update"); code != 200 || body != string(want) || h.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET update = %d %x %s", code, body, h.Get("Content-Type"))
	}
	// A late joiner gets the state vector in step 1 and the document in step 2.
	c := ts.dial("notes")
	sv := ann.d.EncodeStateVector()
	if m := c.read(); m.Sync != protocol.SyncStep1 || !bytes.Equal(m.Payload, sv) {
		t.Fatalf("late joiner's step 1 = %x, want %x", m.Payload, sv)
	}
	c.send(protocol.EncodeSyncStep1([]byte{0}))
	if m := c.read(); m.Sync != protocol.SyncStep2 || !bytes.Equal(m.Payload, want) {
		t.Fatalf("late joiner's step 2 = %x, want %x", m.Payload, want)
	}
	// An update posted over HTTP reaches every peer.
	bob := newEditor(t, 22)
	bob.d.ApplyUpdate(u)
	u2 := bob.insert(5, "!")
	if code, body := ts.post("/api/docs/notes/update", "application/octet-stream", u2); code != 200 {
		t.Fatalf("POST update = %d %s", code, body)
	}
	for _, p := range []*peer{a, b, c} {
		if m := p.read(); m.Sync != protocol.SyncUpdate || !bytes.Equal(m.Payload, u2) {
			t.Fatalf("peer got %v %x, want the posted update", m.Sync, m.Payload)
		}
	}
}

func TestAwareness(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.join("d")
	b := ts.join("d")
	state := presence.EncodeUpdate(presence.Update{{ClientID: 7, Clock: 1, State: json.RawMessage(`{"user":{"name":"Ann"}}`)}})
	a.send(protocol.EncodeAwareness(state))
	for name, p := range map[string]*peer{"sender": a, "other": b} {
		if m := p.read(); m.Type != protocol.TypeAwareness || !bytes.Equal(m.Payload, state) {
			t.Fatalf("%s got %v %x", name, m.Type, m.Payload)
		}
	}
	// A late joiner gets step 1, then the current states; a query repeats them.
	c := ts.join("d")
	if m := c.read(); m.Type != protocol.TypeAwareness || !bytes.Equal(m.Payload, state) {
		t.Fatalf("late joiner got %v %x", m.Type, m.Payload)
	}
	c.send(protocol.AppendQueryAwareness(nil))
	if m := c.read(); m.Type != protocol.TypeAwareness || !bytes.Equal(m.Payload, state) {
		t.Fatalf("query answered with %v %x", m.Type, m.Payload)
	}
	// When a leaves, the others learn that its state is gone.
	a.c.Close(websocket.StatusNormalClosure, "bye")
	gone := presence.EncodeUpdate(presence.Update{{ClientID: 7, Clock: 1, State: json.RawMessage(`null`)}})
	if m := b.read(); m.Type != protocol.TypeAwareness || !bytes.Equal(m.Payload, gone) {
		t.Fatalf("b got %v %x, want the removal", m.Type, m.Payload)
	}
}

// TestBadInputCostsOnlyTheSender sends each kind of bad input from one peer
// while a well-behaved peer shares the document: the offender is closed with
// the code for its fault, the other peer and the document carry on.
func TestBadInputCostsOnlyTheSender(t *testing.T) {
	good := newEditor(t, 5)
	valid := good.insert(0, "ok")
	tests := []struct {
		name   string
		frame  []byte
		text   bool
		code   websocket.StatusCode
		reason string
	}{
		{"text frame", []byte("hello"), true, websocket.StatusUnsupportedData, "text frames"},
		{"random bytes", []byte{0xde, 0xad, 0xbe, 0xef}, false, websocket.StatusProtocolError, "malformed"},
		{"empty frame", []byte{}, false, websocket.StatusProtocolError, "malformed"},
		{"unknown type", []byte{9, 0}, false, websocket.StatusProtocolError, "unknown message type 9"},
		{"huge length", []byte{0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f, 1}, false, websocket.StatusProtocolError, "beyond the end"},
		{"truncated update", protocol.EncodeUpdate(valid[:len(valid)-3]), false, websocket.StatusInvalidFramePayloadData, "invalid update"},
		{"bogus update", protocol.EncodeUpdate([]byte{5, 1, 2, 3, 4, 5}), false, websocket.StatusInvalidFramePayloadData, "invalid update"},
		{"bad state vector", protocol.EncodeSyncStep1([]byte{3, 1}), false, websocket.StatusInvalidFramePayloadData, "state vector"},
		{"bad awareness", protocol.EncodeAwareness([]byte{1, 2}), false, websocket.StatusInvalidFramePayloadData, "awareness"},
		{"over the read limit", protocol.EncodeUpdate(make([]byte, 5000)), false, websocket.StatusMessageTooBig, ""},
	}
	ts := newTestServer(t, func(c *Config) { c.ReadLimit = 4096 })
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docID := fmt.Sprintf("doc%d", i)
			ok := ts.join(docID)
			bad := ts.join(docID)
			typ := websocket.MessageBinary
			if tt.text {
				typ = websocket.MessageText
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := bad.c.Write(ctx, typ, tt.frame); err != nil {
				t.Fatal(err)
			}
			code, reason := bad.closed()
			if code != tt.code || !strings.Contains(reason, tt.reason) {
				t.Fatalf("closed with %d %q, want %d and a reason with %q", code, reason, tt.code, tt.reason)
			}
			// The well-behaved peer still works and the document holds only good data.
			ok.send(protocol.EncodeUpdate(valid))
			ok.send(protocol.EncodeSyncStep1([]byte{0}))
			if m := ok.read(); m.Sync != protocol.SyncStep2 {
				t.Fatalf("good peer got %v/%v", m.Type, m.Sync)
			}
			if code, body, _ := ts.get("/api/docs/" + docID + "/text"); code != 200 || body != "ok" {
				t.Fatalf("text = %d %q", code, body)
			}
		})
	}
}

func TestInvalidDocIDRefusedBeforeUpgrade(t *testing.T) {
	ts := newTestServer(t, nil)
	for _, path := range []string{"/ws/", "/ws/a%20b", "/ws/a/b", "/ws/" + strings.Repeat("x", 129), "/ws/%C3%BC"} {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		c, resp, err := websocket.Dial(ctx, ts.ws+strings.TrimPrefix(path, "/ws"), nil)
		cancel()
		if err == nil {
			c.CloseNow()
			t.Fatalf("%s: upgraded", path)
		}
		if resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %v, want 400", path, err)
		}
		if ts.srv.Docs().Rooms() != 0 {
			t.Fatalf("%s: a room was opened", path)
		}
	}
}

func TestHTTPAPI(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.ReadLimit = 1024 })
	code, body := ts.post("/api/docs", "application/json", []byte(`{"name":"Minutes"}`))
	if code != http.StatusCreated {
		t.Fatalf("POST /api/docs = %d %s", code, body)
	}
	var created docJSON
	if err := json.Unmarshal([]byte(body), &created); err != nil {
		t.Fatal(err)
	}
	if len(created.ID) != 36 || created.Name != "Minutes" || created.CreatedAt == nil {
		t.Fatalf("created %+v", created)
	}
	if code, body := ts.post("/api/docs", "application/json", nil); code != http.StatusCreated {
		t.Fatalf("POST without a body = %d %s", code, body)
	}

	tests := []struct {
		name, method, path string
		body               []byte
		code               int
		contains           string
	}{
		{"health", "GET", "/healthz", nil, 200, `"ok"`},
		{"list", "GET", "/api/docs", nil, 200, `"name":"Minutes"`},
		{"meta", "GET", "/api/docs/" + created.ID, nil, 200, `"id":"` + created.ID + `"`},
		{"unknown doc", "GET", "/api/docs/nope", nil, 404, `"error":"no such document"`},
		{"unknown doc text", "GET", "/api/docs/nope/text", nil, 404, `"error"`},
		{"unknown doc update", "GET", "/api/docs/nope/update", nil, 404, `"error"`},
		{"bad id", "GET", "/api/docs/a%20b", nil, 400, `invalid document id`},
		{"empty text", "GET", "/api/docs/" + created.ID + "/text", nil, 200, ""},
		{"bad json", "POST", "/api/docs", []byte(`{"name":`), 400, `"error"`},
		{"name too long", "POST", "/api/docs", []byte(`{"name":"` + strings.Repeat("n", 300) + `"}`), 400, `at most`},
		{"malformed update", "POST", "/api/docs/x/update", []byte{1, 2, 3}, 400, `invalid update`},
		{"empty update", "POST", "/api/docs/x/update", nil, 400, `empty body`},
		{"update too large", "POST", "/api/docs/x/update", make([]byte, 2000), 413, `limit`},
		{"no route", "GET", "/api/nothing", nil, 404, `"error"`},
		{"metrics", "GET", "/metrics", nil, 200, "quire_websocket_connections"},
		{"editor", "GET", "/", nil, 200, "<"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code int
			var body string
			if tt.method == "GET" {
				code, body, _ = ts.get(tt.path)
			} else {
				code, body = ts.post(tt.path, "application/octet-stream", tt.body)
			}
			if code != tt.code || !strings.Contains(body, tt.contains) {
				t.Fatalf("%s %s = %d %q, want %d with %q", tt.method, tt.path, code, body, tt.code, tt.contains)
			}
		})
	}
	// A document that was only posted to exists afterwards.
	u := newEditor(t, 3).insert(0, "posted")
	if code, body := ts.post("/api/docs/fresh/update", "application/octet-stream", u); code != 200 {
		t.Fatalf("POST update = %d %s", code, body)
	}
	if code, body, _ := ts.get("/api/docs/fresh/text"); code != 200 || body != "posted" {
		t.Fatalf("text = %d %q", code, body)
	}
	// Live documents show their peers.
	ts.join("fresh")
	code, body, _ = ts.get("/api/docs")
	var list []docJSON
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 {
		t.Fatalf("list = %d %s", code, body)
	}
	var found bool
	for _, d := range list {
		if d.ID == "fresh" {
			found = d.Peers == 1
		}
	}
	if !found {
		t.Fatalf("list %s does not show fresh with 1 peer", body)
	}
}

func TestCloseSaysGoingAway(t *testing.T) {
	ts := newTestServer(t, nil)
	a := ts.join("d")
	u := newEditor(t, 1).insert(0, "kept")
	a.send(protocol.EncodeUpdate(u))
	a.send(protocol.EncodeSyncStep1([]byte{0}))
	a.read() // the update is in
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	type status struct {
		code   websocket.StatusCode
		reason string
		err    error
	}
	got := make(chan status, 1)
	go func() {
		// The client reads while the server closes, as real clients do, so
		// the close handshake completes at once.
		code, reason, err := a.readToEnd()
		got <- status{code, reason, err}
	}()
	if err := ts.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := <-got; st.err != nil || st.code != websocket.StatusGoingAway || !strings.Contains(st.reason, "shutting down") {
		t.Fatalf("closed with %d %q %v", st.code, st.reason, st.err)
	}
	if _, resp, err := websocket.Dial(ctx, ts.ws+"/d", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upgrade after Close: %v", err)
	}
	l, err := ts.store.Load(ctx, "d")
	if err != nil || len(l.Updates) != 1 || !bytes.Equal(l.Updates[0], u) {
		t.Fatalf("stored %v %v", l, err)
	}
}

func TestQuietDeadPeerIsClosed(t *testing.T) {
	ts := newTestServer(t, func(c *Config) {
		c.PingInterval = 20 * time.Millisecond
		c.PongTimeout = 20 * time.Millisecond
	})
	// The client never reads, so it never answers the server's pings.
	p := ts.dial("d")
	deadline := time.Now().Add(testTimeout)
	for ts.srv.Docs().Peers("d") != 0 || ts.connCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a peer that does not answer pings is still connected")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.c.CloseNow()
}

func (ts *testServer) connCount() int {
	ts.srv.mu.Lock()
	defer ts.srv.mu.Unlock()
	return len(ts.srv.conns)
}

func TestOutboxBound(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		want  []bool
	}{
		{"by count", []int{1, 1, 1, 1}, []bool{true, true, true, false}},
		{"by bytes", []int{60, 30, 20}, []bool{true, true, false}},
		{"one large message fits an empty outbox", []int{500, 1}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &sock{maxMsgs: 3, maxBytes: 100, flushing: true} // nothing is written: the queue only grows
			for i, n := range tt.sizes {
				if got := s.send(make([]byte, n)); got != tt.want[i] {
					t.Fatalf("send #%d of %d bytes = %v, want %v", i, n, got, tt.want[i])
				}
			}
		})
	}
}

func TestCloseReasonFits(t *testing.T) {
	r := closeReason(strings.Repeat("ü", 100))
	if len(r) > 123 || !strings.HasPrefix(strings.Repeat("ü", 100), r) {
		t.Fatalf("reason %d bytes", len(r))
	}
}

// testLogger discards logs unless QUIRE_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("QUIRE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
