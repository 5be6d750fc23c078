package doc

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/quirehq/quire/presence"
)

func TestEditors(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	_, sa := h.join("d", "a")
	_, sb := h.join("d", "b")
	// Peer a speaks for two clients (two tabs sharing a connection would do
	// that), one of them with no user; peer b for one.
	sa.Awareness(presence.EncodeUpdate(presence.Update{
		{ClientID: 20, Clock: 1, State: json.RawMessage(`{"user":{"name":"Ann","color":"#30bced"},"cursor":null}`)},
		{ClientID: 5, Clock: 1, State: json.RawMessage(`{"cursor":{"anchor":1}}`)},
	}))
	sb.Awareness(presence.EncodeUpdate(presence.Update{
		{ClientID: 10, Clock: 3, State: json.RawMessage(`{"user":{"name":"Bob","color":"#ee6352"}}`)},
	}))
	settle(sa.room)

	got, err := h.reg.Editors(ctx, "d", "closed")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Editor{"d": {{Name: "Bob", Color: "#ee6352"}, {Name: "Ann", Color: "#30bced"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Editors = %+v, want %+v", got, want)
	}

	// When b leaves, its state goes and so does Bob.
	sb.Leave()
	settle(sa.room)
	got, err = h.reg.Editors(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	want = map[string][]Editor{"d": {{Name: "Ann", Color: "#30bced"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after b left: Editors = %+v, want %+v", got, want)
	}

	// A room held only by a Handle has no editors.
	hd, err := h.reg.Open(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	defer hd.Close()
	if got, err := h.reg.Editors(ctx, "h"); err != nil || len(got) != 0 {
		t.Fatalf("Editors(h) = %+v, %v; want none", got, err)
	}
	sa.Leave()
}

func TestEditorsOf(t *testing.T) {
	long := strings.Repeat("é", MaxEditorName) // 2 bytes each
	tests := []struct {
		name  string
		state string
		want  []Editor
	}{
		{"name and color", `{"user":{"name":"Ann","color":"#30bced"}}`, []Editor{{Name: "Ann", Color: "#30bced"}}},
		{"name only", `{"user":{"name":"Ann"}}`, []Editor{{Name: "Ann"}}},
		{"empty name", `{"user":{"name":""}}`, []Editor{{Name: ""}}},
		{"color not a string", `{"user":{"name":"Ann","color":7}}`, []Editor{{Name: "Ann"}}},
		{"color too long", `{"user":{"name":"Ann","color":"` + strings.Repeat("a", MaxEditorColor+1) + `"}}`, []Editor{{Name: "Ann"}}},
		{"long name cut at a rune", `{"user":{"name":"` + long + `"}}`, []Editor{{Name: long[:MaxEditorName]}}},
		{"odd cut backs off", `{"user":{"name":"a` + long + `"}}`, []Editor{{Name: "a" + long[:MaxEditorName-2]}}},
		{"no user", `{"cursor":{}}`, nil},
		{"user null", `{"user":null}`, nil},
		{"user a string", `{"user":"Ann"}`, nil},
		{"name null", `{"user":{"name":null,"color":"#fff"}}`, nil},
		{"name a number", `{"user":{"name":42}}`, nil},
		{"name an object", `{"user":{"name":{"first":"Ann"}}}`, nil},
		{"state a number", `3`, nil},
		{"state an array", `[{"user":{"name":"Ann"}}]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := editorsOf(presence.Update{{ClientID: 1, Clock: 1, State: json.RawMessage(tt.state)}})
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("editorsOf(%s) = %+v, want %+v", tt.state, got, tt.want)
			}
		})
	}
	// The list is bounded however many states a room holds.
	many := make(presence.Update, MaxEditors+5)
	for i := range many {
		many[i] = presence.Entry{ClientID: uint64(i), Clock: 1, State: json.RawMessage(`{"user":{"name":"x"}}`)}
	}
	if n := len(editorsOf(many)); n != MaxEditors {
		t.Fatalf("editorsOf of %d states = %d editors, want %d", len(many), n, MaxEditors)
	}
}
