package crdt

// lib0 encoding: var ints, strings, byte arrays, and the `any` values of
// lib0's writeAny/readAny.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error about bytes that are not a valid
// lib0/Yjs encoding (truncated, overflowing, oversized or inconsistent).
var ErrMalformed = errors.New("crdt: malformed input")

var (
	errEOF        = fmt.Errorf("%w: unexpected end of data", ErrMalformed)
	errOverflow   = fmt.Errorf("%w: integer overflows 64 bits", ErrMalformed)
	errOverlong   = fmt.Errorf("%w: integer has a redundant (overlong) encoding", ErrMalformed)
	errUTF8       = fmt.Errorf("%w: string is not valid UTF-8", ErrMalformed)
	errRange      = fmt.Errorf("%w: number out of range", ErrMalformed)
	errAnyTag     = fmt.Errorf("%w: unknown any tag", ErrMalformed)
	errAnyDepth   = fmt.Errorf("%w: any value nested too deeply", ErrMalformed)
	errTrailing   = fmt.Errorf("%w: trailing bytes", ErrMalformed)
	maxSafeInt    = uint64(1<<53 - 1) // Number.MAX_SAFE_INTEGER: the largest integer JS readers keep exact
	maxNestLevels = 256               // bound on any/JSON nesting so hostile input cannot exhaust the stack
)

// encoder appends lib0-encoded values to a byte slice.
type encoder struct {
	buf []byte
}

func (e *encoder) bytes() []byte { return e.buf }

func (e *encoder) writeUint8(b byte) { e.buf = append(e.buf, b) }

// writeVarUint writes x as lib0 writeVarUint does: 7 bits per byte, low
// bits first, high bit set on every byte but the last.
func (e *encoder) writeVarUint(x uint64) {
	for x >= 0x80 {
		e.buf = append(e.buf, byte(x)|0x80)
		x >>= 7
	}
	e.buf = append(e.buf, byte(x))
}

// writeVarInt writes a signed integer as lib0 writeVarInt: the first byte
// holds a continuation bit (0x80), the sign (0x40) and 6 bits of magnitude.
// neg with mag 0 is JS's -0.
func (e *encoder) writeVarInt(neg bool, mag uint64) {
	b := byte(mag & 0x3f)
	if neg {
		b |= 0x40
	}
	if mag > 0x3f {
		b |= 0x80
	}
	e.buf = append(e.buf, b)
	mag >>= 6
	for mag > 0 {
		b := byte(mag & 0x7f)
		if mag > 0x7f {
			b |= 0x80
		}
		e.buf = append(e.buf, b)
		mag >>= 7
	}
}

// writeVarString writes a length-prefixed UTF-8 string. Go strings that are
// not valid UTF-8 are written as JS's TextEncoder would write the
// corresponding UTF-16 string (WTF-8 surrogates become U+FFFD).
func (e *encoder) writeVarString(s string) {
	if !utf8.ValidString(s) {
		s = toWellFormed(s)
	}
	e.writeVarUint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) writeVarBytes(b []byte) {
	e.writeVarUint(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) writeFloat32(f float32) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, math.Float32bits(f))
}

func (e *encoder) writeFloat64(f float64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
}

func (e *encoder) writeBigInt64(v int64) {
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v))
}

// decoder reads lib0-encoded values. The first error sticks: later reads
// return zero values, so callers check err once per logical unit.
type decoder struct {
	buf []byte
	pos int
	err error
}

func newDecoder(b []byte) *decoder { return &decoder{buf: b} }

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: %w", d.pos, err)
	}
}

func (d *decoder) remaining() int { return len(d.buf) - d.pos }

func (d *decoder) readUint8() byte {
	if d.pos >= len(d.buf) {
		d.fail(errEOF)
		return 0
	}
	b := d.buf[d.pos]
	d.pos++
	return b
}

// readVarUint reads an unsigned LEB128 integer of at most 64 bits. Unlike
// lib0 it rejects redundant trailing zero bytes, which no encoder emits.
func (d *decoder) readVarUint() uint64 {
	if d.pos < len(d.buf) {
		if b := d.buf[d.pos]; b < 0x80 {
			d.pos++
			return uint64(b)
		}
	}
	var x uint64
	var shift uint
	for i := 0; ; i++ {
		if d.pos >= len(d.buf) {
			d.fail(errEOF)
			return 0
		}
		b := d.buf[d.pos]
		d.pos++
		if i == 9 && b > 1 {
			d.fail(errOverflow)
			return 0
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			if b == 0 && i > 0 {
				d.fail(errOverlong)
				return 0
			}
			return x
		}
		shift += 7
	}
}

// readVarInt reads a lib0 signed var int as sign and magnitude (so that -0
// survives).
func (d *decoder) readVarInt() (neg bool, mag uint64) {
	b := d.readUint8()
	if d.err != nil {
		return false, 0
	}
	neg = b&0x40 != 0
	mag = uint64(b & 0x3f)
	if b < 0x80 {
		return neg, mag
	}
	shift := uint(6)
	for i := 1; ; i++ {
		if d.pos >= len(d.buf) {
			d.fail(errEOF)
			return false, 0
		}
		b := d.buf[d.pos]
		d.pos++
		if shift == 62 && b > 3 || shift > 62 {
			d.fail(errOverflow)
			return false, 0
		}
		mag |= uint64(b&0x7f) << shift
		if b < 0x80 {
			if b == 0 {
				d.fail(errOverlong)
				return false, 0
			}
			return neg, mag
		}
		shift += 7
	}
}

// readBytesView returns the next n bytes without copying them. n is checked
// against what is left before anything is sliced or allocated.
func (d *decoder) readBytesView(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(d.remaining()) {
		d.fail(errEOF)
		return nil
	}
	b := d.buf[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return b
}

func (d *decoder) readVarBytesView() []byte { return d.readBytesView(d.readVarUint()) }

// readVarStringView returns the bytes of a length-prefixed string, checked to
// be valid UTF-8 (lib0 decodes with a fatal TextDecoder), without copying.
func (d *decoder) readVarStringView() []byte {
	b := d.readVarBytesView()
	if d.err == nil && !utf8.Valid(b) {
		d.fail(errUTF8)
		return nil
	}
	return b
}

func (d *decoder) readVarString() string { return string(d.readVarStringView()) }

func (d *decoder) readFloat32() float32 {
	b := d.readBytesView(4)
	if d.err != nil {
		return 0
	}
	return math.Float32frombits(binary.BigEndian.Uint32(b))
}

func (d *decoder) readFloat64() float64 {
	b := d.readBytesView(8)
	if d.err != nil {
		return 0
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b))
}

func (d *decoder) readBigInt64() int64 {
	b := d.readBytesView(8)
	if d.err != nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(b))
}

// toWellFormed replaces every byte sequence that is not valid UTF-8 (in
// practice: WTF-8 encoded lone surrogates from JSON \u escapes) with U+FFFD,
// one per surrogate, as JS's TextEncoder does for lone surrogates.
func toWellFormed(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			if isWTF8Surrogate(s[i:]) {
				n = 3
			} else {
				n = 1
			}
			out = utf8.AppendRune(out, utf8.RuneError)
			i += n
			continue
		}
		out = append(out, s[i:i+n]...)
		i += n
	}
	return string(out)
}

// isWTF8Surrogate reports whether s starts with a 3-byte encoding of a code
// point in U+D800..U+DFFF.
func isWTF8Surrogate(s string) bool {
	return len(s) >= 3 && s[0] == 0xED && s[1] >= 0xA0 && s[1] <= 0xBF && s[2] >= 0x80 && s[2] <= 0xBF
}
