package crdt

import "fmt"

// Summary describes a v1 update, for `quire inspect --json`.
type Summary struct {
	StateVector  map[uint64]uint64 `json:"state_vector"`  // per client, the clock after its last struct in the update
	Structs      int               `json:"structs"`       // structs in the update (Items + GC + Skip)
	Items        int               `json:"items"`         // Items among them
	GC           int               `json:"gc"`            // GC structs among them
	DeletedItems int               `json:"deleted_items"` // items deleted once the update is loaded
	DeleteRanges int               `json:"delete_ranges"` // ranges in the update's delete set
	Bytes        int               `json:"bytes"`         // size of the update
}

// Summarize decodes a v1 update and describes it. Deleted items are counted
// in a fresh document the update is loaded into (with garbage collection, as
// a server holds it), so deletions carried by the delete set count too.
func Summarize(update []byte) (Summary, error) {
	u, err := decodeUpdate(update)
	if err != nil {
		return Summary{}, fmt.Errorf("summarize: %w", err)
	}
	s := Summary{StateVector: map[uint64]uint64{}, Bytes: len(update)}
	for _, seg := range u.segments {
		for i := range seg.refs {
			r := &seg.refs[i]
			s.Structs++
			switch r.kind {
			case kindGC:
				s.GC++
			case kindSkip:
			default:
				s.Items++
			}
			if end := r.end(); end > s.StateVector[seg.client] {
				s.StateVector[seg.client] = end
			}
		}
	}
	for _, e := range u.ds.entries {
		s.DeleteRanges += len(e.ranges)
	}
	d := NewDoc(Options{})
	if _, err := d.Transact(func(tx *Transaction) error {
		d.readUpdate(tx, u)
		return nil
	}); err != nil {
		return Summary{}, fmt.Errorf("summarize: %w", err)
	}
	for _, c := range d.clients {
		c.each(func(ii int32) {
			if it := &d.items[ii]; !it.isGC() && it.deleted() {
				s.DeletedItems++
			}
		})
	}
	return s, nil
}
