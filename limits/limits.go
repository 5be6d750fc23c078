// Package limits holds the abuse limits of a Quire server: how many
// connections one client address may hold, how fast one connection may send,
// how large a message and a document may grow, and a penalty box that makes
// repeat offenders wait before they are let in again.
//
// Everything here is passive: no goroutines, no timers. Time is read through
// an injected func() time.Time (nil means time.Now), so every decision is a
// pure function of the calls made and the times given, and tests drive it
// with a fake clock.
//
// The stock y-websocket client reconnects right after any close (after 100 to
// 2,500 ms, less when its last connection synced). A server that accepts the
// upgrade, syncs the whole document and then cuts the peer off again pays for
// a full sync every few hundred milliseconds. The penalty box turns that into
// a refusal before the upgrade (HTTP 429 with Retry-After), for a period that
// doubles with every further offence and is forgiven slowly.
package limits

import (
	"errors"
	"fmt"
	"time"
)

// Config is the set of limits a server enforces. The zero value of a field
// means "no limit" (except Penalty, whose zero value disables the penalty box);
// DefaultConfig gives the values Quire ships with.
type Config struct {
	// MaxMessageBytes is the largest WebSocket message a peer may send; pass
	// it to the connection's SetReadLimit. A larger message closes the
	// connection with 1009. A first sync of a large document is one message,
	// so this must stay well above the largest document that is uploaded at once.
	MaxMessageBytes int64

	// UpdatesPerSecond is the sustained rate of messages one connection may
	// send (sync and awareness messages alike: a flood of either costs the
	// room work), and UpdateBurst how many it may send at once. Exceeding it
	// closes the connection.
	UpdatesPerSecond float64
	UpdateBurst      int

	// MaxConnsPerIP is how many WebSocket connections one client address (an
	// IPv4 address, or an IPv6 /64) may hold at once.
	MaxConnsPerIP int

	// MaxDocBytes is the size past which a document accepts no more updates,
	// measured as the bytes its store holds for it (snapshot plus log).
	MaxDocBytes int64

	// LimitLoopback applies the per-address limits (MaxConnsPerIP and the
	// penalty box) to loopback peers too. Off by default: a loopback peer is
	// this machine, i.e. the operator's own tools or a reverse proxy in front
	// of Quire, and limiting the proxy's address would limit every user behind
	// it at once. Per-connection limits (message size, rate) always apply.
	LimitLoopback bool

	// Penalty configures the penalty box.
	Penalty PenaltyConfig
}

// Defaults Quire ships with; the reasons are in DefaultConfig's comment.
const (
	DefaultMaxMessageBytes  = 8 << 20
	DefaultUpdatesPerSecond = 200
	DefaultUpdateBurst      = 400
	DefaultMaxConnsPerIP    = 64
	DefaultMaxDocBytes      = 32 << 20
)

// DefaultConfig returns the limits Quire ships with. They are generous for
// people and tight for scripts: a fast typist sends about 20 updates and as
// many awareness messages per second (the load benchmark's stress setting 80
// keystrokes/s), a paste is one message, a reconnect three; a flooding script
// sends thousands per second and is cut off after the burst. 8 MiB per
// message bounds what one peer can make the server buffer; 64 connections per
// address leave room for an office behind one NAT with several tabs each.
func DefaultConfig() Config {
	return Config{
		MaxMessageBytes:  DefaultMaxMessageBytes,
		UpdatesPerSecond: DefaultUpdatesPerSecond,
		UpdateBurst:      DefaultUpdateBurst,
		MaxConnsPerIP:    DefaultMaxConnsPerIP,
		MaxDocBytes:      DefaultMaxDocBytes,
		Penalty:          DefaultPenaltyConfig(),
	}
}

// Validate reports a configuration that cannot work, e.g. a negative limit or
// a rate without a burst.
func (c Config) Validate() error {
	switch {
	case c.MaxMessageBytes < 0:
		return fmt.Errorf("limits: max message bytes %d is negative", c.MaxMessageBytes)
	case c.UpdatesPerSecond < 0:
		return fmt.Errorf("limits: updates per second %g is negative", c.UpdatesPerSecond)
	case c.UpdatesPerSecond > 0 && c.UpdateBurst < 1:
		return fmt.Errorf("limits: update burst %d must be at least 1 when a rate is set", c.UpdateBurst)
	case c.MaxConnsPerIP < 0:
		return fmt.Errorf("limits: max connections per IP %d is negative", c.MaxConnsPerIP)
	case c.MaxDocBytes < 0:
		return fmt.Errorf("limits: max document bytes %d is negative", c.MaxDocBytes)
	}
	if err := c.Penalty.Validate(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	return nil
}

// CheckDocSize says whether a document that holds current bytes may take an
// update of n more. It returns nil or an *Error of KindDocTooLarge. The room
// calls it before integrating, so a refused update leaves the document as it was.
func (c Config) CheckDocSize(current, n int64) error {
	if c.MaxDocBytes > 0 && current+n > c.MaxDocBytes {
		return &Error{Kind: KindDocTooLarge, Limit: float64(c.MaxDocBytes)}
	}
	return nil
}

// Kind says which limit was hit.
type Kind uint8

// The limits a peer can hit.
const (
	// KindTooManyConns: the client address holds MaxConnsPerIP connections.
	KindTooManyConns Kind = iota + 1
	// KindPenalized: the client address is in the penalty box.
	KindPenalized
	// KindRateLimited: the connection sent faster than UpdatesPerSecond allows.
	KindRateLimited
	// KindMessageTooBig: one message was larger than MaxMessageBytes.
	KindMessageTooBig
	// KindDocTooLarge: the document has reached MaxDocBytes.
	KindDocTooLarge
)

// String names the kind for logs and metrics labels.
func (k Kind) String() string {
	switch k {
	case KindTooManyConns:
		return "too_many_conns"
	case KindPenalized:
		return "penalized"
	case KindRateLimited:
		return "rate_limited"
	case KindMessageTooBig:
		return "message_too_big"
	case KindDocTooLarge:
		return "doc_too_large"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// WebSocket close codes for the limits hit on an open connection. The 44xx
// codes are private-use codes (RFC 6455 section 7.4.2) chosen because the
// stock y-websocket client (3.x, defaultShouldReconnect) does not reconnect
// after a close code in 4400-4499: the peer that hit a limit stops instead of
// coming back at once. Older or custom clients do come back; the penalty box
// answers them with 429 before the upgrade.
const (
	// CloseMessageTooBig is RFC 6455's 1009; coder/websocket sends it itself
	// when a message exceeds the read limit.
	CloseMessageTooBig = 1009
	// CloseDocTooLarge (413 as in HTTP's Content Too Large) closes a peer
	// whose update would take the document past MaxDocBytes.
	CloseDocTooLarge = 4413
	// CloseRateLimited (429 as in HTTP's Too Many Requests) closes a peer that
	// sent faster than its rate limit.
	CloseRateLimited = 4429
)

// Error is a limit a peer hit. Its Error text is short enough to be a
// WebSocket close reason (at most 123 bytes) and says which limit it was.
type Error struct {
	Kind Kind
	// Limit is the value of the limit that was hit (connections, bytes, or
	// messages per second); 0 for KindPenalized.
	Limit float64
	// RetryAfter is how long the client should wait (KindPenalized and
	// KindTooManyConns), rounded up to a second for the Retry-After header.
	RetryAfter time.Duration
}

// Error returns the reason, fit for a close frame or a one-line HTTP body.
func (e *Error) Error() string {
	switch e.Kind {
	case KindTooManyConns:
		return fmt.Sprintf("too many connections from your address (limit %d)", int64(e.Limit))
	case KindPenalized:
		return fmt.Sprintf("too many refused or cut-off connections: retry in %d s", e.RetryAfterSeconds())
	case KindRateLimited:
		return fmt.Sprintf("rate limit exceeded: more than %g messages per second", e.Limit)
	case KindMessageTooBig:
		return fmt.Sprintf("message too big: the limit is %d bytes", int64(e.Limit))
	case KindDocTooLarge:
		return fmt.Sprintf("document is full: its size limit is %d bytes", int64(e.Limit))
	}
	return "limit exceeded"
}

// Is makes errors.Is(err, &Error{Kind: k}) match any limit error of kind k.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, as the
// Retry-After header wants it; 0 when there is nothing to wait for.
func (e *Error) RetryAfterSeconds() int {
	if e.RetryAfter <= 0 {
		return 0
	}
	return int((e.RetryAfter + time.Second - 1) / time.Second)
}

// HTTPStatus is the status for a request refused by this limit:
// 429 Too Many Requests for address limits, 413 Content Too Large for sizes.
func (e *Error) HTTPStatus() int {
	switch e.Kind {
	case KindMessageTooBig, KindDocTooLarge:
		return 413
	}
	return 429
}

// CloseCode is the WebSocket close code for a connection cut off by this limit.
func (e *Error) CloseCode() int {
	switch e.Kind {
	case KindMessageTooBig:
		return CloseMessageTooBig
	case KindDocTooLarge:
		return CloseDocTooLarge
	}
	return CloseRateLimited
}

// AsError returns err as an *Error if it is one (possibly wrapped).
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// nowFunc returns now, or time.Now when now is nil.
func nowFunc(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
