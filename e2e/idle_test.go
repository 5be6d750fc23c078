package e2e

import (
	"strings"
	"testing"
	"time"
)

// providerSilenceLimit is y-websocket's messageReconnectTimeout: a provider
// that received nothing for this long closes its connection and reconnects.
const providerSilenceLimit = 30 * time.Second

// TestLoneEditorStaysConnected: a stock provider alone on a document, with
// nobody else editing, must not be dropped by its own silence watchdog. The
// server has to send it something (the reference server echoes awareness
// renewals, sent every 15 s) within 30 s. The client sits idle for longer
// than that, then its edit must still reach the server over the same
// connection.
func TestLoneEditorStaysConnected(t *testing.T) {
	t.Parallel()
	s := StartServer(t, ServerOpts{})
	const doc = "lone"
	c := startClient(t, s, "lone", doc, 51)
	c.waitSynced(t)
	time.Sleep(providerSilenceLimit + 6*time.Second) // the watchdog checks every 3 s
	for _, line := range c.Lines() {
		if strings.Contains(line, `"ev":"close"`) || strings.Contains(line, `"status":"disconnected"`) {
			t.Fatalf("the lone editor lost its connection while idle: %s", line)
		}
	}
	c.do(t, map[string]any{"cmd": "insert", "pos": 0, "text": "still here"})
	waitFor(t, cmdTimeout, "the edit to reach the server", func() (bool, string) {
		got := serverText(t, s, doc)
		return got == "still here", "server text " + got
	})
	for _, line := range c.Lines() {
		if strings.Contains(line, `"status":"disconnected"`) {
			t.Fatalf("the lone editor reconnected: %s", line)
		}
	}
}
