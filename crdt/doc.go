// Package crdt is a Go implementation of the Yjs 13.6 data model that reads
// and writes Yjs updates (encoding v1) byte for byte as Yjs does: the struct
// store, YATA integration with pending structs and deletes, delete sets and
// state vectors, garbage collection as a Yjs doc with gc: true does it, and
// root Y.Text rendering and editing. Every shared type (Map, Array, XML,
// subdocuments) integrates and re-encodes exactly; only text has an editing
// API.
//
// It is pure and deterministic: no goroutines, no I/O, no clock, no
// randomness. A *Doc is not safe for concurrent use; one goroutine owns it.
//
// # How it is built
//
// The algorithms are Yjs's, step for step, because the encoded state depends
// on where items are split and merged; the data layout is not. Items live in
// one slice and refer to each other by index; a run of characters is one
// item until an edit splits it, and its text is a range of one byte buffer
// holding every string (UTF-8, with lengths kept in UTF-16 units as Yjs
// counts them). Each client's structs are found by binary search over their
// start clocks; positions in a text are found through a B+ tree of item
// lengths (posindex.go) instead of a walk.
//
// # Where it differs from Yjs
//
// Only for input Yjs itself would not produce, or for Yjs behaviour that is
// not a function of the updates:
//   - Updates are decoded and checked whole before anything is applied; a
//     bad one changes nothing (Yjs may apply part of it, then throw).
//     Rejected as malformed: truncation, trailing bytes, overlong var ints,
//     numbers beyond what JS holds exactly (2^53), clocks beyond 2^32-1,
//     structs of length zero, an item pointing at a later clock of its own
//     client or with the same unit as left and right origin, unknown content
//     or type refs, JSON that JSON.parse rejects,
//     invalid UTF-8 (lib0 decodes strings with a fatal TextDecoder).
//   - After a remote transaction, Yjs's Y.Text objects delete the formatting
//     marks it made redundant, in a second transaction of their own
//     (cleanupYTextAfterTransaction). Nested Y.Text and Y.XmlText are such
//     objects in every Yjs doc, and a Doc does the same for them (returning
//     both transactions' changes as one update). A root is one only in a
//     Yjs doc that called getText on it; a Doc's roots never are, as on a
//     server that never asks, so that GetText, a read, changes nothing.
//   - Text.Insert and Text.Delete behave as on a Y.Text that existed before
//     its content arrived. Yjs gives a root that an update created and that
//     was named a Y.Text only later no formatting flag, so on formatted text
//     it can place a deletion's cleanup differently.
//   - Pending structs are kept in v1 instead of v2; the only difference is
//     that JSON values with lone surrogates or "__proto__" keys, which the
//     v2 round trip would alter, stay as they are.
package crdt

// Options configures a Doc.
type Options struct {
	// ClientID is the client id of local edits (Yjs: up to 53 bits). The
	// caller picks it; two peers must never share one.
	ClientID uint64
	// DisableGC keeps deleted content, as a Yjs doc with gc: false. The zero
	// value garbage-collects, as a Yjs doc with gc: true.
	DisableGC bool
}

// Doc is a Yjs document: a struct store, the shared types built from it,
// pending structs and deletes whose dependencies are missing. It is not safe
// for concurrent use.
type Doc struct {
	clientID uint64
	gc       bool

	// items is the arena of structs (Items and GC structs); index 0 is
	// unused so that 0 means "none". Items refer to each other by index.
	items     []item
	freeItems []int32 // arena slots of structs merged away, for reuse
	// text holds the UTF-8 bytes of every string content, contiguous, so
	// that an item's string is a range of it and typing extends a run.
	text []byte
	// deadText counts bytes of text no item refers to any more.
	deadText int
	// ext holds contents other than strings, deleted and types.
	ext []extContent
	// types holds the shared types; index 0 is unused.
	types []ytype
	roots map[string]int32

	clients   []clientStructs
	clientIdx map[uint64]uint32
	recent    [2]recentClient // the last clients looked up in clientIdx

	// keys interns map keys (parentSub); items hold their index.
	keys   []string
	keyIdx map[string]int32

	pendingStructs *pendingStructs
	pendingDs      *deleteSet

	tx      *Transaction
	txPool  *Transaction // the last finished transaction, reused
	txEpoch uint64       // numbers transactions; see clientStructs.txEpoch
	texts   map[int32]*Text

	// Scratch sets of the YATA conflict loop, kept to avoid allocations.
	scratchA, scratchB itemSet
}

// itemSet is a small set of item indices: a slice, and a map once large.
type itemSet struct {
	list []int32
	m    map[int32]struct{}
}

func (s *itemSet) clear() {
	s.list = s.list[:0]
	s.m = nil
}

func (s *itemSet) add(x int32) {
	if s.m != nil {
		s.m[x] = struct{}{}
		return
	}
	s.list = append(s.list, x)
	if len(s.list) > 32 {
		s.m = make(map[int32]struct{}, 64)
		for _, y := range s.list {
			s.m[y] = struct{}{}
		}
	}
}

func (s *itemSet) has(x int32) bool {
	if s.m != nil {
		_, ok := s.m[x]
		return ok
	}
	for _, y := range s.list {
		if y == x {
			return true
		}
	}
	return false
}

type recentClient struct {
	id uint64
	ci uint32
	ok bool
}

// pendingStructs are structs that could not be integrated yet, kept as an
// encoded update the way Yjs keeps them, with the lowest missing clock of
// each client they wait for.
type pendingStructs struct {
	missing map[uint64]uint64
	update  []byte
}

// NewDoc returns an empty document. It reserves little: a server holds a
// Doc for every open room, most of them small, and the arena grows once per
// update anyway.
func NewDoc(opts Options) *Doc {
	d := &Doc{
		clientID: opts.ClientID,
		gc:       !opts.DisableGC,
		// Index 0 is the null entry of both arenas. No room reserved beyond
		// it: a server holds many documents that get few items (a typist
		// at the end of a text makes one run), and append grows the rest.
		items:     make([]item, 1),
		types:     make([]ytype, 1),
		roots:     map[string]int32{},
		clientIdx: map[uint64]uint32{},
		keys:      []string{""},
		keyIdx:    map[string]int32{},
	}
	return d
}

// ClientID returns the client id used for local edits. Like Yjs, the doc
// picks a new one (deterministically) when a transaction that applied a
// remote update added structs under its own id.
func (d *Doc) ClientID() uint64 { return d.clientID }

// HasPending reports whether structs or deletes wait for updates they depend
// on.
func (d *Doc) HasPending() bool { return d.pendingStructs != nil || d.pendingDs != nil }

// EncodePending returns the pending structs and deletes as one v1 update, nil
// when there are none. A server stores it: what a peer sent is not in the
// changes a transaction emits until its dependencies arrive, and they may
// arrive after a restart.
func (d *Doc) EncodePending() []byte {
	if !d.HasPending() {
		return nil
	}
	var parts []*decodedUpdate
	if d.pendingStructs != nil {
		pu, err := decodeUpdate(d.pendingStructs.update)
		if err != nil {
			panic("crdt: pending update does not decode: " + err.Error())
		}
		parts = append(parts, pu)
	}
	if d.pendingDs != nil {
		parts = append(parts, &decodedUpdate{ds: d.pendingDs})
	}
	return mergeUpdates(parts).encode()
}

// clientIndexOf returns the index of client, or false when it has no
// entry. Integration asks for the same one or two clients over and over:
// the last two answers are kept in front of the map.
func (d *Doc) clientIndexOf(client uint64) (uint32, bool) {
	if d.recent[0].ok && d.recent[0].id == client {
		return d.recent[0].ci, true
	}
	if d.recent[1].ok && d.recent[1].id == client {
		d.recent[0], d.recent[1] = d.recent[1], d.recent[0]
		return d.recent[0].ci, true
	}
	ci, ok := d.clientIdx[client]
	if ok {
		d.recent[1] = d.recent[0]
		d.recent[0] = recentClient{id: client, ci: ci, ok: true}
	}
	return ci, ok
}

// clientIndex returns the index of client, creating an empty entry.
func (d *Doc) clientIndex(client uint64) uint32 {
	if ci, ok := d.clientIndexOf(client); ok {
		return ci
	}
	ci := uint32(len(d.clients))
	d.clients = append(d.clients, clientStructs{id: client})
	d.clientIdx[client] = ci
	return ci
}

// internKey returns the index of a map key.
func (d *Doc) internKey(k string) int32 {
	if i, ok := d.keyIdx[k]; ok {
		return i
	}
	i := int32(len(d.keys))
	d.keys = append(d.keys, k)
	d.keyIdx[k] = i
	return i
}

// root returns the root type of that name, creating it like Yjs's doc.get.
func (d *Doc) root(name string) int32 {
	if t, ok := d.roots[name]; ok {
		return t
	}
	t := d.newType(typeUnknownRoot, "")
	d.types[t].rootName = name
	d.roots[name] = t
	return t
}

func (d *Doc) newType(ref uint8, name string) int32 {
	d.types = append(d.types, ytype{ref: ref, name: name})
	return int32(len(d.types) - 1)
}

// Type refs as Yjs numbers them in ContentType.
const (
	typeArray       = 0
	typeMap         = 1
	typeText        = 2
	typeXMLElement  = 3
	typeXMLFragment = 4
	typeXMLHook     = 5
	typeXMLText     = 6
	typeUnknownRoot = 255 // a root created by name whose kind nobody named
)

// ytype is a shared type: a sequence of items (start, linked by left/right)
// and a map from keys to the newest item of each key.
type ytype struct {
	ref      uint8
	name     string // XmlElement node name or XmlHook hook name
	rootName string // name of a root type
	item     int32  // the Item whose content is this type; 0 for roots
	start    int32
	entries  map[int32]int32 // key index -> newest item of that key
	length   int             // countable, undeleted units of the sequence
	// hasFormatting is set once a Format item was integrated; local text
	// edits then take Yjs's slow path that respects formatting attributes.
	hasFormatting bool
	// yHasFormatting is Yjs's _hasFormatting of the type's object. With it,
	// a nested Y.Text cleans up formatting after remote transactions.
	yHasFormatting bool
	// changedEpoch is the transaction that last recorded this type as
	// changed (transaction.changed in Yjs).
	changedEpoch uint64
	index        *posIndex // position index, built on first positional edit
}

func (t *ytype) mapGet(key int32) int32 {
	if t.entries == nil {
		return 0
	}
	return t.entries[key]
}

func (t *ytype) mapSet(key, it int32) {
	if t.entries == nil {
		t.entries = map[int32]int32{}
	}
	t.entries[key] = it
}
