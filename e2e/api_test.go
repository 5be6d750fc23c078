package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// garbageUpdate frames like a v1 update (one client, one struct) but its
// struct has content ref 31, which no Yjs decoder knows: Yjs throws on it.
var garbageUpdate = []byte{
	1, 1, // one client, one struct
	0x92, 0x21, // client 4242
	0,                                       // clock
	31,                                      // info: no origins, content ref 31
	1, 7, 'c', 'o', 'n', 't', 'e', 'n', 't', // parent: root "content"
	5, 1, 2, 3, 4, 5,
}

// TestHTTPAPI checks the HTTP contract of DESIGN.md: health, creating,
// listing and reading documents, the refusal of invalid document IDs before
// the WebSocket upgrade, and applying an update from a backend, which must
// reach a connected editor, while a malformed one is refused and changes
// nothing.
func TestHTTPAPI(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{})

	if code, body := s.Do(t, http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
		t.Fatalf("GET /healthz: %d %q", code, body)
	}
	metrics := string(s.Get(t, "/metrics"))
	if !strings.Contains(metrics, "# TYPE ") {
		t.Fatalf("GET /metrics is not Prometheus text: %q", truncate([]byte(metrics), 300))
	}

	// Create, list, read.
	code, body := s.Do(t, http.MethodPost, "/api/docs", "", nil)
	if code != http.StatusCreated {
		t.Fatalf("POST /api/docs: status %d %q, want 201", code, body)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatalf("POST /api/docs: %v in %q", err, body)
	}
	if _, err := uuid.Parse(created.ID); err != nil || len(created.ID) != 36 {
		t.Fatalf("POST /api/docs: id %q is not a UUID (%v)", created.ID, err)
	}
	id := created.ID
	if !listHas(t, s.Get(t, "/api/docs"), id) {
		t.Fatalf("GET /api/docs does not list %s: %s", id, truncate(s.Get(t, "/api/docs"), 500))
	}
	var meta struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(s.Get(t, docPath(id)), &meta); err != nil || meta.ID != id {
		t.Fatalf("GET /api/docs/%s: id %q (%v)", id, meta.ID, err)
	}
	if code, body := s.Do(t, http.MethodGet, docPath(uuid.NewString()), "", nil); code != http.StatusNotFound {
		t.Fatalf("GET an unknown document: status %d %q, want 404", code, body)
	}

	// Document IDs: 1-128 of [A-Za-z0-9._-]; anything else is refused with
	// 400 before the upgrade.
	t.Run("ws-ids", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		for _, ok := range []string{"a", "A-z_0.9", strings.Repeat("x", 128), id} {
			c, _, err := websocket.Dial(ctx, s.WS+"/"+ok, nil)
			if err != nil {
				t.Fatalf("dial valid id %q: %v", ok, err)
			}
			c.CloseNow()
		}
		for _, bad := range []string{strings.Repeat("x", 129), "has space", "semi;colon", "ünïcode", "a+b", "a~b", "quote'"} {
			_, resp, err := websocket.Dial(ctx, s.WS+"/"+url.PathEscape(bad), nil)
			if err == nil {
				t.Fatalf("dial invalid id %q: upgraded", bad)
			}
			if resp == nil || resp.StatusCode != http.StatusBadRequest {
				status := 0
				if resp != nil {
					status = resp.StatusCode
				}
				t.Fatalf("dial invalid id %q: status %d (%v), want 400", bad, status, err)
			}
		}
	})

	// An update from a backend reaches a connected editor.
	t.Run("post-update", func(t *testing.T) {
		ed := startClient(t, s, "editor", id, 77)
		ed.waitSynced(t)
		ed.do(t, map[string]any{"cmd": "insert", "pos": 0, "text": "typed in the editor."})
		observer := startClient(t, s, "observer", id, 78)
		observer.waitSynced(t)
		want := converge(t, ed, observer)

		base := writeTemp(t, "base.bin", s.Get(t, docPath(id)+"/update"))
		out := writeTemp(t, "backend.bin", nil)
		var made Decoded
		ytool(t, &made, "make-update", "--base", base, "--out", out, "--text", " Written by a backend.")
		if made.Text != want.Text+" Written by a backend." {
			t.Fatalf("the server's state decoded by Yjs has text %q, the editor %q", strings.TrimSuffix(made.Text, " Written by a backend."), want.Text)
		}
		update, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if code, body := s.Do(t, http.MethodPost, docPath(id)+"/update", "application/octet-stream", update); code/100 != 2 {
			t.Fatalf("POST update: status %d %q", code, body)
		}
		ed.do(t, map[string]any{"cmd": "waitText", "text": made.Text})
		if got := serverText(t, s, id); got != made.Text {
			t.Fatalf("after POST update the server text is %q, want %q", got, made.Text)
		}

		// Malformed updates: 400, and the document does not change.
		before := decodeUpdate(t, s.Get(t, docPath(id)+"/update"))
		for name, body := range map[string][]byte{
			"garbage":   garbageUpdate,
			"truncated": update[:len(update)/2],
			"empty":     {},
			"text":      []byte("not an update at all"),
		} {
			if code, resp := s.Do(t, http.MethodPost, docPath(id)+"/update", "application/octet-stream", body); code != http.StatusBadRequest {
				t.Fatalf("POST a %s update: status %d %q, want 400", name, code, resp)
			}
		}
		if code, resp := s.Do(t, http.MethodPost, "/api/docs/bad%20id/update", "application/octet-stream", update); code != http.StatusBadRequest {
			t.Fatalf("POST an update to an invalid id: status %d %q, want 400", code, resp)
		}
		after := decodeUpdate(t, s.Get(t, docPath(id)+"/update"))
		if after.Text != before.Text || after.SV.String() != before.SV.String() {
			t.Fatalf("malformed POSTs changed the document: text %q sv %v, was %q sv %v", after.Text, after.SV, before.Text, before.SV)
		}
		if r := ed.report(t); r.Text != before.Text {
			t.Fatalf("malformed POSTs reached the editor: text %q, want %q", r.Text, before.Text)
		}
	})
}

// listHas reports whether the JSON document list (an array of objects with
// an "id", possibly wrapped in an object) contains id.
func listHas(t *testing.T, body []byte, id string) bool {
	t.Helper()
	type item struct {
		ID string `json:"id"`
	}
	var list []item
	if err := json.Unmarshal(body, &list); err != nil {
		var wrapped map[string]json.RawMessage
		if err2 := json.Unmarshal(body, &wrapped); err2 != nil {
			t.Fatalf("GET /api/docs: not a JSON list: %v in %q", err, truncate(body, 300))
		}
		for _, raw := range wrapped {
			var l []item
			if json.Unmarshal(raw, &l) == nil {
				list = append(list, l...)
			}
		}
	}
	for _, it := range list {
		if it.ID == id {
			return true
		}
	}
	return false
}
