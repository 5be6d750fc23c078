package auth

import "fmt"

// Kind says why a peer was refused.
type Kind uint8

// The reasons for a refusal.
const (
	// KindNoToken: auth is on and the request carries no token.
	KindNoToken Kind = iota + 1
	// KindMalformed: the token is not a JWT, or lacks a claim Quire needs
	// (exp, a known access), or is too long.
	KindMalformed
	// KindBadSignature: the signature does not match, or the token is not
	// signed with HS256 (this includes "none" and every other algorithm).
	KindBadSignature
	// KindExpired: the token's exp has passed.
	KindExpired
	// KindNotYetValid: the token's nbf is still to come.
	KindNotYetValid
	// KindWrongDoc: the token is valid but names other documents.
	KindWrongDoc
	// KindReadOnly: a read-only token was used for a write over HTTP.
	// (Over WebSocket, a read-only peer's updates are refused with a
	// permission-denied message and the connection stays open.)
	KindReadOnly
	// KindForeignOrigin: a browser page from an origin that is not allowed.
	KindForeignOrigin
)

// String names the kind for logs and metrics labels.
func (k Kind) String() string {
	switch k {
	case KindNoToken:
		return "no_token"
	case KindMalformed:
		return "malformed"
	case KindBadSignature:
		return "bad_signature"
	case KindExpired:
		return "expired"
	case KindNotYetValid:
		return "not_yet_valid"
	case KindWrongDoc:
		return "wrong_doc"
	case KindReadOnly:
		return "read_only"
	case KindForeignOrigin:
		return "foreign_origin"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// reason is the short text a peer is told: no library detail, nothing about
// the secret, at most a WebSocket close reason's 123 bytes.
func (k Kind) reason() string {
	switch k {
	case KindNoToken:
		return "authentication required: no token"
	case KindMalformed:
		return "invalid token: malformed"
	case KindBadSignature:
		return "invalid token: bad signature or algorithm"
	case KindExpired:
		return "invalid token: expired"
	case KindNotYetValid:
		return "invalid token: not valid yet"
	case KindWrongDoc:
		return "token does not grant access to this document"
	case KindReadOnly:
		return "read-only access: writes are refused"
	case KindForeignOrigin:
		return "origin not allowed"
	}
	return "access denied"
}

// HTTPStatus is the status for a request refused for this reason: 401
// Unauthorized when the caller has not proved who it is (no token, or one
// that does not verify), 403 Forbidden when it has but may not do this.
func (k Kind) HTTPStatus() int {
	switch k {
	case KindWrongDoc, KindReadOnly, KindForeignOrigin:
		return 403
	}
	return 401
}

// WebSocket close codes for a connection refused after the upgrade (a token
// sent in an auth message). They are private-use codes (RFC 6455 section
// 7.4.2) mirroring the HTTP statuses; the stock y-websocket client (3.x) does
// not reconnect after a close code in 4400-4499, which is what a peer whose
// credentials are wrong should do.
const (
	CloseUnauthorized = 4401
	CloseForbidden    = 4403
)

// CloseCode is the WebSocket close code for a connection refused for this reason.
func (k Kind) CloseCode() int {
	if k.HTTPStatus() == 403 {
		return CloseForbidden
	}
	return CloseUnauthorized
}

// Error is a refusal by this package. Match it with errors.Is against the
// Err* values (errors.Is(err, auth.ErrExpired)) or take it apart with
// errors.As to read its Kind.
type Error struct {
	Kind Kind
	// Err is the detail (usually from the JWT library), for logs only; it
	// may be nil.
	Err error
}

// Error is the reason followed by the detail, for logs.
func (e *Error) Error() string {
	if e.Err == nil {
		return "auth: " + e.Kind.reason()
	}
	return "auth: " + e.Kind.reason() + ": " + e.Err.Error()
}

// Reason is what the peer is told: short, without detail, fit for an HTTP
// body or a WebSocket close frame.
func (e *Error) Reason() string { return e.Kind.reason() }

// Unwrap returns the detail.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is match any *Error of the same Kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind
}

// HTTPStatus is Kind.HTTPStatus.
func (e *Error) HTTPStatus() int { return e.Kind.HTTPStatus() }

// CloseCode is Kind.CloseCode.
func (e *Error) CloseCode() int { return e.Kind.CloseCode() }

// Values to match with errors.Is, one per Kind.
var (
	ErrNoToken       = &Error{Kind: KindNoToken}
	ErrMalformed     = &Error{Kind: KindMalformed}
	ErrBadSignature  = &Error{Kind: KindBadSignature}
	ErrExpired       = &Error{Kind: KindExpired}
	ErrNotYetValid   = &Error{Kind: KindNotYetValid}
	ErrWrongDoc      = &Error{Kind: KindWrongDoc}
	ErrReadOnly      = &Error{Kind: KindReadOnly}
	ErrForeignOrigin = &Error{Kind: KindForeignOrigin}
)
