package crdt

import "slices"

// deleteRange is one run of deleted clocks of a client.
type deleteRange struct {
	clock  uint64
	length uint64
}

// dsEntry holds the deleted ranges of one client.
type dsEntry struct {
	client uint64
	ranges []deleteRange
}

// deleteSet is Yjs's DeleteSet: per client, ranges of deleted clocks.
// Clients keep the order in which they were first added, as a JS Map does,
// because Yjs's garbage collection walks them in that order.
type deleteSet struct {
	entries []dsEntry
	index   map[uint64]int // client -> position in entries, built once there are many
	last    int            // entries index of the last lookup, for runs of adds to one client
}

func (ds *deleteSet) empty() bool { return ds == nil || len(ds.entries) == 0 }

func (ds *deleteSet) find(client uint64) int {
	if ds.last < len(ds.entries) && ds.entries[ds.last].client == client {
		return ds.last
	}
	if ds.index != nil {
		if i, ok := ds.index[client]; ok {
			ds.last = i
			return i
		}
		return -1
	}
	for i := range ds.entries {
		if ds.entries[i].client == client {
			ds.last = i
			return i
		}
	}
	return -1
}

// entry returns the entry of client, creating it at the end when missing.
func (ds *deleteSet) entry(client uint64) *dsEntry {
	i := ds.find(client)
	if i < 0 {
		i = len(ds.entries)
		if i < cap(ds.entries) {
			// Reuse the ranges buffer of a reset set (transactions are pooled).
			ds.entries = ds.entries[:i+1]
			ds.entries[i].client = client
			ds.entries[i].ranges = ds.entries[i].ranges[:0]
		} else {
			ds.entries = append(ds.entries, dsEntry{client: client})
		}
		if ds.index != nil {
			ds.index[client] = i
		} else if len(ds.entries) > 16 {
			ds.index = make(map[uint64]int, len(ds.entries))
			for j, e := range ds.entries {
				ds.index[e.client] = j
			}
		}
		ds.last = i
	}
	return &ds.entries[i]
}

// get returns the ranges of client (nil when it has none).
func (ds *deleteSet) get(client uint64) []deleteRange {
	if ds == nil {
		return nil
	}
	if i := ds.find(client); i >= 0 {
		return ds.entries[i].ranges
	}
	return nil
}

// add is Yjs's addToDeleteSet: append without sorting or merging.
func (ds *deleteSet) add(client, clock, length uint64) {
	e := ds.entry(client)
	e.ranges = append(e.ranges, deleteRange{clock, length})
}

// sortAndMerge is Yjs's sortAndMergeDeleteSet: per client, sort by clock and
// merge overlapping or adjacent ranges.
func (ds *deleteSet) sortAndMerge() {
	for ei := range ds.entries {
		dels := ds.entries[ei].ranges
		if len(dels) > 1 && !slices.IsSortedFunc(dels, cmpRange) {
			slices.SortStableFunc(dels, cmpRange)
		}
		j := 1
		for i := 1; i < len(dels); i++ {
			left := &dels[j-1]
			right := dels[i]
			if left.clock+left.length >= right.clock {
				left.length = max(left.length, right.clock+right.length-left.clock)
			} else {
				dels[j] = right
				j++
			}
		}
		if len(dels) > 0 {
			ds.entries[ei].ranges = dels[:j]
		}
	}
}

func cmpRange(a, b deleteRange) int {
	switch {
	case a.clock < b.clock:
		return -1
	case a.clock > b.clock:
		return 1
	}
	return 0
}

// isDeleted reports whether the clock of client lies in a range. The ranges
// must be sorted and merged.
func (ds *deleteSet) isDeleted(client, clock uint64) bool {
	dels := ds.get(client)
	lo, hi := 0, len(dels)-1
	for lo <= hi {
		mid := (lo + hi) / 2
		r := dels[mid]
		if r.clock <= clock {
			if clock < r.clock+r.length {
				return true
			}
			lo = mid + 1
		} else {
			hi = mid - 1
		}
	}
	return false
}

// mergeDeleteSets is Yjs's mergeDeleteSets: for each client, in order of
// first appearance, the ranges of every set concatenated, then sorted and
// merged.
func mergeDeleteSets(dss []*deleteSet) *deleteSet {
	merged := &deleteSet{}
	for i, ds := range dss {
		if ds == nil {
			continue
		}
		for _, e := range ds.entries {
			if merged.find(e.client) >= 0 {
				continue
			}
			dels := slices.Clone(e.ranges)
			for _, later := range dss[i+1:] {
				dels = append(dels, later.get(e.client)...)
			}
			merged.entry(e.client).ranges = dels
		}
	}
	merged.sortAndMerge()
	return merged
}

// write is Yjs's writeDeleteSet (v1): clients in descending order.
func (ds *deleteSet) write(e *encoder) {
	if ds == nil {
		e.writeVarUint(0)
		return
	}
	var order []int
	if len(ds.entries) > 1 {
		order = make([]int, len(ds.entries))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmpDesc(ds.entries[a].client, ds.entries[b].client) })
	}
	e.writeVarUint(uint64(len(ds.entries)))
	for k := range ds.entries {
		i := k
		if order != nil {
			i = order[k]
		}
		en := ds.entries[i]
		e.writeVarUint(en.client)
		e.writeVarUint(uint64(len(en.ranges)))
		for _, r := range en.ranges {
			e.writeVarUint(r.clock)
			e.writeVarUint(r.length)
		}
	}
}

// sortedByClientDesc returns ds with its clients in the order Yjs's
// writeDeleteSet writes them, which is the order a re-read set has.
func (ds *deleteSet) sortedByClientDesc() *deleteSet {
	out := &deleteSet{}
	for _, e := range ds.entries {
		out.entry(e.client).ranges = slices.Clone(e.ranges)
	}
	slices.SortStableFunc(out.entries, func(a, b dsEntry) int { return cmpDesc(a.client, b.client) })
	out.index = nil
	if len(out.entries) > 16 {
		out.index = make(map[uint64]int, len(out.entries))
		for i, e := range out.entries {
			out.index[e.client] = i
		}
	}
	out.last = 0
	return out
}

// readDeleteSet is Yjs's readDeleteSet (v1). A client with zero ranges is
// not added, as in Yjs.
func readDeleteSet(d *decoder) *deleteSet {
	ds := &deleteSet{}
	n := d.readVarUint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		client := d.readVarUint()
		count := d.readVarUint()
		if d.err != nil || count == 0 {
			continue
		}
		e := ds.entry(client)
		if count <= uint64(d.remaining()/2) && e.ranges == nil {
			e.ranges = make([]deleteRange, 0, count)
		}
		for j := uint64(0); j < count && d.err == nil; j++ {
			clock := d.readVarUint()
			length := d.readVarUint()
			if d.err == nil && (clock > maxSafeInt || length > maxSafeInt) {
				// JS numbers stop being exact here; Yjs could not have written it.
				d.fail(errRange)
			}
			if d.err == nil {
				e = ds.entry(client)
				e.ranges = append(e.ranges, deleteRange{clock, length})
			}
		}
	}
	return ds
}
