package protocol

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds Decode arbitrary frames, seeded with y-protocols' own
// messages: it must never panic, and whatever it accepts must encode back to
// the very same bytes (every varUint is minimal, nothing trails), with the
// payload inside the frame.
func FuzzDecode(f *testing.F) {
	for _, c := range loadGolden(f) {
		f.Add(mustHex(f, c.Hex))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{1, 0x80})
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := Decode(frame)
		if err != nil {
			return
		}
		if got := Encode(m); !bytes.Equal(got, frame) {
			t.Fatalf("Decode then Encode changed the frame:\n in  %x\n out %x", frame, got)
		}
		if len(m.Payload) > len(frame) {
			t.Fatalf("payload of %d bytes from a %d byte frame", len(m.Payload), len(frame))
		}
	})
}
