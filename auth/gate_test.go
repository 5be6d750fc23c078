package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/quirehq/quire/limits"
)

// gateFixture is a gate with every check on, a fake clock, and tokens.
type gateFixture struct {
	clk                     *clock
	gate                    *Gate
	rw, ro, other, all, exp string
}

func newGateFixture(t *testing.T) *gateFixture {
	t.Helper()
	clk := newClock()
	a := newAuthority(t, clk, 0)
	origins, err := NewOriginPolicy([]string{"https://app.example"})
	if err != nil {
		t.Fatal(err)
	}
	pen := limits.PenaltyConfig{Base: time.Second, Max: time.Minute, Free: 2, Forgive: time.Minute, MaxEntries: 100}
	f := &gateFixture{
		clk: clk,
		gate: &Gate{
			Tokens:  a,
			Origins: origins,
			Conns:   limits.NewConnLimiter(2, false),
			Penalty: limits.NewPenaltyBox(pen, false, clk.Now),
		},
		rw:    mint(t, a, Grant{Docs: []string{"doc"}, Access: ReadWrite}, 1000*time.Hour),
		ro:    mint(t, a, Grant{Docs: []string{"doc"}, Access: ReadOnly}, 1000*time.Hour),
		other: mint(t, a, Grant{Docs: []string{"other"}, Access: ReadWrite}, 1000*time.Hour),
		all:   mint(t, a, Grant{Prefixes: []string{""}, Access: ReadWrite}, 1000*time.Hour),
		exp:   mint(t, a, Grant{Docs: []string{"doc"}, Access: ReadWrite}, time.Second),
	}
	clk.Advance(2 * time.Second) // f.exp has expired
	return f
}

type reqOpts struct {
	addr   string // default 198.51.100.1
	origin string
	token  string // query parameter
	bearer string
	query  string
}

func request(path string, o reqOpts) *http.Request {
	u := "http://quire.example" + path
	var q []string
	if o.token != "" {
		q = append(q, "token="+o.token)
	}
	if o.query != "" {
		q = append(q, o.query)
	}
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	r := httptest.NewRequest("GET", u, nil)
	r.RemoteAddr = "198.51.100.1:50000"
	if o.addr != "" {
		r.RemoteAddr = o.addr
	}
	if o.origin != "" {
		r.Header.Set("Origin", o.origin)
	}
	if o.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+o.bearer)
	}
	return r
}

func refusal(t *testing.T, err error) *Refusal {
	t.Helper()
	var ref *Refusal
	if !errors.As(err, &ref) {
		t.Fatalf("err %v (%T) is not a *Refusal", err, err)
	}
	return ref
}

func TestGateAdmit(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	tests := []struct {
		name    string
		opts    reqOpts
		status  int // 0: admitted
		want    error
		access  Access
		pending bool
		offence bool
	}{
		{"read-write token", reqOpts{token: f.rw}, 0, nil, ReadWrite, false, false},
		{"read-only token", reqOpts{token: f.ro}, 0, nil, ReadOnly, false, false},
		{"bearer header", reqOpts{bearer: f.rw}, 0, nil, ReadWrite, false, false},
		{"prefix-all token", reqOpts{token: f.all}, 0, nil, ReadWrite, false, false},
		{"allowed origin", reqOpts{token: f.rw, origin: "https://app.example"}, 0, nil, ReadWrite, false, false},
		{"same origin", reqOpts{token: f.rw, origin: "http://quire.example"}, 0, nil, ReadWrite, false, false},
		{"deferred", reqOpts{query: "auth=message"}, 0, nil, NoAccess, true, false},
		{"no token", reqOpts{}, 401, ErrNoToken, 0, false, true},
		{"expired", reqOpts{token: f.exp}, 401, ErrExpired, 0, false, false},
		{"tampered", reqOpts{token: f.rw[:len(f.rw)-3]}, 401, ErrBadSignature, 0, false, true},
		{"garbage", reqOpts{token: "nope"}, 401, ErrMalformed, 0, false, true},
		{"other doc", reqOpts{token: f.other}, 403, ErrWrongDoc, 0, false, true},
		{"foreign origin", reqOpts{token: f.rw, origin: "https://evil.example"}, 403, ErrForeignOrigin, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.gate.Penalty.Offences(limits.KeyOf(netip.MustParseAddr("198.51.100.1")))
			a, err := f.gate.Admit(request("/ws/doc", tt.opts), "doc")
			after := f.gate.Penalty.Offences(limits.KeyOf(netip.MustParseAddr("198.51.100.1")))
			if offence := after > before; offence != tt.offence {
				t.Errorf("offence recorded %v, want %v", offence, tt.offence)
			}
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				defer a.Release()
				if a.Access != tt.access || a.Pending != tt.pending || a.DocID != "doc" {
					t.Fatalf("admission %+v", a)
				}
				if a.Client.String() != "198.51.100.1" {
					t.Errorf("client %s", a.Client)
				}
				if (a.Grant != nil) != (tt.access != NoAccess) {
					t.Errorf("grant %v for access %v", a.Grant, a.Access)
				}
				return
			}
			ref := refusal(t, err)
			if ref.Status != tt.status || !errors.Is(err, tt.want) {
				t.Fatalf("refusal %d %v, want %d %v", ref.Status, ref.Err, tt.status, tt.want)
			}
			if a != nil {
				t.Fatal("admission returned with a refusal")
			}
		})
		// Forgive everything between cases: each case starts clean.
		f.clk.Advance(time.Hour)
	}
}

func TestGatePenaltyAndConnLimit(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	bad := reqOpts{addr: "203.0.113.9:1", token: f.other}
	good := reqOpts{addr: "203.0.113.9:2", token: f.rw}
	// Two free offences, the third earns a 1 s ban.
	for i := 0; i < 3; i++ {
		if _, err := f.gate.Admit(request("/ws/doc", bad), "doc"); refusal(t, err).Status != 403 {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, err := f.gate.Admit(request("/ws/doc", good), "doc")
	ref := refusal(t, err)
	if ref.Status != 429 || ref.RetryAfter != time.Second || !errors.Is(err, &limits.Error{Kind: limits.KindPenalized}) {
		t.Fatalf("banned client with a good token: %d %v (retry %s)", ref.Status, ref.Err, ref.RetryAfter)
	}
	// An innocent address is unaffected.
	a0, err := f.gate.Admit(request("/ws/doc", reqOpts{addr: "203.0.113.10:1", token: f.rw}), "doc")
	if err != nil {
		t.Fatal(err)
	}
	a0.Release()
	f.clk.Advance(time.Second)

	// Connection limit: 2 per address; the third gets 429 without an offence.
	a1, err := f.gate.Admit(request("/ws/doc", good), "doc")
	if err != nil {
		t.Fatalf("after the ban: %v", err)
	}
	a2, err := f.gate.Admit(request("/ws/doc", good), "doc")
	if err != nil {
		t.Fatal(err)
	}
	offences := f.gate.Penalty.Offences(a1.Key)
	_, err = f.gate.Admit(request("/ws/doc", good), "doc")
	if ref := refusal(t, err); ref.Status != 429 || !errors.Is(err, &limits.Error{Kind: limits.KindTooManyConns}) {
		t.Fatalf("third connection: %v", err)
	}
	if f.gate.Penalty.Offences(a1.Key) != offences {
		t.Error("a full connection count was taken for an offence")
	}
	a1.Release()
	a1.Release()
	a3, err := f.gate.Admit(request("/ws/doc", good), "doc")
	if err != nil {
		t.Fatalf("slot not freed: %v", err)
	}
	if _, err := f.gate.Admit(request("/ws/doc", good), "doc"); err == nil {
		t.Fatal("double Release freed two slots")
	}
	a2.Release()
	a3.Release()
	if f.gate.Conns.Addresses() != 0 {
		t.Fatal("connections leaked")
	}
	// A cut-off connection's Offence feeds the same box.
	a4, err := f.gate.Admit(request("/ws/doc", good), "doc")
	if err != nil {
		t.Fatal(err)
	}
	if ban := a4.Offence(); ban != 2*time.Second {
		t.Fatalf("fourth offence ban %s, want 2s", ban)
	}
	a4.Release()
}

func TestGateDeferredAuth(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	admit := func() *Admission {
		a, err := f.gate.Admit(request("/ws/doc", reqOpts{query: "auth=message"}), "doc")
		if err != nil {
			t.Fatal(err)
		}
		if !a.Pending || a.CanWrite() || a.Access != NoAccess {
			t.Fatalf("pending admission %+v", a)
		}
		return a
	}
	tests := []struct {
		token  string
		want   error
		access Access
	}{
		{f.rw, nil, ReadWrite},
		{f.ro, nil, ReadOnly},
		{f.other, ErrWrongDoc, NoAccess},
		{f.exp, ErrExpired, NoAccess},
		{"junk", ErrMalformed, NoAccess},
		{"", ErrNoToken, NoAccess},
	}
	for _, tt := range tests {
		a := admit()
		err := a.Authenticate(tt.token)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Authenticate: err = %v, want %v", err, tt.want)
		}
		if a.Access != tt.access || a.Pending != (tt.want != nil) || a.CanWrite() != (tt.access == ReadWrite) {
			t.Errorf("after Authenticate(%v): %+v", tt.want, a)
		}
		a.Release()
	}
	// A fresh token replaces the access of an authenticated peer; a bad one
	// takes it away.
	a, err := f.gate.Admit(request("/ws/doc", reqOpts{token: f.ro}), "doc")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	if err := a.Authenticate(f.rw); err != nil || !a.CanWrite() {
		t.Fatalf("upgrade to read-write: %v", err)
	}
	if err := a.Authenticate(f.other); err == nil || a.CanWrite() || a.Access != NoAccess {
		t.Fatalf("a token for another doc left access %v", a.Access)
	}
}

func TestGateAuthOff(t *testing.T) {
	t.Parallel()
	g := &Gate{}
	a, err := g.Admit(request("/ws/doc", reqOpts{}), "doc")
	if err != nil || a.Access != ReadWrite || a.Pending || a.Grant != nil {
		t.Fatalf("auth off: %+v %v", a, err)
	}
	a.Release()
	if err := a.Authenticate("anything"); err != nil {
		t.Fatal(err)
	}
	a.Offence() // no penalty box: nothing happens
	// The origin check stays on: a page on another site must not reach a
	// server on localhost just because it has no auth.
	_, err = g.Admit(request("/ws/doc", reqOpts{origin: "https://evil.example"}), "doc")
	if refusal(t, err).Status != 403 {
		t.Fatalf("foreign origin with auth off: %v", err)
	}
	grant, err := g.Authorize(request("/api/docs", reqOpts{}), "", true)
	if err != nil || !grant.CoversAll() || !grant.Access.CanWrite() {
		t.Fatalf("auth off grant %+v %v", grant, err)
	}
}

func TestGateAuthorize(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	tests := []struct {
		name   string
		opts   reqOpts
		doc    string
		write  bool
		status int
	}{
		{"read doc", reqOpts{bearer: f.ro}, "doc", false, 0},
		{"write doc", reqOpts{bearer: f.rw}, "doc", true, 0},
		{"write doc read-only", reqOpts{bearer: f.ro}, "doc", true, 403},
		{"read other doc", reqOpts{bearer: f.other}, "doc", false, 403},
		{"no token", reqOpts{}, "doc", false, 401},
		{"expired", reqOpts{bearer: f.exp}, "doc", false, 401},
		{"query token", reqOpts{token: f.ro}, "doc", false, 0},
		{"list with any token", reqOpts{bearer: f.ro}, "", false, 0},
		{"create needs every doc", reqOpts{bearer: f.rw}, "", true, 403},
		{"create with an all-docs token", reqOpts{bearer: f.all}, "", true, 0},
		{"foreign origin", reqOpts{bearer: f.all, origin: "https://evil.example"}, "doc", false, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := f.gate.Authorize(request("/api/docs", tt.opts), tt.doc, tt.write)
			if tt.status == 0 {
				if err != nil || g == nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if ref := refusal(t, err); ref.Status != tt.status {
				t.Fatalf("status %d (%v), want %d", ref.Status, ref.Err, tt.status)
			}
		})
		f.clk.Advance(time.Hour)
	}
	ro := mint(t, f.gate.Tokens, Grant{Prefixes: []string{""}, Access: ReadOnly}, time.Hour)
	if _, err := f.gate.Authorize(request("/api/docs", reqOpts{bearer: ro}), "", true); refusal(t, err).Status != 403 {
		t.Fatal("a read-only all-docs token created a document")
	}
}

func TestRefusalWriteHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ref        *Refusal
		status     int
		retry      string
		challenge  string
		bodyPrefix string
	}{
		{&Refusal{Status: 401, Reason: ErrNoToken.Reason(), Err: ErrNoToken}, 401, "", `Bearer realm="quire"`, "authentication required"},
		{&Refusal{Status: 401, Reason: ErrExpired.Reason(), Err: ErrExpired}, 401, "", `Bearer realm="quire", error="invalid_token"`, "invalid token: expired"},
		{&Refusal{Status: 403, Reason: ErrWrongDoc.Reason(), Err: ErrWrongDoc}, 403, "", "", "token does not grant"},
		{&Refusal{Status: 429, Reason: "wait", RetryAfter: 1500 * time.Millisecond, Err: &limits.Error{Kind: limits.KindPenalized}}, 429, "2", "", "wait"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		tt.ref.WriteHTTP(w)
		if w.Code != tt.status || w.Header().Get("Retry-After") != tt.retry || w.Header().Get("WWW-Authenticate") != tt.challenge {
			t.Errorf("%d: got %d retry %q challenge %q", tt.status, w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"))
		}
		if body := w.Body.String(); !strings.HasPrefix(body, tt.bodyPrefix) || strings.Count(body, "\n") != 1 {
			t.Errorf("%d: body %q", tt.status, body)
		}
	}
	if !strings.Contains((&Refusal{Status: 401, Err: ErrNoToken}).Error(), "401") {
		t.Error("Refusal.Error lacks the status")
	}
}

// TestGateBeforeUpgrade wires a Gate in front of a real coder/websocket
// upgrade, as the server does, and checks what a real client sees.
func TestGateBeforeUpgrade(t *testing.T) {
	t.Parallel()
	f := newGateFixture(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		docID := strings.TrimPrefix(r.URL.Path, "/ws/")
		adm, err := f.gate.Admit(r, docID)
		if err != nil {
			err.(*Refusal).WriteHTTP(w)
			return
		}
		defer adm.Release()
		// The gate has checked the origin already, with Quire's rules.
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		defer c.CloseNow()
		if !adm.CanWrite() {
			c.Write(r.Context(), websocket.MessageBinary, AppendPermissionDenied(nil, ErrReadOnly.Reason()))
		}
		c.Close(websocket.StatusNormalClosure, "")
	}))
	defer srv.Close()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/doc"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	dial := func(url string, h http.Header) (*websocket.Conn, *http.Response, error) {
		return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	}
	// No token, bad token, other doc: refused with a status before the upgrade.
	for _, tt := range []struct {
		url    string
		h      http.Header
		status int
	}{
		{ws, nil, 401},
		{ws + "?token=" + f.exp, nil, 401},
		{ws + "?token=" + f.other, nil, 403},
		{ws + "?token=" + f.rw, http.Header{"Origin": {"https://evil.example"}}, 403},
	} {
		c, resp, err := dial(tt.url, tt.h)
		if err == nil {
			c.CloseNow()
			t.Fatalf("%s: upgraded", tt.url)
		}
		if resp == nil || resp.StatusCode != tt.status {
			t.Fatalf("%s: response %v, want %d", tt.url, resp, tt.status)
		}
	}
	// Read-only: upgraded, told permission denied.
	c, _, err := dial(ws+"?token="+f.ro, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg[0] != MessageAuth || msg[1] != 0 || !strings.Contains(string(msg), "read-only") {
		t.Fatalf("message %x", msg)
	}
	c.CloseNow()
	// Bearer header from a non-browser client.
	c, _, err = dial(ws, http.Header{"Authorization": {"Bearer " + f.rw}})
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
}

func TestAdmissionDeadline(t *testing.T) {
	t.Parallel()
	clk := newClock()
	g := Grant{Docs: []string{"doc"}, Access: ReadWrite}
	tests := []struct {
		name   string
		leeway time.Duration
		ttl    time.Duration
	}{
		{"no leeway", 0, time.Hour},
		{"leeway", 30 * time.Second, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuthority(t, clk, tt.leeway)
			gate := &Gate{Tokens: a}
			adm, err := gate.Admit(request("/ws/doc", reqOpts{token: mint(t, a, g, tt.ttl)}), "doc")
			if err != nil {
				t.Fatal(err)
			}
			// exp has whole seconds.
			want := clk.Now().Add(tt.ttl).Truncate(time.Second).Add(tt.leeway)
			if got := adm.Deadline(); !got.Equal(want) {
				t.Fatalf("Deadline() = %v, want %v", got, want)
			}
			// A fresh token moves it.
			if err := adm.Authenticate(mint(t, a, g, 2*tt.ttl)); err != nil {
				t.Fatal(err)
			}
			want = clk.Now().Add(2 * tt.ttl).Truncate(time.Second).Add(tt.leeway)
			if got := adm.Deadline(); !got.Equal(want) {
				t.Fatalf("after a fresh token Deadline() = %v, want %v", got, want)
			}
		})
	}
	off, err := (&Gate{}).Admit(request("/ws/doc", reqOpts{}), "doc")
	if err != nil {
		t.Fatal(err)
	}
	if !off.Deadline().IsZero() {
		t.Fatalf("auth off: Deadline() = %v, want zero", off.Deadline())
	}
	pending, err := (&Gate{Tokens: newAuthority(t, clk, 0)}).Admit(request("/ws/doc", reqOpts{query: "auth=message"}), "doc")
	if err != nil {
		t.Fatal(err)
	}
	if !pending.Deadline().IsZero() {
		t.Fatalf("pending: Deadline() = %v, want zero", pending.Deadline())
	}
}
