package doc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/quirehq/quire/presence"
)

// Bounds of what Editors reports: awareness states are whatever clients send,
// and the list ends up in every GET /api/docs answer.
const (
	// MaxEditorName is the longest Editor.Name, in bytes; longer names are
	// cut at a UTF-8 boundary.
	MaxEditorName = 64
	// MaxEditorColor is the longest Editor.Color, in bytes; a longer color
	// is left out.
	MaxEditorColor = 32
	// MaxEditors is how many editors Editors reports per document at most.
	MaxEditors = 100
)

// Editor is who one live awareness state says is in a document: the "user"
// field ({name, color}) that y-websocket clients and Quire's editor set.
type Editor struct {
	Name  string `json:"name"`
	Color string `json:"color,omitempty"`
}

// Editors returns, by document id, the editors of the live awareness states
// of those of ids whose room is open with peers, in client id order. A
// document whose room is closed, failed or has no editor is absent. The
// states are read by each room's goroutine, in order with what its peers
// sent (the rooms are asked concurrently), and parsed by the caller. The
// error is ctx's, when it ends first.
func (r *Registry) Editors(ctx context.Context, ids ...string) (map[string][]Editor, error) {
	type ask struct {
		id     string
		rm     *room
		c      *call
		states presence.Update // written by the room before it replies on c.done
	}
	var asks []*ask
	r.mu.Lock()
	for _, id := range ids {
		// A room without peers has no awareness state: states belong to
		// sessions and go when they leave. Not asking it also leaves its
		// idle time alone.
		if rm := r.rooms[id]; rm != nil && rm.npeers.Load() > 0 {
			asks = append(asks, &ask{id: id, rm: rm})
		}
	}
	r.mu.Unlock()
	for _, a := range asks {
		a.c = &call{
			fn: func(rm *room) error {
				// Current copies the entries; their states are never
				// modified, so the caller may read them afterwards.
				a.states = rm.aware.Current()
				return nil
			},
			done: make(chan error, 1),
		}
		// No reference is taken: a room with peers is not unloaded, and
		// one that finishes meanwhile answers ErrClosed or nothing.
		if err := a.rm.postCtx(ctx, message{kind: msgCall, call: a.c}); err != nil {
			if errors.Is(err, ErrClosed) {
				a.c = nil
				continue
			}
			return nil, fmt.Errorf("doc: editors: %w", err)
		}
	}
	out := make(map[string][]Editor, len(asks))
	for _, a := range asks {
		if a.c == nil {
			continue
		}
		var err error
		select {
		case err = <-a.c.done:
		case <-a.rm.done:
			// The room may have answered just before finishing.
			select {
			case err = <-a.c.done:
			default:
				err = ErrClosed
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("doc: editors: %w", ctx.Err())
		}
		if err != nil {
			continue // the room failed or finished: nobody is in it
		}
		if eds := editorsOf(a.states); len(eds) > 0 {
			out[a.id] = eds
		}
	}
	return out, nil
}

// editorsOf returns the editors of states: each state's user.name and
// user.color when they are strings. A state without a string user.name is
// skipped; a color that is not a string of at most MaxEditorColor bytes is
// left out.
func editorsOf(states presence.Update) []Editor {
	var out []Editor
	for _, e := range states {
		if len(out) == MaxEditors {
			break
		}
		var st struct {
			User struct {
				Name  json.RawMessage `json:"name"`
				Color json.RawMessage `json:"color"`
			} `json:"user"`
		}
		if json.Unmarshal(e.State, &st) != nil {
			continue // not an object, or user is not one
		}
		name, ok := jsonString(st.User.Name)
		if !ok {
			continue
		}
		ed := Editor{Name: cutUTF8(name, MaxEditorName)}
		if color, ok := jsonString(st.User.Color); ok && len(color) <= MaxEditorColor {
			ed.Color = color
		}
		out = append(out, ed)
	}
	return out
}

// jsonString decodes raw if it is a JSON string (not absent, null or another
// type).
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// cutUTF8 trims s to at most n bytes without splitting a UTF-8 sequence.
// (json.Unmarshal already replaced invalid sequences with U+FFFD.)
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}
