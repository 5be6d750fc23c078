package crdt

import (
	"errors"
	"fmt"
	"slices"
)

// Transaction groups changes to a Doc; at its end deleted content is
// collected, structs are merged, and the update describing the changes is
// encoded, as at the end of a Yjs transaction. A Transaction is only valid
// inside the function passed to Doc.Transact.
type Transaction struct {
	doc   *Doc
	epoch uint64
	// ds holds the deletions made by the transaction.
	ds deleteSet
	// touched lists the clients whose state grew, in order.
	touched []uint32
	// mergeStructs are IDs of structs split during the transaction (or
	// children of deleted types) that may merge with their neighbours.
	mergeStructs []idRef
	// changed lists the types whose content changed (transaction.changed).
	changed []int32
	local   bool
	done    bool
}

// ErrNestedTransaction is returned by Transact when called from inside the
// function of another Transact on the same document.
var ErrNestedTransaction = errors.New("crdt: transaction already running on this document")

// errTxDone is returned when a Transaction is used after its Transact ended.
var errTxDone = errors.New("crdt: transaction is finished")

func (d *Doc) beginTx() *Transaction {
	tx := d.txPool
	d.txPool = nil
	if tx == nil {
		tx = &Transaction{doc: d}
	} else {
		tx.ds.entries = tx.ds.entries[:0]
		tx.ds.index = nil
		tx.ds.last = 0
		tx.touched = tx.touched[:0]
		tx.mergeStructs = tx.mergeStructs[:0]
		tx.changed = tx.changed[:0]
	}
	d.txEpoch++
	tx.epoch = d.txEpoch
	tx.local = true
	tx.done = false
	d.tx = tx
	return tx
}

// touch records the state of client ci before the transaction adds to it.
func (tx *Transaction) touch(d *Doc, ci uint32) {
	c := &d.clients[ci]
	if c.txEpoch != tx.epoch {
		c.txEpoch = tx.epoch
		c.txBefore = d.state(ci)
		tx.touched = append(tx.touched, ci)
	}
}

// addChangedType is addChangedTypeToTransaction: a type counts as changed
// unless it was created in this transaction or is deleted.
func (tx *Transaction) addChangedType(d *Doc, ti int32) {
	t := &d.types[ti]
	if t.changedEpoch == tx.epoch {
		return
	}
	if t.item != 0 {
		it := &d.items[t.item]
		if it.clock >= tx.beforeClock(it.client) || it.deleted() {
			return
		}
	}
	t.changedEpoch = tx.epoch
	tx.changed = append(tx.changed, ti)
}

// beforeClock is transaction.beforeState for client index ci.
func (tx *Transaction) beforeClock(ci uint32) uint32 {
	c := &tx.doc.clients[ci]
	if c.txEpoch == tx.epoch {
		return c.txBefore
	}
	return tx.doc.state(ci)
}

// Transact runs fn as one transaction and returns the v1 update of
// everything it changed (nil if nothing), the update Yjs's doc 'update' event
// carries. When the transaction applied remote updates that leave redundant
// formatting in a nested Y.Text/Y.XmlText, Yjs cleans it up in a second
// transaction and emits a second update; the update returned then covers
// both, as Y.mergeUpdates would merge them. Changes cannot be rolled back:
// when fn returns an error, what it changed before stays, and the update
// describing it is returned with the error.
func (d *Doc) Transact(fn func(tx *Transaction) error) (changed []byte, err error) {
	return d.transact(fn, true)
}

// transact is Transact; encode false skips encoding the update, as a Yjs
// doc without 'update' listeners does.
func (d *Doc) transact(fn func(tx *Transaction) error, encode bool) (changed []byte, err error) {
	if d.tx != nil {
		return nil, ErrNestedTransaction
	}
	tx := d.beginTx()
	defer func() {
		if tx.done {
			return
		}
		// fn panicked: leave the document usable, then let the panic go on.
		d.commit(tx, encode)
	}()
	err = fn(tx)
	changed = d.commit(tx, encode)
	return changed, err
}

// ApplyUpdate applies a v1 update and returns the v1 update describing what
// it changed (what Yjs's doc.on('update') emits for the transaction), or nil
// when it changed nothing. The whole update is decoded and validated first:
// on error the document is unchanged. Structs whose dependencies are missing
// are kept pending and integrated when those arrive.
func (d *Doc) ApplyUpdate(update []byte) (changed []byte, err error) {
	u, err := decodeUpdate(update)
	if err != nil {
		return nil, fmt.Errorf("apply update: %w", err)
	}
	if d.tx != nil {
		return nil, ErrNestedTransaction
	}
	return d.Transact(func(tx *Transaction) error {
		d.readUpdate(tx, u)
		return nil
	})
}

// ApplyUpdate applies a v1 update inside the transaction. A malformed update
// returns an error and none of it is applied; the transaction goes on.
func (tx *Transaction) ApplyUpdate(update []byte) error {
	if tx.done {
		return errTxDone
	}
	u, err := decodeUpdate(update)
	if err != nil {
		return fmt.Errorf("apply update: %w", err)
	}
	tx.doc.readUpdate(tx, u)
	return nil
}

// commit is cleanupTransactions: collect garbage, merge structs, and encode
// the transaction's update.
func (d *Doc) commit(tx *Transaction, encode bool) []byte {
	tx.done = true
	d.tx = nil
	ds := &tx.ds
	ds.sortAndMerge()
	// A remote transaction that touched a formatted Y.Text makes Yjs clean
	// up formatting in a second transaction, before this one's garbage
	// collection.
	var cleanup *Transaction
	if !tx.local && d.needsFormattingCleanup(tx) {
		cleanup = d.cleanupFormattingAfter(tx)
	}
	if d.gc {
		d.tryGcDeleteSet(ds)
	}
	d.tryMergeDeleteSet(ds)
	// Merge the new structs of every client that got some, right to left.
	for _, ci := range tx.touched {
		before := d.clients[ci].txBefore
		if d.state(ci) == before {
			continue
		}
		// From the last struct down to the first new one (Yjs: indices
		// down to max(findIndexSS(beforeClock), 1)).
		c := &d.clients[ci]
		var firstStart uint32
		if before > 0 {
			firstStart = c.startOf(c.find(before))
		}
		p := c.lastPos()
		for c.startOf(p) > 0 && c.startOf(p) >= firstStart {
			_, survivor := d.tryToMergeWithLefts(ci, p)
			var ok bool
			if p, ok = c.prev(survivor); !ok {
				break
			}
		}
	}
	d.mergeSplitStructs(tx)
	if !tx.local {
		if ci, ok := d.clientIdx[d.clientID]; ok && d.clients[ci].txEpoch == tx.epoch {
			// A remote update used our client id: pick another, as Yjs does.
			d.clientID = d.nextClientID()
		}
	}
	var out []byte
	if encode && (!ds.empty() || len(tx.touched) > 0) {
		out = d.encodeTxUpdate(tx, nil)
	}
	if cleanup != nil {
		// The cleanup transaction only deletes. Yjs emits its update after
		// this one's; a Doc returns both as one update, as mergeUpdates
		// would merge them.
		cds := &cleanup.ds
		cds.sortAndMerge()
		if d.gc {
			d.tryGcDeleteSet(cds)
		}
		d.tryMergeDeleteSet(cds)
		d.mergeSplitStructs(cleanup)
		if encode && !cds.empty() {
			out = d.encodeTxUpdate(tx, mergeDeleteSets([]*deleteSet{&tx.ds, cds}))
		}
	}
	d.compactText()
	d.txPool = tx
	return out
}

// mergeSplitStructs tries to merge the structs split during the
// transaction back with their neighbours (the _mergeStructs loop).
func (d *Doc) mergeSplitStructs(tx *Transaction) {
	for i := len(tx.mergeStructs) - 1; i >= 0; i-- {
		id := tx.mergeStructs[i]
		ci := id.ci()
		c := &d.clients[ci]
		if n, ok := c.next(c.find(id.clock)); ok {
			if merged, _ := d.tryToMergeWithLefts(ci, n); merged > 1 {
				continue
			}
		}
		if p := c.find(id.clock); c.startOf(p) > 0 {
			d.tryToMergeWithLefts(ci, p)
		}
	}
}

// nextClientID derives a fresh 32-bit client id (Yjs draws a random uint32)
// deterministically from the current one, skipping ids the store holds.
func (d *Doc) nextClientID() uint64 {
	x := d.clientID
	for {
		// splitmix64 step: deterministic, well spread.
		x += 0x9E3779B97F4A7C15
		z := x
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
		id := z & 0xFFFFFFFF
		if _, used := d.clientIdx[id]; !used {
			return id
		}
	}
}

// encodeTxUpdate is writeUpdateMessageFromTransaction: the structs of every
// client from its state before the transaction, and the deletions (ds, or
// the transaction's when nil).
func (d *Doc) encodeTxUpdate(tx *Transaction, ds *deleteSet) []byte {
	e := &encoder{buf: make([]byte, 0, 128)}
	clients := tx.touched
	if len(clients) > 1 {
		clients = slices.Clone(clients)
		slices.SortFunc(clients, func(a, b uint32) int { return cmpDesc(d.clients[a].id, d.clients[b].id) })
	}
	e.writeVarUint(uint64(len(clients)))
	for _, ci := range clients {
		d.writeStructs(e, ci, d.clients[ci].txBefore)
	}
	if ds == nil {
		ds = &tx.ds
	}
	ds.write(e)
	return e.bytes()
}

// writeStructs is Yjs's writeStructs: the structs of client ci from clock
// on, the first one cut at clock.
func (d *Doc) writeStructs(e *encoder, ci uint32, clock uint32) {
	c := &d.clients[ci]
	p := c.find(clock)
	count := c.n - p.i
	for _, b := range c.blocks[:p.b] {
		count -= len(b.items)
	}
	e.writeVarUint(uint64(count))
	e.writeVarUint(c.id)
	e.writeVarUint(uint64(clock))
	firstIt := &d.items[c.at(p)]
	d.writeItem(e, firstIt, clock-firstIt.clock)
	for q, ok := c.next(p); ok; q, ok = c.next(q) {
		d.writeItem(e, &d.items[c.at(q)], 0)
	}
}

// writeItem is Item.write / GC.write from offset units on.
func (d *Doc) writeItem(e *encoder, it *item, offset uint32) {
	if it.kind == kindGC {
		e.writeUint8(kindGC)
		e.writeVarUint(uint64(it.length - offset))
		return
	}
	origin := it.origin
	if offset > 0 {
		origin = mkRef(it.client, it.clock+offset-1)
	}
	info := it.kind
	if origin.valid() {
		info |= 0x80
	}
	if it.rorigin.valid() {
		info |= 0x40
	}
	if it.sub != 0 {
		info |= 0x20
	}
	e.writeUint8(info)
	if origin.valid() {
		e.writeVarUint(d.clients[origin.ci()].id)
		e.writeVarUint(uint64(origin.clock))
	}
	if it.rorigin.valid() {
		e.writeVarUint(d.clients[it.rorigin.ci()].id)
		e.writeVarUint(uint64(it.rorigin.clock))
	}
	if !origin.valid() && !it.rorigin.valid() {
		t := &d.types[it.parent]
		if t.item == 0 {
			e.writeVarUint(1)
			e.writeVarString(t.rootName)
		} else {
			p := &d.items[t.item]
			e.writeVarUint(0)
			e.writeVarUint(d.clients[p.client].id)
			e.writeVarUint(uint64(p.clock))
		}
		if it.sub != 0 {
			e.writeVarString(d.keys[it.sub])
		}
	}
	d.writeContent(e, it, offset)
}

// EncodeStateVector encodes the document's state vector as Yjs's
// encodeStateVector does.
func (d *Doc) EncodeStateVector() []byte {
	return d.StateVector().Encode()
}

// StateVector returns, per client, the next clock the document expects.
func (d *Doc) StateVector() StateVector {
	sv := make(StateVector, len(d.clients))
	for ci := range d.clients {
		if d.clients[ci].n > 0 {
			sv[d.clients[ci].id] = uint64(d.state(uint32(ci)))
		}
	}
	return sv
}

// EncodeStateAsUpdate is Y.encodeStateAsUpdate(doc, sv): the v1 update a
// peer with the encoded state vector sv lacks, byte-identical to Yjs's,
// pending structs and deletes included. A nil or empty sv means the whole
// state.
func (d *Doc) EncodeStateAsUpdate(encodedSV []byte) ([]byte, error) {
	sv := StateVector{}
	if len(encodedSV) > 0 {
		var err error
		if sv, err = DecodeStateVector(encodedSV); err != nil {
			return nil, fmt.Errorf("encode state as update: %w", err)
		}
	}
	e := &encoder{}
	d.writeClientsStructs(e, sv)
	d.deleteSetFromStore().write(e)
	update := e.bytes()
	if d.pendingDs == nil && d.pendingStructs == nil {
		return update, nil
	}
	// Yjs merges the pending structs and deletes into the result.
	state, err := decodeUpdate(update)
	if err != nil {
		return nil, fmt.Errorf("encode state as update: %w", err)
	}
	parts := []*decodedUpdate{state}
	if d.pendingDs != nil {
		parts = append(parts, &decodedUpdate{ds: d.pendingDs})
	}
	if d.pendingStructs != nil {
		pu, err := decodeUpdate(d.pendingStructs.update)
		if err != nil {
			return nil, fmt.Errorf("encode state as update: pending: %w", err)
		}
		parts = append(parts, diffUpdate(pu, sv))
	}
	return mergeUpdates(parts).encode(), nil
}

// writeClientsStructs is Yjs's writeClientsStructs: for every client with
// structs beyond sv, highest client first, its structs from sv on.
func (d *Doc) writeClientsStructs(e *encoder, sv StateVector) {
	type entry struct {
		ci    uint32
		clock uint32
	}
	var list []entry
	for ci := range d.clients {
		c := &d.clients[ci]
		if c.n == 0 {
			continue
		}
		clock, ok := sv[c.id]
		state := uint64(d.state(uint32(ci)))
		if !ok {
			clock = 0
		} else if state <= clock {
			continue
		}
		list = append(list, entry{uint32(ci), uint32(clock)})
	}
	slices.SortFunc(list, func(a, b entry) int { return cmpDesc(d.clients[a.ci].id, d.clients[b.ci].id) })
	e.writeVarUint(uint64(len(list)))
	for _, en := range list {
		d.writeStructs(e, en.ci, en.clock)
	}
}

// deleteSetFromStore is createDeleteSetFromStructStore: the deleted runs
// of every client's structs.
func (d *Doc) deleteSetFromStore() *deleteSet {
	ds := &deleteSet{}
	for ci := range d.clients {
		c := &d.clients[ci]
		var ranges []deleteRange
		inRun := false
		c.each(func(ii int32) {
			it := &d.items[ii]
			switch {
			case !it.deleted():
				inRun = false
			case inRun:
				ranges[len(ranges)-1].length += uint64(it.length)
			default:
				ranges = append(ranges, deleteRange{uint64(it.clock), uint64(it.length)})
				inRun = true
			}
		})
		if len(ranges) > 0 {
			ds.entry(c.id).ranges = ranges
		}
	}
	return ds
}
