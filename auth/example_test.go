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
