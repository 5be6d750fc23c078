package presence

import (
	"testing"
	"time"
)

// BenchmarkDecodeUpdate decodes the awareness update of an editor with a
// name and a cursor (testdata/golden/cursor.bin, 240 bytes).
func BenchmarkDecodeUpdate(b *testing.B) {
	bin, _ := readGolden(b, "cursor")
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeUpdate(bin); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyRenewal is the room's steady state: 50 peers, one of them
// moves its cursor (a newer clock), the change is encoded for broadcast.
func BenchmarkApplyRenewal(b *testing.B) {
	_, u := readGolden(b, "cursor")
	s := NewSet()
	now := testEpoch
	for i := range uint64(50) {
		s.Apply(Update{{ClientID: 1000 + i, Clock: 1, State: u[0].State}}, i, now)
	}
	e := u[0]
	b.ReportAllocs()
	for b.Loop() {
		e.Clock++
		now = now.Add(time.Millisecond)
		if out := s.Apply(Update{e}, 99, now); len(out) != 1 {
			b.Fatal("renewal not accepted")
		}
		_ = EncodeUpdate(Update{e})
	}
}
