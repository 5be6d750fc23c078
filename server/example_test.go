package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"

	"github.com/quirehq/quire/crdt"
	"github.com/quirehq/quire/persist"
	"github.com/quirehq/quire/server"
)

// Example embeds Quire in another Go program: the sync service is mounted
// under /collab/ of the program's own router, on an in-memory store, and the
// program reads and changes documents from Go without a connection.
func Example() {
	store := persist.NewMemory()
	defer store.Close() // the embedder owns the store: close it after the server
	srv, err := server.New(server.Config{
		Store:         store,
		Logger:        slog.New(slog.DiscardHandler),
		DisableEditor: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close(context.Background())

	mux := http.NewServeMux()
	mux.Handle("/collab/", http.StripPrefix("/collab", srv))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "the host app") })
	web := httptest.NewServer(mux)
	defer web.Close()
	// Browsers would now connect with
	//   new WebsocketProvider(web.URL.replace('http', 'ws') + '/collab/ws', 'minutes', ydoc)

	// A backend posts an edit over HTTP: a Yjs update, here made with the
	// crdt package.
	backend := crdt.NewDoc(crdt.Options{ClientID: 1})
	update, _ := backend.Transact(func(tx *crdt.Transaction) error {
		return backend.GetText("content").Insert(tx, 0, "Agenda: ")
	})
	resp, err := http.Post(web.URL+"/collab/api/docs/minutes/update", "application/octet-stream", bytes.NewReader(update))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("POST update:", resp.Status)

	// Go code opens the same document directly.
	ctx := context.Background()
	h, err := srv.Docs().Open(ctx, "minutes")
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	more, _ := backend.Transact(func(tx *crdt.Transaction) error {
		return backend.GetText("content").Insert(tx, 8, "budget")
	})
	if err := h.ApplyUpdate(ctx, more); err != nil { // committed and sent to every peer
		log.Fatal(err)
	}
	text, _ := h.Text(ctx, "content")
	fmt.Printf("text via Go: %q\n", text)

	resp, err = http.Get(web.URL + "/collab/api/docs/minutes/text")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("text via HTTP: %q\n", body)
	// Output:
	// POST update: 200 OK
	// text via Go: "Agenda: budget"
	// text via HTTP: "Agenda: budget"
}
