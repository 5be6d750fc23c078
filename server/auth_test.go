package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/quirehq/quire/auth"
	"github.com/quirehq/quire/limits"
	"github.com/quirehq/quire/protocol"
)

// newAuthServer is a test server with auth on, and the authority that signs
// its tokens.
func newAuthServer(t *testing.T, lim limits.Config) (*testServer, *auth.Authority) {
	t.Helper()
	a, err := auth.New([]byte("a test secret of at least 32 bytes."), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config) {
		c.Gate = &auth.Gate{Tokens: a}
		c.Limits = lim
	})
	return ts, a
}

func mint(t *testing.T, a *auth.Authority, g auth.Grant) string {
	t.Helper()
	tok, err := a.Mint(g, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (ts *testServer) dialStatus(path string) (*websocket.Conn, int) {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, ts.ws+path, nil)
	if err != nil {
		if resp == nil {
			ts.t.Fatalf("dial %s: %v", path, err)
		}
		return nil, resp.StatusCode
	}
	ts.t.Cleanup(func() { c.CloseNow() })
	return c, http.StatusSwitchingProtocols
}

func TestAuthRefusedBeforeUpgrade(t *testing.T) {
	ts, a := newAuthServer(t, limits.Config{})
	other := mint(t, a, auth.Grant{Docs: []string{"other"}, Access: auth.ReadWrite})
	tests := []struct {
		name, path string
		status     int
	}{
		{"no token", "/notes", http.StatusUnauthorized},
		{"bad token", "/notes?token=abc", http.StatusUnauthorized},
		{"another document", "/notes?token=" + other, http.StatusForbidden},
		{"right document", "/other?token=" + other, http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, status := ts.dialStatus(tt.path); status != tt.status {
				t.Fatalf("status %d, want %d", status, tt.status)
			}
		})
	}
	// Once an admitted peer has its greeting, only its room is open.
	ts.join("other?token=" + other)
	if n := ts.srv.Docs().Rooms(); n != 1 {
		t.Fatalf("%d rooms open, want only the admitted one", n)
	}
}

func TestReadOnlyPeer(t *testing.T) {
	ts, a := newAuthServer(t, limits.Config{})
	rw := mint(t, a, auth.Grant{Docs: []string{"notes"}, Access: auth.ReadWrite})
	ro := mint(t, a, auth.Grant{Docs: []string{"notes"}, Access: auth.ReadOnly})
	writer := ts.join("notes?token=" + rw)
	reader := ts.join("notes?token=" + ro)

	// The read-only peer's update is refused with a permission-denied message;
	// the document and the other peer see nothing of it.
	reader.send(protocol.EncodeUpdate(newEditor(t, 9).insert(0, "nope")))
	if m := reader.read(); m.Type != protocol.TypeAuth || !strings.Contains(m.Reason, "read-only") {
		t.Fatalf("read-only peer got %v %q, want permission denied", m.Type, m.Reason)
	}
	// It still receives what others write.
	u := newEditor(t, 1).insert(0, "yes")
	writer.send(protocol.EncodeUpdate(u))
	if m := reader.read(); m.Sync != protocol.SyncUpdate || !bytes.Equal(m.Payload, u) {
		t.Fatalf("read-only peer got %v %x", m.Sync, m.Payload)
	}
	req, _ := http.NewRequest("GET", ts.http.URL+"/api/docs/notes/text", nil)
	req.Header.Set("Authorization", "Bearer "+ro)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.String() != "yes" {
		t.Fatalf("text = %d %q", resp.StatusCode, body.String())
	}
	// Writing over HTTP needs write access.
	req, _ = http.NewRequest("POST", ts.http.URL+"/api/docs/notes/update", bytes.NewReader(u))
	req.Header.Set("Authorization", "Bearer "+ro)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST update with a read-only token = %d", resp.StatusCode)
	}
}

func TestTokenInAuthMessage(t *testing.T) {
	ts, a := newAuthServer(t, limits.Config{})
	tok := mint(t, a, auth.Grant{Docs: []string{"notes"}, Access: auth.ReadWrite})
	p := ts.dial("notes?" + auth.DeferredParam + "=" + auth.DeferredValue)
	if n := ts.srv.Docs().Rooms(); n != 0 {
		t.Fatal("a document was opened before the token came")
	}
	p.send(auth.AppendTokenMessage(nil, tok))
	if m := p.read(); m.Sync != protocol.SyncStep1 {
		t.Fatalf("after the token: %v/%v, want sync step 1", m.Type, m.Sync)
	}
	// A wrong token in the message closes with 4401.
	q := ts.dial("notes?" + auth.DeferredParam + "=" + auth.DeferredValue)
	q.send(auth.AppendTokenMessage(nil, "not a token"))
	if code, _ := q.closed(); code != auth.CloseUnauthorized {
		t.Fatalf("closed with %d, want %d", code, auth.CloseUnauthorized)
	}
}

func TestFlooderIsCutOff(t *testing.T) {
	lim := limits.Config{UpdatesPerSecond: 1, UpdateBurst: 5}
	ts := newTestServer(t, func(c *Config) {
		c.Gate = &auth.Gate{}
		c.Limits = lim
	})
	calm := ts.join("d")
	flood := ts.join("d")
	ed := newEditor(t, 4)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		err := flood.c.Write(ctx, websocket.MessageBinary, protocol.EncodeUpdate(ed.insert(i, "x")))
		cancel()
		if err != nil {
			break // already closed
		}
	}
	if code, _ := flood.closed(); code != limits.CloseRateLimited {
		t.Fatalf("flooder closed with %d, want %d", code, limits.CloseRateLimited)
	}
	calm.send(protocol.EncodeSyncStep1([]byte{0}))
	for {
		if m := calm.read(); m.Sync == protocol.SyncStep2 {
			break
		}
	}
}

func TestListFilteredByGrant(t *testing.T) {
	ts, a := newAuthServer(t, limits.Config{})
	for _, id := range []string{"team-a.plan", "team-b.plan"} {
		if _, err := ts.store.Append(context.Background(), id, newEditor(t, 1).insert(0, id)); err != nil {
			t.Fatal(err)
		}
	}
	tok := mint(t, a, auth.Grant{Prefixes: []string{"team-a."}, Access: auth.ReadOnly})
	req, _ := http.NewRequest("GET", ts.http.URL+"/api/docs?token="+tok, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []docJSON
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "team-a.plan" {
		t.Fatalf("list %+v, want team-a.plan only", list)
	}
	if code, _, h := ts.get("/api/docs"); code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("list without a token = %d", code)
	}
}

// An open connection does not outlive its token: at the token's exp the
// server closes it with 4401, unless the peer sent a fresh token first.
func TestTokenExpiryClosesConnection(t *testing.T) {
	ts, a := newAuthServer(t, limits.Config{})
	g := auth.Grant{Docs: []string{"notes"}, Access: auth.ReadWrite}
	short := func() string {
		// exp is in whole seconds: this one runs out 1-2 s from now.
		tok, err := a.Mint(g, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	p := ts.join("notes?token=" + short())
	start := time.Now()
	code, reason := p.closed()
	if code != auth.CloseUnauthorized || !strings.Contains(reason, "expired") {
		t.Fatalf("closed with %d %q, want %d and a reason that says expired", code, reason, auth.CloseUnauthorized)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("closed %s after joining with a token valid for at most 2 s", el)
	}

	q := ts.join("notes?token=" + short())
	q.send(auth.AppendTokenMessage(nil, mint(t, a, g)))
	ctx, cancel := context.WithTimeout(context.Background(), 3500*time.Millisecond)
	defer cancel()
	for {
		if _, _, err := q.c.Read(ctx); err != nil {
			if ctx.Err() == nil {
				t.Fatalf("a peer that sent a fresh token was closed: %v", err)
			}
			break
		}
	}
}
