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
		ci, ok := d.clientIdx[e.client]
		if !ok {
			continue
		}
		for di := len(e.ranges) - 1; di >= 0; di-- {
			del := e.ranges[di]
			end := del.clock + del.length
			for si := d.findIndex(ci, uint32(del.clock)); si < len(d.clients[ci].structs); si++ {
				ii := d.clients[ci].structs[si]
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
		ci, ok := d.clientIdx[e.client]
		if !ok {
			continue
		}
		for di := len(e.ranges) - 1; di >= 0; di-- {
			del := e.ranges[di]
			if del.length == 0 {
				continue
			}
			n := len(d.clients[ci].structs)
			si := min(n-1, 1+d.findIndex(ci, uint32(del.clock+del.length-1)))
			for si > 0 && uint64(d.items[d.clients[ci].structs[si]].clock) >= del.clock {
				si -= 1 + d.tryToMergeWithLefts(ci, si)
			}
		}
	}
}

// tryToMergeWithLefts merges the struct at pos into its left neighbours for
// as long as they are compatible and returns how many structs it removed.
func (d *Doc) tryToMergeWithLefts(ci uint32, pos int) int {
	structs := d.clients[ci].structs
	i := pos
	right := structs[pos]
	for i > 0 {
		left := structs[i-1]
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
		right = left
		i--
	}
	merged := pos - i
	if merged > 0 {
		d.clients[ci].removeStructs(pos, merged)
	}
	return merged
}

// freeItem returns the arena slot of a struct merged into its left
// neighbour; nothing refers to it any more.
func (d *Doc) freeItem(ii int32) {
	d.items[ii] = item{}
	d.freeItems = append(d.freeItems, ii)
}
