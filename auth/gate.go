package auth

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/quirehq/quire/limits"
)

// DefaultAuthTimeout is how long a connection that announced ?auth=message
// has to send its token before it is closed. The server opens no document
// and sends nothing until then.
const DefaultAuthTimeout = 10 * time.Second

// Gate runs the checks due before a peer is let in. Every field may be nil /
// empty, which turns that check off (Origins nil: same origin only). A Gate is
// safe for concurrent use once set up.
type Gate struct {
	// Tokens verifies tokens; nil means auth is off and every peer may read
	// and write every document.
	Tokens *Authority
	// Origins is the browser origin allow-list; nil allows the server's own
	// origin only.
	Origins *OriginPolicy
	// Conns limits the WebSocket connections per client address.
	Conns *limits.ConnLimiter
	// Penalty bans repeat offenders before the upgrade.
	Penalty *limits.PenaltyBox
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

// Refusal says how to refuse a request: an HTTP status with a one-line
// reason, and for 429 how long to wait. Err is the *Error or *limits.Error
// behind it (errors.Is / errors.As see through a Refusal).
type Refusal struct {
	Status     int
	Reason     string
	RetryAfter time.Duration
	// Client is the address the request came from (after trusted proxies), for logs.
	Client netip.Addr
	Err    error
}

// Error is the status and the detail, for logs.
func (r *Refusal) Error() string {
	return fmt.Sprintf("refused with %d: %v", r.Status, r.Err)
}

// Unwrap returns the cause.
func (r *Refusal) Unwrap() error { return r.Err }

// WriteHTTP writes the refusal as a plain-text response: the status, the
// reason and a newline, Retry-After on a wait, and on 401 the
// WWW-Authenticate challenge of RFC 6750.
func (r *Refusal) WriteHTTP(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((r.RetryAfter+time.Second-1)/time.Second)))
	}
	if r.Status == http.StatusUnauthorized {
		if errors.Is(r.Err, ErrNoToken) {
			h.Set("WWW-Authenticate", `Bearer realm="quire"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="quire", error="invalid_token"`)
		}
	}
	w.WriteHeader(r.Status)
	fmt.Fprintln(w, r.Reason)
}

// Admission is a peer let in for one document. It belongs to the
// connection's reader goroutine and is not safe for concurrent use.
type Admission struct {
	// DocID is the document the peer was admitted for.
	DocID string
	// Client is the peer's address and Key its key in the per-address limits.
	Client netip.Addr
	Key    limits.Key
	// Access is what the peer may do; NoAccess while Pending.
	Access Access
	// Grant is the verified token; nil when auth is off or while Pending.
	Grant *Grant
	// Pending is set when the peer announced ?auth=message: its first
	// message must be an auth message with a token (Authenticate), within
	// DefaultAuthTimeout, and the document must not be opened before.
	Pending bool

	gate    *Gate
	release func()
}

// Release gives back the peer's connection slot; call it (once or more) when
// the connection ends.
func (a *Admission) Release() {
	if a.release != nil {
		a.release()
	}
}

// Authenticate verifies a token the peer sent in an auth message
// (ParseTokenMessage) for the admitted document and sets Access and Grant
// from it; Pending becomes false. A peer that is already authenticated may
// send a fresh token, e.g. before its first one expires; the new token's
// access replaces the old. On error (an *Error) the caller closes the
// connection with its CloseCode and Reason and calls Offence; Access is then
// NoAccess.
func (a *Admission) Authenticate(token string) error {
	if a.gate == nil || a.gate.Tokens == nil {
		// Auth is off: a token proves nothing and is not needed.
		a.Pending = false
		return nil
	}
	g, err := a.gate.Tokens.Parse(token)
	if err == nil {
		a.Access, err = g.AccessTo(a.DocID)
	}
	if err != nil {
		a.Access, a.Grant = NoAccess, nil
		return err
	}
	a.Grant, a.Pending = g, false
	return nil
}

// Deadline returns when the peer's token stops being valid (its exp, plus the
// Authority's leeway), or the zero time when nothing expires (auth off). A
// server closes the connection then, unless a fresh token came first: an
// open connection must not outlive the right to hold it.
func (a *Admission) Deadline() time.Time {
	if a.Grant == nil || a.Grant.Expires.IsZero() || a.gate == nil || a.gate.Tokens == nil {
		return time.Time{}
	}
	return a.Grant.Expires.Add(a.gate.Tokens.leeway)
}

// CanWrite reports whether the peer's updates may change the document.
func (a *Admission) CanWrite() bool { return !a.Pending && a.Access.CanWrite() }

// Offence records in the penalty box that this peer was cut off for breaking
// a rule (rate, size, a write it may not make, a bad token in an auth
// message), and returns the ban it earned.
func (a *Admission) Offence() time.Duration {
	if a.gate == nil {
		return 0
	}
	return a.gate.Penalty.Strike(a.Key)
}

// Admit runs every check due before a WebSocket upgrade for docID, cheapest
// first: the penalty box, the Origin, the token, the connection count. It
// returns the Admission of the peer, or a *Refusal to write with WriteHTTP
// instead of upgrading. Refusals for a missing or bad token count as offences
// in the penalty box (an expired one does not, see isOffence); a penalty-box
// refusal does not (waiting is not an offence), nor does a foreign Origin (a
// hostile page could otherwise get its visitors' addresses banned), nor a full
// connection count.
//
// On success the caller must call Release when the connection ends. docID
// must already be valid (the server refuses bad IDs with 400 first).
func (g *Gate) Admit(r *http.Request, docID string) (*Admission, error) {
	client, key, ref := g.precheck(r)
	if ref != nil {
		return nil, ref
	}
	a := &Admission{DocID: docID, Client: client, Key: key, gate: g}
	if g.Tokens == nil {
		a.Access = ReadWrite
	} else if tok, ok := TokenFromRequest(r); ok {
		grant, err := g.Tokens.Parse(tok)
		if err == nil {
			a.Access, err = grant.AccessTo(docID)
		}
		if err != nil {
			return nil, g.refuse(client, key, err, isOffence(err))
		}
		a.Grant = grant
	} else if wantsDeferred(r) {
		a.Pending = true
	} else {
		return nil, g.refuse(client, key, ErrNoToken, true)
	}
	if g.Conns != nil {
		release, err := g.Conns.Acquire(key)
		if err != nil {
			return nil, g.refuse(client, key, err, false)
		}
		a.release = release
	}
	return a, nil
}

// Authorize runs the checks for an HTTP API request: the penalty box, the
// Origin (when the request has one) and the token. With docID set, the token
// must cover it, and with write set grant read-write access. With docID
// empty, the request concerns no single document: reads get the grant to
// filter with (GET /api/docs lists only what Grant.Covers), writes (POST
// /api/docs creates a document) need a read-write grant covering every
// document. With auth off the grant covers everything.
func (g *Gate) Authorize(r *http.Request, docID string, write bool) (*Grant, error) {
	client, key, ref := g.precheck(r)
	if ref != nil {
		return nil, ref
	}
	if g.Tokens == nil {
		return &Grant{Prefixes: []string{""}, Access: ReadWrite}, nil
	}
	tok, _ := TokenFromRequest(r)
	grant, err := g.Tokens.Parse(tok)
	if err != nil {
		return nil, g.refuse(client, key, err, isOffence(err))
	}
	switch {
	case docID != "":
		acc, err := grant.AccessTo(docID)
		if err != nil {
			return nil, g.refuse(client, key, err, isOffence(err))
		}
		if write && !acc.CanWrite() {
			return nil, g.refuse(client, key, ErrReadOnly, true)
		}
	case write:
		if !grant.CoversAll() {
			return nil, g.refuse(client, key, &Error{Kind: KindWrongDoc, Err: errors.New("this needs a token for every document (prefix \"\")")}, true)
		}
		if !grant.Access.CanWrite() {
			return nil, g.refuse(client, key, ErrReadOnly, true)
		}
	}
	return grant, nil
}

// isOffence reports whether a refusal for err counts in the penalty box. A
// token that was valid once, or will be (an expired one, or one not valid yet
// for a skewed clock), is not an attack: an editor page that outlived its
// token makes the stock provider retry it every few seconds, and counting
// those would ban everyone behind the same address.
func isOffence(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Kind != KindExpired && ae.Kind != KindNotYetValid
	}
	return true
}

// precheck finds the client and runs the checks that need no token.
func (g *Gate) precheck(r *http.Request) (netip.Addr, limits.Key, *Refusal) {
	client, err := limits.ClientAddr(r, g.TrustedProxies)
	if err != nil {
		return client, limits.Key{}, &Refusal{Status: http.StatusBadRequest, Reason: "unreadable client address", Err: err}
	}
	key := limits.KeyOf(client)
	if err := g.Penalty.Check(key); err != nil {
		return client, key, g.refuse(client, key, err, false)
	}
	if err := g.Origins.CheckRequest(r); err != nil {
		return client, key, g.refuse(client, key, err, false)
	}
	return client, key, nil
}

// refuse builds the Refusal for err and, if offence, strikes the client.
func (g *Gate) refuse(client netip.Addr, key limits.Key, err error, offence bool) *Refusal {
	if offence {
		g.Penalty.Strike(key)
	}
	ref := &Refusal{Client: client, Err: err, Status: http.StatusForbidden, Reason: "forbidden"}
	var ae *Error
	var le *limits.Error
	switch {
	case errors.As(err, &ae):
		ref.Status, ref.Reason = ae.HTTPStatus(), ae.Reason()
	case errors.As(err, &le):
		ref.Status, ref.Reason, ref.RetryAfter = le.HTTPStatus(), le.Error(), le.RetryAfter
	}
	return ref
}
