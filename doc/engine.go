package doc

// engine is what a room needs of a CRDT document. The crdt package provides
// the real one (crdtEngine); the tests also drive rooms with a small fake, so
// that the room's own rules (batching, durability, isolation) are tested on
// their own.
type engine interface {
	// applyUpdate integrates one whole update (loading from the store); on
	// error nothing of it was applied.
	applyUpdate(update []byte) error
	// transact integrates updates in one transaction: apply refuses a bad
	// update (nothing of it applied) and the transaction goes on. It returns
	// the v1 update of everything the transaction changed, nil if nothing.
	transact(fn func(apply func(update []byte) error)) (changed []byte, err error)
	// encodeStateVector returns the encoded state vector.
	encodeStateVector() []byte
	// encodeStateAsUpdate returns what a peer with the encoded state vector
	// sv lacks; an empty sv means the whole state.
	encodeStateAsUpdate(sv []byte) ([]byte, error)
	// text renders the root Y.Text called name.
	text(name string) string
	// encodePending returns, as one update, what the document holds but could
	// not integrate yet (structs and deletes waiting for others); nil if
	// nothing. It is in no changed update until it integrates, so the room
	// stores it by itself.
	encodePending() []byte
}
