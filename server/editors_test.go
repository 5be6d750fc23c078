package server

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/coder/websocket"

	"github.com/quirehq/quire/doc"
	"github.com/quirehq/quire/presence"
	"github.com/quirehq/quire/protocol"
)

// TestListShowsEditors: the documents API names who is in an open document,
// from the users of its peers' awareness states.
func TestListShowsEditors(t *testing.T) {
	ts := newTestServer(t, nil)
	if code, body := ts.post("/api/docs/notes/update", "application/octet-stream", newEditor(t, 3).insert(0, "hi")); code != 200 {
		t.Fatalf("POST update = %d %s", code, body)
	}
	a := ts.join("notes")
	b := ts.join("notes")
	states := []presence.Update{
		{{ClientID: 11, Clock: 1, State: json.RawMessage(`{"user":{"name":"Ann","color":"#30bced"},"cursor":null}`)}},
		{{ClientID: 12, Clock: 1, State: json.RawMessage(`{"user":{"name":"Bob","color":"#ee6352"}}`)}},
	}
	for i, p := range []*peer{a, b} {
		p.send(protocol.EncodeAwareness(presence.EncodeUpdate(states[i])))
		// Every peer gets each change, the sender too: once both have read
		// it, the room holds the state.
		for _, q := range []*peer{a, b} {
			if m := q.read(); m.Type != protocol.TypeAwareness {
				t.Fatalf("got %v, want awareness", m.Type)
			}
		}
	}
	want := []doc.Editor{{Name: "Ann", Color: "#30bced"}, {Name: "Bob", Color: "#ee6352"}}

	code, body, _ := ts.get("/api/docs")
	var list []docJSON
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 {
		t.Fatalf("list = %d %s", code, body)
	}
	if len(list) != 1 || list[0].ID != "notes" || list[0].Peers != 2 || !reflect.DeepEqual(list[0].Editors, want) {
		t.Fatalf("list = %s, want notes with 2 peers and editors %+v", body, want)
	}
	code, body, _ = ts.get("/api/docs/notes")
	var one docJSON
	if err := json.Unmarshal([]byte(body), &one); err != nil || code != 200 {
		t.Fatalf("get = %d %s", code, body)
	}
	if one.Peers != 2 || !reflect.DeepEqual(one.Editors, want) {
		t.Fatalf("get = %s, want 2 peers and editors %+v", body, want)
	}

	// When Ann leaves, Bob learns it, and the list shows Bob alone.
	a.c.Close(websocket.StatusNormalClosure, "bye")
	if m := b.read(); m.Type != protocol.TypeAwareness {
		t.Fatalf("b got %v, want the removal", m.Type)
	}
	code, body, _ = ts.get("/api/docs")
	if err := json.Unmarshal([]byte(body), &list); err != nil || code != 200 {
		t.Fatalf("list = %d %s", code, body)
	}
	if len(list) != 1 || !reflect.DeepEqual(list[0].Editors, want[1:]) {
		t.Fatalf("list after Ann left = %s, want editors %+v", body, want[1:])
	}
}
