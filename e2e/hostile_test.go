package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestHostileInputClosesOnlyTheOffender checks isolation (DESIGN.md
// invariant 3). While a well-behaved editor keeps typing into a document,
// raw WebSocket clients send it one malformed message each. Every offender
// must be closed by the server with an error close code and a reason; the
// editor must never be disconnected and must converge with the server; and
// after a restart the stored document must be exactly the editor's.
func TestHostileInputClosesOnlyTheOffender(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{})
	const doc = "hostile"
	good := startClient(t, s, "good", doc, 900)
	observer := startClient(t, s, "observer", doc, 901)
	good.waitSynced(t)
	observer.waitSynced(t)
	good.do(t, map[string]any{"cmd": "type", "delay": 5})

	cases := []struct {
		mode string
		join bool // offend after a proper sync handshake, from inside the room
	}{
		{"random", false},
		{"random", true},
		{"truncated", true},
		{"truncated-sv", false},
		{"huge-length", true},
		{"bogus-update", true},
		{"bogus-step2", true},
		{"bogus-awareness", true},
		{"unknown-type", true},
		{"unknown-sync", true},
		{"big-frame", true},
		{"text-frame", false},
		{"text-frame", true},
	}
	for _, tc := range cases {
		name := tc.mode
		if tc.join {
			name += "/joined"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"--url", s.WS, "--doc", doc, "--mode", tc.mode}
			if tc.join {
				args = append(args, "--join")
			}
			ctx, cancel := context.WithTimeout(context.Background(), nodeTimeout)
			defer cancel()
			out, err := RunNode(t, ctx, "hostile.mjs", args...)
			if err != nil {
				t.Fatal(err)
			}
			var closedEv *struct {
				Code   int    `json:"code"`
				Reason string `json:"reason"`
				Sent   bool   `json:"sent"`
			}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var ev struct {
					Ev string `json:"ev"`
				}
				if json.Unmarshal([]byte(line), &ev) != nil {
					t.Fatalf("hostile.mjs printed %q", line)
				}
				switch ev.Ev {
				case "timeout":
					t.Fatalf("the server left the offender's connection open: %s", out)
				case "refused":
					t.Fatalf("the server refused the WebSocket upgrade: %s", out)
				case "closed":
					if err := json.Unmarshal([]byte(line), &closedEv); err != nil {
						t.Fatal(err)
					}
				}
			}
			if closedEv == nil {
				t.Fatalf("no close reported: %s", out)
			}
			if !closedEv.Sent {
				t.Fatalf("the connection closed before the offence was sent: %s", out)
			}
			if !isErrorCloseCode(closedEv.Code) {
				t.Fatalf("offender closed with code %d (reason %q): want an error close code sent by the server (1001-1014 except 1005/1006, or 4000-4999)", closedEv.Code, closedEv.Reason)
			}
			if closedEv.Reason == "" {
				t.Fatalf("offender closed with code %d and an empty reason", closedEv.Code)
			}
			t.Logf("closed with %d %q", closedEv.Code, closedEv.Reason)
		})
	}

	stopped := good.do(t, map[string]any{"cmd": "stop"})
	if n, _ := stopped["count"].(float64); n < 10 {
		t.Fatalf("the good editor made only %v edits during the attacks", stopped["count"])
	}
	for _, c := range []*Client{good, observer} {
		for _, line := range c.Lines() {
			if strings.Contains(line, `"ev":"close"`) || strings.Contains(line, `"status":"disconnected"`) {
				t.Fatalf("well-behaved client %s lost its connection during the attacks: %s", c.Name, line)
			}
		}
	}
	want := converge(t, good, observer)
	checkServerHas(t, s, doc, want)

	// Only the database remains after this: the stored document must be
	// exactly what the well-behaved clients have.
	good.Kill()
	observer.Kill()
	s.Stop(t)
	s.Restart(t)
	checkServerHas(t, s, doc, want)
}

// isErrorCloseCode reports whether code is a close code a server sends to
// signal an error: the registered 1xxx codes other than 1000 (normal) and the
// codes that are never sent on the wire (1005, 1006, 1015 is TLS), or a
// private 4xxx code.
func isErrorCloseCode(code int) bool {
	switch {
	case code >= 1001 && code <= 1014 && code != 1005 && code != 1006:
		return true
	case code >= 4000 && code <= 4999:
		return true
	}
	return false
}
