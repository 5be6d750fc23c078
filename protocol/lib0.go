package protocol

import "errors"

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER (2^53-1): lib0's
// readVarUint throws past it, so no peer of ours can take a larger integer.
const maxSafeInteger = 1<<53 - 1

// maxVarUintLen is the number of 7-bit groups that hold 53 bits.
const maxVarUintLen = 8

var (
	errVarUintTruncated = errors.New("varUint cut short")
	errVarUintOverlong  = errors.New("non-minimal varUint encoding")
	errVarUintRange     = errors.New("varUint exceeds 2^53-1")
)

// readVarUint reads a lib0 varUint (7 bits per byte, least significant group
// first, high bit set when more follow) and returns it with the number of
// bytes it took. Only the minimal encoding, the one lib0 writes, is accepted:
// decoding then encoding a message gives back the same bytes.
func readVarUint(b []byte) (v uint64, n int, err error) {
	var shift uint
	for i := 0; i < len(b); i++ {
		if i == maxVarUintLen {
			return 0, 0, errVarUintRange
		}
		c := b[i]
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, errVarUintOverlong
			}
			if v > maxSafeInteger {
				return 0, 0, errVarUintRange
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, errVarUintTruncated
}

// readVarBytes reads a lib0 varUint8Array (varUint length, then the bytes)
// and returns the bytes, aliasing b, with the number of bytes consumed. The
// length is compared with what is present before anything is sliced, so a
// hostile length costs nothing.
func readVarBytes(b []byte) (p []byte, n int, err error) {
	l, n, err := readVarUint(b)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(len(b)-n) {
		return nil, 0, errors.New("length prefix beyond the end of the message")
	}
	end := n + int(l)
	return b[n:end:end], end, nil
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
