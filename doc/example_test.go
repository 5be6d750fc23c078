package doc_test

import (
	"context"
	"fmt"
	"log"

	"github.com/quirehq/quire/crdt"
	"github.com/quirehq/quire/doc"
	"github.com/quirehq/quire/persist"
)

// ExampleRegistry opens a document from Go, without any connection: apply an
// update (committed before it returns, and sent to every peer of the
// document), then read the text as the server's own CRDT has it.
func ExampleRegistry() {
	store := persist.NewMemory()
	defer store.Close()
	reg, err := doc.NewRegistry(doc.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(context.Background())

	ctx := context.Background()
	h, err := reg.Open(ctx, "minutes")
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()

	// An update as any Yjs client would send it.
	client := crdt.NewDoc(crdt.Options{ClientID: 7})
	update, _ := client.Transact(func(tx *crdt.Transaction) error {
		return client.GetText("content").Insert(tx, 0, "Agenda")
	})
	if err := h.ApplyUpdate(ctx, update); err != nil {
		log.Fatal(err)
	}
	if err := h.ApplyUpdate(ctx, []byte{1, 2, 3}); err != nil {
		fmt.Println("refused:", err != nil)
	}
	text, _ := h.Text(ctx, "content")
	fmt.Printf("%q, %d peers\n", text, h.Peers())
	// Output:
	// refused: true
	// "Agenda", 0 peers
}
