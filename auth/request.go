package auth

import (
	"net/http"
	"net/url"
	"strings"
)

// TokenParam is the query parameter that carries a token: what the
// y-websocket provider sends for `params: {token}`.
const TokenParam = "token"

// DeferredParam and DeferredValue (?auth=message) announce that the client
// will send its token in the first message, a y-protocols auth message,
// instead of in the URL. Only clients that do so set it; a stock client
// without a token is refused before the upgrade as usual.
const (
	DeferredParam = "auth"
	DeferredValue = "message"
)

// TokenFromRequest returns the token of r: from the Authorization header
// ("Bearer TOKEN", scheme case-insensitive) if it has one, else from the
// query parameter token. Browsers cannot set headers on a WebSocket
// handshake, hence the query parameter; the header wins because it stays out
// of URLs and logs.
func TokenFromRequest(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			if tok = strings.TrimSpace(tok); tok != "" {
				return tok, true
			}
		}
	}
	if tok := r.URL.Query().Get(TokenParam); tok != "" {
		return tok, true
	}
	return "", false
}

// wantsDeferred reports whether r announced a token in an auth message.
func wantsDeferred(r *http.Request) bool {
	return r.URL.Query().Get(DeferredParam) == DeferredValue
}

// RedactURI returns a request URI with the value of every token parameter
// replaced by "REDACTED", for access logs: a token in a log is a key left
// under the doormat for as long as the token lives.
func RedactURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok {
		return uri
	}
	parts := strings.Split(query, "&")
	for i, part := range parts {
		k, _, _ := strings.Cut(part, "=")
		if name, err := url.QueryUnescape(k); k == TokenParam || (err == nil && name == TokenParam) {
			parts[i] = k + "=REDACTED"
		}
	}
	return path + "?" + strings.Join(parts, "&")
}
