package crdt

import (
	"fmt"
	"slices"
)

// Parent kinds of a decoded item.
const (
	parentNone = iota // copied from the left or right neighbour on integration
	parentKey         // a root type by name
	parentID          // the Item holding the parent type
)

// ref is a struct decoded from an update and not yet integrated (Yjs
// creates Item/GC/Skip objects for these in readClientsStructRefs).
type ref struct {
	client   uint64
	clock    uint64
	length   uint64
	kind     uint8 // kindGC, kindSkip or an item content kind
	parent   uint8 // parentNone, parentKey or parentID
	hasSub   bool
	hasOrig  bool // origin is set
	hasROrig bool // rorigin is set
	origin   rawID
	rorigin  rawID
	parentID rawID
	key      string // root name (parentKey)
	sub      string // parentSub
	str      []byte // String content (may alias the update being applied)
	ext      *extContent

	// Resolved by getMissing, used by integrate.
	left, right int32
	ptype       int32
	psub        int32
}

func (r *ref) end() uint64 { return r.clock + r.length }

// segment is the structs of one client written as one run of an update.
type segment struct {
	client uint64
	refs   []ref
}

// decodedUpdate is a whole v1 update: runs of structs and a delete set.
type decodedUpdate struct {
	segments []segment
	ds       *deleteSet
}

var (
	errZeroLength  = fmt.Errorf("%w: struct of length zero", ErrMalformed)
	errContentRef  = fmt.Errorf("%w: unknown content type", ErrMalformed)
	errTypeRef     = fmt.Errorf("%w: unknown shared type", ErrMalformed)
	errJSON        = fmt.Errorf("%w: content is not valid JSON", ErrMalformed)
	errDocOpts     = fmt.Errorf("%w: subdocument options are null or undefined", ErrMalformed)
	errSelfRef     = fmt.Errorf("%w: struct refers to a later clock of its own client", ErrMalformed)
	errSameOrigins = fmt.Errorf("%w: item has the same left and right origin", ErrMalformed)
)

// decodeUpdate decodes and validates a whole v1 update, as Yjs's
// readClientsStructRefs and readDeleteSet do, without touching any document.
// String contents alias b.
func decodeUpdate(b []byte) (*decodedUpdate, error) {
	d := newDecoder(b)
	u := &decodedUpdate{}
	n := d.readVarUint()
	if n > uint64(d.remaining()/3) {
		// Each client run takes at least three bytes.
		if d.err == nil {
			d.fail(errEOF)
		}
	} else {
		u.segments = make([]segment, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		count := d.readVarUint()
		client := d.readVarUint()
		clock := d.readVarUint()
		if d.err != nil {
			break
		}
		if clock > maxClock {
			d.fail(errRange)
			break
		}
		// Each struct takes at least two bytes.
		if count > uint64(d.remaining()/2) {
			d.fail(errEOF)
			break
		}
		refs := make([]ref, count)
		for j := range refs {
			r := &refs[j]
			r.client, r.clock = client, clock
			d.readRef(r)
			if d.err != nil {
				break
			}
			clock += r.length
			if clock > maxClock {
				d.fail(errRange)
			}
		}
		u.segments = append(u.segments, segment{client: client, refs: refs})
	}
	if d.err == nil {
		u.ds = readDeleteSet(d)
	}
	if d.err == nil && d.remaining() != 0 {
		d.fail(errTrailing)
	}
	if d.err != nil {
		return nil, d.err
	}
	return u, nil
}

func (d *decoder) readID() rawID {
	client := d.readVarUint()
	clock := d.readVarUint()
	if d.err == nil && clock > maxClock {
		d.fail(errRange)
	}
	return rawID{client, clock}
}

// readRef reads one struct (GC, Skip or Item with its content) into r,
// whose client and clock are set.
func (d *decoder) readRef(r *ref) {
	info := d.readUint8()
	if d.err != nil {
		return
	}
	switch info & 0x1f {
	case kindGC, kindSkip:
		r.kind = info & 0x1f
		r.length = d.readVarUint()
	default:
		r.kind = info & 0x1f
		if info&0x80 != 0 {
			r.origin, r.hasOrig = d.readID(), true
		}
		if info&0x40 != 0 {
			r.rorigin, r.hasROrig = d.readID(), true
		}
		if info&0xc0 == 0 {
			if d.readVarUint() == 1 {
				r.parent = parentKey
				r.key = d.readVarString()
			} else {
				r.parent = parentID
				r.parentID = d.readID()
			}
			if info&0x20 != 0 {
				r.hasSub = true
				r.sub = d.readVarString()
			}
		}
		d.readContent(r)
		if d.err != nil {
			return
		}
		// Causality: an item can only refer to earlier clocks of its own
		// client. Yjs throws on anything else halfway through integration;
		// rejecting it here keeps a bad update from changing anything.
		if (r.hasOrig && r.origin.client == r.client && r.origin.clock >= r.clock) ||
			(r.hasROrig && r.rorigin.client == r.client && r.rorigin.clock >= r.clock) {
			d.fail(errSelfRef)
			return
		}
		// The unit left of an item cannot also be the one right of it. Yjs
		// would integrate such an item at a place that depends on how the
		// items around were split, so peers could disagree.
		if r.hasOrig && r.hasROrig && r.origin == r.rorigin {
			d.fail(errSameOrigins)
			return
		}
		if r.parent == parentID && r.parentID.client == r.client && r.parentID.clock >= r.clock {
			d.fail(errSelfRef)
			return
		}
	}
	if d.err != nil {
		return
	}
	if r.length == 0 {
		d.fail(errZeroLength)
	} else if r.length > maxClock {
		d.fail(errRange)
	}
}

// readContent is readItemContent: the content of an item and its length.
func (d *decoder) readContent(r *ref) {
	switch r.kind {
	case kindDeleted:
		r.length = d.readVarUint()
	case kindJSON:
		n := d.readVarUint()
		x := &extContent{}
		if n <= uint64(d.remaining()) {
			x.vals = make([]jsValue, 0, n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			s := d.readVarStringView()
			if d.err != nil {
				break
			}
			if string(s) == "undefined" {
				x.vals = append(x.vals, jsUndefinedValue)
				continue
			}
			v, ok := parseJSON(s)
			if !ok {
				d.fail(errJSON)
				break
			}
			x.vals = append(x.vals, v)
		}
		r.ext, r.length = x, n
	case kindBinary:
		r.ext = &extContent{bin: append([]byte{}, d.readVarBytesView()...)}
		r.length = 1
	case kindString:
		r.str = d.readVarStringView()
		r.length = uint64(utf16Len(r.str))
	case kindEmbed:
		r.ext = &extContent{val: d.readJSON()}
		r.length = 1
	case kindFormat:
		key := d.readVarString()
		r.ext = &extContent{key: key, val: d.readJSON()}
		r.length = 1
	case kindType:
		ref := d.readVarUint()
		if d.err == nil && ref > typeXMLText {
			d.fail(errTypeRef)
			return
		}
		x := &extContent{typeRef: uint8(ref)}
		if ref == typeXMLElement || ref == typeXMLHook {
			x.key = d.readVarString()
		}
		r.ext, r.length = x, 1
	case kindAny:
		n := d.readVarUint()
		x := &extContent{}
		if n <= uint64(d.remaining()) {
			x.vals = make([]jsValue, 0, n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			x.vals = append(x.vals, d.readAny(0))
		}
		r.ext, r.length = x, n
	case kindDoc:
		guid := d.readVarString()
		opts := d.readAny(0)
		if d.err != nil {
			return
		}
		norm, ok := normalizeDocOpts(opts)
		if !ok {
			d.fail(errDocOpts)
			return
		}
		r.ext, r.length = &extContent{key: guid, val: norm}, 1
	default:
		d.fail(errContentRef)
	}
}

func (d *decoder) readJSON() jsValue {
	s := d.readVarStringView()
	if d.err != nil {
		return jsUndefinedValue
	}
	v, ok := parseJSON(s)
	if !ok {
		d.fail(errJSON)
	}
	return v
}

// writeRef is Item/GC/Skip.write for a decoded struct, from offset units on.
func writeRef(e *encoder, r *ref, offset uint64) {
	switch r.kind {
	case kindGC:
		e.writeUint8(kindGC)
		e.writeVarUint(r.length - offset)
		return
	case kindSkip:
		e.writeUint8(kindSkip)
		e.writeVarUint(r.length - offset)
		return
	}
	origin, hasOrig := r.origin, r.hasOrig
	if offset > 0 {
		origin, hasOrig = rawID{r.client, r.clock + offset - 1}, true
	}
	info := r.kind
	if hasOrig {
		info |= 0x80
	}
	if r.hasROrig {
		info |= 0x40
	}
	if r.hasSub {
		info |= 0x20
	}
	e.writeUint8(info)
	if hasOrig {
		e.writeVarUint(origin.client)
		e.writeVarUint(origin.clock)
	}
	if r.hasROrig {
		e.writeVarUint(r.rorigin.client)
		e.writeVarUint(r.rorigin.clock)
	}
	if !hasOrig && !r.hasROrig {
		if r.parent == parentKey {
			e.writeVarUint(1)
			e.writeVarString(r.key)
		} else {
			e.writeVarUint(0)
			e.writeVarUint(r.parentID.client)
			e.writeVarUint(r.parentID.clock)
		}
		if r.hasSub {
			e.writeVarString(r.sub)
		}
	}
	switch r.kind {
	case kindDeleted:
		e.writeVarUint(r.length - offset)
	case kindString:
		writeStringFrom(e, r.str, uint64(len(r.str)) == r.length, uint32(offset))
	default:
		writeExtContent(e, r.kind, r.ext, uint32(offset))
	}
}

// sliceRef is Yjs's sliceStruct: the part of r from diff units on.
func sliceRef(r *ref, diff uint64) ref {
	out := *r
	out.clock += diff
	out.length -= diff
	if r.kind == kindGC || r.kind == kindSkip {
		return out
	}
	out.origin, out.hasOrig = rawID{r.client, r.clock + diff - 1}, true
	switch r.kind {
	case kindString:
		e := encoder{}
		writeStringFrom(&e, r.str, uint64(len(r.str)) == r.length, uint32(diff))
		dd := newDecoder(e.buf)
		out.str = dd.readVarBytesView()
	case kindJSON, kindAny:
		out.ext = &extContent{vals: r.ext.vals[diff:]}
	}
	return out
}

// encode writes the update as v1 bytes.
func (u *decodedUpdate) encode() []byte {
	e := &encoder{}
	e.writeVarUint(uint64(len(u.segments)))
	for _, s := range u.segments {
		e.writeVarUint(uint64(len(s.refs)))
		e.writeVarUint(s.client)
		e.writeVarUint(s.refs[0].clock)
		for i := range s.refs {
			writeRef(e, &s.refs[i], 0)
		}
	}
	u.ds.write(e)
	return e.bytes()
}

// refReader iterates the structs of an update in order (LazyStructReader).
type refReader struct {
	u           *decodedUpdate
	seg, i      int
	filterSkips bool
	curr        *ref
}

func newRefReader(u *decodedUpdate, filterSkips bool) *refReader {
	r := &refReader{u: u, filterSkips: filterSkips, i: -1}
	r.next()
	return r
}

func (r *refReader) next() *ref {
	for {
		r.i++
		for r.seg < len(r.u.segments) && r.i >= len(r.u.segments[r.seg].refs) {
			r.seg++
			r.i = 0
		}
		if r.seg >= len(r.u.segments) {
			r.curr = nil
			return nil
		}
		c := &r.u.segments[r.seg].refs[r.i]
		if r.filterSkips && c.kind == kindSkip {
			continue
		}
		r.curr = c
		return c
	}
}

// lazyWriter collects structs into client runs (LazyStructWriter).
type lazyWriter struct {
	segments []segment
}

func (w *lazyWriter) write(r ref) {
	n := len(w.segments)
	if n == 0 || w.segments[n-1].client != r.client {
		w.segments = append(w.segments, segment{client: r.client})
		n++
	}
	w.segments[n-1].refs = append(w.segments[n-1].refs, r)
}

// mergeUpdates is Yjs's mergeUpdates: one update holding the structs of all
// (duplicates dropped, gaps filled with Skip structs) and the union of the
// delete sets.
func mergeUpdates(updates []*decodedUpdate) *decodedUpdate {
	if len(updates) == 1 {
		return updates[0]
	}
	readers := make([]*refReader, 0, len(updates))
	for _, u := range updates {
		readers = append(readers, newRefReader(u, true))
	}
	var currWrite *ref
	w := &lazyWriter{}
	for {
		readers = slices.DeleteFunc(readers, func(r *refReader) bool { return r.curr == nil })
		slices.SortStableFunc(readers, func(a, b *refReader) int {
			if a.curr.client == b.curr.client {
				switch {
				case a.curr.clock < b.curr.clock:
					return -1
				case a.curr.clock > b.curr.clock:
					return 1
				}
				if (a.curr.kind == kindSkip) == (b.curr.kind == kindSkip) {
					return 0
				}
				if a.curr.kind == kindSkip {
					return 1
				}
				return -1
			}
			return cmpDesc(a.curr.client, b.curr.client)
		})
		if len(readers) == 0 {
			break
		}
		currDecoder := readers[0]
		firstClient := currDecoder.curr.client
		if currWrite != nil {
			curr := currDecoder.curr
			iterated := false
			for curr != nil && curr.end() <= currWrite.end() && curr.client >= currWrite.client {
				curr = currDecoder.next()
				iterated = true
			}
			if curr == nil || curr.client != firstClient || (iterated && curr.clock > currWrite.end()) {
				continue
			}
			if firstClient != currWrite.client {
				w.write(*currWrite)
				c := *curr
				currWrite = &c
				currDecoder.next()
			} else if currWrite.end() < curr.clock {
				if currWrite.kind == kindSkip {
					currWrite.length = curr.end() - currWrite.clock
				} else {
					w.write(*currWrite)
					diff := curr.clock - currWrite.end()
					currWrite = &ref{client: firstClient, clock: currWrite.end(), length: diff, kind: kindSkip}
				}
			} else {
				diff := currWrite.end() - curr.clock
				c := *curr
				if diff > 0 {
					if currWrite.kind == kindSkip {
						currWrite.length -= diff
					} else {
						c = sliceRef(curr, diff)
					}
				}
				if !mergeRefs(currWrite, &c) {
					w.write(*currWrite)
					currWrite = &c
					currDecoder.next()
				}
			}
		} else {
			c := *currDecoder.curr
			currWrite = &c
			currDecoder.next()
		}
		for next := currDecoder.curr; next != nil && next.client == firstClient && next.clock == currWrite.end() && next.kind != kindSkip; next = currDecoder.next() {
			w.write(*currWrite)
			c := *next
			currWrite = &c
		}
	}
	if currWrite != nil {
		w.write(*currWrite)
	}
	dss := make([]*deleteSet, len(updates))
	for i, u := range updates {
		dss[i] = u.ds
	}
	return &decodedUpdate{segments: w.segments, ds: mergeDeleteSets(dss)}
}

// mergeRefs is mergeWith between decoded structs: only GC with GC and Skip
// with Skip merge (decoded Items never do, as their right is unknown).
func mergeRefs(left, right *ref) bool {
	if left.kind != right.kind || (left.kind != kindGC && left.kind != kindSkip) {
		return false
	}
	left.length += right.length
	return true
}

// diffUpdate is Yjs's diffUpdate: the part of an update a peer with state
// vector sv lacks.
func diffUpdate(u *decodedUpdate, sv StateVector) *decodedUpdate {
	w := &lazyWriter{}
	rd := newRefReader(u, false)
	for rd.curr != nil {
		curr := rd.curr
		currClient := curr.client
		svClock := sv[currClient]
		if curr.kind == kindSkip {
			rd.next()
			continue
		}
		if curr.end() > svClock {
			if svClock > curr.clock {
				w.write(sliceRef(curr, svClock-curr.clock))
			} else {
				w.write(*curr)
			}
			rd.next()
			for rd.curr != nil && rd.curr.client == currClient {
				w.write(*rd.curr)
				rd.next()
			}
		} else {
			for rd.curr != nil && rd.curr.client == currClient && rd.curr.end() <= svClock {
				rd.next()
			}
		}
	}
	return &decodedUpdate{segments: w.segments, ds: u.ds}
}

// ValidateUpdate fully decodes a v1 update without applying it.
func ValidateUpdate(update []byte) error {
	if _, err := decodeUpdate(update); err != nil {
		return fmt.Errorf("validate update: %w", err)
	}
	return nil
}
