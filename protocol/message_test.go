package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"github.com/quirehq/quire/internal/lib0"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// goldenCase is one message of testdata/golden.json, written by y-protocols
// itself (testdata/gen.mjs).
type goldenCase struct {
	Name    string `json:"name"`
	Hex     string `json:"hex"`
	Type    Type   `json:"type"`
	Sync    int    `json:"sync"`
	Payload string `json:"payload"`
	Reason  string `json:"reason"`
}

func loadGolden(t testing.TB) []goldenCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []goldenCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("golden.json has no cases")
	}
	return cases
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGolden decodes what y-protocols wrote and encodes it back byte for byte.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, c := range loadGolden(t) {
		t.Run(c.Name, func(t *testing.T) {
			frame := mustHex(t, c.Hex)
			m, err := Decode(frame)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := Message{Type: c.Type, Reason: c.Reason}
			if c.Type == TypeSync {
				want.Sync = SyncType(c.Sync)
			}
			if c.Type == TypeSync || c.Type == TypeAwareness {
				want.Payload = mustHex(t, c.Payload)
			}
			if m.Type != want.Type || m.Sync != want.Sync || m.Reason != want.Reason || !bytes.Equal(m.Payload, want.Payload) {
				t.Fatalf("Decode = %+v, want %+v", m, want)
			}
			if got := Encode(m); !bytes.Equal(got, frame) {
				t.Fatalf("Encode = %x\nwant     %x", got, frame)
			}
			if Len(m) != len(frame) {
				t.Fatalf("Len = %d, want %d", Len(m), len(frame))
			}
			// The typed helpers write the same bytes.
			var typed []byte
			switch {
			case m.Type == TypeSync && m.Sync == SyncStep1:
				typed = EncodeSyncStep1(m.Payload)
			case m.Type == TypeSync && m.Sync == SyncStep2:
				typed = EncodeSyncStep2(m.Payload)
			case m.Type == TypeSync && m.Sync == SyncUpdate:
				typed = EncodeUpdate(m.Payload)
			case m.Type == TypeAwareness:
				typed = EncodeAwareness(m.Payload)
			case m.Type == TypeAuth:
				typed = AppendPermissionDenied(nil, m.Reason)
			case m.Type == TypeQueryAwareness:
				typed = AppendQueryAwareness(nil)
			}
			if !bytes.Equal(typed, frame) {
				t.Fatalf("typed encoder = %x\nwant            %x", typed, frame)
			}
		})
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	t.Parallel()
	dst := []byte("prefix")
	got := AppendUpdate(dst, []byte{1, 2, 3})
	if want := append([]byte("prefix"), 0, 2, 3, 1, 2, 3); !bytes.Equal(got, want) {
		t.Fatalf("AppendUpdate = %x, want %x", got, want)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	long := func(n int) []byte { return bytes.Repeat([]byte{0x80}, n) }
	tests := []struct {
		name  string
		frame []byte
		want  string // part of the error text
	}{
		{"empty", nil, "message type: unexpected end"},
		{"type varUint cut", []byte{0x80}, "message type: unexpected end"},
		{"type non-minimal", []byte{0x80, 0x00}, "non-minimal"},
		{"type beyond 2^53", append(long(7), 0x7f), "exceeds 2^53-1"},
		{"type too many groups", append(long(8), 0x01), "exceeds 2^53-1"},
		{"unknown type", []byte{4}, "unknown message type 4"},
		{"unknown large type", []byte{0xff, 0x01}, "unknown message type 255"},
		{"sync without subtype", []byte{0}, "sync subtype"},
		{"unknown sync subtype", []byte{0, 3, 0}, "unknown sync subtype 3"},
		{"sync without payload", []byte{0, 2}, "sync update payload"},
		{"sync payload cut", []byte{0, 2, 5, 1, 2}, "length prefix beyond the end of the input"},
		{"sync huge length", append([]byte{0, 1}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f), "length prefix beyond the end of the input"},
		{"sync trailing", []byte{0, 0, 1, 0, 9}, "1 bytes after the sync message"},
		{"awareness without payload", []byte{1}, "awareness payload"},
		{"awareness cut", []byte{1, 3, 0}, "length prefix beyond the end of the input"},
		{"awareness trailing", []byte{1, 1, 0, 0, 0}, "2 bytes after the awareness message"},
		{"auth without subtype", []byte{2}, "auth subtype"},
		{"auth unknown subtype", []byte{2, 1, 0}, "unknown auth subtype 1"},
		{"auth reason cut", []byte{2, 0, 4, 'a'}, "auth reason"},
		{"auth reason not UTF-8", []byte{2, 0, 2, 0xc3, 0x28}, "not UTF-8"},
		{"query awareness trailing", []byte{3, 0}, "1 bytes after the query-awareness message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.frame)
			if err == nil {
				t.Fatalf("Decode(%x) = %+v, want an error", tt.frame, m)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if m.Payload != nil || m.Reason != "" || m.Type != 0 {
				t.Fatalf("a failed Decode returned %+v", m)
			}
		})
	}
}

// TestDecodeAliasesFrame documents that the payload is a view of the frame
// whose capacity ends with it, so appending to it can never overwrite the frame.
func TestDecodeAliasesFrame(t *testing.T) {
	t.Parallel()
	frame := []byte{0, 2, 2, 7, 8}
	m, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	if &m.Payload[0] != &frame[3] {
		t.Fatal("payload was copied")
	}
	if cap(m.Payload) != 2 {
		t.Fatalf("payload capacity %d reaches past its end", cap(m.Payload))
	}
}

func TestVarUintRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 127, 128, 255, 16383, 16384, 1<<32 - 1, 1 << 35, lib0.MaxSafeInteger} {
		b := lib0.AppendVarUint(nil, v)
		if len(b) != lib0.VarUintLen(v) {
			t.Fatalf("lib0.VarUintLen(%d) = %d, encoded %d bytes", v, lib0.VarUintLen(v), len(b))
		}
		got, n, err := lib0.ReadVarUint(b)
		if err != nil || got != v || n != len(b) {
			t.Fatalf("lib0.ReadVarUint(%x) = %d, %d, %v; want %d", b, got, n, err, v)
		}
	}
	if _, _, err := lib0.ReadVarUint(lib0.AppendVarUint(nil, lib0.MaxSafeInteger+1)); err == nil {
		t.Fatal("2^53 accepted")
	}
}

func TestStrings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ got, want string }{
		{TypeSync.String(), "sync"},
		{TypeAwareness.String(), "awareness"},
		{TypeAuth.String(), "auth"},
		{TypeQueryAwareness.String(), "query-awareness"},
		{Type(9).String(), "type(9)"},
		{SyncStep1.String(), "step1"},
		{SyncStep2.String(), "step2"},
		{SyncUpdate.String(), "update"},
		{SyncType(7).String(), "sync(7)"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func BenchmarkDecodeUpdate(b *testing.B) {
	frame := EncodeUpdate(bytes.Repeat([]byte{1}, 12))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(frame); err != nil {
			b.Fatal(err)
		}
	}
}
