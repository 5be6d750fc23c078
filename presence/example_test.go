package presence_test

import (
	"fmt"
	"time"

	"github.com/quirehq/quire/presence"
)

// ExampleSet shows the life of one client's presence as a room sees it: an
// update arrives from a connection, is applied and broadcast; a joining peer
// is sent Current; the connection closes and the others are told.
func ExampleSet() {
	s := presence.NewSet()
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

	// What a y-websocket client sends after setting its user field.
	msg := presence.EncodeUpdate(presence.Update{
		{ClientID: 3141592653, Clock: 1, State: []byte(`{"user":{"name":"Ann"}}`)},
	})

	// The room decodes it (a malformed one would cost the sender its
	// connection) and applies it for connection 7.
	u, err := presence.DecodeUpdate(msg)
	if err != nil {
		fmt.Println("bad update:", err)
		return
	}
	for _, e := range s.Apply(u, 7, start) {
		fmt.Printf("broadcast: %d@%d %s\n", e.ClientID, e.Clock, e.State)
	}

	// The same update again (say, echoed by a peer) changes nothing.
	fmt.Println("again:", len(s.Apply(u, 8, start)))

	// A peer that joins is sent every live state.
	fmt.Println("live:", s.Len(), len(s.Current()))

	// Nothing expires before Timeout...
	fmt.Println("expired:", len(s.Expire(start.Add(10*time.Second))))

	// ...and connection 7 closing removes its client for everyone.
	for _, e := range s.RemoveOwner(7, start.Add(10*time.Second)) {
		fmt.Printf("broadcast: %d@%d %s\n", e.ClientID, e.Clock, e.State)
	}
	fmt.Println("live:", s.Len())

	// Output:
	// broadcast: 3141592653@1 {"user":{"name":"Ann"}}
	// again: 0
	// live: 1 1
	// expired: 0
	// broadcast: 3141592653@1 null
	// live: 0
}
