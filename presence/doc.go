// Package presence implements the y-protocols awareness protocol for one
// document: who is connected and their ephemeral state (name, colour,
// cursor), as client id -> (clock, JSON state).
//
// It is pure protocol logic in the manner of raft's RawNode: no goroutines, no
// clocks (the caller passes now), no sockets. The room goroutine owns a Set,
// feeds it the awareness updates its peers send, and broadcasts what Apply,
// RemoveOwner and Expire return.
//
// The rules are those of y-protocols' awareness.js: a state replaces the
// known one only when its clock is newer, or when it is null with an equal
// clock (any peer may declare another offline); a removed client keeps its
// clock so that a delayed older update cannot bring it back; a state not
// renewed for Timeout is dropped.
package presence
