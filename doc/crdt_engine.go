package doc

import "github.com/quirehq/quire/crdt"

// crdtEngine is the room's document: Quire's own Yjs-compatible CRDT.
type crdtEngine struct {
	d *crdt.Doc
}

// newCRDTEngine returns an empty document. The server never edits locally,
// so the client id is never used to create items; 0 keeps it out of the way
// of real clients' random 32-bit ids.
func newCRDTEngine() engine {
	return crdtEngine{d: crdt.NewDoc(crdt.Options{})}
}

func (e crdtEngine) applyUpdate(update []byte) error {
	_, err := e.d.ApplyUpdate(update)
	return err
}

func (e crdtEngine) transact(fn func(apply func(update []byte) error)) ([]byte, error) {
	return e.d.Transact(func(tx *crdt.Transaction) error {
		fn(tx.ApplyUpdate)
		return nil
	})
}

func (e crdtEngine) encodeStateVector() []byte { return e.d.EncodeStateVector() }

func (e crdtEngine) encodeStateAsUpdate(sv []byte) ([]byte, error) {
	return e.d.EncodeStateAsUpdate(sv)
}

func (e crdtEngine) text(name string) string { return e.d.GetText(name).String() }

func (e crdtEngine) encodePending() []byte { return e.d.EncodePending() }
