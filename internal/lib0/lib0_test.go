package lib0

import (
	"errors"
	"testing"
)

func TestVarUintRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 255, 16383, 16384, 1<<32 - 1, 1 << 35, MaxSafeInteger} {
		b := AppendVarUint(nil, v)
		if len(b) != VarUintLen(v) {
			t.Fatalf("VarUintLen(%d) = %d, encoded %d bytes", v, VarUintLen(v), len(b))
		}
		got, n, err := ReadVarUint(b)
		if err != nil || got != v || n != len(b) {
			t.Fatalf("ReadVarUint(%x) = %d, %d, %v; want %d", b, got, n, err, v)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		read func([]byte) error
		in   []byte
		want error
	}{
		{"empty varUint", readUint, nil, ErrTruncated},
		{"cut varUint", readUint, []byte{0x80, 0x80}, ErrTruncated},
		{"overlong", readUint, []byte{0x81, 0x00}, ErrOverlong},
		{"beyond 2^53", readUint, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10}, ErrOutOfRange},
		{"too many groups", readUint, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, ErrOutOfRange},
		{"bytes past the end", readBytes, []byte{5, 1, 2}, ErrLengthBeyondEnd},
		{"huge length", readBytes, []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, ErrLengthBeyondEnd},
		{"string not UTF-8", readString, []byte{2, 0xff, 0xfe}, ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.read(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func readUint(b []byte) error   { _, _, err := ReadVarUint(b); return err }
func readBytes(b []byte) error  { _, _, err := ReadVarBytes(b); return err }
func readString(b []byte) error { _, _, err := ReadVarString(b); return err }

func TestVarString(t *testing.T) {
	b := AppendVarString([]byte{9}, []byte("héllo"))
	s, n, err := ReadVarString(b[1:])
	if err != nil || string(s) != "héllo" || n != len(b)-1 {
		t.Fatalf("got %q, %d, %v", s, n, err)
	}
}

func FuzzReadVarBytes(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, n, err := ReadVarBytes(b)
		if err != nil {
			return
		}
		if n > len(b) || len(p) > n {
			t.Fatalf("consumed %d of %d bytes, payload %d", n, len(b), len(p))
		}
		if got := AppendVarUint(nil, uint64(len(p))); string(append(got, p...)) != string(b[:n]) {
			t.Fatalf("re-encoding differs")
		}
	})
}
