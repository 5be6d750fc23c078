package auth

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/quirehq/quire/limits"
)

// EnvSecret is the environment variable that holds the server's secret when
// --auth-secret is not given. Prefer it to the flag: a flag's value is
// visible to every user of the machine in `ps`.
const EnvSecret = "QUIRE_AUTH_SECRET"

// Flags are the access-control flags of quire serve.
type Flags struct {
	// Secret turns auth on (--auth-secret, default $QUIRE_AUTH_SECRET).
	Secret string
	// AllowedOrigins are extra browser origins (--allowed-origin, repeatable).
	AllowedOrigins []string
	// TrustedProxies are reverse proxies whose X-Forwarded-For is believed
	// (--trusted-proxy, repeatable, CIDR or address).
	TrustedProxies []string
}

// RegisterFlags defines --auth-secret, --allowed-origin and --trusted-proxy on fs.
func (f *Flags) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Secret, "auth-secret", "", "secret that signs access tokens; turns auth on (default $"+EnvSecret+")")
	fs.Func("allowed-origin", "browser origin allowed besides the server's own, e.g. https://app.example.com or https://*.example.com (repeatable; '*' allows every site: a CSRF hole)", func(v string) error {
		f.AllowedOrigins = append(f.AllowedOrigins, v)
		return nil
	})
	fs.Func("trusted-proxy", "address or CIDR of a reverse proxy whose X-Forwarded-For names the client (repeatable)", func(v string) error {
		f.TrustedProxies = append(f.TrustedProxies, v)
		return nil
	})
}

// NewGate builds the Gate for these flags and limits: auth on when a secret
// is given (flag, else $QUIRE_AUTH_SECRET), the origin policy, the
// connection limiter and the penalty box. now is the clock (nil: time.Now
// wherever time is read).
func (f *Flags) NewGate(lim limits.Config, now func() time.Time) (*Gate, error) {
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	g := &Gate{
		Conns:   limits.NewConnLimiter(lim.MaxConnsPerIP, lim.LimitLoopback),
		Penalty: limits.NewPenaltyBox(lim.Penalty, lim.LimitLoopback, now),
	}
	secret := f.Secret
	if secret == "" {
		secret = os.Getenv(EnvSecret)
	}
	if secret != "" {
		a, err := New([]byte(secret), &Options{Now: now})
		if err != nil {
			return nil, err
		}
		g.Tokens = a
	}
	origins, err := NewOriginPolicy(f.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	g.Origins = origins
	proxies, err := limits.ParseTrustedProxies(f.TrustedProxies)
	if err != nil {
		return nil, err
	}
	g.TrustedProxies = proxies
	return g, nil
}

// Warnings returns what quire serve should log at startup about this gate
// listening on addr: auth off (and whether that is exposed beyond this
// machine), a weak secret, every origin allowed. Each is one sentence.
func (g *Gate) Warnings(addr string) []string {
	var w []string
	if g.Tokens == nil {
		if IsLoopbackListen(addr) {
			w = append(w, fmt.Sprintf("auth is off (no --auth-secret): serving unauthenticated on %s, reachable from this machine only", addr))
		} else {
			w = append(w, fmt.Sprintf("auth is off (no --auth-secret) and %s is reachable from other machines: anyone who can connect can read and write every document", addr))
		}
	} else if WeakSecret(g.Tokens.secret) {
		w = append(w, fmt.Sprintf("the auth secret is shorter than %d bytes; `openssl rand -base64 32` makes a strong one", MinSecretBytes))
	}
	if g.Origins.AllowsAny() {
		w = append(w, "--allowed-origin '*' lets every website open WebSockets to this server in its visitors' browsers (cross-site WebSocket hijacking)")
	}
	return w
}

// IsLoopbackListen reports whether a listen address (HOST:PORT) accepts
// connections from this machine only: a loopback IP or "localhost". An empty
// host or 0.0.0.0 / :: listens on every interface.
func IsLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && a.Unmap().IsLoopback()
}
