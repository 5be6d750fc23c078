package crdt

// maxClock bounds every clock and struct length this package accepts. Yjs
// allows 53-bit clocks, but no real document comes near 2^32 operations per
// client, and 32-bit clocks halve the size of every item; updates beyond the
// bound are rejected as malformed.
const maxClock = 1<<32 - 1

// rawID is a Yjs ID as it appears on the wire: a client id and a clock.
type rawID struct {
	client uint64
	clock  uint64
}

// idRef is an ID held by an item: client is an index into Doc.clients plus
// one, so that the zero value means "no ID" (null in Yjs).
type idRef struct {
	client uint32
	clock  uint32
}

func (r idRef) valid() bool { return r.client != 0 }

// ci is the client index of a valid idRef.
func (r idRef) ci() uint32 { return r.client - 1 }

func mkRef(ci, clock uint32) idRef { return idRef{client: ci + 1, clock: clock} }
