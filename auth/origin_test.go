package auth

import (
	"errors"
	"net/http/httptest"
	"testing"
)

func TestOriginPolicy(t *testing.T) {
	t.Parallel()
	policy := func(allowed ...string) *OriginPolicy {
		p, err := NewOriginPolicy(allowed)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	def := policy()
	var nilPolicy *OriginPolicy
	list := policy("https://app.example.com", "https://*.corp.example", "localhost:5173", "*.dev.example", "tauri://localhost", "http://[::1]:3000")
	anyOrigin := policy("*")

	tests := []struct {
		name   string
		p      *OriginPolicy
		origin string
		host   string
		ok     bool
	}{
		{"no Origin: not a browser", def, "", "quire.example:8080", true},
		{"same origin", def, "http://quire.example:8080", "quire.example:8080", true},
		{"same origin, case", def, "http://QUIRE.example:8080", "quire.EXAMPLE:8080", true},
		{"same origin, default port https", def, "https://quire.example", "quire.example", true},
		{"same origin, default port explicit in Host", def, "https://quire.example", "quire.example:443", true},
		{"same origin behind TLS proxy", def, "https://quire.example", "quire.example", true},
		{"same origin v6", def, "http://[::1]:8080", "[::1]:8080", true},
		{"nil policy is same origin", nilPolicy, "http://127.0.0.1:8080", "127.0.0.1:8080", true},
		{"other port", def, "http://quire.example:9999", "quire.example:8080", false},
		{"other host", def, "https://evil.example", "quire.example", false},
		{"suffix trick", def, "https://quire.example.evil.example", "quire.example", false},
		{"nil policy refuses others", nilPolicy, "https://evil.example", "quire.example", false},
		{"null origin", def, "null", "quire.example", false},
		{"garbage origin", def, "::::", "quire.example", false},
		{"origin with path", def, "https://quire.example/x", "quire.example", false},
		{"origin with user", def, "https://me@quire.example", "quire.example", false},
		{"empty Host", def, "https://quire.example", "", false},

		{"exact", list, "https://app.example.com", "quire.example", true},
		{"exact, case", list, "HTTPS://App.Example.COM", "quire.example", true},
		{"exact, trailing slash", list, "https://app.example.com/", "quire.example", true},
		{"exact, other scheme", list, "http://app.example.com", "quire.example", false},
		{"exact, other port", list, "https://app.example.com:8443", "quire.example", false},
		{"exact, subdomain", list, "https://x.app.example.com", "quire.example", false},
		{"wildcard", list, "https://a.corp.example", "quire.example", true},
		{"wildcard, deep", list, "https://a.b.corp.example", "quire.example", true},
		{"wildcard, not the apex", list, "https://corp.example", "quire.example", false},
		{"wildcard, lookalike", list, "https://evilcorp.example", "quire.example", false},
		{"wildcard, scheme pinned", list, "http://a.corp.example", "quire.example", false},
		{"host:port, http", list, "http://localhost:5173", "quire.example", true},
		{"host:port, https", list, "https://localhost:5173", "quire.example", true},
		{"host:port, other port", list, "http://localhost:5174", "quire.example", false},
		{"host:port, other scheme", list, "ws://localhost:5173", "quire.example", false},
		{"scheme-less wildcard, http", list, "http://x.dev.example", "quire.example", true},
		{"scheme-less wildcard, port", list, "http://x.dev.example:8080", "quire.example", false},
		{"custom scheme", list, "tauri://localhost", "quire.example", true},
		{"v6 pattern", list, "http://[::1]:3000", "quire.example", true},
		{"list keeps same origin", list, "https://quire.example", "quire.example", true},

		{"any", anyOrigin, "https://evil.example", "quire.example", true},
		{"any, null", anyOrigin, "null", "quire.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Check(tt.origin, tt.host)
			if (err == nil) != tt.ok {
				t.Fatalf("Check(%q, %q) = %v, want ok %v", tt.origin, tt.host, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrForeignOrigin) {
				t.Fatalf("err = %v, want ErrForeignOrigin", err)
			}
		})
	}
	if !anyOrigin.AllowsAny() || list.AllowsAny() || nilPolicy.AllowsAny() {
		t.Error("AllowsAny")
	}
}

func TestOriginPolicyCheckRequest(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "http://quire.example/ws/d", nil)
	r.Header.Set("Origin", "https://evil.example")
	if err := (*OriginPolicy)(nil).CheckRequest(r); !errors.Is(err, ErrForeignOrigin) {
		t.Fatalf("err = %v", err)
	}
	r.Header.Set("Origin", "http://quire.example")
	if err := (*OriginPolicy)(nil).CheckRequest(r); err != nil {
		t.Fatal(err)
	}
}

func TestOriginPatternErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "https://", "://x.example", "https://x.example/path", "x.example?q", "user@x.example",
		"a*.example.com", "*", // "*" alone is fine, tested below
		"*.", "x.example:", "x.example:http", "https://*", "**.example.com", "x.example:1:2",
	} {
		_, err := NewOriginPolicy([]string{s})
		if s == "*" {
			if err != nil {
				t.Errorf("%q refused: %v", s, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("NewOriginPolicy(%q) accepted", s)
		}
	}
}
