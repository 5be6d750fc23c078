package crdt

// The struct store: per client, the structs ordered by clock, covering the
// clocks from 0 to the client's state. Lookups by ID are binary searches.

// state is getState: the next clock expected from client index ci.
func (d *Doc) state(ci uint32) uint32 {
	s := d.clients[ci].structs
	if len(s) == 0 {
		return 0
	}
	last := &d.items[s[len(s)-1]]
	return last.clock + last.length
}

// stateOf is getState by client id.
func (d *Doc) stateOf(client uint64) uint64 {
	ci, ok := d.clientIdx[client]
	if !ok {
		return 0
	}
	return uint64(d.state(ci))
}

// addStruct appends a struct to its client's list; it must start at the
// client's state.
func (d *Doc) addStruct(ii int32) {
	ci := d.items[ii].client
	d.clients[ci].structs = append(d.clients[ci].structs, ii)
}

// findIndex is findIndexSS: the position of the struct holding clock in the
// client's list. The clock must be below the client's state.
func (d *Doc) findIndex(ci uint32, clock uint32) int {
	c := &d.clients[ci]
	s := c.structs
	lo, hi := 0, len(s)-1
	// The last struct is the common target (the end of the document a
	// client is typing at): test it first; then the neighbourhood of the
	// previous lookup, since integration walks a client's structs in order.
	if last := &d.items[s[hi]]; last.clock <= clock {
		return hi
	}
	if h := c.hint; h < hi {
		if it := &d.items[s[h]]; it.clock <= clock {
			if clock < it.clock+it.length {
				return h
			}
			if it := &d.items[s[h+1]]; it.clock <= clock && clock < it.clock+it.length {
				c.hint = h + 1
				return h + 1
			}
			lo = h + 1
		} else {
			hi = h - 1
		}
	}
	for lo <= hi {
		mid := int(uint(lo+hi) >> 1)
		it := &d.items[s[mid]]
		if it.clock <= clock {
			if clock < it.clock+it.length {
				c.hint = mid
				return mid
			}
			lo = mid + 1
		} else {
			hi = mid - 1
		}
	}
	// Callers check the state first, so this cannot happen.
	panic("crdt: struct store lookup of a missing clock")
}

// getItem is Yjs's getItem/find: the struct holding the ID.
func (d *Doc) getItem(ci, clock uint32) int32 {
	return d.clients[ci].structs[d.findIndex(ci, clock)]
}

// insertStructAt puts a split-off struct right after position pos.
func (d *Doc) insertStructAt(ci uint32, pos int, ii int32) {
	s := d.clients[ci].structs
	s = append(s, 0)
	copy(s[pos+2:], s[pos+1:])
	s[pos+1] = ii
	d.clients[ci].structs = s
}

// removeStructAt removes the struct at position pos (merged into its left).
func (d *Doc) removeStructAt(ci uint32, pos int) {
	s := d.clients[ci].structs
	copy(s[pos:], s[pos+1:])
	d.clients[ci].structs = s[:len(s)-1]
}

// findIndexCleanStart is findIndexCleanStart: like findIndex, but splits
// an Item so that a struct starts at clock.
func (d *Doc) findIndexCleanStart(tx *Transaction, ci, clock uint32) int {
	idx := d.findIndex(ci, clock)
	ii := d.clients[ci].structs[idx]
	it := &d.items[ii]
	if it.clock < clock && it.kind != kindGC {
		ri := d.splitItem(tx, ii, clock-it.clock)
		d.insertStructAt(ci, idx, ri)
		return idx + 1
	}
	return idx
}

// getItemCleanStart returns the struct starting at the ID, splitting an Item
// if needed (a GC struct is returned whole).
func (d *Doc) getItemCleanStart(tx *Transaction, ci, clock uint32) int32 {
	return d.clients[ci].structs[d.findIndexCleanStart(tx, ci, clock)]
}

// getItemCleanEnd returns the struct ending at the ID, splitting an Item if
// needed (a GC struct is returned whole).
func (d *Doc) getItemCleanEnd(tx *Transaction, ci, clock uint32) int32 {
	idx := d.findIndex(ci, clock)
	ii := d.clients[ci].structs[idx]
	it := &d.items[ii]
	if clock != it.clock+it.length-1 && it.kind != kindGC {
		ri := d.splitItem(tx, ii, clock-it.clock+1)
		d.insertStructAt(ci, idx, ri)
	}
	return ii
}
