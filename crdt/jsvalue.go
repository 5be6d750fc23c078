package crdt

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsKind is the JavaScript type of a value carried by Any, JSON, Embed,
// Format and Doc contents.
type jsKind uint8

const (
	jsUndefined jsKind = iota
	jsNull
	jsBool
	jsNumber
	jsBigInt
	jsString
	jsObject
	jsArray
	jsBytes
)

// jsValue is a JavaScript value as Yjs holds it after decoding. Numbers are
// float64 like JS numbers, because lib0's writeAny chooses the encoding from
// the number's value (an int-valued float64 is re-encoded as a var int), and
// Yjs must be matched byte for byte. Objects keep JS own-property order.
// Composite values are pointers so that JS reference equality (===) can be
// reproduced where Yjs relies on it (formatting attributes).
type jsValue struct {
	kind jsKind
	num  float64 // jsNumber; jsBool: 0 or 1
	big  int64   // jsBigInt
	str  string  // jsString (WTF-8 when a JSON \u escape produced a lone surrogate)
	obj  *jsObj  // jsObject
	arr  *jsArr  // jsArray
	bin  []byte  // jsBytes
}

type jsObj struct {
	keys []string
	vals []jsValue
}

type jsArr struct {
	elems []jsValue
}

var (
	jsUndefinedValue = jsValue{kind: jsUndefined}
	jsNullValue      = jsValue{kind: jsNull}
)

func jsNum(f float64) jsValue  { return jsValue{kind: jsNumber, num: f} }
func jsStr(s string) jsValue   { return jsValue{kind: jsString, str: s} }
func jsBoolean(b bool) jsValue { return jsValue{kind: jsBool, num: b2f(b)} }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// truthy is JS ToBoolean.
func (v jsValue) truthy() bool {
	switch v.kind {
	case jsUndefined, jsNull:
		return false
	case jsBool:
		return v.num != 0
	case jsNumber:
		return v.num != 0 && !math.IsNaN(v.num)
	case jsBigInt:
		return v.big != 0
	case jsString:
		return v.str != ""
	}
	return true
}

// get returns the own property key of an object (undefined if absent).
func (o *jsObj) get(key string) (jsValue, bool) {
	for i, k := range o.keys {
		if k == key {
			return o.vals[i], true
		}
	}
	return jsUndefinedValue, false
}

// set assigns obj[key] = v with JS property-order rules: array-index keys
// first in ascending numeric order, then other keys in creation order; an
// existing key keeps its place.
func (o *jsObj) set(key string, v jsValue) {
	for i, k := range o.keys {
		if k == key {
			o.vals[i] = v
			return
		}
	}
	idx, isIndex := arrayIndex(key)
	if !isIndex {
		o.keys = append(o.keys, key)
		o.vals = append(o.vals, v)
		return
	}
	at := 0
	for at < len(o.keys) {
		j, ok := arrayIndex(o.keys[at])
		if !ok || j > idx {
			break
		}
		at++
	}
	o.keys = append(o.keys, "")
	o.vals = append(o.vals, jsValue{})
	copy(o.keys[at+1:], o.keys[at:])
	copy(o.vals[at+1:], o.vals[at:])
	o.keys[at] = key
	o.vals[at] = v
}

// arrayIndex reports whether key is a canonical array index (an integer in
// [0, 2^32-2] without leading zeros), which JS orders before other keys.
func arrayIndex(key string) (uint64, bool) {
	if key == "" || len(key) > 10 || (len(key) > 1 && key[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n < 1<<32-1
}

// readAny is lib0 readAny. Object keys are assigned as JS does, so a
// "__proto__" key sets the prototype instead of creating a property.
func (d *decoder) readAny(depth int) jsValue {
	if depth > maxNestLevels {
		d.fail(errAnyDepth)
		return jsUndefinedValue
	}
	tag := d.readUint8()
	if d.err != nil {
		return jsUndefinedValue
	}
	switch tag {
	case 127:
		return jsUndefinedValue
	case 126:
		return jsNullValue
	case 125:
		neg, mag := d.readVarInt()
		if mag > maxSafeInt {
			d.fail(errRange)
			return jsUndefinedValue
		}
		f := float64(mag)
		if neg {
			f = -f
		}
		return jsNum(f)
	case 124:
		return jsNum(float64(d.readFloat32()))
	case 123:
		return jsNum(d.readFloat64())
	case 122:
		return jsValue{kind: jsBigInt, big: d.readBigInt64()}
	case 121:
		return jsBoolean(false)
	case 120:
		return jsBoolean(true)
	case 119:
		return jsStr(d.readVarString())
	case 118:
		n := d.readVarUint()
		// Each entry takes at least two bytes: cap the preallocation by them.
		o := &jsObj{}
		if n <= uint64(d.remaining()/2) {
			o.keys = make([]string, 0, n)
			o.vals = make([]jsValue, 0, n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			k := d.readVarString()
			v := d.readAny(depth + 1)
			if k == "__proto__" {
				continue
			}
			o.set(k, v)
		}
		return jsValue{kind: jsObject, obj: o}
	case 117:
		n := d.readVarUint()
		a := &jsArr{}
		if n <= uint64(d.remaining()) {
			a.elems = make([]jsValue, 0, n)
		}
		for i := uint64(0); i < n && d.err == nil; i++ {
			a.elems = append(a.elems, d.readAny(depth+1))
		}
		return jsValue{kind: jsArray, arr: a}
	case 116:
		b := d.readVarBytesView()
		return jsValue{kind: jsBytes, bin: append([]byte(nil), b...)}
	}
	d.fail(errAnyTag)
	return jsUndefinedValue
}

// writeAny is lib0 writeAny: the encoding of a number depends on its value.
func (e *encoder) writeAny(v jsValue) {
	switch v.kind {
	case jsUndefined:
		e.writeUint8(127)
	case jsNull:
		e.writeUint8(126)
	case jsBool:
		if v.num != 0 {
			e.writeUint8(120)
		} else {
			e.writeUint8(121)
		}
	case jsNumber:
		f := v.num
		switch {
		case f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32:
			e.writeUint8(125)
			e.writeVarInt(math.Signbit(f), uint64(math.Abs(f)))
		case float64(float32(f)) == f:
			e.writeUint8(124)
			e.writeFloat32(float32(f))
		default:
			e.writeUint8(123)
			e.writeFloat64(f)
		}
	case jsBigInt:
		e.writeUint8(122)
		e.writeBigInt64(v.big)
	case jsString:
		e.writeUint8(119)
		e.writeVarString(v.str)
	case jsObject:
		e.writeUint8(118)
		e.writeVarUint(uint64(len(v.obj.keys)))
		for i, k := range v.obj.keys {
			e.writeVarString(k)
			e.writeAny(v.obj.vals[i])
		}
	case jsArray:
		e.writeUint8(117)
		e.writeVarUint(uint64(len(v.arr.elems)))
		for _, el := range v.arr.elems {
			e.writeAny(el)
		}
	case jsBytes:
		e.writeUint8(116)
		e.writeVarBytes(v.bin)
	}
}

// strictEquals is JS ===: primitives by value, composites by reference.
func strictEquals(a, b jsValue) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case jsUndefined, jsNull:
		return true
	case jsBool, jsNumber:
		return a.num == b.num // NaN != NaN, 0 == -0, as in JS
	case jsBigInt:
		return a.big == b.big
	case jsString:
		return a.str == b.str
	case jsObject:
		return a.obj == b.obj
	case jsArray:
		return a.arr == b.arr
	case jsBytes:
		return len(a.bin) == len(b.bin) && (len(a.bin) == 0 || &a.bin[0] == &b.bin[0])
	}
	return false
}

// equalAttrs is YText's equalAttrs: === or, for two objects, lib0's
// object.equalFlat (same key count, values compared with ===).
func equalAttrs(a, b jsValue) bool {
	if strictEquals(a, b) {
		return true
	}
	ao, bo := a.kind == jsObject || a.kind == jsArray, b.kind == jsObject || b.kind == jsArray
	if !ao || !bo {
		return false
	}
	ak, av := flatEntries(a)
	bk, bv := flatEntries(b)
	if len(ak) != len(bk) {
		return false
	}
	for i, k := range ak {
		var other jsValue
		found := false
		for j, k2 := range bk {
			if k2 == k {
				other, found = bv[j], true
				break
			}
		}
		if av[i].kind == jsUndefined && !found {
			return false
		}
		if !found {
			other = jsUndefinedValue
		}
		if !strictEquals(other, av[i]) {
			return false
		}
	}
	return true
}

func flatEntries(v jsValue) ([]string, []jsValue) {
	if v.kind == jsObject {
		return v.obj.keys, v.obj.vals
	}
	keys := make([]string, len(v.arr.elems))
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}
	return keys, v.arr.elems
}

// parseJSON is JSON.parse. Strings may contain lone surrogates from \u
// escapes; they are kept as WTF-8 so JSON.stringify can reproduce them.
func parseJSON(s []byte) (jsValue, bool) {
	p := jsonParser{s: s}
	p.ws()
	v, ok := p.value(0)
	if !ok {
		return jsUndefinedValue, false
	}
	p.ws()
	return v, p.i == len(p.s)
}

type jsonParser struct {
	s []byte
	i int
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) lit(word string) bool {
	if len(p.s)-p.i >= len(word) && string(p.s[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return true
	}
	return false
}

func (p *jsonParser) value(depth int) (jsValue, bool) {
	if p.i >= len(p.s) || depth > maxNestLevels {
		return jsUndefinedValue, false
	}
	switch c := p.s[p.i]; {
	case c == '{':
		p.i++
		o := &jsObj{}
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return jsValue{kind: jsObject, obj: o}, true
		}
		for {
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != '"' {
				return jsUndefinedValue, false
			}
			k, ok := p.str()
			if !ok {
				return jsUndefinedValue, false
			}
			p.ws()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return jsUndefinedValue, false
			}
			p.i++
			p.ws()
			v, ok := p.value(depth + 1)
			if !ok {
				return jsUndefinedValue, false
			}
			o.set(k, v)
			p.ws()
			if p.i >= len(p.s) {
				return jsUndefinedValue, false
			}
			if p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.s[p.i] == '}' {
				p.i++
				return jsValue{kind: jsObject, obj: o}, true
			}
			return jsUndefinedValue, false
		}
	case c == '[':
		p.i++
		a := &jsArr{}
		p.ws()
		if p.i < len(p.s) && p.s[p.i] == ']' {
			p.i++
			return jsValue{kind: jsArray, arr: a}, true
		}
		for {
			p.ws()
			v, ok := p.value(depth + 1)
			if !ok {
				return jsUndefinedValue, false
			}
			a.elems = append(a.elems, v)
			p.ws()
			if p.i >= len(p.s) {
				return jsUndefinedValue, false
			}
			if p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.s[p.i] == ']' {
				p.i++
				return jsValue{kind: jsArray, arr: a}, true
			}
			return jsUndefinedValue, false
		}
	case c == '"':
		s, ok := p.str()
		return jsStr(s), ok
	case c == 't':
		return jsBoolean(true), p.lit("true")
	case c == 'f':
		return jsBoolean(false), p.lit("false")
	case c == 'n':
		return jsNullValue, p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return jsUndefinedValue, false
}

func (p *jsonParser) number() (jsValue, bool) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(p.s) && p.s[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return jsUndefinedValue, false
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return jsUndefinedValue, false
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return jsUndefinedValue, false
		}
	}
	// ParseFloat rounds correctly; out-of-range values come back as ±Inf or
	// 0 with an ErrRange, which is what JS produces for them.
	f, _ := strconv.ParseFloat(string(p.s[start:p.i]), 64)
	return jsNum(f), true
}

// str reads a JSON string literal into UTF-8 (WTF-8 for lone surrogates).
func (p *jsonParser) str() (string, bool) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			s := string(p.s[start:p.i])
			p.i++
			return s, true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", false
		}
		p.i++
	}
	units := utf16.Encode([]rune(string(p.s[start:p.i])))
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return utf16ToWTF8(units), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", false
			}
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				units = append(units, uint16(e))
			case 'b':
				units = append(units, '\b')
			case 'f':
				units = append(units, '\f')
			case 'n':
				units = append(units, '\n')
			case 'r':
				units = append(units, '\r')
			case 't':
				units = append(units, '\t')
			case 'u':
				if p.i+4 > len(p.s) {
					return "", false
				}
				u, err := strconv.ParseUint(string(p.s[p.i:p.i+4]), 16, 16)
				if err != nil || strings.ContainsAny(string(p.s[p.i:p.i+4]), "+-") {
					return "", false
				}
				units = append(units, uint16(u))
				p.i += 4
			default:
				return "", false
			}
		default:
			r, n := utf8.DecodeRune(p.s[p.i:])
			p.i += n
			units = utf16.AppendRune(units, r)
		}
	}
	return "", false
}

// utf16ToWTF8 converts UTF-16 code units to UTF-8, encoding unpaired
// surrogates as 3-byte WTF-8 sequences instead of dropping them.
func utf16ToWTF8(u []uint16) string {
	out := make([]byte, 0, len(u))
	for i := 0; i < len(u); i++ {
		c := rune(u[i])
		if utf16.IsSurrogate(c) && c < 0xDC00 && i+1 < len(u) && u[i+1] >= 0xDC00 && u[i+1] <= 0xDFFF {
			out = utf8.AppendRune(out, utf16.DecodeRune(c, rune(u[i+1])))
			i++
			continue
		}
		if utf16.IsSurrogate(c) {
			out = append(out, 0xE0|byte(c>>12), 0x80|byte(c>>6)&0x3F, 0x80|byte(c)&0x3F)
			continue
		}
		out = utf8.AppendRune(out, c)
	}
	return string(out)
}

// stringifyJSON is JSON.stringify for values that came from JSON.parse or
// readAny. ok is false when JS would return undefined (top-level undefined).
func stringifyJSON(v jsValue) (string, bool) {
	if v.kind == jsUndefined {
		return "", false
	}
	var b []byte
	b = appendJSON(b, v)
	return string(b), true
}

func appendJSON(b []byte, v jsValue) []byte {
	switch v.kind {
	case jsNull, jsUndefined, jsBytes:
		if v.kind == jsBytes { // a Uint8Array stringifies as an object of its indices
			b = append(b, '{')
			for i, x := range v.bin {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '"')
				b = strconv.AppendInt(b, int64(i), 10)
				b = append(b, `":`...)
				b = strconv.AppendInt(b, int64(x), 10)
			}
			return append(b, '}')
		}
		return append(b, "null"...)
	case jsBool:
		if v.num != 0 {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case jsNumber:
		if math.IsNaN(v.num) || math.IsInf(v.num, 0) {
			return append(b, "null"...)
		}
		return appendJSNumber(b, v.num)
	case jsBigInt:
		// JSON.stringify throws on BigInt; Yjs never stores one where JSON is
		// written, so write its digits rather than fail.
		return strconv.AppendInt(b, v.big, 10)
	case jsString:
		return appendJSONString(b, v.str)
	case jsArray:
		b = append(b, '[')
		for i, el := range v.arr.elems {
			if i > 0 {
				b = append(b, ',')
			}
			if el.kind == jsUndefined {
				b = append(b, "null"...)
			} else {
				b = appendJSON(b, el)
			}
		}
		return append(b, ']')
	case jsObject:
		b = append(b, '{')
		first := true
		for i, k := range v.obj.keys {
			if v.obj.vals[i].kind == jsUndefined {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSON(b, v.obj.vals[i])
		}
		return append(b, '}')
	}
	return b
}

const hexDigits = "0123456789abcdef"

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				if c < 0x20 {
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
				} else {
					b = append(b, c)
				}
			}
			i++
			continue
		}
		if isWTF8Surrogate(s[i:]) {
			u := rune(s[i]&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F)
			b = append(b, '\\', 'u', hexDigits[u>>12], hexDigits[(u>>8)&0xF], hexDigits[(u>>4)&0xF], hexDigits[u&0xF])
			i += 3
			continue
		}
		_, n := utf8.DecodeRuneInString(s[i:])
		b = append(b, s[i:i+n]...)
		i += n
	}
	return append(b, '"')
}

// appendJSNumber formats a finite float64 as ECMAScript Number::toString.
func appendJSNumber(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0')
	}
	if f < 0 {
		b = append(b, '-')
		f = -f
	}
	// Shortest round-trip digits and decimal exponent.
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddddde±XX
	mant, expStr, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	k := len(digits)
	n := exp + 1
	switch {
	case k <= n && n <= 21:
		b = append(b, digits...)
		for i := 0; i < n-k; i++ {
			b = append(b, '0')
		}
	case 0 < n && n <= 21:
		b = append(b, digits[:n]...)
		b = append(b, '.')
		b = append(b, digits[n:]...)
	case -6 < n && n <= 0:
		b = append(b, '0', '.')
		for i := 0; i < -n; i++ {
			b = append(b, '0')
		}
		b = append(b, digits...)
	default:
		b = append(b, digits[0])
		if k > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		if n-1 >= 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, int64(n-1), 10)
	}
	return b
}
