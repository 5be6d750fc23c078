package crdt

import (
	"slices"
)

// readUpdate is Yjs's readUpdateV2 inside a transaction: integrate the
// structs that can be, keep the rest pending, apply the delete set (keeping
// deletes of unknown structs pending), and retry pending structs when what
// they waited for arrived.
func (d *Doc) readUpdate(tx *Transaction, u *decodedUpdate) {
	tx.local = false
	retry := false
	rest := d.integrateStructs(tx, u)
	if p := d.pendingStructs; p != nil {
		for client, clock := range p.missing {
			if clock < d.stateOf(client) {
				retry = true
				break
			}
		}
		if rest != nil {
			for client, clock := range rest.missing {
				if m, ok := p.missing[client]; !ok || m > clock {
					p.missing[client] = clock
				}
			}
			old, err := decodeUpdate(p.update)
			if err != nil {
				panic("crdt: pending update does not decode: " + err.Error())
			}
			p.update = mergeUpdates([]*decodedUpdate{old, rest.update}).encode()
		}
	} else if rest != nil {
		d.pendingStructs = &pendingStructs{missing: rest.missing, update: rest.update.encode()}
	}
	dsRest := d.applyDeleteSet(tx, u.ds)
	if d.pendingDs != nil {
		dsRest2 := d.applyDeleteSet(tx, d.pendingDs)
		switch {
		case dsRest != nil && dsRest2 != nil:
			d.pendingDs = mergeDeleteSets([]*deleteSet{dsRest, dsRest2})
		case dsRest != nil:
			d.pendingDs = dsRest
		default:
			d.pendingDs = dsRest2
		}
	} else {
		d.pendingDs = dsRest
	}
	if retry {
		upd := d.pendingStructs.update
		d.pendingStructs = nil
		pu, err := decodeUpdate(upd)
		if err != nil {
			panic("crdt: pending update does not decode: " + err.Error())
		}
		d.readUpdate(tx, pu)
	}
}

// restStructs is what integrateStructs could not integrate.
type restStructs struct {
	missing map[uint64]uint64
	update  *decodedUpdate
}

type refCursor struct {
	i    int
	refs []ref
}

// integrateStructs is Yjs's integrateStructs: integrate the structs of the
// highest client first; when a struct depends on a missing struct of another
// client, continue with that client (a stack); structs whose dependencies
// are not in this update are returned as rest.
func (d *Doc) integrateStructs(tx *Transaction, u *decodedUpdate) *restStructs {
	clientRefs := make(map[uint64]*refCursor, len(u.segments))
	nrefs, nbytes := 0, 0
	for _, s := range u.segments {
		clientRefs[s.client] = &refCursor{refs: s.refs} // a later run of a client replaces an earlier one, as in Yjs
		nrefs += len(s.refs)
		for i := range s.refs {
			nbytes += len(s.refs[i].str)
		}
	}
	// Grow the arenas once for a large update instead of doubling.
	if nrefs > 64 {
		d.items = slices.Grow(d.items, nrefs)
		d.text = slices.Grow(d.text, nbytes)
	}
	ids := make([]uint64, 0, len(clientRefs))
	for c := range clientRefs {
		ids = append(ids, c)
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return nil
	}
	nextTarget := func() *refCursor {
		for len(ids) > 0 {
			t := clientRefs[ids[len(ids)-1]]
			if t.i < len(t.refs) {
				return t
			}
			ids = ids[:len(ids)-1]
		}
		return nil
	}
	cur := nextTarget()
	if cur == nil {
		return nil
	}
	var restClients map[uint64][]ref
	missingSV := map[uint64]uint64{}
	updateMissing := func(client, clock uint64) {
		if m, ok := missingSV[client]; !ok || m > clock {
			missingSV[client] = clock
		}
	}
	var stack []*ref
	addStackToRest := func() {
		if restClients == nil {
			restClients = map[uint64][]ref{}
		}
		for _, it := range stack {
			client := it.client
			if cr, ok := clientRefs[client]; ok {
				cr.i--
				restClients[client] = cr.refs[cr.i:]
				delete(clientRefs, client)
				cr.i, cr.refs = 0, nil
			} else {
				restClients[client] = []ref{*it}
			}
			ids = slices.DeleteFunc(ids, func(c uint64) bool { return c == client })
		}
		stack = stack[:0]
	}
	head := &cur.refs[cur.i]
	cur.i++
	for {
		if head.kind != kindSkip {
			local := d.stateOf(head.client)
			if head.clock > local {
				stack = append(stack, head)
				updateMissing(head.client, head.clock-1)
				addStackToRest()
			} else if missing, isMissing := d.getMissing(tx, head); isMissing {
				stack = append(stack, head)
				cr := clientRefs[missing]
				if cr == nil || cr.i == len(cr.refs) {
					updateMissing(missing, d.stateOf(missing))
					addStackToRest()
				} else {
					head = &cr.refs[cr.i]
					cr.i++
					continue
				}
			} else if offset := local - head.clock; offset < head.length {
				d.integrateRef(tx, head, offset)
			}
		}
		switch {
		case len(stack) > 0:
			head = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		case cur != nil && cur.i < len(cur.refs):
			head = &cur.refs[cur.i]
			cur.i++
		default:
			cur = nextTarget()
			if cur == nil {
				goto done
			}
			head = &cur.refs[cur.i]
			cur.i++
		}
	}
done:
	if len(restClients) == 0 {
		return nil
	}
	clients := make([]uint64, 0, len(restClients))
	for c := range restClients {
		clients = append(clients, c)
	}
	slices.SortFunc(clients, cmpDesc)
	ru := &decodedUpdate{}
	for _, c := range clients {
		ru.segments = append(ru.segments, segment{client: c, refs: restClients[c]})
	}
	return &restStructs{missing: missingSV, update: ru}
}

// getMissing is Item.getMissing: the client of a dependency (origin, right
// origin, parent) this update and the store lack, or else it resolves the
// neighbours and the parent of r, splitting the items they point into.
func (d *Doc) getMissing(tx *Transaction, r *ref) (uint64, bool) {
	if r.kind == kindGC || r.kind == kindSkip {
		return 0, false
	}
	if o := r.origin; r.hasOrig && o.client != r.client && o.clock >= d.stateOf(o.client) {
		return o.client, true
	}
	if o := r.rorigin; r.hasROrig && o.client != r.client && o.clock >= d.stateOf(o.client) {
		return o.client, true
	}
	if r.parent == parentID && r.parentID.client != r.client && r.parentID.clock >= d.stateOf(r.parentID.client) {
		return r.parentID.client, true
	}
	r.left, r.right, r.ptype, r.psub = 0, 0, 0, 0
	if r.hasOrig {
		ci, _ := d.clientIndexOf(r.origin.client)
		r.left = d.getItemCleanEnd(tx, ci, uint32(r.origin.clock))
		l := &d.items[r.left]
		r.origin.clock = uint64(l.clock + l.length - 1)
	}
	if r.hasROrig {
		ci, _ := d.clientIndexOf(r.rorigin.client)
		r.right = d.getItemCleanStart(tx, ci, uint32(r.rorigin.clock))
		r.rorigin.clock = uint64(d.items[r.right].clock)
	}
	switch {
	case (r.left != 0 && d.items[r.left].isGC()) || (r.right != 0 && d.items[r.right].isGC()):
		// A neighbour was garbage-collected: so was this item's parent.
	case r.parent == parentNone:
		if r.left != 0 {
			r.ptype, r.psub = d.items[r.left].parent, d.items[r.left].sub
		} else if r.right != 0 {
			r.ptype, r.psub = d.items[r.right].parent, d.items[r.right].sub
		}
	case r.parent == parentID:
		ci, _ := d.clientIndexOf(r.parentID.client)
		p := &d.items[d.getItem(ci, uint32(r.parentID.clock))]
		if p.kind == kindType {
			r.ptype = int32(p.content)
		}
		if r.hasSub {
			r.psub = d.internKey(r.sub)
		}
	default: // parentKey
		r.ptype = d.root(r.key)
		if r.hasSub {
			r.psub = d.internKey(r.sub)
		}
	}
	return 0, false
}

// integrateRef is GC/Item.integrate for a decoded struct of which the first
// offset units are already known.
func (d *Doc) integrateRef(tx *Transaction, r *ref, offset uint64) {
	ci := d.clientIndex(r.client)
	tx.touch(d, ci)
	clock := uint32(r.clock + offset)
	length := uint32(r.length - offset)
	if r.kind == kindGC {
		d.addStruct(d.newItem(item{client: ci, clock: clock, length: length, kind: kindGC, flags: flagDeleted}))
		return
	}
	it := item{client: ci, clock: clock, length: length, kind: r.kind, parent: r.ptype, sub: r.psub, left: r.left, right: r.right}
	if r.hasOrig {
		it.origin = mkRef(d.clientIndex(r.origin.client), uint32(r.origin.clock))
	}
	if r.hasROrig {
		it.rorigin = mkRef(d.clientIndex(r.rorigin.client), uint32(r.rorigin.clock))
	}
	if offset > 0 {
		it.left = d.getItemCleanEnd(tx, ci, clock-1)
		l := &d.items[it.left]
		it.origin = l.lastID()
		if l.isGC() {
			// Yjs would crash here; the sane reading is that the parent is gone.
			it.parent = 0
		} else if it.parent != 0 {
			// The known part of this item decides where the rest belongs.
			// For any update Yjs can write this is the parent found through
			// the origin anyway; a forged one must not link the item into
			// one list while counting it in another.
			it.parent, it.sub = l.parent, l.sub
		}
	}
	if countableKind(r.kind) {
		it.flags |= flagCountable
	}
	// Store the content (the part after offset).
	switch r.kind {
	case kindString:
		s := r.str
		if offset > 0 {
			sl := sliceRef(r, offset)
			s = sl.str
		}
		it.content = d.appendText(s)
		it.clen = uint32(len(s))
	case kindDeleted:
	case kindType:
		// A type is created even for an item that turns into a GC struct,
		// as Yjs creates it while decoding; it is simply never reachable.
		t := d.newType(r.ext.typeRef, r.ext.key)
		it.content = uint32(t)
	default:
		x := *r.ext
		if offset > 0 {
			x.vals = x.vals[offset:]
		}
		d.ext = append(d.ext, x)
		it.content = uint32(len(d.ext) - 1)
	}
	ii := d.newItem(it)
	if it.kind == kindType {
		d.types[it.content].item = ii
	}
	d.integrateItem(tx, ii)
}

// integrateItem is the body of Item.integrate (YATA): find the place of the
// item among concurrent inserts between its left and right neighbours, link
// it, and apply the effects of its content.
func (d *Doc) integrateItem(tx *Transaction, ii int32) {
	it := &d.items[ii]
	if it.parent == 0 {
		// No parent: the item's type was garbage-collected. Keep a GC struct.
		if it.kind == kindString {
			d.deadText += int(it.clen)
		}
		*it = item{client: it.client, clock: it.clock, length: it.length, kind: kindGC, flags: flagDeleted}
		d.addStruct(ii)
		return
	}
	items := d.items
	t := &d.types[it.parent]
	if (it.left == 0 && (it.right == 0 || items[it.right].left != 0)) || (it.left != 0 && items[it.left].right != it.right) {
		left := it.left
		var o int32
		switch {
		case left != 0:
			o = items[left].right
		case it.sub != 0:
			o = t.mapGet(it.sub)
			for o != 0 && items[o].left != 0 {
				o = items[o].left
			}
		default:
			o = t.start
		}
		conflicting := &d.scratchA
		before := &d.scratchB
		conflicting.clear()
		before.clear()
		myClient := d.clients[it.client].id
		for o != 0 && o != it.right {
			oi := &items[o]
			before.add(o)
			conflicting.add(o)
			if it.origin == oi.origin {
				if d.clients[oi.client].id < myClient {
					left = o
					conflicting.clear()
				} else if it.rorigin == oi.rorigin {
					break
				}
			} else if oi.origin.valid() {
				oo := d.getItem(oi.origin.ci(), oi.origin.clock)
				if before.has(oo) {
					if !conflicting.has(oo) {
						left = o
						conflicting.clear()
					}
				} else {
					break
				}
			} else {
				break
			}
			o = oi.right
		}
		it.left = left
	}
	if it.left != 0 {
		it.right = items[it.left].right
		items[it.left].right = ii
	} else {
		var r int32
		if it.sub != 0 {
			r = t.mapGet(it.sub)
			for r != 0 && items[r].left != 0 {
				r = items[r].left
			}
		} else {
			r = t.start
			t.start = ii
		}
		it.right = r
	}
	if it.right != 0 {
		items[it.right].left = ii
	} else if it.sub != 0 {
		t.mapSet(it.sub, ii)
		if it.left != 0 {
			// The newest value of a key wins; the previous one is deleted.
			d.deleteItem(tx, it.left)
			it = &d.items[ii]
			t = &d.types[it.parent]
		}
	}
	if it.sub == 0 && it.countable() && !it.deleted() {
		t.length += int(it.length)
	}
	d.addStruct(ii)
	switch it.kind {
	case kindDeleted:
		tx.ds.add(d.clients[it.client].id, uint64(it.clock), uint64(it.length))
		it.flags |= flagDeleted
	case kindFormat:
		t.hasFormatting = true
		t.yHasFormatting = true
	}
	if t.index != nil && it.sub == 0 {
		t.index.insertAfter(d, it.left, ii)
	}
	tx.addChangedType(d, it.parent)
	if (t.item != 0 && d.items[t.item].deleted()) || (it.sub != 0 && it.right != 0) {
		d.deleteItem(tx, ii)
	}
}

// applyDeleteSet is Yjs's readAndApplyDeleteSet for a decoded delete set:
// delete the known ranges (splitting items at the range ends) and return the
// ranges beyond the known state, or nil.
func (d *Doc) applyDeleteSet(tx *Transaction, ds *deleteSet) *deleteSet {
	if ds == nil {
		return nil
	}
	var unapplied *deleteSet
	addUnapplied := func(client, clock, length uint64) {
		if unapplied == nil {
			unapplied = &deleteSet{}
		}
		unapplied.add(client, clock, length)
	}
	for _, e := range ds.entries {
		client := e.client
		ci, _ := d.clientIndexOf(client) // known whenever clock < state
		state := d.stateOf(client)
		for _, r := range e.ranges {
			clock, clockEnd := r.clock, r.clock+r.length
			if clock >= state {
				addUnapplied(client, clock, clockEnd-clock)
				continue
			}
			if state < clockEnd {
				addUnapplied(client, state, clockEnd-state)
			}
			c := &d.clients[ci]
			p := c.find(uint32(clock))
			cur := c.startOf(p)
			if s := &d.items[c.at(p)]; !s.deleted() && uint64(s.clock) < clock {
				d.splitAt(tx, ci, p, uint32(clock))
				cur = uint32(clock)
			}
			// Walk the structs from there (a split ends the walk: the part
			// split off starts at clockEnd).
			c = &d.clients[ci]
			p = c.find(cur)
			for uint64(c.startOf(p)) < clockEnd {
				si := c.at(p)
				if s := &d.items[si]; !s.deleted() {
					split := clockEnd < uint64(s.clock+s.length)
					if split {
						d.splitAt(tx, ci, p, uint32(clockEnd))
					}
					d.deleteItem(tx, si)
					if split {
						break
					}
				}
				var ok bool
				if p, ok = c.next(p); !ok {
					break
				}
			}
		}
	}
	if unapplied == nil {
		return nil
	}
	return unapplied.sortedByClientDesc()
}
