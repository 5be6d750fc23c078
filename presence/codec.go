package presence

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/quirehq/quire/internal/lib0"
)

// MaxStateSize is the largest JSON state, in bytes, that DecodeUpdate
// accepts. Real states (user name, colour, two relative cursor positions)
// are a few hundred bytes; every state is sent to every peer that joins, so
// a peer must not be able to make the room carry megabytes of it.
const MaxStateSize = 64 << 10

// minEntrySize is the smallest encoded entry: one byte each for the client
// id, the clock and the string length, and a one-byte JSON text such as 0.
const minEntrySize = 4

// ErrMalformed is wrapped by every error DecodeUpdate returns, so that a
// caller can tell a peer's bad input (close its connection) from other
// failures with errors.Is.
var ErrMalformed = errors.New("presence: malformed awareness update")

// nullState is the JSON text of a removed client's state.
var nullState = json.RawMessage("null")

// Entry is one client's awareness state at a clock.
type Entry struct {
	// ClientID is the Yjs client id (up to 53 bits).
	ClientID uint64
	// Clock orders the states of one client: a higher clock wins.
	Clock uint64
	// State is the JSON text; "null" means the client is removed. An empty
	// State is encoded as null.
	State json.RawMessage
}

// Update is the list of entries of one awareness update message, in wire
// order.
type Update []Entry

// DecodeUpdate decodes a y-protocols awareness update: a varUint count, then
// per entry a varUint client id, a varUint clock and a varString of JSON.
//
// It is stricter than lib0: it rejects truncated input, trailing bytes,
// non-minimal or out-of-range (past 2^53-1) integers, invalid UTF-8, invalid
// JSON and states over MaxStateSize. Every error wraps ErrMalformed. The JSON
// text is kept as received, copied out of b, so b may be reused afterwards
// and EncodeUpdate of the result gives back b exactly.
func DecodeUpdate(b []byte) (u Update, err error) {
	defer func() {
		if err != nil {
			u = nil
			err = fmt.Errorf("%w: %w", ErrMalformed, err)
		}
	}()
	count, n, err := lib0.ReadVarUint(b)
	if err != nil {
		return nil, fmt.Errorf("entry count: %w", err)
	}
	b = b[n:]
	// Each entry takes at least minEntrySize bytes, so a count that the
	// remaining bytes cannot hold is refused before anything is allocated.
	if count > uint64(len(b)/minEntrySize) {
		return nil, fmt.Errorf("entry count %d exceeds what %d bytes can hold", count, len(b))
	}
	u = make(Update, 0, count)
	for i := uint64(0); i < count; i++ {
		var e Entry
		if e.ClientID, n, err = lib0.ReadVarUint(b); err != nil {
			return nil, fmt.Errorf("entry %d: client id: %w", i, err)
		}
		b = b[n:]
		if e.Clock, n, err = lib0.ReadVarUint(b); err != nil {
			return nil, fmt.Errorf("entry %d (client %d): clock: %w", i, e.ClientID, err)
		}
		b = b[n:]
		s, n, err := lib0.ReadVarString(b)
		if err != nil {
			return nil, fmt.Errorf("entry %d (client %d): state: %w", i, e.ClientID, err)
		}
		b = b[n:]
		if len(s) > MaxStateSize {
			return nil, fmt.Errorf("entry %d (client %d): state of %d bytes exceeds %d", i, e.ClientID, len(s), MaxStateSize)
		}
		if !json.Valid(s) {
			return nil, fmt.Errorf("entry %d (client %d): state is not valid JSON", i, e.ClientID)
		}
		e.State = append(json.RawMessage(nil), s...)
		u = append(u, e)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after %d entries", len(b), count)
	}
	return u, nil
}

// EncodeUpdate encodes u as a y-protocols awareness update, byte-identical
// to encodeAwarenessUpdate of y-protocols for the same entries.
func EncodeUpdate(u Update) []byte {
	size := lib0.VarUintLen(uint64(len(u)))
	for _, e := range u {
		l := len(e.State)
		if l == 0 {
			l = len(nullState)
		}
		size += lib0.VarUintLen(e.ClientID) + lib0.VarUintLen(e.Clock) + lib0.VarUintLen(uint64(l)) + l
	}
	b := make([]byte, 0, size)
	b = lib0.AppendVarUint(b, uint64(len(u)))
	for _, e := range u {
		b = lib0.AppendVarUint(b, e.ClientID)
		b = lib0.AppendVarUint(b, e.Clock)
		s := e.State
		if len(s) == 0 {
			s = nullState
		}
		b = lib0.AppendVarString(b, s)
	}
	return b
}
