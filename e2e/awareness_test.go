package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// awarenessDeadline bounds how long a peer may take to see an awareness
// change. It is well under y-protocols' 30 s outdatedTimeout, after which
// clients drop silent peers on their own: a removal seen within it was sent
// by the server, not inferred by the client.
const awarenessDeadline = 10 * time.Second

// awarenessNames reads a client's awareness events until the set of user
// names it sees (its own included) is exactly want.
func awarenessNames(t *testing.T, c *Client, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(awarenessDeadline)
	for {
		var ev struct {
			States map[string]json.RawMessage `json:"states"`
		}
		if !c.TryExpect(t, time.Until(deadline), "awareness", &ev) {
			t.Fatalf("%s sees awareness users %v, want %v within %v", c.Name, c.aware, want, awarenessDeadline)
		}
		var names []string
		for id, raw := range ev.States {
			var st struct {
				User struct {
					Name string `json:"name"`
				} `json:"user"`
			}
			if err := json.Unmarshal(raw, &st); err != nil || st.User.Name == "" {
				t.Fatalf("%s: awareness state of %s is %s: want {user: {name}}", c.Name, id, raw)
			}
			names = append(names, st.User.Name)
		}
		slices.Sort(names)
		c.aware = names
		if slices.Equal(names, want) {
			return
		}
	}
}

// TestAwarenessComesAndGoes: awareness states (y-protocols awareness, as the
// stock provider sends them) reach every other peer and a peer joining later;
// they disappear at the others when their owner leaves cleanly
// (provider.destroy) and when it vanishes (kill -9, so only the server can
// tell the others).
func TestAwarenessComesAndGoes(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{})
	const doc = "awareness"
	names := []string{"ada", "bob", "cy"}
	var clients []*Client
	for i, n := range names {
		clients = append(clients, startClient(t, s, n, doc, 40+i, "--awareness", "--name", n))
	}
	for _, c := range clients {
		awarenessNames(t, c, names...)
	}
	ada, bob, cy := clients[0], clients[1], clients[2]

	// A late joiner gets the current states on connect.
	dee := startClient(t, s, "dee", doc, 43, "--awareness", "--name", "dee")
	awarenessNames(t, dee, "ada", "bob", "cy", "dee")
	for _, c := range clients {
		awarenessNames(t, c, "ada", "bob", "cy", "dee")
	}

	// cy leaves cleanly.
	cy.do(t, map[string]any{"cmd": "destroy"})
	for _, c := range []*Client{ada, bob, dee} {
		awarenessNames(t, c, "ada", "bob", "dee")
	}

	// bob's process dies: its socket closes without a word from the client.
	bob.Kill()
	for _, c := range []*Client{ada, dee} {
		awarenessNames(t, c, "ada", "dee")
	}

	// A state change propagates too.
	ada.do(t, map[string]any{"cmd": "setUser", "name": "ada2"})
	awarenessNames(t, dee, "ada2", "dee")
	for _, line := range dee.Lines() {
		if strings.Contains(line, `"status":"disconnected"`) {
			t.Fatalf("dee lost its connection: %s", line)
		}
	}
}
