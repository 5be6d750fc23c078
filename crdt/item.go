package crdt

// item is a struct of the store: a Yjs Item, or a GC struct when kind is
// kindGC. Items live in Doc.items and refer to each other by index (0 is
// none), which keeps them small and free of pointers for the Go collector.
type item struct {
	client  uint32 // index into Doc.clients
	clock   uint32
	length  uint32 // units: UTF-16 code units for strings
	origin  idRef  // the ID left of this item when it was inserted
	rorigin idRef  // the ID right of this item when it was inserted
	left    int32  // the item now to the left
	right   int32  // the item now to the right
	parent  int32  // the type this item belongs to
	sub     int32  // parentSub: key index in Doc.keys, 0 for sequence items
	content uint32 // string: offset in Doc.text; type: index in Doc.types; else index in Doc.ext
	clen    uint32 // string: byte length
	leaf    int32  // leaf of the parent's position index holding this item
	kind    uint8
	flags   uint8
}

const (
	flagDeleted   = 1 << 0
	flagCountable = 1 << 1
)

func (it *item) deleted() bool   { return it.flags&flagDeleted != 0 }
func (it *item) countable() bool { return it.flags&flagCountable != 0 }
func (it *item) isGC() bool      { return it.kind == kindGC }

// visibleLen is the room the item takes in its sequence.
func (it *item) visibleLen() int {
	if it.flags&(flagDeleted|flagCountable) == flagCountable && it.sub == 0 {
		return int(it.length)
	}
	return 0
}

func (it *item) lastID() idRef { return mkRef(it.client, it.clock+it.length-1) }
func (it *item) id() idRef     { return mkRef(it.client, it.clock) }

// newItem appends an item to the arena and returns its index.
func (d *Doc) newItem(it item) int32 {
	if n := len(d.freeItems); n > 0 {
		ii := d.freeItems[n-1]
		d.freeItems = d.freeItems[:n-1]
		d.items[ii] = it
		return ii
	}
	d.items = append(d.items, it)
	return int32(len(d.items) - 1)
}

// splitItem is Yjs's splitItem: it cuts the item after diff units and
// returns the new right part, which the caller puts into the struct store.
func (d *Doc) splitItem(tx *Transaction, leftIdx int32, diff uint32) int32 {
	left := &d.items[leftIdx]
	content, clen := d.spliceContent(left, diff)
	left = &d.items[leftIdx]
	right := item{
		client:  left.client,
		clock:   left.clock + diff,
		length:  left.length - diff,
		origin:  mkRef(left.client, left.clock+diff-1),
		rorigin: left.rorigin,
		left:    leftIdx,
		right:   left.right,
		parent:  left.parent,
		sub:     left.sub,
		content: content,
		clen:    clen,
		kind:    left.kind,
		flags:   left.flags,
	}
	ri := d.newItem(right)
	left = &d.items[leftIdx]
	left.right = ri
	r := &d.items[ri]
	if r.right != 0 {
		d.items[r.right].left = ri
	}
	tx.mergeStructs = append(tx.mergeStructs, r.id())
	if r.sub != 0 && r.right == 0 {
		d.types[r.parent].mapSet(r.sub, ri)
	}
	left.length = diff
	if ix := d.types[left.parent].index; ix != nil && left.sub == 0 {
		ix.split(d, leftIdx, ri)
	}
	return ri
}

// mergeWith is Item.mergeWith: it merges right into left when right
// continues left in every respect, and reports whether it did.
func (d *Doc) mergeWith(li, ri int32) bool {
	left, right := &d.items[li], &d.items[ri]
	if left.kind == kindGC || right.kind == kindGC {
		if left.kind == kindGC && right.kind == kindGC {
			left.length += right.length
			return true
		}
		return false
	}
	if right.origin != left.lastID() || left.right != ri || left.rorigin != right.rorigin ||
		left.client != right.client || left.clock+left.length != right.clock ||
		left.deleted() != right.deleted() || left.kind != right.kind {
		return false
	}
	if !d.mergeContent(left, right) {
		return false
	}
	left.right = right.right
	if left.right != 0 {
		d.items[left.right].left = li
	}
	left.length += right.length
	if ix := d.types[left.parent].index; ix != nil && left.sub == 0 {
		ix.merge(d, li, ri)
	}
	return true
}

// deleteItem is Item.delete.
func (d *Doc) deleteItem(tx *Transaction, ii int32) {
	it := &d.items[ii]
	if it.deleted() {
		return
	}
	t := &d.types[it.parent]
	if it.countable() && it.sub == 0 {
		t.length -= int(it.length)
	}
	it.flags |= flagDeleted
	if t.index != nil && it.sub == 0 && it.countable() {
		t.index.setLen(d, ii, 0)
	}
	tx.ds.add(d.clients[it.client].id, uint64(it.clock), uint64(it.length))
	tx.addChangedType(d, it.parent)
	if it.kind == kindType {
		d.deleteTypeContent(tx, int32(it.content))
	}
}

// deleteTypeContent is ContentType.delete: it deletes every child of the
// type; children deleted earlier are remembered for merging.
func (d *Doc) deleteTypeContent(tx *Transaction, ti int32) {
	for c := d.types[ti].start; c != 0; c = d.items[c].right {
		d.deleteOrRemember(tx, c)
	}
	for _, c := range d.types[ti].entries {
		d.deleteOrRemember(tx, c)
	}
}

func (d *Doc) deleteOrRemember(tx *Transaction, c int32) {
	it := &d.items[c]
	if !it.deleted() {
		d.deleteItem(tx, c)
	} else if it.clock < tx.beforeClock(it.client) {
		// Deleted in an earlier transaction: it will be collected with its
		// parent, and may merge then.
		tx.mergeStructs = append(tx.mergeStructs, it.id())
	}
}

// gcItem is Item.gc: the content of a deleted item is dropped. An item
// whose parent type is collected with it becomes a GC struct.
func (d *Doc) gcItem(ii int32, parentGCd bool) {
	it := &d.items[ii]
	if it.kind == kindType {
		d.gcType(int32(it.content))
		it = &d.items[ii]
	}
	if it.kind == kindString {
		d.deadText += int(it.clen)
	}
	if parentGCd {
		*it = item{client: it.client, clock: it.clock, length: it.length, kind: kindGC, flags: flagDeleted}
		return
	}
	it.kind = kindDeleted
	it.content, it.clen = 0, 0
	it.flags &^= flagCountable
}

// gcType is ContentType.gc: every child becomes a GC struct.
func (d *Doc) gcType(ti int32) {
	t := &d.types[ti]
	for c := t.start; c != 0; {
		next := d.items[c].right
		d.gcItem(c, true)
		c = next
	}
	entries := t.entries
	t.start, t.entries, t.index = 0, nil, nil
	for _, c := range entries {
		for c != 0 {
			next := d.items[c].left
			d.gcItem(c, true)
			c = next
		}
	}
}
