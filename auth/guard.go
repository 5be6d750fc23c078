package auth

import (
	"time"

	"github.com/quirehq/quire/limits"
)

// Inbound is what a message from a peer is, as far as access control cares;
// the server maps y-protocols message types onto it.
type Inbound uint8

// The kinds of inbound messages.
const (
	// InSyncStep1: the peer asks for what it lacks. Reading.
	InSyncStep1 Inbound = iota + 1
	// InSyncStep2: the peer's answer to the server's step 1; may carry writes.
	InSyncStep2
	// InUpdate: an incremental update (sync message 2). A write.
	InUpdate
	// InAwareness: presence (cursors, names). Read-only peers may show theirs.
	InAwareness
	// InQueryAwareness: the peer asks for everyone's presence. Reading.
	InQueryAwareness
	// InAuth: an auth message carrying a token.
	InAuth
)

// Verdict is what to do with one inbound message.
type Verdict struct {
	// Apply: hand the message to the room.
	Apply bool
	// Reply, when not nil, is a whole message to write to the peer (a
	// y-protocols permission-denied message for a refused write).
	Reply []byte
	// Authenticated is set when an auth message admitted a Pending peer:
	// now open the document and start the sync (send step 1 and awareness).
	Authenticated bool
	// CloseCode, when not 0, means: close the connection with CloseCode and
	// CloseReason, and stop reading. The offence is already recorded in the
	// penalty box; Ban is what it earned (for the log line).
	CloseCode   int
	CloseReason string
	Ban         time.Duration
}

// Guard applies the per-connection rules to every message a peer sends: the
// rate limit, authentication by auth message, and read-only access. It
// belongs to the connection's reader goroutine and is not safe for
// concurrent use. The message size limit is the WebSocket read limit
// (limits.Config.MaxMessageBytes) and the document size limit is the room's
// (limits.Config.CheckDocSize); neither is seen here.
type Guard struct {
	adm  *Admission
	rate *limits.RateLimiter
}

// NewGuard returns the guard of a connection admitted as adm, with the
// message rate of lim, reading time from now (nil: time.Now).
func NewGuard(adm *Admission, lim limits.Config, now func() time.Time) *Guard {
	return &Guard{adm: adm, rate: lim.NewRateLimiter(now)}
}

// Admission returns the admission the guard enforces.
func (g *Guard) Admission() *Admission { return g.adm }

// deniedReason is what a read-only peer is told when its update is refused.
var deniedReason = ErrReadOnly.Reason()

// Inbound decides on one message of the given kind. For InAuth, token is the
// token it carries (protocol.Message.Reason, or ParseTokenMessage); it is
// ignored otherwise.
//
// Every message counts against the rate limit, refused ones included: a
// read-only peer that keeps writing is cut off like a flooder. A Pending peer
// may send nothing but its auth message. A read-only peer's updates are
// refused with a permission-denied reply and the connection stays open (it
// keeps receiving); its sync step 2 is dropped without a reply, since the
// stock client sends one on every connect whether or not it has edits.
func (g *Guard) Inbound(kind Inbound, token string) Verdict {
	if err := g.rate.Allow(); err != nil {
		le, _ := limits.AsError(err)
		return g.cut(le.CloseCode(), le.Error())
	}
	if kind == InAuth {
		wasPending := g.adm.Pending
		if err := g.adm.Authenticate(token); err != nil {
			ae := err.(*Error)
			if !isOffence(ae) {
				return Verdict{CloseCode: ae.CloseCode(), CloseReason: ae.Reason()}
			}
			return g.cut(ae.CloseCode(), ae.Reason())
		}
		return Verdict{Authenticated: wasPending}
	}
	if g.adm.Pending {
		return g.cut(CloseUnauthorized, "authentication required: send an auth message with a token first")
	}
	switch kind {
	case InSyncStep2:
		return Verdict{Apply: g.adm.CanWrite()}
	case InUpdate:
		if !g.adm.CanWrite() {
			return Verdict{Reply: AppendPermissionDenied(nil, deniedReason)}
		}
		return Verdict{Apply: true}
	case InSyncStep1, InAwareness, InQueryAwareness:
		return Verdict{Apply: true}
	}
	// An unknown kind is the server's mistake, not the peer's: refuse
	// without punishing.
	return Verdict{CloseCode: 1011, CloseReason: "internal error: unknown message kind"}
}

// cut records the offence and returns the verdict that closes the connection.
func (g *Guard) cut(code int, reason string) Verdict {
	return Verdict{CloseCode: code, CloseReason: reason, Ban: g.adm.Offence()}
}
