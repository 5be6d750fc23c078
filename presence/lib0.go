package presence

import (
	"errors"
	"unicode/utf8"
)

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER (2^53-1). Every
// integer of the protocol is a JS number on the other side: lib0's reader
// throws past this value, so accepting a larger one from a peer would let it
// break every other peer we relay it to.
const maxSafeInteger = 1<<53 - 1

// maxVarUintLen is the number of 7-bit groups needed for 53 bits.
const maxVarUintLen = 8

var (
	errTruncated  = errors.New("unexpected end of input")
	errOverlong   = errors.New("non-minimal varUint encoding")
	errOutOfRange = errors.New("varUint exceeds 2^53-1")
)

// readVarUint reads a lib0 varUint (7 bits per byte, least significant group
// first, high bit = more follows) from b and returns it with the number of
// bytes consumed. Only the minimal encoding is accepted, which is the only one
// lib0 writes; that keeps decode-then-encode byte-identical.
func readVarUint(b []byte) (v uint64, n int, err error) {
	var shift uint
	for i := 0; i < len(b); i++ {
		if i == maxVarUintLen {
			return 0, 0, errOutOfRange
		}
		c := b[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, errOverlong
			}
			if v > maxSafeInteger {
				return 0, 0, errOutOfRange
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, errTruncated
}

// appendVarUint appends v as a lib0 varUint.
func appendVarUint(b []byte, v uint64) []byte {
	for v > 0x7f {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// varUintLen is the encoded size of v.
func varUintLen(v uint64) int {
	n := 1
	for v > 0x7f {
		v >>= 7
		n++
	}
	return n
}

// readVarString reads a lib0 varString (varUint byte length, then UTF-8) and
// returns its bytes (aliasing b) and the number of bytes consumed. The length
// is checked against the bytes actually present before anything is sliced.
func readVarString(b []byte) (s []byte, n int, err error) {
	l, n, err := readVarUint(b)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(len(b)-n) {
		return nil, 0, errTruncated
	}
	s = b[n : n+int(l)]
	if !utf8.Valid(s) {
		return nil, 0, errors.New("invalid UTF-8")
	}
	return s, n + int(l), nil
}

// appendVarString appends s as a lib0 varString.
func appendVarString(b, s []byte) []byte {
	b = appendVarUint(b, uint64(len(s)))
	return append(b, s...)
}
