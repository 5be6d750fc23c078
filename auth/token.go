package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Access is what a token lets its bearer do with a document.
type Access uint8

// The levels of access. The zero value grants nothing.
const (
	NoAccess Access = iota
	ReadOnly
	ReadWrite
)

// String is the claim value of the access ("read-only", "read-write").
func (a Access) String() string {
	switch a {
	case ReadOnly:
		return "read-only"
	case ReadWrite:
		return "read-write"
	}
	return "none"
}

// CanRead reports whether a peer may receive the document.
func (a Access) CanRead() bool { return a == ReadOnly || a == ReadWrite }

// CanWrite reports whether a peer's updates may change the document.
func (a Access) CanWrite() bool { return a == ReadWrite }

func parseAccess(s string) (Access, error) {
	switch s {
	case "read-write":
		return ReadWrite, nil
	case "read-only":
		return ReadOnly, nil
	}
	return NoAccess, fmt.Errorf("unknown access %q", s)
}

// Grant is what a token says: the documents it covers, the access it gives
// to them, and until when.
type Grant struct {
	// Docs are document IDs the grant covers exactly.
	Docs []string
	// Prefixes cover every document whose ID starts with one of them; the
	// empty prefix covers every document (a token for a trusted backend).
	Prefixes []string
	// Access applies to every document covered.
	Access Access
	// Subject (the sub claim) says who the token was issued to; optional,
	// for logs.
	Subject string
	// Expires is the token's exp.
	Expires time.Time
}

// Covers reports whether the grant names docID, exactly or by prefix.
func (g *Grant) Covers(docID string) bool {
	for _, d := range g.Docs {
		if d == docID {
			return true
		}
	}
	for _, p := range g.Prefixes {
		if strings.HasPrefix(docID, p) {
			return true
		}
	}
	return false
}

// CoversAll reports whether the grant covers every document (it has the
// empty prefix). Listing all documents and creating new ones need it.
func (g *Grant) CoversAll() bool {
	for _, p := range g.Prefixes {
		if p == "" {
			return true
		}
	}
	return false
}

// AccessTo returns the grant's access to docID, or ErrWrongDoc when it does
// not cover docID.
func (g *Grant) AccessTo(docID string) (Access, error) {
	if !g.Covers(docID) {
		return NoAccess, &Error{Kind: KindWrongDoc, Err: fmt.Errorf("document %q", docID)}
	}
	return g.Access, nil
}

// maxDocID is the longest document ID (DESIGN.md: 1-128 of [A-Za-z0-9._-]).
const maxDocID = 128

// ValidDocID reports whether id is a document ID: 1 to 128 characters from
// [A-Za-z0-9._-].
func ValidDocID(id string) bool {
	return id != "" && validIDChars(id)
}

func validIDChars(s string) bool {
	if len(s) > maxDocID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validate checks a grant before it is signed, so that a typo in `quire
// token` fails loudly instead of minting a token that opens nothing.
func (g *Grant) validate() error {
	if !g.Access.CanRead() {
		return errors.New("grant has no access (want read-only or read-write)")
	}
	if len(g.Docs) == 0 && len(g.Prefixes) == 0 {
		return errors.New("grant names no document and no prefix")
	}
	for _, d := range g.Docs {
		if !ValidDocID(d) {
			return fmt.Errorf("document ID %q is not 1-128 of [A-Za-z0-9._-]", d)
		}
	}
	for _, p := range g.Prefixes {
		if !validIDChars(p) {
			return fmt.Errorf("prefix %q is not 0-128 of [A-Za-z0-9._-]", p)
		}
	}
	return nil
}

// claims is the JSON of a Quire token.
type claims struct {
	Docs     []string `json:"docs,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
	Access   string   `json:"access"`
	jwt.RegisteredClaims
}

// MinSecretBytes is the secret length below which WeakSecret warns: HS256
// keys should carry at least as many bits as the hash (RFC 7518 section 3.2).
const MinSecretBytes = 32

// MaxTokenBytes bounds the tokens Quire parses; real ones are a few hundred bytes.
const MaxTokenBytes = 8 << 10

// WeakSecret reports whether secret is shorter than MinSecretBytes. quire
// serve and quire token warn about such secrets (`openssl rand -base64 32`
// makes a good one) rather than refuse them.
func WeakSecret(secret []byte) bool { return len(secret) < MinSecretBytes }

// Options tune an Authority; nil means the defaults.
type Options struct {
	// Now is the clock for expiry and for minting (nil: time.Now).
	Now func() time.Time
	// Leeway is the clock skew tolerated on exp and nbf, for tokens minted
	// by another machine. Default 0.
	Leeway time.Duration
}

// Authority mints and verifies tokens with one secret. It is safe for
// concurrent use.
type Authority struct {
	secret []byte
	now    func() time.Time
	leeway time.Duration
	parser *jwt.Parser
}

// New returns an Authority for secret, which must not be empty.
func New(secret []byte, opts *Options) (*Authority, error) {
	if len(secret) == 0 {
		return nil, errors.New("auth: empty secret")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &Authority{secret: append([]byte(nil), secret...), now: o.Now, leeway: o.Leeway}
	a.parser = jwt.NewParser(
		// Only HS256: a token's header names its algorithm, and a verifier
		// that follows it can be talked into "none" or into checking an
		// HMAC with a public key. The list closes both doors.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(o.Now),
		jwt.WithLeeway(o.Leeway),
		jwt.WithStrictDecoding(),
	)
	return a, nil
}

// Mint signs a token for g, valid for ttl from now. g.Expires is ignored.
func (a *Authority) Mint(g Grant, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("auth: mint: ttl %s must be positive", ttl)
	}
	if err := g.validate(); err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	now := a.now()
	c := claims{
		Docs:     g.Docs,
		Prefixes: g.Prefixes,
		Access:   g.Access.String(),
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   g.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", fmt.Errorf("auth: mint: %w", err)
	}
	return tok, nil
}

// Parse verifies token (signature, algorithm, expiry) and returns its grant,
// without deciding about any document; Grant.AccessTo does that. Errors are
// *Error.
func (a *Authority) Parse(token string) (*Grant, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	if len(token) > MaxTokenBytes {
		return nil, &Error{Kind: KindMalformed, Err: fmt.Errorf("token is %d bytes, the limit is %d", len(token), MaxTokenBytes)}
	}
	var c claims
	_, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err != nil {
		return nil, &Error{Kind: classify(err), Err: err}
	}
	acc, err := parseAccess(c.Access)
	if err != nil {
		return nil, &Error{Kind: KindMalformed, Err: err}
	}
	g := &Grant{Docs: c.Docs, Prefixes: c.Prefixes, Access: acc, Subject: c.Subject}
	if c.ExpiresAt != nil {
		g.Expires = c.ExpiresAt.Time
	}
	return g, nil
}

// Verify checks that token is valid now and covers docID, and returns the
// access it grants. Errors are *Error: ErrNoToken, ErrMalformed,
// ErrBadSignature, ErrExpired, ErrNotYetValid or ErrWrongDoc.
func (a *Authority) Verify(token, docID string) (Access, error) {
	g, err := a.Parse(token)
	if err != nil {
		return NoAccess, err
	}
	return g.AccessTo(docID)
}

// classify maps the JWT library's errors to a Kind. The library checks the
// algorithm and the signature before the claims, so a forged token is
// reported as a bad signature whatever its claims say.
func classify(err error) Kind {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return KindBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return KindExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return KindNotYetValid
	}
	// ErrTokenMalformed, a missing exp, claims of the wrong JSON type.
	return KindMalformed
}
