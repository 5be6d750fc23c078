package auth

import (
	"net/http/httptest"
	"testing"
)

func TestTokenFromRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		url    string
		header string
		want   string
		ok     bool
	}{
		{"none", "/ws/d", "", "", false},
		{"query", "/ws/d?token=abc", "", "abc", true},
		{"query escaped", "/ws/d?x=1&token=a%2Bb", "", "a+b", true},
		{"empty query", "/ws/d?token=", "", "", false},
		{"bearer", "/ws/d", "Bearer abc", "abc", true},
		{"bearer, case", "/ws/d", "bearer   abc ", "abc", true},
		{"bearer wins over query", "/ws/d?token=q", "Bearer h", "h", true},
		{"basic is not a token", "/ws/d", "Basic dXNlcjpwdw==", "", false},
		{"basic falls back to query", "/ws/d?token=q", "Basic dXNlcjpwdw==", "q", true},
		{"empty bearer", "/ws/d", "Bearer ", "", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "http://quire.test"+tt.url, nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		got, ok := TokenFromRequest(r)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: got %q %v, want %q %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRedactURI(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"/ws/d":                       "/ws/d",
		"/ws/d?x=1":                   "/ws/d?x=1",
		"/ws/d?token=secret":          "/ws/d?token=REDACTED",
		"/ws/d?a=1&token=s&b=2":       "/ws/d?a=1&token=REDACTED&b=2",
		"/ws/d?token=s&token=t":       "/ws/d?token=REDACTED&token=REDACTED",
		"/ws/d?%74oken=s":             "/ws/d?%74oken=REDACTED",
		"/ws/d?tokens=keep&xtoken=k":  "/ws/d?tokens=keep&xtoken=k",
		"/ws/d?token":                 "/ws/d?token=REDACTED",
		"/api/docs/d/text?name=token": "/api/docs/d/text?name=token",
	}
	for in, want := range tests {
		if got := RedactURI(in); got != want {
			t.Errorf("RedactURI(%q) = %q, want %q", in, got, want)
		}
	}
}
