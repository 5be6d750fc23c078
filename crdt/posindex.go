package crdt

// posIndex maps positions of a sequence type (UTF-16 units for text) to its
// items without walking the list: a B+ tree whose leaves hold the items in
// list order with their visible lengths, and whose inner nodes hold the sum
// of each child. Every item records its leaf, so "insert after item X" and
// "the length of X changed" are O(log n) too. It is an index only: the
// linked list (left/right) stays the authority on order.
type posIndex struct {
	leaves []pixLeaf
	nodes  []pixNode
	root   int32 // a node, or a leaf when height is 0
	height int
	// The leaf and slot of the last item looked up: edits come in runs on
	// one item and its neighbours (split, then insert after it).
	lastLeaf, lastSlot int32
}

const (
	pixLeafCap  = 64
	pixNodeCap  = 32
	pixLeafFill = 48 // leaves are built this full, leaving room for inserts
	pixNodeFill = 24
)

type pixLeaf struct {
	n      int32
	parent int32 // -1 for the root
	pslot  int32 // position in the parent's kids
	items  [pixLeafCap]int32
	lens   [pixLeafCap]int32
}

type pixNode struct {
	n        int32
	parent   int32 // -1 for the root
	pslot    int32 // position in the parent's kids
	leafKids bool
	kids     [pixNodeCap]int32
	sums     [pixNodeCap]int64
}

// ensureIndex returns the position index of type ti, building it from the
// item list on first use.
func (d *Doc) ensureIndex(ti int32) *posIndex {
	if ix := d.types[ti].index; ix != nil {
		return ix
	}
	ix := &posIndex{}
	leaf := ix.newLeaf(-1)
	var level []int32
	level = append(level, leaf)
	for i := d.types[ti].start; i != 0; i = d.items[i].right {
		l := &ix.leaves[leaf]
		if l.n == pixLeafFill {
			leaf = ix.newLeaf(-1)
			level = append(level, leaf)
			l = &ix.leaves[leaf]
		}
		l.items[l.n] = i
		l.lens[l.n] = int32(d.items[i].visibleLen())
		l.n++
		d.items[i].leaf = leaf
	}
	leafLevel := true
	for len(level) > 1 {
		var up []int32
		for start := 0; start < len(level); start += pixNodeFill {
			end := min(start+pixNodeFill, len(level))
			n := ix.newNode(-1, leafLevel)
			for _, k := range level[start:end] {
				ix.appendKid(n, k, ix.sumOf(k, leafLevel))
			}
			up = append(up, n)
		}
		level = up
		leafLevel = false
		ix.height++
	}
	ix.root = level[0]
	d.types[ti].index = ix
	return ix
}

func (ix *posIndex) newLeaf(parent int32) int32 {
	ix.leaves = append(ix.leaves, pixLeaf{parent: parent})
	return int32(len(ix.leaves) - 1)
}

func (ix *posIndex) newNode(parent int32, leafKids bool) int32 {
	ix.nodes = append(ix.nodes, pixNode{parent: parent, leafKids: leafKids})
	return int32(len(ix.nodes) - 1)
}

func (ix *posIndex) appendKid(n, kid int32, sum int64) {
	node := &ix.nodes[n]
	node.kids[node.n] = kid
	node.sums[node.n] = sum
	node.n++
	ix.setParent(kid, node.leafKids, n, node.n-1)
}

func (ix *posIndex) setParent(kid int32, leaf bool, p, slot int32) {
	if leaf {
		ix.leaves[kid].parent, ix.leaves[kid].pslot = p, slot
	} else {
		ix.nodes[kid].parent, ix.nodes[kid].pslot = p, slot
	}
}

func (ix *posIndex) sumOf(kid int32, leaf bool) int64 {
	var s int64
	if leaf {
		l := &ix.leaves[kid]
		for _, x := range l.lens[:l.n] {
			s += int64(x)
		}
		return s
	}
	n := &ix.nodes[kid]
	for _, x := range n.sums[:n.n] {
		s += x
	}
	return s
}

// find returns the item holding unit pos (0 <= pos < total length) and the
// offset of that unit in the item.
func (ix *posIndex) find(d *Doc, pos int) (int32, uint32) {
	p := int64(pos)
	n := ix.root
	for h := ix.height; h > 0; h-- {
		node := &ix.nodes[n]
		k := int32(0)
		for ; k < node.n-1; k++ {
			if p < node.sums[k] {
				break
			}
			p -= node.sums[k]
		}
		n = node.kids[k]
	}
	l := &ix.leaves[n]
	for k := int32(0); k < l.n; k++ {
		if p < int64(l.lens[k]) {
			ix.lastLeaf, ix.lastSlot = n, k
			return l.items[k], uint32(p)
		}
		p -= int64(l.lens[k])
	}
	panic("crdt: position index out of step with the text length")
}

func (ix *posIndex) slotOf(leaf int32, ii int32) int32 {
	l := &ix.leaves[leaf]
	if leaf == ix.lastLeaf {
		if k := ix.lastSlot; k < l.n && l.items[k] == ii {
			return k
		}
		if k := ix.lastSlot + 1; k < l.n && l.items[k] == ii {
			ix.lastSlot = k
			return k
		}
	}
	for k := int32(0); k < l.n; k++ {
		if l.items[k] == ii {
			ix.lastLeaf, ix.lastSlot = leaf, k
			return k
		}
	}
	panic("crdt: item missing from its position index leaf")
}

// kidSlot is the position of a leaf or node among its parent's kids.
func (ix *posIndex) kidSlot(leaf bool, kid int32) int32 {
	if leaf {
		return ix.leaves[kid].pslot
	}
	return ix.nodes[kid].pslot
}

// addDelta adds delta to the sums on the path from leaf to the root.
func (ix *posIndex) addDelta(leaf int32, delta int64) {
	if delta == 0 {
		return
	}
	l := &ix.leaves[leaf]
	p, k := l.parent, l.pslot
	for p >= 0 {
		n := &ix.nodes[p]
		n.sums[k] += delta
		p, k = n.parent, n.pslot
	}
}

// insertAfter puts item ii right after item left (at the start when left
// is 0).
func (ix *posIndex) insertAfter(d *Doc, left, ii int32) {
	var leaf, slot int32
	if left == 0 {
		leaf = ix.root
		for h := ix.height; h > 0; h-- {
			leaf = ix.nodes[leaf].kids[0]
		}
	} else {
		leaf = d.items[left].leaf
		slot = ix.slotOf(leaf, left) + 1
	}
	length := int32(d.items[ii].visibleLen())
	if ix.leaves[leaf].n == pixLeafCap {
		right := ix.splitLeaf(d, leaf)
		if slot > pixLeafCap/2 {
			leaf, slot = right, slot-pixLeafCap/2
		}
	}
	l := &ix.leaves[leaf]
	copy(l.items[slot+1:l.n+1], l.items[slot:l.n])
	copy(l.lens[slot+1:l.n+1], l.lens[slot:l.n])
	l.items[slot] = ii
	l.lens[slot] = length
	l.n++
	d.items[ii].leaf = leaf
	ix.addDelta(leaf, int64(length))
}

// setLen records a new visible length of item ii.
func (ix *posIndex) setLen(d *Doc, ii int32, length int) {
	leaf := d.items[ii].leaf
	k := ix.slotOf(leaf, ii)
	l := &ix.leaves[leaf]
	delta := int64(length) - int64(l.lens[k])
	l.lens[k] = int32(length)
	ix.addDelta(leaf, delta)
}

// remove takes item ii out of the index.
func (ix *posIndex) remove(d *Doc, ii int32) {
	leaf := d.items[ii].leaf
	k := ix.slotOf(leaf, ii)
	l := &ix.leaves[leaf]
	delta := -int64(l.lens[k])
	copy(l.items[k:l.n-1], l.items[k+1:l.n])
	copy(l.lens[k:l.n-1], l.lens[k+1:l.n])
	l.n--
	ix.addDelta(leaf, delta)
}

// split records that item left was cut and right now follows it.
func (ix *posIndex) split(d *Doc, left, right int32) {
	ix.setLen(d, left, d.items[left].visibleLen())
	ix.insertAfter(d, left, right)
}

// merge records that item right was merged into item left.
func (ix *posIndex) merge(d *Doc, left, right int32) {
	ix.remove(d, right)
	ix.setLen(d, left, d.items[left].visibleLen())
}

// splitLeaf moves the upper half of a full leaf into a new leaf placed
// right after it and returns the new leaf.
func (ix *posIndex) splitLeaf(d *Doc, leaf int32) int32 {
	r := ix.newLeaf(-1)
	l, rl := &ix.leaves[leaf], &ix.leaves[r]
	half := int32(pixLeafCap / 2)
	var moved int64
	for k := half; k < l.n; k++ {
		rl.items[k-half] = l.items[k]
		rl.lens[k-half] = l.lens[k]
		moved += int64(l.lens[k])
		d.items[l.items[k]].leaf = r
	}
	rl.n = l.n - half
	l.n = half
	ix.attachSibling(leaf, r, true, moved)
	return r
}

// attachSibling inserts kid (holding sum) into the parent of its left
// sibling, right after it, splitting the parent when full.
func (ix *posIndex) attachSibling(sibling, kid int32, leaf bool, sum int64) {
	var p int32
	if leaf {
		p = ix.leaves[sibling].parent
	} else {
		p = ix.nodes[sibling].parent
	}
	if p < 0 {
		// The root split: grow the tree by one level.
		root := ix.newNode(-1, leaf)
		ix.appendKid(root, sibling, ix.sumOf(sibling, leaf))
		ix.appendKid(root, kid, sum)
		ix.root = root
		ix.height++
		return
	}
	// Split a full parent first, while its sums still describe its children
	// as its own parent sees them; sibling and kid end up in one node, so
	// moving sum from one to the other leaves the ancestors' sums alone.
	if ix.nodes[p].n == pixNodeCap {
		ix.splitNode(p)
		if leaf {
			p = ix.leaves[sibling].parent
		} else {
			p = ix.nodes[sibling].parent
		}
	}
	k := ix.kidSlot(leaf, sibling)
	ix.nodes[p].sums[k] -= sum
	node := &ix.nodes[p]
	copy(node.kids[k+2:node.n+1], node.kids[k+1:node.n])
	copy(node.sums[k+2:node.n+1], node.sums[k+1:node.n])
	node.kids[k+1] = kid
	node.sums[k+1] = sum
	node.n++
	for j := k + 1; j < node.n; j++ {
		ix.setParent(node.kids[j], leaf, p, j)
	}
}

// splitNode moves the upper half of a full node into a new node placed
// right after it and returns the new node.
func (ix *posIndex) splitNode(n int32) int32 {
	q := ix.newNode(-1, ix.nodes[n].leafKids)
	node, qn := &ix.nodes[n], &ix.nodes[q]
	half := int32(pixNodeCap / 2)
	var moved int64
	for k := half; k < node.n; k++ {
		qn.kids[k-half] = node.kids[k]
		qn.sums[k-half] = node.sums[k]
		moved += node.sums[k]
		ix.setParent(node.kids[k], node.leafKids, q, k-half)
	}
	qn.n = node.n - half
	node.n = half
	ix.attachSibling(n, q, false, moved)
	return q
}
