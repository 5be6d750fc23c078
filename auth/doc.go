// Package auth decides who may open which Quire document, and how.
//
// Tokens are JWTs signed with HS256 and the server's secret (the library is
// github.com/golang-jwt/jwt/v5; nothing here parses JWTs by hand). A token's
// claims name documents, by exact ID and/or by ID prefix, the access it grants
// (read-write or read-only) and an expiry, which is required:
//
//	{"docs": ["notes"], "prefixes": ["team-a/"], "access": "read-only", "exp": 1767225600, "iat": 1767222000}
//
// An Authority mints tokens (quire token) and verifies them (quire serve).
// Verify refuses with an *Error whose Kind says why (no token, malformed, bad
// signature or algorithm, expired, not yet valid, another document) and maps
// to an HTTP status (401 or 403) and a WebSocket close code (4401 or 4403).
//
// An OriginPolicy protects browsers from cross-site WebSocket hijacking: a
// page on any site may open a WebSocket to any server, and the browser sends
// the user's cookies and network position (an intranet, localhost) along. The
// server must refuse origins it does not know, which is what the policy is
// for; by default only the server's own origin is allowed.
//
// A Gate runs every check that is due before a WebSocket upgrade or an HTTP
// API request (the penalty box and connection count of package limits, the
// origin, the token), cheapest first, and says either who the peer is and
// what it may do (an Admission) or how to refuse it (a *Refusal).
//
// The y-protocols auth message (type 2) is spoken here too: the server tells
// a peer "permission denied" with it (y-protocols' only auth message, which
// the stock provider logs), and a client may send its token in one instead of
// in the URL, where tokens end up in access logs and browser history.
package auth
