package auth

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// OriginPolicy decides which browser origins may open WebSockets and call the
// HTTP API. The zero value and a nil *OriginPolicy allow the server's own
// origin only.
//
// Why it matters: browsers do not apply the same-origin policy to WebSockets.
// Any page the user visits can open ws://your-server/ws/doc, and the browser
// sends along the user's cookies and reaches hosts only the user can reach
// (localhost, an intranet). Without an Origin check that page reads and writes
// the user's documents: cross-site WebSocket hijacking, a form of CSRF.
//
// Allowed origins, as given to --allowed-origin:
//
//	https://app.example.com      that origin exactly (scheme, host, port)
//	https://*.example.com        any subdomain of example.com over https (not example.com itself)
//	app.example.com:8443         that host and port over http or https
//	*.example.com                any subdomain over http or https, default ports
//	*                            every origin: turns the protection off
//
// A pattern without a port matches the scheme's default port only. "*" is
// for servers whose every document is protected by tokens that pages cannot
// obtain for another user; even then it lets any site use a token it holds
// from the user's browser and network position. Prefer listing the origins.
//
// Requests without an Origin header are allowed: browsers always send it on a
// WebSocket handshake, so its absence means a non-browser client (a Node or
// Go program), which is not the victim of this attack.
type OriginPolicy struct {
	any      bool
	patterns []originPattern
}

type originPattern struct {
	scheme   string // "" for http or https
	host     string // lower case; for a wildcard, the suffix after "*."
	wildcard bool
	port     string // "" for the default port of the origin's scheme
}

// NewOriginPolicy parses --allowed-origin values. An empty list gives the
// default policy (same origin only).
func NewOriginPolicy(allowed []string) (*OriginPolicy, error) {
	p := &OriginPolicy{}
	for _, s := range allowed {
		s = strings.TrimSpace(s)
		if s == "*" {
			p.any = true
			continue
		}
		pat, err := parseOriginPattern(s)
		if err != nil {
			return nil, fmt.Errorf("allowed origin %q: %w", s, err)
		}
		p.patterns = append(p.patterns, pat)
	}
	return p, nil
}

func parseOriginPattern(s string) (originPattern, error) {
	var pat originPattern
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		pat.scheme = strings.ToLower(s[:i])
		rest = s[i+3:]
		if pat.scheme == "" {
			return pat, errors.New("empty scheme")
		}
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.ContainsAny(rest, "/?#@ ") {
		return pat, errors.New("an origin is scheme://host[:port], without path, query or user")
	}
	if strings.HasPrefix(rest, "*.") {
		pat.wildcard = true
		rest = rest[2:]
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return pat, err
	}
	if host == "" || strings.Contains(host, "*") {
		return pat, errors.New(`want a host, "*.domain" or "*"`)
	}
	pat.host, pat.port = strings.ToLower(host), port
	return pat, nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port".
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return s[1 : len(s)-1], "", nil
	}
	if strings.Count(s, ":") == 0 {
		return s, "", nil
	}
	host, port, err = net.SplitHostPort(s)
	if err != nil {
		return "", "", fmt.Errorf("bad host:port %q: %w", s, err)
	}
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return "", "", fmt.Errorf("bad port in %q", s)
	}
	return host, port, nil
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http", "ws":
		return "80"
	case "https", "wss":
		return "443"
	}
	return ""
}

// AllowsAny reports whether the policy allows every origin ("*"), which the
// server should log as a warning at startup.
func (p *OriginPolicy) AllowsAny() bool { return p != nil && p.any }

// CheckRequest is Check with the request's Origin and Host headers.
func (p *OriginPolicy) CheckRequest(r *http.Request) error {
	return p.Check(r.Header.Get("Origin"), r.Host)
}

// Check decides on a request with Origin header origin ("" when absent)
// sent to Host header host. It returns nil or an *Error of KindForeignOrigin.
func (p *OriginPolicy) Check(origin, host string) error {
	if origin == "" || p.AllowsAny() {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		// Includes "null", which sandboxed frames and file: pages send.
		return &Error{Kind: KindForeignOrigin, Err: fmt.Errorf("unreadable Origin %q", origin)}
	}
	scheme := strings.ToLower(u.Scheme)
	oHost := strings.ToLower(u.Hostname())
	oPort := u.Port()
	if oPort == "" {
		oPort = defaultPort(scheme)
	}
	if sameHost(oHost, oPort, host) {
		return nil
	}
	if p != nil {
		for _, pat := range p.patterns {
			if pat.matches(scheme, oHost, oPort) {
				return nil
			}
		}
	}
	return &Error{Kind: KindForeignOrigin, Err: fmt.Errorf("Origin %q is not allowed for Host %q", origin, host)}
}

// sameHost compares an origin's host and port with the request's Host
// header. The Host header does not say the scheme (TLS may end at a proxy),
// so it is compared by host and port only, a missing port standing for 80 or
// 443; that is what coder/websocket does too.
func sameHost(oHost, oPort, hostHeader string) bool {
	h, port, err := splitHostPort(hostHeader)
	if err != nil || h == "" {
		return false
	}
	if !strings.EqualFold(h, oHost) {
		return false
	}
	if port == "" {
		return oPort == "80" || oPort == "443"
	}
	return port == oPort
}

func (pat originPattern) matches(scheme, host, port string) bool {
	switch {
	case pat.scheme == "" && scheme != "http" && scheme != "https":
		return false
	case pat.scheme != "" && pat.scheme != scheme:
		return false
	}
	want := pat.port
	if want == "" {
		want = defaultPort(scheme)
	}
	if port != want {
		return false
	}
	if pat.wildcard {
		return len(host) > len(pat.host)+1 && strings.HasSuffix(host, "."+pat.host)
	}
	return host == pat.host
}
