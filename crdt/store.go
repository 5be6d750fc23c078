package crdt

// The struct store: per client, the structs ordered by clock, covering the
// clocks from 0 to the client's state. A client's list is cut into blocks of
// at most blockMax structs, so that splitting an item (which inserts a struct
// in the middle of the list) and merging (which removes one) move at most a
// block; lookups by clock are binary searches over the blocks, then within
// one, over compact arrays of start clocks.

const blockMax = 512

// structBlock is a run of a client's structs and their start clocks.
type structBlock struct {
	items  []int32
	starts []uint32
}

// spos is the position of a struct in its client's list: block and index
// in it. Positions are invalidated by inserts and removals.
type spos struct {
	b, i int
}

// clientStructs are the structs of one client ordered by clock; together
// they cover the clocks from 0 to the client's state without gaps.
type clientStructs struct {
	id     uint64
	blocks []structBlock
	// firsts holds the start clock of each block, for the block search.
	firsts []uint32
	n      int
	// txEpoch is the transaction that last added structs of this client and
	// txBefore the client's state before it: Yjs's transaction.beforeState,
	// recorded only for the clients a transaction touches.
	txEpoch  uint64
	txBefore uint32
	hint     spos // position of the last lookup
}

func (c *clientStructs) at(p spos) int32 { return c.blocks[p.b].items[p.i] }

func (c *clientStructs) startOf(p spos) uint32 { return c.blocks[p.b].starts[p.i] }

func (c *clientStructs) lastPos() spos {
	b := len(c.blocks) - 1
	return spos{b, len(c.blocks[b].items) - 1}
}

// last is the struct with the highest clocks (the client must have one).
func (c *clientStructs) last() int32 { return c.at(c.lastPos()) }

func (c *clientStructs) next(p spos) (spos, bool) {
	if p.i+1 < len(c.blocks[p.b].items) {
		return spos{p.b, p.i + 1}, true
	}
	if p.b+1 < len(c.blocks) {
		return spos{p.b + 1, 0}, true
	}
	return p, false
}

func (c *clientStructs) prev(p spos) (spos, bool) {
	if p.i > 0 {
		return spos{p.b, p.i - 1}, true
	}
	if p.b > 0 {
		return spos{p.b - 1, len(c.blocks[p.b-1].items) - 1}, true
	}
	return p, false
}

// push appends a struct starting at the client's state.
func (c *clientStructs) push(ii int32, clock uint32) {
	if len(c.blocks) == 0 || len(c.blocks[len(c.blocks)-1].items) >= blockMax {
		c.blocks = append(c.blocks, structBlock{})
		c.firsts = append(c.firsts, clock)
	}
	b := &c.blocks[len(c.blocks)-1]
	b.items = append(b.items, ii)
	b.starts = append(b.starts, clock)
	c.n++
}

// insertAfter puts a struct split off the one at p right after it.
func (c *clientStructs) insertAfter(p spos, ii int32, clock uint32) {
	b := &c.blocks[p.b]
	at := p.i + 1
	b.items = append(b.items, 0)
	copy(b.items[at+1:], b.items[at:])
	b.items[at] = ii
	b.starts = append(b.starts, 0)
	copy(b.starts[at+1:], b.starts[at:])
	b.starts[at] = clock
	c.n++
	if len(b.items) > blockMax {
		half := len(b.items) / 2
		right := structBlock{
			items:  append(make([]int32, 0, blockMax), b.items[half:]...),
			starts: append(make([]uint32, 0, blockMax), b.starts[half:]...),
		}
		b.items, b.starts = b.items[:half], b.starts[:half]
		c.blocks = append(c.blocks, structBlock{})
		copy(c.blocks[p.b+2:], c.blocks[p.b+1:])
		c.blocks[p.b+1] = right
		c.firsts = append(c.firsts, 0)
		copy(c.firsts[p.b+2:], c.firsts[p.b+1:])
		c.firsts[p.b+1] = right.starts[0]
	}
}

// remove takes out the struct at p (merged into the one before it).
func (c *clientStructs) remove(p spos) {
	b := &c.blocks[p.b]
	copy(b.items[p.i:], b.items[p.i+1:])
	b.items = b.items[:len(b.items)-1]
	copy(b.starts[p.i:], b.starts[p.i+1:])
	b.starts = b.starts[:len(b.starts)-1]
	c.n--
	switch {
	case len(b.items) == 0 && len(c.blocks) > 1:
		c.blocks = append(c.blocks[:p.b], c.blocks[p.b+1:]...)
		c.firsts = append(c.firsts[:p.b], c.firsts[p.b+1:]...)
	case p.i == 0 && len(b.starts) > 0:
		c.firsts[p.b] = b.starts[0]
	}
}

// find is findIndexSS: the position of the struct holding clock, which must
// be below the client's state.
func (c *clientStructs) find(clock uint32) spos {
	// The last struct is the common target (the end of the document a
	// client is typing at); then the neighbourhood of the previous lookup,
	// since integration walks a client's structs in order and the merges at
	// the end of a transaction walk them backwards.
	nb := len(c.blocks) - 1
	if lb := c.blocks[nb].starts; lb[len(lb)-1] <= clock {
		return spos{nb, len(lb) - 1}
	}
	// Near the previous lookup: scans (over sorted delete ranges, forwards
	// or backwards) and integration (in clock order) stay close to it.
	if h := c.hint; h.b <= nb && h.i < len(c.blocks[h.b].starts) {
		if c.startOf(h) <= clock {
			p := h
			for k := 0; k < 8; k++ {
				n, ok := c.next(p)
				if !ok || c.startOf(n) > clock {
					c.hint = p
					return p
				}
				p = n
			}
		} else {
			p := h
			for k := 0; k < 8; k++ {
				pr, ok := c.prev(p)
				if !ok {
					break
				}
				if c.startOf(pr) <= clock {
					c.hint = pr
					return pr
				}
				p = pr
			}
		}
	}
	// The last block starting at or before clock, then the last struct in
	// it starting at or before clock.
	b := lastAtOrBefore(c.firsts, clock)
	c.hint = spos{b, lastAtOrBefore(c.blocks[b].starts, clock)}
	return c.hint
}

// lastAtOrBefore returns the index of the last element of the sorted,
// non-empty xs that is <= x (0 if none is). The loop has no data-dependent
// branch, so it costs no mispredictions.
func lastAtOrBefore(xs []uint32, x uint32) int {
	base, n := 0, len(xs)
	for n > 1 {
		half := n / 2
		if xs[base+half] <= x {
			base += half
		}
		n -= half
	}
	return base
}

// each calls f for every struct in clock order.
func (c *clientStructs) each(f func(ii int32)) {
	for _, b := range c.blocks {
		for _, ii := range b.items {
			f(ii)
		}
	}
}

// state is getState: the next clock expected from client index ci.
func (d *Doc) state(ci uint32) uint32 {
	c := &d.clients[ci]
	if c.n == 0 {
		return 0
	}
	last := &d.items[c.last()]
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
	d.clients[it.client].push(ii, it.clock)
}

// getItem is Yjs's getItem/find: the struct holding the ID.
func (d *Doc) getItem(ci, clock uint32) int32 {
	c := &d.clients[ci]
	return c.at(c.find(clock))
}

// findCleanStart is findIndexCleanStart: the position of the struct
// holding clock, an Item split first so that a struct starts at clock.
func (d *Doc) findCleanStart(tx *Transaction, ci, clock uint32) spos {
	c := &d.clients[ci]
	p := c.find(clock)
	ii := c.at(p)
	it := &d.items[ii]
	if it.clock < clock && it.kind != kindGC {
		ri := d.splitItem(tx, ii, clock-it.clock)
		c = &d.clients[ci]
		c.insertAfter(p, ri, clock)
		return c.find(clock)
	}
	return p
}

// getItemCleanStart returns the struct starting at the ID, splitting an Item
// if needed (a GC struct is returned whole).
func (d *Doc) getItemCleanStart(tx *Transaction, ci, clock uint32) int32 {
	p := d.findCleanStart(tx, ci, clock)
	return d.clients[ci].at(p)
}

// getItemCleanEnd returns the struct ending at the ID, splitting an Item if
// needed (a GC struct is returned whole).
func (d *Doc) getItemCleanEnd(tx *Transaction, ci, clock uint32) int32 {
	c := &d.clients[ci]
	p := c.find(clock)
	ii := c.at(p)
	it := &d.items[ii]
	if clock != it.clock+it.length-1 && it.kind != kindGC {
		ri := d.splitItem(tx, ii, clock-it.clock+1)
		d.clients[ci].insertAfter(p, ri, clock+1)
	}
	return ii
}

// splitAt splits the Item at p so that a struct starts at clock, which
// must lie inside it, and returns the new struct.
func (d *Doc) splitAt(tx *Transaction, ci uint32, p spos, clock uint32) int32 {
	ii := d.clients[ci].at(p)
	ri := d.splitItem(tx, ii, clock-d.items[ii].clock)
	d.clients[ci].insertAfter(p, ri, clock)
	return ri
}
