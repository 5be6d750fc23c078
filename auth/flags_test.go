package auth

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/limits"
)

func TestFlagsNewGate(t *testing.T) {
	t.Setenv(EnvSecret, "")
	var f Flags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.RegisterFlags(fs)
	lim := limits.DefaultConfig()
	lim.RegisterFlags(fs)
	if err := fs.Parse([]string{"--allowed-origin", "https://app.example", "--allowed-origin=*.corp.example",
		"--trusted-proxy", "10.0.0.0/8", "--max-conns-per-ip", "3"}); err != nil {
		t.Fatal(err)
	}
	g, err := f.NewGate(lim, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Tokens != nil {
		t.Fatal("auth on without a secret")
	}
	if g.Origins.Check("https://x.corp.example", "quire.example") != nil || len(g.TrustedProxies) != 1 {
		t.Fatalf("flags not applied: %+v", g)
	}
	if w := g.Warnings("127.0.0.1:8080"); len(w) != 1 || !strings.Contains(w[0], "auth is off") || !strings.Contains(w[0], "this machine only") {
		t.Fatalf("warnings %q", w)
	}
	if w := g.Warnings("0.0.0.0:8080"); len(w) != 1 || !strings.Contains(w[0], "anyone") {
		t.Fatalf("warnings %q", w)
	}

	// Secret from the environment; the flag wins over it.
	t.Setenv(EnvSecret, "from-env")
	g, err = (&Flags{}).NewGate(limits.DefaultConfig(), nil)
	if err != nil || g.Tokens == nil {
		t.Fatalf("secret from env: %v", err)
	}
	if w := g.Warnings("127.0.0.1:8080"); len(w) != 1 || !strings.Contains(w[0], "shorter") {
		t.Fatalf("warnings %q", w)
	}
	g, err = (&Flags{Secret: string(testSecret), AllowedOrigins: []string{"*"}}).NewGate(limits.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := g.Tokens.Mint(Grant{Docs: []string{"d"}, Access: ReadOnly}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if acc, err := g.Tokens.Verify(tok, "d"); err != nil || acc != ReadOnly {
		t.Fatalf("flag secret not used: %v", err)
	}
	if w := g.Warnings("127.0.0.1:8080"); len(w) != 1 || !strings.Contains(w[0], "hijacking") {
		t.Fatalf("warnings %q", w)
	}

	for _, bad := range []Flags{{AllowedOrigins: []string{"https://a/b"}}, {TrustedProxies: []string{"nope"}}} {
		if _, err := bad.NewGate(limits.DefaultConfig(), nil); err == nil {
			t.Errorf("NewGate accepted %+v", bad)
		}
	}
	badLim := limits.DefaultConfig()
	badLim.MaxConnsPerIP = -1
	if _, err := (&Flags{}).NewGate(badLim, nil); err == nil {
		t.Error("NewGate accepted invalid limits")
	}
}

func TestIsLoopbackListen(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.1.2.3:1": true, "[::1]:8080": true, "localhost:8080": true, "LOCALHOST:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "192.0.2.1:80": false, "example.com:80": false,
	} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v", addr, got)
		}
	}
}
