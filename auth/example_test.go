package auth_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/quirehq/quire/auth"
	"github.com/quirehq/quire/limits"
)

func ExampleAuthority() {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	a, err := auth.New([]byte("a secret of at least 32 bytes...."), &auth.Options{
		Now: func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	// What `quire token --doc notes --prefix team-a. --read-only --ttl 1h` does.
	tok, err := a.Mint(auth.Grant{Docs: []string{"notes"}, Prefixes: []string{"team-a."}, Access: auth.ReadOnly}, time.Hour)
	if err != nil {
		panic(err)
	}
	for _, doc := range []string{"notes", "team-a.plan", "payroll"} {
		access, err := a.Verify(tok, doc)
		fmt.Printf("%s: %v %v\n", doc, access, err)
	}
	now = now.Add(2 * time.Hour)
	_, err = a.Verify(tok, "notes")
	fmt.Println("two hours later:", errors.Is(err, auth.ErrExpired), err.(*auth.Error).HTTPStatus())
	// Output:
	// notes: read-only <nil>
	// team-a.plan: read-only <nil>
	// payroll: none auth: token does not grant access to this document: document "payroll"
	// two hours later: true 401
}

func ExampleOriginPolicy() {
	p, err := auth.NewOriginPolicy([]string{"https://app.example.com", "https://*.corp.example"})
	if err != nil {
		panic(err)
	}
	host := "quire.example.com" // the Host header of the request
	for _, origin := range []string{
		"",                              // not a browser
		"https://quire.example.com",     // the server's own pages
		"https://app.example.com",       // listed
		"https://wiki.corp.example",     // matches the pattern
		"https://evil.example",          // a page that would hijack the user's session
		"http://app.example.com",        // wrong scheme
		"https://app.example.com:8443/", // wrong port
	} {
		fmt.Printf("%-30q %v\n", origin, p.Check(origin, host) == nil)
	}
	// Output:
	// ""                             true
	// "https://quire.example.com"    true
	// "https://app.example.com"      true
	// "https://wiki.corp.example"    true
	// "https://evil.example"         false
	// "http://app.example.com"       false
	// "https://app.example.com:8443/" false
}

// ExampleGate shows the check in front of a WebSocket upgrade: refuse with a
// status before anything is opened, otherwise upgrade and keep the Admission
// for the connection's lifetime.
func ExampleGate() {
	a, _ := auth.New([]byte("a secret of at least 32 bytes...."), nil)
	cfg := limits.DefaultConfig()
	gate := &auth.Gate{
		Tokens:  a,
		Origins: nil, // same origin only
		Conns:   limits.NewConnLimiter(cfg.MaxConnsPerIP, cfg.LimitLoopback),
		Penalty: limits.NewPenaltyBox(cfg.Penalty, cfg.LimitLoopback, nil),
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		adm, err := gate.Admit(r, "notes")
		if err != nil {
			err.(*auth.Refusal).WriteHTTP(w)
			return
		}
		defer adm.Release()
		// websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true}) ...
		fmt.Fprintln(w, "upgrade as", adm.Access)
	})

	tok, _ := a.Mint(auth.Grant{Docs: []string{"notes"}, Access: auth.ReadWrite}, time.Hour)
	for _, url := range []string{"/ws/notes", "/ws/notes?token=" + tok} {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest("GET", url, nil))
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 401 authentication required: no token
	// 200 upgrade as read-write
}

// ExampleGuard shows the per-connection decisions for a read-only peer: it
// may sync and show its presence, its updates are answered with a
// permission-denied message instead of reaching the room.
func ExampleGuard() {
	a, _ := auth.New([]byte("a secret of at least 32 bytes...."), nil)
	gate := &auth.Gate{Tokens: a}
	tok, _ := a.Mint(auth.Grant{Docs: []string{"notes"}, Access: auth.ReadOnly}, time.Hour)
	adm, err := gate.Admit(httptest.NewRequest("GET", "/ws/notes?token="+tok, nil), "notes")
	if err != nil {
		panic(err)
	}
	defer adm.Release()
	guard := auth.NewGuard(adm, limits.DefaultConfig(), nil)
	for _, m := range []struct {
		name string
		kind auth.Inbound
	}{{"step 1", auth.InSyncStep1}, {"step 2", auth.InSyncStep2}, {"awareness", auth.InAwareness}, {"update", auth.InUpdate}} {
		v := guard.Inbound(m.kind, "")
		fmt.Printf("%-9s apply=%v reply=%x close=%d\n", m.name, v.Apply, v.Reply, v.CloseCode)
	}
	// Output:
	// step 1    apply=true reply= close=0
	// step 2    apply=false reply= close=0
	// awareness apply=true reply= close=0
	// update    apply=false reply=020024726561642d6f6e6c79206163636573733a20777269746573206172652072656675736564 close=0
}
