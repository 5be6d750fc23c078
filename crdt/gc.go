package crdt

// Garbage collection and struct merging at the end of a transaction, as
// Yjs's cleanupTransactions does them: deleted items lose their content
// (tryGcDeleteSet) and runs of compatible structs merge back into one
// (tryMergeDeleteSet, tryToMergeWithLefts), so the encoded state is the one
// Yjs produces.

// tryGcDeleteSet replaces the content of every deleted item in ds with
// Deleted content; the children of deleted types become GC structs.
func (d *Doc) tryGcDeleteSet(ds *deleteSet) {
	for _, e := range ds.entries {
		ci, ok := d.clientIndexOf(e.client)
		if !ok {
			continue
		}
		c := &d.clients[ci]
		for di := len(e.ranges) - 1; di >= 0; di-- {
			del := e.ranges[di]
			end := del.clock + del.length
			for p, ok := c.find(uint32(del.clock)), true; ok; p, ok = c.next(p) {
				ii := c.at(p)
				it := &d.items[ii]
				if uint64(it.clock) >= end {
					break
				}
				if !it.isGC() && it.deleted() {
					d.gcItem(ii, false)
				}
			}
		}
	}
}

// tryMergeDeleteSet merges the structs around every deleted range, right to
// left.
func (d *Doc) tryMergeDeleteSet(ds *deleteSet) {
	for _, e := range ds.entries {
		ci, ok := d.clientIndexOf(e.client)
		if !ok {
			continue
		}
		c := &d.clients[ci]
		for di := len(e.ranges) - 1; di >= 0; di-- {
			del := e.ranges[di]
			if del.length == 0 {
				continue
			}
			// Start with the struct right after the range.
			p := c.find(uint32(del.clock + del.length - 1))
			if n, ok := c.next(p); ok {
				p = n
			}
			for c.startOf(p) > 0 && uint64(c.startOf(p)) >= del.clock {
				_, survivor := d.tryToMergeWithLefts(ci, p)
				var ok bool
				if p, ok = c.prev(survivor); !ok {
					break
				}
			}
		}
	}
}

// tryToMergeWithLefts merges the struct at p into its left neighbours for
// as long as they are compatible. It returns how many structs it removed
// and the position of the struct they all ended in (positions before p stay
// valid: a removal only shifts what follows it).
func (d *Doc) tryToMergeWithLefts(ci uint32, p spos) (merged int, survivor spos) {
	c := &d.clients[ci]
	right := c.at(p)
	for {
		lp, ok := c.prev(p)
		if !ok {
			break
		}
		left := c.at(lp)
		l, r := &d.items[left], &d.items[right]
		if l.deleted() != r.deleted() || l.isGC() != r.isGC() || !d.mergeWith(left, right) {
			break
		}
		r = &d.items[right]
		if !r.isGC() && r.sub != 0 {
			if t := &d.types[r.parent]; t.mapGet(r.sub) == right {
				t.mapSet(r.sub, left)
			}
		}
		d.freeItem(right)
		c.remove(p)
		merged++
		right, p = left, lp
	}
	return merged, p
}

// freeItem returns the arena slot of a struct merged into its left
// neighbour; nothing refers to it any more.
func (d *Doc) freeItem(ii int32) {
	d.items[ii] = item{}
	d.freeItems = append(d.freeItems, ii)
}
