package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// clock is a fake clock the test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newAuthority(t *testing.T, clk *clock, leeway time.Duration) *Authority {
	t.Helper()
	a, err := New(testSecret, &Options{Now: clk.Now, Leeway: leeway})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mint(t *testing.T, a *Authority, g Grant, ttl time.Duration) string {
	t.Helper()
	tok, err := a.Mint(g, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// sign signs arbitrary claims with any method and key, to build the tokens
// Quire never mints.
func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tamper replaces the middle of segment i of a token.
func tamper(t *testing.T, tok string, i int, f func([]byte) []byte) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	parts[i] = base64.RawURLEncoding.EncodeToString(f(b))
	return strings.Join(parts, ".")
}

func TestVerify(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newAuthority(t, clk, 0)
	now := clk.Now()
	exp := now.Add(time.Hour).Unix()
	rw := mint(t, a, Grant{Docs: []string{"notes", "todo"}, Access: ReadWrite}, time.Hour)
	ro := mint(t, a, Grant{Docs: []string{"notes"}, Access: ReadOnly}, time.Hour)
	pre := mint(t, a, Grant{Prefixes: []string{"team-a."}, Docs: []string{"shared"}, Access: ReadWrite}, time.Hour)
	all := mint(t, a, Grant{Prefixes: []string{""}, Access: ReadOnly}, time.Hour)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := jwt.MapClaims{"docs": []string{"notes"}, "access": "read-write", "exp": exp}

	tests := []struct {
		name  string
		token string
		doc   string
		want  Access
		err   error // nil or one of the Err* values
	}{
		{"read-write, first doc", rw, "notes", ReadWrite, nil},
		{"read-write, second doc", rw, "todo", ReadWrite, nil},
		{"read-only", ro, "notes", ReadOnly, nil},
		{"other doc", rw, "secret", NoAccess, ErrWrongDoc},
		{"doc ID is not a prefix", ro, "notes2", NoAccess, ErrWrongDoc},
		{"prefix match", pre, "team-a.minutes", ReadWrite, nil},
		{"prefix is not a substring", pre, "x-team-a.minutes", NoAccess, ErrWrongDoc},
		{"exact doc beside prefixes", pre, "shared", ReadWrite, nil},
		{"empty prefix covers all", all, "anything-at-all", ReadOnly, nil},
		{"no token", "", "notes", NoAccess, ErrNoToken},
		{"tampered signature", tamper(t, rw, 2, func(b []byte) []byte { b[0] ^= 1; return b }), "notes", NoAccess, ErrBadSignature},
		{"truncated signature", rw[:len(rw)-3], "notes", NoAccess, ErrBadSignature},
		{"tampered claims", tamper(t, ro, 1, func(b []byte) []byte {
			return []byte(strings.Replace(string(b), "read-only", "read-write", 1))
		}), "notes", NoAccess, ErrBadSignature},
		{"other secret", sign(t, jwt.SigningMethodHS256, []byte("another secret, just as long...."), good), "notes", NoAccess, ErrBadSignature},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good), "notes", NoAccess, ErrBadSignature},
		{"alg HS384 with the right secret", sign(t, jwt.SigningMethodHS384, testSecret, good), "notes", NoAccess, ErrBadSignature},
		{"alg HS512 with the right secret", sign(t, jwt.SigningMethodHS512, testSecret, good), "notes", NoAccess, ErrBadSignature},
		{"alg ES256", sign(t, jwt.SigningMethodES256, ecKey, good), "notes", NoAccess, ErrBadSignature},
		{"alg unknown", tamper(t, rw, 0, func([]byte) []byte { return []byte(`{"alg":"XY999","typ":"JWT"}`) }), "notes", NoAccess, ErrBadSignature},
		{"expired", sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"docs": []string{"notes"}, "access": "read-write", "exp": now.Add(-time.Second).Unix()}), "notes", NoAccess, ErrExpired},
		{"not valid yet", sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"docs": []string{"notes"}, "access": "read-write", "exp": exp, "nbf": now.Add(time.Minute).Unix()}), "notes", NoAccess, ErrNotYetValid},
		{"no exp", sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"docs": []string{"notes"}, "access": "read-write"}), "notes", NoAccess, ErrMalformed},
		{"no access", sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"docs": []string{"notes"}, "exp": exp}), "notes", NoAccess, ErrMalformed},
		{"unknown access", sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"docs": []string{"notes"}, "access": "admin", "exp": exp}), "notes", NoAccess, ErrMalformed},
		{"docs of the wrong type", sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"docs": "notes", "access": "read-write", "exp": exp}), "notes", NoAccess, ErrMalformed},
		{"exp of the wrong type", sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"docs": []string{"notes"}, "access": "read-write", "exp": "tomorrow"}), "notes", NoAccess, ErrMalformed},
		{"not a JWT", "hello", "notes", NoAccess, ErrMalformed},
		{"two segments", "a.b", "notes", NoAccess, ErrMalformed},
		{"bad base64", "@@@.@@@.@@@", "notes", NoAccess, ErrMalformed},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("{")) + ".e30.", "notes", NoAccess, ErrMalformed},
		{"too long", strings.Repeat("a", MaxTokenBytes+1), "notes", NoAccess, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.Verify(tt.token, tt.doc)
			if got != tt.want {
				t.Errorf("access %v, want %v", got, tt.want)
			}
			if tt.err == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("err %T is not an *Error", err)
			}
			if len(ae.Reason()) > 123 || strings.Contains(ae.Reason(), "\n") {
				t.Errorf("reason %q does not fit a close frame", ae.Reason())
			}
		})
	}
}

func TestExpiryAndLeeway(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newAuthority(t, clk, 0)
	tok := mint(t, a, Grant{Docs: []string{"d"}, Access: ReadWrite}, time.Minute)
	clk.Advance(59 * time.Second)
	if _, err := a.Verify(tok, "d"); err != nil {
		t.Fatalf("valid 1 s before exp: %v", err)
	}
	clk.Advance(time.Second)
	if _, err := a.Verify(tok, "d"); !errors.Is(err, ErrExpired) {
		t.Fatalf("at exp: err = %v, want expired", err)
	}
	lenient := newAuthority(t, clk, 5*time.Second)
	if _, err := lenient.Verify(tok, "d"); err != nil {
		t.Fatalf("within the leeway: %v", err)
	}
	clk.Advance(5 * time.Second)
	if _, err := lenient.Verify(tok, "d"); !errors.Is(err, ErrExpired) {
		t.Fatalf("past the leeway: err = %v, want expired", err)
	}
}

func TestMintClaims(t *testing.T) {
	t.Parallel()
	clk := newClock()
	a := newAuthority(t, clk, 0)
	tok := mint(t, a, Grant{Docs: []string{"a"}, Prefixes: []string{"p-"}, Access: ReadOnly, Subject: "ci-bot"}, 90*time.Minute)
	parts := strings.Split(tok, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var h map[string]any
	var c map[string]any
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "HS256" {
		t.Errorf("alg %v", h["alg"])
	}
	now := clk.Now().Unix()
	want := map[string]any{
		"docs": []any{"a"}, "prefixes": []any{"p-"}, "access": "read-only", "sub": "ci-bot",
		"iat": float64(now), "exp": float64(now + 90*60),
	}
	for k, v := range want {
		if gotJSON, _ := json.Marshal(c[k]); string(gotJSON) != mustJSON(v) {
			t.Errorf("claim %s = %s, want %s", k, gotJSON, mustJSON(v))
		}
	}
	g, err := a.Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	if g.Subject != "ci-bot" || !g.Expires.Equal(clk.Now().Add(90*time.Minute)) || g.Access != ReadOnly {
		t.Fatalf("grant %+v", g)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestMintRefuses(t *testing.T) {
	t.Parallel()
	a := newAuthority(t, newClock(), 0)
	tests := []struct {
		name string
		g    Grant
		ttl  time.Duration
	}{
		{"no ttl", Grant{Docs: []string{"d"}, Access: ReadWrite}, 0},
		{"negative ttl", Grant{Docs: []string{"d"}, Access: ReadWrite}, -time.Second},
		{"no access", Grant{Docs: []string{"d"}}, time.Hour},
		{"nothing named", Grant{Access: ReadWrite}, time.Hour},
		{"bad doc ID", Grant{Docs: []string{"a b"}, Access: ReadWrite}, time.Hour},
		{"empty doc ID", Grant{Docs: []string{""}, Access: ReadWrite}, time.Hour},
		{"long doc ID", Grant{Docs: []string{strings.Repeat("x", 129)}, Access: ReadWrite}, time.Hour},
		{"bad prefix", Grant{Prefixes: []string{"a/"}, Access: ReadWrite}, time.Hour},
	}
	for _, tt := range tests {
		if tok, err := a.Mint(tt.g, tt.ttl); err == nil {
			t.Errorf("%s: minted %q", tt.name, tok)
		}
	}
	if _, err := New(nil, nil); err == nil {
		t.Error("New accepted an empty secret")
	}
	if !WeakSecret([]byte("short")) || WeakSecret(testSecret) {
		t.Error("WeakSecret misjudges")
	}
}

func TestSecretIsCopied(t *testing.T) {
	t.Parallel()
	secret := append([]byte(nil), testSecret...)
	a, err := New(secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.Mint(Grant{Docs: []string{"d"}, Access: ReadWrite}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secret[0] ^= 0xff // the caller reuses its buffer
	if _, err := a.Verify(tok, "d"); err != nil {
		t.Fatalf("Authority depends on the caller's buffer: %v", err)
	}
}

func TestValidDocID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"a": true, "Doc_1.v2-x": true, strings.Repeat("z", 128): true,
		"": false, strings.Repeat("z", 129): false, "a b": false, "a/b": false, "ü": false, "a?": false,
	} {
		if ValidDocID(id) != want {
			t.Errorf("ValidDocID(%q) = %v", id, !want)
		}
	}
}

func TestKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    *Error
		status int
		code   int
	}{
		{ErrNoToken, 401, CloseUnauthorized},
		{ErrMalformed, 401, CloseUnauthorized},
		{ErrBadSignature, 401, CloseUnauthorized},
		{ErrExpired, 401, CloseUnauthorized},
		{ErrNotYetValid, 401, CloseUnauthorized},
		{ErrWrongDoc, 403, CloseForbidden},
		{ErrReadOnly, 403, CloseForbidden},
		{ErrForeignOrigin, 403, CloseForbidden},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		if tt.err.HTTPStatus() != tt.status || tt.err.CloseCode() != tt.code {
			t.Errorf("%s: %d/%d, want %d/%d", tt.err.Kind, tt.err.HTTPStatus(), tt.err.CloseCode(), tt.status, tt.code)
		}
		name := tt.err.Kind.String()
		if seen[name] || strings.HasPrefix(name, "kind(") {
			t.Errorf("kind name %q missing or repeated", name)
		}
		seen[name] = true
		if errors.Is(tt.err, &Error{Kind: tt.err.Kind + 1}) {
			t.Errorf("%s matches another kind", name)
		}
	}
	wrapped := &Error{Kind: KindExpired, Err: jwt.ErrTokenExpired}
	if !errors.Is(wrapped, jwt.ErrTokenExpired) || !strings.Contains(wrapped.Error(), "token is expired") {
		t.Errorf("detail lost: %v", wrapped)
	}
	if strings.Contains(wrapped.Reason(), "token is expired") {
		t.Errorf("reason leaks the detail: %q", wrapped.Reason())
	}
}

func TestAccess(t *testing.T) {
	t.Parallel()
	if NoAccess.CanRead() || NoAccess.CanWrite() || !ReadOnly.CanRead() || ReadOnly.CanWrite() || !ReadWrite.CanWrite() {
		t.Fatal("access levels misbehave")
	}
	if NoAccess.String() != "none" || ReadOnly.String() != "read-only" || ReadWrite.String() != "read-write" {
		t.Fatal("access names")
	}
}

// FuzzParse feeds arbitrary strings to the verifier: it must never panic, and
// whatever it accepts must be a token signed with the secret.
func FuzzParse(f *testing.F) {
	clk := newClock()
	a, err := New(testSecret, &Options{Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	good, err := a.Mint(Grant{Docs: []string{"notes"}, Prefixes: []string{"p."}, Access: ReadWrite}, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add(good[:len(good)/2])
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Fuzz(func(t *testing.T, tok string) {
		g, err := a.Parse(tok)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %T is not an *Error", err)
			}
			return
		}
		if !g.Access.CanRead() {
			t.Fatalf("accepted token grants %v", g.Access)
		}
		// Re-verify independently: the signature must check out with the secret.
		if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return testSecret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(clk.Now)); err != nil {
			t.Fatalf("accepted a token the library refuses: %v", err)
		}
	})
}
