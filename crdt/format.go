package crdt

// Formatting cleanup. After a remote transaction that changed a Y.Text with
// formatting, Yjs deletes the format items the transaction made redundant,
// in a transaction of its own (YText._callObserver sets
// _needFormattingCleanup; cleanupYTextAfterTransaction does the work).
// Every Yjs document does this for its nested Y.Text and Y.XmlText types
// (their objects are YText by construction), so a Doc does too: its encoded
// state must stay what a Yjs server's is. A Yjs root becomes a YText only
// when a program calls getText on it; a server never does, and a Doc's roots
// never clean up, whether or not GetText was called, so that reading a text
// does not change what later updates do.

// cleansFormatting reports whether Yjs would hold type t as a YText (or
// YXmlText) that cleans up formatting: a nested Text or XmlText.
func (t *ytype) cleansFormatting() bool {
	return t.item != 0 && (t.ref == typeText || t.ref == typeXMLText)
}

// needsFormattingCleanup is the _needFormattingCleanup flag: a changed,
// undeleted Y.Text of the transaction has formatting.
func (d *Doc) needsFormattingCleanup(tx *Transaction) bool {
	for _, ti := range tx.changed {
		t := &d.types[ti]
		if !t.cleansFormatting() || !t.yHasFormatting {
			continue
		}
		if t.item == 0 || !d.items[t.item].deleted() {
			return true
		}
	}
	return false
}

// cleanupFormattingAfter is cleanupYTextAfterTransaction: the types that
// got new format items are cleaned up whole, the places where content was
// deleted are cleaned up locally. It returns the cleanup transaction, whose
// garbage collection the caller runs after tx's.
func (d *Doc) cleanupFormattingAfter(tx *Transaction) *Transaction {
	var full []int32 // needFullCleanup, in insertion order
	has := func(ti int32) bool {
		for _, x := range full {
			if x == ti {
				return true
			}
		}
		return false
	}
	add := func(ti int32) {
		if !has(ti) {
			full = append(full, ti)
		}
	}
	for _, ci := range tx.touched {
		before := d.clients[ci].txBefore
		after := d.state(ci)
		if after == before {
			continue
		}
		// Yjs passes the state after the transaction as the length of the
		// range, so the range runs past the end; only the start matters.
		d.iterateStructs(tx, ci, uint64(before), uint64(after), func(ii int32) {
			it := &d.items[ii]
			if !it.deleted() && it.kind == kindFormat {
				add(it.parent)
			}
		})
	}
	d.txEpoch++
	ctx := &Transaction{doc: d, epoch: d.txEpoch, local: true}
	for _, e := range tx.ds.entries {
		ci, ok := d.clientIdx[e.client]
		if !ok {
			continue
		}
		state := uint64(d.state(ci))
		for _, del := range e.ranges {
			if del.clock >= state {
				break
			}
			d.iterateStructs(tx, ci, del.clock, del.length, func(ii int32) {
				it := &d.items[ii]
				if it.isGC() {
					return
				}
				p := it.parent
				if !d.types[p].yHasFormatting || has(p) {
					return
				}
				if it.kind == kindFormat {
					add(p)
				} else {
					d.cleanupContextlessFormattingGap(ctx, ii)
				}
			})
		}
	}
	for _, ti := range full {
		d.cleanupTextFormatting(ctx, ti)
	}
	ctx.done = true
	return ctx
}

// iterateStructs is Yjs's iterateStructs: f for every struct holding clocks
// [start, start+length) of client ci, splitting Items at both ends.
func (d *Doc) iterateStructs(tx *Transaction, ci uint32, start, length uint64, f func(ii int32)) {
	if length == 0 {
		return
	}
	end := start + length
	p := d.findCleanStart(tx, ci, uint32(start))
	for {
		ii := d.clients[ci].at(p)
		if it := &d.items[ii]; end < uint64(it.clock)+uint64(it.length) {
			d.findCleanStart(tx, ci, uint32(end))
		}
		f(ii)
		it := &d.items[ii]
		next := it.clock + it.length
		if uint64(next) >= end || next >= d.state(ci) {
			return
		}
		p = d.clients[ci].find(next)
	}
}

// cleanupContextlessFormattingGap deletes, in the run of deleted and
// non-countable items around a deletion, every format item that repeats a
// key set further right.
func (d *Doc) cleanupContextlessFormattingGap(tx *Transaction, ii int32) {
	for ii != 0 {
		r := d.items[ii].right
		if r == 0 || (!d.items[r].deleted() && d.items[r].countable()) {
			break
		}
		ii = r
	}
	var seen []string
	for ii != 0 {
		it := &d.items[ii]
		if !it.deleted() && it.countable() {
			break
		}
		if !it.deleted() && it.kind == kindFormat {
			key := d.ext[it.content].key
			dup := false
			for _, k := range seen {
				if k == key {
					dup = true
					break
				}
			}
			if dup {
				d.deleteItem(tx, ii)
			} else {
				seen = append(seen, key)
			}
		}
		ii = d.items[ii].left
	}
}

// cleanupTextFormatting is cleanupYTextFormatting: walk the whole type and
// clean up the formatting gap before every piece of content.
func (d *Doc) cleanupTextFormatting(tx *Transaction, ti int32) {
	start := d.types[ti].start
	startAttrs := &attrMap{}
	currAttrs := startAttrs.clone()
	for end := d.types[ti].start; end != 0; end = d.items[end].right {
		it := &d.items[end]
		if it.deleted() {
			continue
		}
		if it.kind == kindFormat {
			x := &d.ext[it.content]
			currAttrs.update(x.key, x.val)
			continue
		}
		d.cleanupFormattingGap(tx, start, end, startAttrs, currAttrs)
		startAttrs = currAttrs.clone()
		start = end
	}
}
