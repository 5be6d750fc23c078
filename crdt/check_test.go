package crdt

import "fmt"

// checkInvariants verifies the internal consistency of a document: every
// client's structs cover its clocks without gaps, sequences are doubly
// linked, type lengths match the items, position indexes match both.
func (d *Doc) checkInvariants() error {
	for ci := range d.clients {
		c := &d.clients[ci]
		var clock uint32
		n := 0
		if len(c.firsts) != len(c.blocks) {
			return fmt.Errorf("client %d: %d firsts for %d blocks", c.id, len(c.firsts), len(c.blocks))
		}
		for bi, b := range c.blocks {
			if len(b.starts) > 0 && c.firsts[bi] != b.starts[0] {
				return fmt.Errorf("client %d block %d: first %d, starts at %d", c.id, bi, c.firsts[bi], b.starts[0])
			}
			if len(b.starts) != len(b.items) || len(b.items) > blockMax || (len(b.items) == 0 && len(c.blocks) > 1) {
				return fmt.Errorf("client %d block %d: %d starts, %d structs", c.id, bi, len(b.starts), len(b.items))
			}
			for i, ii := range b.items {
				it := &d.items[ii]
				if b.starts[i] != it.clock {
					return fmt.Errorf("client %d struct %d: start %d, clock %d", c.id, n, b.starts[i], it.clock)
				}
				if it.client != uint32(ci) || it.clock != clock || it.length == 0 {
					return fmt.Errorf("client %d struct %d: client %d clock %d length %d, want clock %d", c.id, n, it.client, it.clock, it.length, clock)
				}
				clock += it.length
				n++
			}
		}
		if n != c.n {
			return fmt.Errorf("client %d: %d structs counted as %d", c.id, n, c.n)
		}
	}
	for ti := 1; ti < len(d.types); ti++ {
		t := &d.types[ti]
		sum := 0
		prev := int32(0)
		for i := t.start; i != 0; i = d.items[i].right {
			it := &d.items[i]
			if it.left != prev {
				return fmt.Errorf("type %d: item %d has left %d, want %d", ti, i, it.left, prev)
			}
			if it.parent != int32(ti) {
				return fmt.Errorf("type %d: item %d has parent %d", ti, i, it.parent)
			}
			sum += it.visibleLen()
			prev = i
		}
		if t.start != 0 && sum != t.length {
			return fmt.Errorf("type %d: length %d, items add up to %d", ti, t.length, sum)
		}
		if ix := t.index; ix != nil {
			for ni := range ix.nodes {
				n := &ix.nodes[ni]
				for k := int32(0); k < n.n; k++ {
					var parent, slot int32
					if n.leafKids {
						parent, slot = ix.leaves[n.kids[k]].parent, ix.leaves[n.kids[k]].pslot
					} else {
						parent, slot = ix.nodes[n.kids[k]].parent, ix.nodes[n.kids[k]].pslot
					}
					if parent != int32(ni) || slot != k || n.sums[k] != ix.sumOf(n.kids[k], n.leafKids) {
						return fmt.Errorf("type %d: index node %d kid %d: parent %d slot %d, sum %d", ti, ni, k, parent, slot, n.sums[k])
					}
				}
			}
			if total := int(ix.sumOf(ix.root, ix.height == 0)); total != t.length {
				return fmt.Errorf("type %d: index total %d, length %d", ti, total, t.length)
			}
			for i := t.start; i != 0; i = d.items[i].right {
				leaf := &ix.leaves[d.items[i].leaf]
				k := -1
				for j := int32(0); j < leaf.n; j++ {
					if leaf.items[j] == i {
						k = int(j)
					}
				}
				if k < 0 || int(leaf.lens[k]) != d.items[i].visibleLen() {
					return fmt.Errorf("type %d: item %d missing or stale in its index leaf", ti, i)
				}
			}
		}
	}
	return nil
}
