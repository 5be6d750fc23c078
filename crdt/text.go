package crdt

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text is a root Y.Text of a Doc. Positions and lengths count UTF-16 code
// units, as Yjs does.
type Text struct {
	doc *Doc
	t   int32
}

// GetText returns the root Y.Text of that name, creating it lazily as Yjs's
// doc.getText does (an empty root changes no encoded state). Unlike getText
// it does not change how the root treats later updates (see the package
// documentation on formatting cleanup).
func (d *Doc) GetText(name string) *Text {
	t := d.root(name)
	if d.types[t].ref == typeUnknownRoot {
		d.types[t].ref = typeText
	}
	if x, ok := d.texts[t]; ok {
		return x
	}
	if d.texts == nil {
		d.texts = map[int32]*Text{}
	}
	x := &Text{doc: d, t: t}
	d.texts[t] = x
	return x
}

// String renders the text: the undeleted string contents in order (embeds,
// formats and nested types take no characters), as YText.toString.
func (t *Text) String() string {
	d := t.doc
	var b strings.Builder
	b.Grow(d.types[t.t].length)
	for i := d.types[t.t].start; i != 0; {
		it := &d.items[i]
		if it.kind == kindString && !it.deleted() {
			b.Write(d.stringBytes(it))
		}
		i = it.right
	}
	return b.String()
}

// Len returns the length of the text in UTF-16 code units (every undeleted
// countable unit, embeds included, as YText.length).
func (t *Text) Len() int { return t.doc.types[t.t].length }

var (
	errRangeArg  = errors.New("crdt: position out of range")
	errBadString = errors.New("crdt: text is not valid UTF-8")
	errWrongDoc  = errors.New("crdt: transaction belongs to another document")
	errFull      = errors.New("crdt: client clock would exceed 2^32")
)

func (t *Text) checkTx(tx *Transaction) error {
	switch {
	case tx == nil || tx.done:
		return errTxDone
	case tx.doc != t.doc:
		return errWrongDoc
	}
	return nil
}

// Insert inserts s at pos (UTF-16 units) as YText.insert does without
// attributes: the new text takes the formatting in effect at pos.
func (t *Text) Insert(tx *Transaction, pos int, s string) error {
	if err := t.checkTx(tx); err != nil {
		return err
	}
	if pos < 0 || pos > t.Len() {
		return fmt.Errorf("text insert at %d of %d: %w", pos, t.Len(), errRangeArg)
	}
	if s == "" {
		return nil
	}
	if !utf8.ValidString(s) {
		return errBadString
	}
	d := t.doc
	units := uint32(utf16Len([]byte(s)))
	ci := d.clientIndex(d.clientID)
	if uint64(d.state(ci))+uint64(units) > maxClock {
		return errFull
	}
	p := d.findPosition(tx, t.t, pos)
	// minimizeAttributeChanges: step over deleted items and formats that
	// the inserted text would restate anyway.
	for p.right != 0 {
		r := &d.items[p.right]
		if !r.deleted() {
			if r.kind != kindFormat {
				break
			}
			x := &d.ext[r.content]
			if !equalAttrs(p.attrs.getOrNull(x.key), x.val) {
				break
			}
		}
		p.left, p.right = p.right, r.right
	}
	if d.extendLeft(tx, t.t, ci, p, s, units) {
		return nil
	}
	off := uint32(len(d.text))
	d.text = append(d.text, s...)
	tx.touch(d, ci)
	it := item{
		client: ci, clock: d.state(ci), length: units, kind: kindString, flags: flagCountable,
		parent: t.t, left: p.left, right: p.right, content: off, clen: uint32(len(s)),
	}
	if p.left != 0 {
		it.origin = d.items[p.left].lastID()
	}
	if p.right != 0 {
		it.rorigin = d.items[p.right].id()
	}
	d.integrateItem(tx, d.newItem(it))
	return nil
}

// Delete deletes n units from pos, as YText.delete: strings, embeds and
// nested types in the range are deleted, formatting made redundant by the
// deletion is cleaned up.
func (t *Text) Delete(tx *Transaction, pos, n int) error {
	if err := t.checkTx(tx); err != nil {
		return err
	}
	if pos < 0 || n < 0 || pos+n > t.Len() {
		return fmt.Errorf("text delete %d at %d of %d: %w", n, pos, t.Len(), errRangeArg)
	}
	if n == 0 {
		return nil
	}
	d := t.doc
	p := d.findPosition(tx, t.t, pos)
	startAttrs := p.attrs.clone()
	start := p.right
	length := uint32(n)
	for length > 0 && p.right != 0 {
		r := &d.items[p.right]
		if !r.deleted() {
			switch r.kind {
			case kindString, kindType, kindEmbed:
				if length < r.length {
					d.getItemCleanStart(tx, r.client, r.clock+length)
					r = &d.items[p.right]
				}
				length -= r.length
				d.deleteItem(tx, p.right)
			}
		}
		p.forward(d)
	}
	if start != 0 && d.types[t.t].hasFormatting {
		d.cleanupFormattingGap(tx, start, p.right, startAttrs, p.attrs)
	}
	return nil
}

// textPos is YText's ItemTextListPosition: a place between two items and
// the formatting attributes in effect there.
type textPos struct {
	left, right int32
	attrs       *attrMap
}

// forward moves the position over its right item.
func (p *textPos) forward(d *Doc) {
	r := &d.items[p.right]
	if r.kind == kindFormat && !r.deleted() {
		x := &d.ext[r.content]
		if p.attrs == nil {
			p.attrs = &attrMap{}
		}
		p.attrs.update(x.key, x.val)
	}
	p.left, p.right = p.right, r.right
}

// findPosition is YText's findPosition: the place after pos units, the
// item holding unit pos split so that an item starts there. Texts without
// formatting use the position index; the others are walked from the start
// to know the attributes in effect.
func (d *Doc) findPosition(tx *Transaction, ti int32, pos int) textPos {
	t := &d.types[ti]
	var p textPos
	if !t.hasFormatting {
		if pos == 0 {
			p.right = t.start
			return p
		}
		ix := d.ensureIndex(ti)
		x, off := ix.find(d, pos-1)
		it := &d.items[x]
		if off+1 < it.length {
			d.getItemCleanStart(tx, it.client, it.clock+off+1)
		}
		p.left, p.right = x, d.items[x].right
		return p
	}
	p.attrs = &attrMap{}
	p.right = t.start
	count := uint32(pos)
	for p.right != 0 && count > 0 {
		r := &d.items[p.right]
		if r.kind == kindFormat {
			if !r.deleted() {
				x := &d.ext[r.content]
				p.attrs.update(x.key, x.val)
			}
		} else if !r.deleted() {
			if count < r.length {
				d.getItemCleanStart(tx, r.client, r.clock+count)
				r = &d.items[p.right]
			}
			count -= r.length
		}
		p.left, p.right = p.right, r.right
	}
	return p
}

// cleanupFormattingGap is YText's cleanupFormattingGap: after a deletion,
// delete the format items between start and the next content that are
// overwritten or restate what is already in effect.
func (d *Doc) cleanupFormattingGap(tx *Transaction, start, curr int32, startAttrs, currAttrs *attrMap) {
	end := start
	endFormats := map[string]int32{}
	for end != 0 {
		e := &d.items[end]
		if e.countable() && !e.deleted() {
			break
		}
		if !e.deleted() && e.kind == kindFormat {
			endFormats[d.ext[e.content].key] = end
		}
		end = e.right
	}
	reachedCurr := false
	for start != end && start != 0 {
		if curr == start {
			reachedCurr = true
		}
		s := &d.items[start]
		if !s.deleted() && s.kind == kindFormat {
			x := &d.ext[s.content]
			startVal := startAttrs.getOrNull(x.key)
			if endFormats[x.key] != start || strictEquals(startVal, x.val) {
				d.deleteItem(tx, start)
				if !reachedCurr && strictEquals(currAttrs.getOrNull(x.key), x.val) && !strictEquals(startVal, x.val) {
					if startVal.kind == jsNull {
						currAttrs.remove(x.key)
					} else {
						currAttrs.set(x.key, startVal)
					}
				}
			}
			if !reachedCurr && !d.items[start].deleted() {
				currAttrs.update(x.key, x.val)
			}
		}
		start = d.items[start].right
	}
}

// attrMap is a small insertion-ordered map of formatting attributes.
type attrMap struct {
	keys []string
	vals []jsValue
}

func (m *attrMap) idx(k string) int {
	if m == nil {
		return -1
	}
	for i, x := range m.keys {
		if x == k {
			return i
		}
	}
	return -1
}

// getOrNull is currentAttributes.get(key) ?? null.
func (m *attrMap) getOrNull(k string) jsValue {
	if i := m.idx(k); i >= 0 && m.vals[i].kind != jsUndefined && m.vals[i].kind != jsNull {
		return m.vals[i]
	}
	return jsNullValue
}

func (m *attrMap) set(k string, v jsValue) {
	if i := m.idx(k); i >= 0 {
		m.vals[i] = v
		return
	}
	m.keys = append(m.keys, k)
	m.vals = append(m.vals, v)
}

func (m *attrMap) remove(k string) {
	if i := m.idx(k); i >= 0 {
		m.keys = append(m.keys[:i], m.keys[i+1:]...)
		m.vals = append(m.vals[:i], m.vals[i+1:]...)
	}
}

// update is updateCurrentAttributes: a null value ends an attribute.
func (m *attrMap) update(k string, v jsValue) {
	if v.kind == jsNull {
		m.remove(k)
	} else {
		m.set(k, v)
	}
}

func (m *attrMap) clone() *attrMap {
	if m == nil {
		return nil
	}
	return &attrMap{keys: append([]string(nil), m.keys...), vals: append([]jsValue(nil), m.vals...)}
}

// extendLeft handles the common case of typing: the new text continues the
// string item to its left, which is this client's last struct. Yjs creates
// an item and merges it into that one when the transaction ends
// (tryToMergeWithLefts); the result, and the update encoded from it, are the
// same when the left item simply grows, which saves an item and an index
// update per keystroke. It reports whether it did so.
func (d *Doc) extendLeft(tx *Transaction, ti int32, ci uint32, p textPos, s string, units uint32) bool {
	if p.left == 0 {
		return false
	}
	it := &d.items[p.left]
	if it.kind != kindString || it.deleted() || it.client != ci || it.sub != 0 ||
		d.clients[ci].n == 0 || d.clients[ci].last() != p.left || it.right != p.right {
		return false
	}
	var rightID idRef
	if p.right != 0 {
		rightID = d.items[p.right].id()
	}
	if it.rorigin != rightID {
		return false
	}
	tx.touch(d, ci)
	if int(it.content+it.clen) != len(d.text) {
		off := d.appendText(d.stringBytes(it))
		d.deadText += int(it.clen)
		it.content = off
	}
	d.text = append(d.text, s...)
	it.clen += uint32(len(s))
	it.length += units
	t := &d.types[ti]
	t.length += int(units)
	if t.index != nil {
		t.index.setLen(d, p.left, it.visibleLen())
	}
	return true
}
