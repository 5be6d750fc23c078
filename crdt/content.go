package crdt

// Struct and content kinds, numbered as Yjs numbers them in the low five
// bits of a struct's info byte.
const (
	kindGC      = 0
	kindDeleted = 1
	kindJSON    = 2
	kindBinary  = 3
	kindString  = 4
	kindEmbed   = 5
	kindFormat  = 6
	kindType    = 7
	kindAny     = 8
	kindDoc     = 9
	kindSkip    = 10
)

// extContent holds the contents that are neither strings nor deleted nor
// types: JSON and Any (a list of values), Binary, Embed, Format and Doc.
type extContent struct {
	vals    []jsValue // JSON, Any
	bin     []byte    // Binary
	val     jsValue   // Embed; Format value; Doc options
	key     string    // Format key; Doc guid; XmlElement/XmlHook name of a Type ref
	typeRef uint8     // Type ref (decoded, not yet integrated, only)
}

// countableKind is AbstractContent.isCountable: deleted content and format
// markers take no room in a sequence.
func countableKind(k uint8) bool { return k != kindDeleted && k != kindFormat }

// utf16Len counts the UTF-16 code units of valid UTF-8 b, the unit Yjs
// measures string lengths in.
func utf16Len(b []byte) int {
	n := 0
	i := 0
	for i < len(b) {
		c := b[i]
		switch {
		case c < 0x80:
			i++
		case c < 0xE0:
			i += 2
		case c < 0xF0:
			i += 3
		default:
			i += 4
			n++ // astral: a surrogate pair
		}
		n++
	}
	return n
}

// utf16ToByteOffset maps a UTF-16 offset into valid UTF-8 b to a byte
// offset. When the offset falls between the two halves of a surrogate pair,
// midPair is set and off is the start of that 4-byte character.
func utf16ToByteOffset(b []byte, units int) (off int, midPair bool) {
	u := 0
	i := 0
	for i < len(b) && u < units {
		c := b[i]
		switch {
		case c < 0x80:
			i++
			u++
		case c < 0xE0:
			i += 2
			u++
		case c < 0xF0:
			i += 3
			u++
		default:
			if u+1 == units {
				return i, true
			}
			i += 4
			u += 2
		}
	}
	return i, false
}

var replacementChar = []byte("\uFFFD")

// stringBytes returns the UTF-8 bytes of a string item.
func (d *Doc) stringBytes(it *item) []byte {
	return d.text[it.content : it.content+it.clen : it.content+it.clen]
}

// appendText stores s in the text arena and returns its offset.
func (d *Doc) appendText(s []byte) uint32 {
	off := len(d.text)
	d.text = append(d.text, s...)
	return uint32(off)
}

// spliceContent is AbstractContent.splice: it cuts the content of it after
// diff units, keeps the left part in it and returns the right part as
// (content, clen) to be stored in the new right item. Strings cut inside a
// surrogate pair lose both halves to U+FFFD, as ContentString.splice does.
func (d *Doc) spliceContent(it *item, diff uint32) (content, clen uint32) {
	switch it.kind {
	case kindString:
		if it.clen == it.length { // ASCII: units are bytes
			content, clen = it.content+diff, it.clen-diff
			it.clen = diff
			return content, clen
		}
		b := d.stringBytes(it)
		off, mid := utf16ToByteOffset(b, int(diff))
		if !mid {
			content, clen = it.content+uint32(off), it.clen-uint32(off)
			it.clen = uint32(off)
			return content, clen
		}
		// A pair split in two: the left ends in U+FFFD, the right starts
		// with one (yjs issue #248); both need fresh bytes.
		rightBytes := append(append([]byte(nil), replacementChar...), b[off+4:]...)
		leftLen := off
		d.deadText += len(b)
		newLeft := d.appendText(b[:leftLen])
		d.text = append(d.text, replacementChar...)
		it.content, it.clen = newLeft, uint32(leftLen+len(replacementChar))
		content = d.appendText(rightBytes)
		return content, uint32(len(rightBytes))
	case kindJSON, kindAny:
		x := &d.ext[it.content]
		right := extContent{vals: append([]jsValue(nil), x.vals[diff:]...)}
		x.vals = x.vals[:diff:diff]
		d.ext = append(d.ext, right)
		return uint32(len(d.ext) - 1), 0
	}
	// Deleted content has no payload; Yjs cannot split the others (length 1).
	return 0, 0
}

// mergeContent is AbstractContent.mergeWith for two items of the same kind.
func (d *Doc) mergeContent(left, right *item) bool {
	switch left.kind {
	case kindDeleted:
		return true
	case kindString:
		end := left.content + left.clen
		switch {
		case end == right.content:
			// Contiguous runs, as typing produces: nothing to copy.
		case int(end) == len(d.text):
			d.text = append(d.text, d.stringBytes(right)...)
			d.deadText += int(right.clen)
		default:
			off := d.appendText(d.stringBytes(left))
			d.text = append(d.text, d.stringBytes(right)...)
			d.deadText += int(left.clen + right.clen)
			left.content = off
		}
		left.clen += right.clen
		return true
	case kindJSON, kindAny:
		l := &d.ext[left.content]
		l.vals = append(l.vals[:len(l.vals):len(l.vals)], d.ext[right.content].vals...)
		return true
	}
	return false
}

// writeContent writes the content of it from offset units on, as the
// content classes' write methods do.
func (d *Doc) writeContent(e *encoder, it *item, offset uint32) {
	switch it.kind {
	case kindDeleted:
		e.writeVarUint(uint64(it.length - offset))
	case kindString:
		b := d.stringBytes(it)
		writeStringFrom(e, b, it.clen == it.length, offset)
	case kindType:
		t := &d.types[it.content]
		e.writeVarUint(uint64(t.ref))
		if t.ref == typeXMLElement || t.ref == typeXMLHook {
			e.writeVarString(t.name)
		}
	default:
		writeExtContent(e, it.kind, &d.ext[it.content], offset)
	}
}

// writeStringFrom writes a string content from a UTF-16 offset. A slice
// starting inside a surrogate pair starts with U+FFFD, which is what JS's
// TextEncoder makes of the lone low surrogate.
func writeStringFrom(e *encoder, b []byte, ascii bool, offset uint32) {
	if offset == 0 {
		e.writeVarBytes(b)
		return
	}
	if ascii {
		e.writeVarBytes(b[offset:])
		return
	}
	off, mid := utf16ToByteOffset(b, int(offset))
	if !mid {
		e.writeVarBytes(b[off:])
		return
	}
	rest := b[off+4:]
	e.writeVarUint(uint64(len(rest) + len(replacementChar)))
	e.buf = append(e.buf, replacementChar...)
	e.buf = append(e.buf, rest...)
}

func writeExtContent(e *encoder, kind uint8, x *extContent, offset uint32) {
	switch kind {
	case kindJSON:
		e.writeVarUint(uint64(len(x.vals)) - uint64(offset))
		for _, v := range x.vals[offset:] {
			if v.kind == jsUndefined {
				e.writeVarString("undefined")
				continue
			}
			s, _ := stringifyJSON(v)
			e.writeVarString(s)
		}
	case kindBinary:
		e.writeVarBytes(x.bin)
	case kindEmbed:
		s, _ := stringifyJSON(x.val)
		e.writeVarString(s)
	case kindFormat:
		e.writeVarString(x.key)
		s, _ := stringifyJSON(x.val)
		e.writeVarString(s)
	case kindAny:
		e.writeVarUint(uint64(len(x.vals)) - uint64(offset))
		for _, v := range x.vals[offset:] {
			e.writeAny(v)
		}
	case kindDoc:
		e.writeVarString(x.key)
		e.writeAny(x.val)
	case kindType:
		e.writeVarUint(uint64(x.typeRef))
		if x.typeRef == typeXMLElement || x.typeRef == typeXMLHook {
			e.writeVarString(x.key)
		}
	}
}

// normalizeDocOpts reproduces what Yjs does to a subdocument's options:
// readContentDoc builds a Doc from {guid, ...opts} and ContentDoc keeps only
// gc: false, autoLoad: true and meta. ok is false for null/undefined options,
// on which Yjs throws.
func normalizeDocOpts(opts jsValue) (jsValue, bool) {
	if opts.kind == jsUndefined || opts.kind == jsNull {
		return jsUndefinedValue, false
	}
	out := &jsObj{}
	if opts.kind == jsObject {
		if gc, ok := opts.obj.get("gc"); ok && gc.kind != jsUndefined && !gc.truthy() {
			out.set("gc", jsBoolean(false))
		}
		if al, ok := opts.obj.get("autoLoad"); ok && al.truthy() {
			out.set("autoLoad", jsBoolean(true))
		}
		if meta, ok := opts.obj.get("meta"); ok && meta.kind != jsUndefined && meta.kind != jsNull {
			out.set("meta", meta)
		}
	}
	return jsValue{kind: jsObject, obj: out}, true
}

// compactText rebuilds the text arena once most of it is dead (deleted or
// superseded strings), so a long-lived document's memory follows its live
// content. Amortised O(1) per byte written.
func (d *Doc) compactText() {
	if d.deadText < 1<<16 || d.deadText < len(d.text)/2 {
		return
	}
	live := max(len(d.text)-d.deadText, 0)
	buf := make([]byte, 0, live+live/4)
	for i := 1; i < len(d.items); i++ {
		it := &d.items[i]
		if it.kind != kindString {
			continue
		}
		off := len(buf)
		buf = append(buf, d.text[it.content:it.content+it.clen]...)
		it.content = uint32(off)
	}
	d.text = buf
	d.deadText = 0
}
