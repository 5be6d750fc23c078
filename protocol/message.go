// Package protocol encodes and decodes the y-protocols messages that a
// y-websocket provider and a Yjs server exchange over one WebSocket, one
// message per binary frame:
//
//	varUint(0 sync)            varUint(0 step 1) varUint8Array(state vector)
//	                           varUint(1 step 2) varUint8Array(update)
//	                           varUint(2 update) varUint8Array(update)
//	varUint(1 awareness)       varUint8Array(awareness update)
//	varUint(2 auth)            varUint(0 permission denied) varString(reason)
//	varUint(3 query awareness)
//
// (y-protocols' sync.js, awareness.js and auth.js, and y-websocket's
// provider.) Decode is for untrusted bytes: it checks the whole frame, returns
// an error for anything truncated, unknown or followed by extra bytes, never
// panics and never allocates: the payload it returns aliases the frame. The
// Append functions write exactly the bytes y-protocols writes, so one encoding
// of a broadcast can be handed to every peer.
//
// The payloads themselves (state vectors, updates, awareness updates) are
// opaque here: the crdt and presence packages validate them.
package protocol

import (
	"errors"
	"fmt"
	"github.com/quirehq/quire/internal/lib0"
	"unicode/utf8"
)

// Type is the message type, the first varUint of a message.
type Type uint8

// The message types of y-protocols as y-websocket numbers them.
const (
	TypeSync           Type = 0
	TypeAwareness      Type = 1
	TypeAuth           Type = 2
	TypeQueryAwareness Type = 3
)

// String names the type for logs and errors.
func (t Type) String() string {
	switch t {
	case TypeSync:
		return "sync"
	case TypeAwareness:
		return "awareness"
	case TypeAuth:
		return "auth"
	case TypeQueryAwareness:
		return "query-awareness"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// SyncType is the subtype of a sync message.
type SyncType uint8

// The sync subtypes of y-protocols' sync.js.
const (
	SyncStep1  SyncType = 0 // payload: the sender's encoded state vector
	SyncStep2  SyncType = 1 // payload: the update the receiver of step 1 lacks
	SyncUpdate SyncType = 2 // payload: an incremental update
)

// String names the subtype for logs and errors.
func (s SyncType) String() string {
	switch s {
	case SyncStep1:
		return "step1"
	case SyncStep2:
		return "step2"
	case SyncUpdate:
		return "update"
	}
	return fmt.Sprintf("sync(%d)", uint8(s))
}

// AuthPermissionDenied is the only auth subtype y-protocols defines.
const AuthPermissionDenied = 0

// ErrMalformed is wrapped by every error Decode returns: the frame is not a
// y-protocols message (truncated, unknown type, trailing bytes, ...). A server
// answers it by closing the connection with a protocol error.
var ErrMalformed = errors.New("malformed y-protocols message")

// Message is one decoded message. Payload aliases the decoded frame: keep the
// frame alive (and unmodified) for as long as the payload is used.
type Message struct {
	Type Type
	// Sync is the subtype when Type is TypeSync.
	Sync SyncType
	// Payload is the state vector (step 1), the update (step 2, update) or
	// the awareness update (awareness); nil for the other types.
	Payload []byte
	// Reason is the text of a permission-denied auth message.
	Reason string
}

// Decode parses one message from a whole binary frame. Every length is checked
// against the bytes present before it is used, and bytes left after the
// message are an error (y-protocols never sends them; a frame that has them
// is corrupt or hostile).
func Decode(frame []byte) (m Message, err error) {
	defer func() {
		if err != nil {
			m = Message{}
			err = fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}()
	t, n, err := lib0.ReadVarUint(frame)
	if err != nil {
		return m, fmt.Errorf("message type: %w", err)
	}
	rest := frame[n:]
	switch t {
	case uint64(TypeSync):
		m.Type = TypeSync
		st, n, err := lib0.ReadVarUint(rest)
		if err != nil {
			return m, fmt.Errorf("sync subtype: %w", err)
		}
		if st > uint64(SyncUpdate) {
			return m, fmt.Errorf("unknown sync subtype %d", st)
		}
		m.Sync = SyncType(st)
		rest = rest[n:]
		m.Payload, n, err = lib0.ReadVarBytes(rest)
		if err != nil {
			return m, fmt.Errorf("sync %s payload: %w", m.Sync, err)
		}
		rest = rest[n:]
	case uint64(TypeAwareness):
		m.Type = TypeAwareness
		m.Payload, n, err = lib0.ReadVarBytes(rest)
		if err != nil {
			return m, fmt.Errorf("awareness payload: %w", err)
		}
		rest = rest[n:]
	case uint64(TypeAuth):
		m.Type = TypeAuth
		at, n, err := lib0.ReadVarUint(rest)
		if err != nil {
			return m, fmt.Errorf("auth subtype: %w", err)
		}
		if at != AuthPermissionDenied {
			return m, fmt.Errorf("unknown auth subtype %d", at)
		}
		rest = rest[n:]
		reason, n, err := lib0.ReadVarBytes(rest)
		if err != nil {
			return m, fmt.Errorf("auth reason: %w", err)
		}
		if !utf8.Valid(reason) {
			return m, errors.New("auth reason is not UTF-8")
		}
		m.Reason = string(reason)
		rest = rest[n:]
	case uint64(TypeQueryAwareness):
		m.Type = TypeQueryAwareness
	default:
		return m, fmt.Errorf("unknown message type %d", t)
	}
	if len(rest) != 0 {
		return m, fmt.Errorf("%d bytes after the %s message", len(rest), m.Type)
	}
	return m, nil
}

// Append appends m's encoding to dst, as y-protocols writes it.
func Append(dst []byte, m Message) []byte {
	switch m.Type {
	case TypeSync:
		dst = append(dst, byte(TypeSync), byte(m.Sync))
		dst = lib0.AppendVarUint(dst, uint64(len(m.Payload)))
		return append(dst, m.Payload...)
	case TypeAwareness:
		return AppendAwareness(dst, m.Payload)
	case TypeAuth:
		return AppendPermissionDenied(dst, m.Reason)
	case TypeQueryAwareness:
		return AppendQueryAwareness(dst)
	}
	panic(fmt.Sprintf("protocol: Append of unknown message type %d", m.Type))
}

// Encode returns m's encoding in a buffer of exactly its size.
func Encode(m Message) []byte {
	return Append(make([]byte, 0, Len(m)), m)
}

// Len is the size of m's encoding.
func Len(m Message) int {
	switch m.Type {
	case TypeSync:
		return 2 + lib0.VarUintLen(uint64(len(m.Payload))) + len(m.Payload)
	case TypeAwareness:
		return 1 + lib0.VarUintLen(uint64(len(m.Payload))) + len(m.Payload)
	case TypeAuth:
		return 2 + lib0.VarUintLen(uint64(len(m.Reason))) + len(m.Reason)
	}
	return 1
}

// AppendSyncStep1 appends sync step 1 carrying an encoded state vector.
func AppendSyncStep1(dst, stateVector []byte) []byte {
	return Append(dst, Message{Type: TypeSync, Sync: SyncStep1, Payload: stateVector})
}

// AppendSyncStep2 appends sync step 2 carrying an update (the answer to step 1).
func AppendSyncStep2(dst, update []byte) []byte {
	return Append(dst, Message{Type: TypeSync, Sync: SyncStep2, Payload: update})
}

// AppendUpdate appends a sync update message.
func AppendUpdate(dst, update []byte) []byte {
	return Append(dst, Message{Type: TypeSync, Sync: SyncUpdate, Payload: update})
}

// AppendAwareness appends an awareness message carrying an encoded awareness update.
func AppendAwareness(dst, awarenessUpdate []byte) []byte {
	dst = append(dst, byte(TypeAwareness))
	dst = lib0.AppendVarUint(dst, uint64(len(awarenessUpdate)))
	return append(dst, awarenessUpdate...)
}

// AppendQueryAwareness appends a query-awareness message (the receiver answers
// with every awareness state it knows).
func AppendQueryAwareness(dst []byte) []byte {
	return append(dst, byte(TypeQueryAwareness))
}

// AppendPermissionDenied appends an auth message refusing access, with the
// reason the stock provider logs.
func AppendPermissionDenied(dst []byte, reason string) []byte {
	dst = append(dst, byte(TypeAuth), AuthPermissionDenied)
	dst = lib0.AppendVarUint(dst, uint64(len(reason)))
	return append(dst, reason...)
}

// EncodeSyncStep1 returns a sync step 1 message in a buffer of its exact size.
func EncodeSyncStep1(stateVector []byte) []byte {
	return Encode(Message{Type: TypeSync, Sync: SyncStep1, Payload: stateVector})
}

// EncodeSyncStep2 returns a sync step 2 message in a buffer of its exact size.
func EncodeSyncStep2(update []byte) []byte {
	return Encode(Message{Type: TypeSync, Sync: SyncStep2, Payload: update})
}

// EncodeUpdate returns a sync update message in a buffer of its exact size.
func EncodeUpdate(update []byte) []byte {
	return Encode(Message{Type: TypeSync, Sync: SyncUpdate, Payload: update})
}

// EncodeAwareness returns an awareness message in a buffer of its exact size.
func EncodeAwareness(awarenessUpdate []byte) []byte {
	return Encode(Message{Type: TypeAwareness, Payload: awarenessUpdate})
}
