// Package doc holds Quire's rooms: one per open document, owning its CRDT
// document and its awareness states, and the Registry that opens rooms on
// demand and unloads idle ones.
//
// A room is raft's node.go to the crdt and presence packages' RawNode: every
// change to its document goes through its inbox and is handled by the one
// goroutine that runs it, in order. The room drains its inbox, integrates all
// pending updates in one crdt transaction, commits the merged change with one
// persist Append and only then sends it, once encoded, to every peer
// (durability: no peer ever receives an update a crash could lose). What
// cannot integrate yet (structs waiting for others, which no changed update
// carries) is stored beside it, so an accepted update is never only in memory.
// The goroutine runs only while there is work: an idle room costs no stack.
//
// Peers are an interface the transport implements (server/ for WebSockets);
// this package never speaks HTTP. Handles give Go code the same document
// without a connection: read its text, apply an update.
package doc

// ValidID reports whether id is a valid document ID: 1 to 128 characters of
// [A-Za-z0-9._-] (DESIGN.md), safe in a URL path segment, a file name and a
// log line. (A loop rather than a regexp: `{1,128}` compiles to 128 copies.)
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// CloseCode is the WebSocket close code (RFC 6455 section 7.4) a room asks a
// peer to close with.
type CloseCode int

// The close codes rooms use.
const (
	// CloseGoingAway: the server is shutting down; the client reconnects.
	CloseGoingAway CloseCode = 1001
	// CloseInvalidData: the peer sent an update, state vector or awareness
	// update that does not decode; nothing of it was applied.
	CloseInvalidData CloseCode = 1007
	// ClosePolicyViolation: the peer broke a rule that keeps a room's
	// memory bounded (more awareness clients than one connection may speak
	// for).
	ClosePolicyViolation CloseCode = 1008
	// CloseInternalError: the document could not be loaded or stored; the
	// room is discarded without writing anything, the client reconnects and
	// resyncs with a fresh room.
	CloseInternalError CloseCode = 1011
	// CloseTryAgainLater: the peer did not read fast enough and its outbox
	// overflowed; it resyncs on reconnect.
	CloseTryAgainLater CloseCode = 1013
)

// Peer is one connection to a room, implemented by the transport. The room
// calls it from its goroutine, so neither method may block.
type Peer interface {
	// Send queues msg, a whole y-protocols message, for the peer. msg is
	// shared by every peer it is broadcast to and must not be modified. Send
	// returns false when the peer's outbox is full: the room then drops the
	// peer and closes it with CloseTryAgainLater.
	Send(msg []byte) bool
	// Close closes the connection with a WebSocket close code and a reason
	// (at most 123 bytes are sent). It may be called more than once.
	Close(code CloseCode, reason string)
}

// maxReasonLen is the longest close reason a WebSocket close frame carries
// (125 bytes of payload minus the 2-byte code).
const maxReasonLen = 123

// closeReason trims s to fit in a close frame without splitting a UTF-8
// sequence.
func closeReason(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	cut := maxReasonLen
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut]
}
