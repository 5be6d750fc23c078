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
	ci, ok := d.clientIndexOf(client)
	if !ok {
		return 0
	}
	return uint64(d.state(ci))
}

// addStruct appends a struct to its client's list; it must start at the
// client's state.
func (d *Doc) addStruct(ii int32) {
	it := &d.items[ii]
	c := &d.clients[it.client]
	c.structs = append(c.structs, ii)
	c.starts = append(c.starts, it.clock)
}

// findIndex is findIndexSS: the position of the struct holding clock in the
// client's list. The clock must be below the client's state.
func (d *Doc) findIndex(ci uint32, clock uint32) int {
	c := &d.clients[ci]
	starts := c.starts
	hi := len(starts) - 1
	// The last struct is the common target (the end of the document a
	// client is typing at): test it first; then the neighbourhood of the
	// previous lookup, since integration walks a client's structs in order.
	if starts[hi] <= clock {
		return hi
	}
	lo := 0
	if h := c.hint; h < hi {
		if starts[h] <= clock {
			if clock < starts[h+1] {
				return h
			}
			if h+2 > hi || clock < starts[h+2] {
				c.hint = h + 1
				return h + 1
			}
			lo = h + 2
		} else {
			hi = h - 1
		}
	}
	// The struct holding clock is the last one starting at or before it.
	for lo < hi {
		mid := int(uint(lo+hi+1) >> 1)
		if starts[mid] <= clock {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	c.hint = lo
	return lo
}

// getItem is Yjs's getItem/find: the struct holding the ID.
func (d *Doc) getItem(ci, clock uint32) int32 {
	return d.clients[ci].structs[d.findIndex(ci, clock)]
}

// insertStructAt puts a split-off struct right after position pos.
func (d *Doc) insertStructAt(ci uint32, pos int, ii int32) {
	c := &d.clients[ci]
	s := append(c.structs, 0)
	copy(s[pos+2:], s[pos+1:])
	s[pos+1] = ii
	c.structs = s
	st := append(c.starts, 0)
	copy(st[pos+2:], st[pos+1:])
	st[pos+1] = d.items[ii].clock
	c.starts = st
}

// removeStructs removes n structs ending at position last (merged into the
// struct before them).
func (c *clientStructs) removeStructs(last, n int) {
	copy(c.structs[last+1-n:], c.structs[last+1:])
	c.structs = c.structs[:len(c.structs)-n]
	copy(c.starts[last+1-n:], c.starts[last+1:])
	c.starts = c.starts[:len(c.starts)-n]
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
