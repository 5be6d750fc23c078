// Package lib0 reads and writes the few lib0 primitives that the y-protocols
// messages and awareness updates are made of. The crdt package keeps its own
// full lib0 codec: it imports nothing of this module.
package lib0

import (
	"errors"
	"unicode/utf8"
)

// MaxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER (2^53-1). Every
// integer of the protocols is a JS number on the other side: lib0's reader
// throws past this value, so accepting a larger one from a peer would let it
// break every other peer we relay it to.
const MaxSafeInteger = 1<<53 - 1

// maxVarUintLen is the number of 7-bit groups that hold 53 bits.
const maxVarUintLen = 8

var (
	// ErrTruncated is returned when the input ends inside a value.
	ErrTruncated = errors.New("unexpected end of input")
	// ErrOverlong is returned for a varUint with redundant zero groups.
	ErrOverlong = errors.New("non-minimal varUint encoding")
	// ErrOutOfRange is returned for a varUint above MaxSafeInteger.
	ErrOutOfRange = errors.New("varUint exceeds 2^53-1")
	// ErrLengthBeyondEnd is returned when a length prefix promises more bytes than remain.
	ErrLengthBeyondEnd = errors.New("length prefix beyond the end of the input")
	// ErrInvalidUTF8 is returned for a varString that is not UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
)

// ReadVarUint reads a lib0 varUint (7 bits per byte, least significant group
// first, high bit set when more follow) and returns it with the number of
// bytes it took. Only the minimal encoding, the one lib0 writes, is accepted,
// so that decoding then encoding gives back the same bytes.
func ReadVarUint(b []byte) (v uint64, n int, err error) {
	var shift uint
	for i := 0; i < len(b); i++ {
		if i == maxVarUintLen {
			return 0, 0, ErrOutOfRange
		}
		c := b[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, ErrOverlong
			}
			if v > MaxSafeInteger {
				return 0, 0, ErrOutOfRange
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, ErrTruncated
}

// AppendVarUint appends v as a lib0 varUint.
func AppendVarUint(b []byte, v uint64) []byte {
	for v > 0x7f {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// VarUintLen is the encoded size of v.
func VarUintLen(v uint64) int {
	n := 1
	for v > 0x7f {
		v >>= 7
		n++
	}
	return n
}

// ReadVarBytes reads a lib0 varUint8Array (varUint length, then the bytes)
// and returns the bytes, aliasing b, with the number of bytes consumed. The
// length is compared with what is present before anything is sliced, so a
// hostile length costs nothing.
func ReadVarBytes(b []byte) (p []byte, n int, err error) {
	l, n, err := ReadVarUint(b)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(len(b)-n) {
		return nil, 0, ErrLengthBeyondEnd
	}
	end := n + int(l)
	return b[n:end:end], end, nil
}

// ReadVarString reads a lib0 varString (varUint byte length, then UTF-8) and
// returns its bytes, aliasing b, with the number of bytes consumed.
func ReadVarString(b []byte) (s []byte, n int, err error) {
	s, n, err = ReadVarBytes(b)
	if err != nil {
		return nil, 0, err
	}
	if !utf8.Valid(s) {
		return nil, 0, ErrInvalidUTF8
	}
	return s, n, nil
}

// AppendVarString appends s as a lib0 varString.
func AppendVarString(b, s []byte) []byte {
	b = AppendVarUint(b, uint64(len(s)))
	return append(b, s...)
}
