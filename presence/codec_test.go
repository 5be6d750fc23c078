package presence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/quirehq/quire/internal/lib0"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// goldenEntry is one entry as testdata/gen.mjs describes it.
type goldenEntry struct {
	Client uint64 `json:"client"`
	Clock  uint64 `json:"clock"`
	State  string `json:"state"`
}

// goldenFiles returns the names of testdata/golden/*.bin without extension.
func goldenFiles(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "golden", "*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no golden files in testdata/golden: run node presence/testdata/gen.mjs")
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".bin")
	}
	return names
}

func readGolden(t testing.TB, name string) ([]byte, Update) {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join("testdata", "golden", name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join("testdata", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []goldenEntry
	if err := json.Unmarshal(js, &entries); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	want := make(Update, len(entries))
	for i, e := range entries {
		want[i] = Entry{ClientID: e.Client, Clock: e.Clock, State: json.RawMessage(e.State)}
	}
	return bin, want
}

// TestGolden decodes updates written by y-protocols' encodeAwarenessUpdate
// and checks the entries, and that encoding them gives the same bytes.
func TestGolden(t *testing.T) {
	t.Parallel()
	for _, name := range goldenFiles(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			bin, want := readGolden(t, name)
			got, err := DecodeUpdate(bin)
			if err != nil {
				t.Fatalf("DecodeUpdate: %v", err)
			}
			if !equalUpdates(got, want) {
				t.Fatalf("DecodeUpdate = %s\nwant %s", fmtUpdate(got), fmtUpdate(want))
			}
			if enc := EncodeUpdate(want); !bytes.Equal(enc, bin) {
				t.Fatalf("EncodeUpdate = %x\nwant (y-protocols) %x", enc, bin)
			}
		})
	}
}

// TestDecodeKeepsNoReference checks that the decoded states do not alias
// the input, which the server may reuse for the next message.
func TestDecodeKeepsNoReference(t *testing.T) {
	t.Parallel()
	bin, want := readGolden(t, "cursor")
	buf := bytes.Clone(bin)
	got, err := DecodeUpdate(buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 0xff
	}
	if !equalUpdates(got, want) {
		t.Fatalf("decoded states changed with the input buffer: %s", fmtUpdate(got))
	}
}

func TestEncodeEmptyStateIsNull(t *testing.T) {
	t.Parallel()
	got := EncodeUpdate(Update{{ClientID: 1, Clock: 2}})
	want := []byte{1, 1, 2, 4, 'n', 'u', 'l', 'l'}
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodeUpdate = %x, want %x", got, want)
	}
	if got := EncodeUpdate(nil); !bytes.Equal(got, []byte{0}) {
		t.Fatalf("EncodeUpdate(nil) = %x, want 00", got)
	}
}

// raw builds an update from entries without validating anything, to craft
// bad input.
func raw(count uint64, entries ...[]byte) []byte {
	b := lib0.AppendVarUint(nil, count)
	for _, e := range entries {
		b = append(b, e...)
	}
	return b
}

// ent encodes one entry with an arbitrary state.
func ent(id, clock uint64, state string) []byte {
	b := lib0.AppendVarUint(nil, id)
	b = lib0.AppendVarUint(b, clock)
	return lib0.AppendVarString(b, []byte(state))
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []byte
		want string // in the error text
	}{
		{"empty input", nil, "entry count: unexpected end"},
		{"count only", raw(1), "exceeds what 0 bytes"},
		{"count past the bytes", raw(3, ent(1, 1, "{}"), ent(2, 1, "{}")), "exceeds what"},
		{"absurd count", raw(lib0.MaxSafeInteger, []byte("{}{}{}{}")), "exceeds what 8 bytes"},
		{"count over 2^53", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10}, "exceeds 2^53-1"},
		{"count overflows uint64", bytes.Repeat([]byte{0xff}, 11), "exceeds 2^53-1"},
		{"client id over 2^53", raw(1, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10}, ent(1, 1, "{}")[1:]), "client id: varUint exceeds"},
		{"clock over 2^53", raw(1, []byte{1}, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10}, []byte{2, '{', '}'}), "clock: varUint exceeds"},
		{"overlong varUint", raw(1, []byte{0x81, 0x00}, ent(1, 1, "{}")[1:]), "non-minimal"},
		{"truncated varUint", raw(1, []byte{1, 1, 0x80, 0x80, 0x80}), "unexpected end"},
		{"string past the end", raw(1, []byte{1, 1, 10, '{', '}', ' ', ' '}), "state: length prefix beyond the end"},
		{"trailing byte", append(raw(1, ent(1, 1, "{}")), 0), "1 trailing bytes"},
		{"trailing entry", raw(1, ent(1, 1, "{}"), ent(2, 1, "{}")), "trailing bytes"},
		{"invalid UTF-8", raw(1, ent(1, 1, "\"\xff\xfe\"")), "invalid UTF-8"},
		{"invalid JSON", raw(1, ent(1, 1, "{user: 1}")), "not valid JSON"},
		{"empty state", raw(1, ent(1, 1, ""), []byte{0, 0, 0}), "not valid JSON"},
		{"two JSON values", raw(1, ent(1, 1, "{} {}")), "not valid JSON"},
		{"undefined", raw(1, ent(1, 1, "undefined")), "not valid JSON"},
		{"oversized state", raw(1, ent(1, 1, `"`+strings.Repeat("x", MaxStateSize-1)+`"`)), "exceeds 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := DecodeUpdate(tt.in)
			if err == nil {
				t.Fatalf("DecodeUpdate(%x) = %s, want an error", tt.in, fmtUpdate(u))
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if u != nil {
				t.Errorf("DecodeUpdate returned entries with an error: %s", fmtUpdate(u))
			}
		})
	}
}

// TestDecodeLimits checks the edges that are accepted.
func TestDecodeLimits(t *testing.T) {
	t.Parallel()
	state := `"` + strings.Repeat("x", MaxStateSize-2) + `"`
	in := raw(1, ent(lib0.MaxSafeInteger, lib0.MaxSafeInteger, state))
	u, err := DecodeUpdate(in)
	if err != nil {
		t.Fatalf("largest state, ids and clocks: %v", err)
	}
	if len(u) != 1 || u[0].ClientID != lib0.MaxSafeInteger || u[0].Clock != lib0.MaxSafeInteger || len(u[0].State) != MaxStateSize {
		t.Fatalf("DecodeUpdate = %d entries, want the one encoded", len(u))
	}
	if !bytes.Equal(EncodeUpdate(u), in) {
		t.Fatal("re-encoding differs")
	}
}

// TestDecodeTruncated cuts every golden update at every length: each prefix
// must be refused, never panic.
func TestDecodeTruncated(t *testing.T) {
	t.Parallel()
	for _, name := range goldenFiles(t) {
		bin, _ := readGolden(t, name)
		for n := 0; n < len(bin); n++ {
			if u, err := DecodeUpdate(bin[:n]); err == nil {
				t.Fatalf("%s cut at %d of %d bytes: decoded %s, want an error", name, n, len(bin), fmtUpdate(u))
			}
		}
	}
}

// TestDecodeAbsurdCountAllocates checks that a claimed count is not
// allocated for before the bytes that hold it are there.
func TestDecodeAbsurdCountAllocates(t *testing.T) {
	in := raw(1<<40, bytes.Repeat([]byte{1}, 64))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := DecodeUpdate(in); err == nil {
			t.Fatal("absurd count accepted")
		}
	}
	runtime.ReadMemStats(&after)
	if perCall := (after.TotalAlloc - before.TotalAlloc) / 100; perCall > 4096 {
		t.Fatalf("DecodeUpdate allocated %d bytes per call for a 70-byte input", perCall)
	}
}

func FuzzDecodeUpdate(f *testing.F) {
	for _, name := range goldenFiles(f) {
		bin, _ := readGolden(f, name)
		f.Add(bin)
	}
	f.Add([]byte{})
	f.Add(raw(1, ent(1, 1, " null ")))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUpdate(b)
		if err != nil {
			return
		}
		// Only minimal encodings are accepted, so a decoded update encodes
		// back to exactly its input.
		enc := EncodeUpdate(u)
		if !bytes.Equal(enc, b) {
			t.Fatalf("EncodeUpdate(DecodeUpdate(%x)) = %x", b, enc)
		}
		u2, err := DecodeUpdate(enc)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !equalUpdates(u, u2) {
			t.Fatalf("re-decoded %s, want %s", fmtUpdate(u2), fmtUpdate(u))
		}
		// Whatever decodes must be safe to apply.
		s := NewSet()
		s.Apply(u, 1, testEpoch)
		if s.Len() != len(s.Current()) {
			t.Fatalf("Len %d, Current has %d", s.Len(), len(s.Current()))
		}
	})
}

func equalUpdates(a, b Update) bool {
	return slices.EqualFunc(a, b, func(x, y Entry) bool {
		return x.ClientID == y.ClientID && x.Clock == y.Clock && bytes.Equal(x.State, y.State)
	})
}

func fmtUpdate(u Update) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, e := range u {
		if i > 0 {
			sb.WriteString(", ")
		}
		s := string(e.State)
		if len(s) > 60 {
			s = s[:57] + "..."
		}
		fmt.Fprintf(&sb, "%d@%d=%s", e.ClientID, e.Clock, s)
	}
	sb.WriteByte(']')
	return sb.String()
}
