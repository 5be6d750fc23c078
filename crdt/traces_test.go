package crdt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tracesDir finds ../shared/traces beside the module root. Without it the
// tests skip, except under CI, where the traces must be there.
func tracesDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	traces := filepath.Join(dir, "..", "shared", "traces")
	if _, err := os.Stat(traces); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("traces missing at %s (required in CI)", traces)
		}
		tb.Skipf("traces not found at %s; they live beside the clone root", traces)
	}
	return traces
}

// yjsTrace is one document of traces/yjs: the update, the text and state
// vector Yjs gives for it.
type yjsTrace struct {
	name   string
	update []byte
	text   string
	sv     []byte
}

func loadYjsTraces(tb testing.TB) []yjsTrace {
	tb.Helper()
	dir := filepath.Join(tracesDir(tb), "yjs")
	files, err := filepath.Glob(filepath.Join(dir, "*.v1.yjs"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no traces in %s: %v", dir, err)
	}
	var out []yjsTrace
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".v1.yjs")
		read := func(p string) []byte {
			b, err := os.ReadFile(p)
			if err != nil {
				tb.Fatal(err)
			}
			return b
		}
		out = append(out, yjsTrace{
			name:   name,
			update: read(f),
			text:   string(read(filepath.Join(dir, name+".txt"))),
			sv:     read(filepath.Join(dir, name+".sv")),
		})
	}
	return out
}

func TestYjsTraces(t *testing.T) {
	for _, tr := range loadYjsTraces(t) {
		t.Run(tr.name, func(t *testing.T) {
			d := NewDoc(Options{ClientID: 1})
			changed, err := d.ApplyUpdate(tr.update)
			if err != nil {
				t.Fatal(err)
			}
			if d.HasPending() {
				t.Fatal("a whole document left structs pending")
			}
			if err := d.checkInvariants(); err != nil {
				t.Fatal(err)
			}
			if got := d.GetText("text").String(); got != tr.text {
				t.Fatalf("text differs: got %d bytes, want %d (first difference at %d)", len(got), len(tr.text), firstDiff(got, tr.text))
			}
			if got := d.EncodeStateVector(); !bytes.Equal(got, tr.sv) {
				t.Fatalf("state vector differs:\n got %x\nwant %x", got, tr.sv)
			}
			full, err := d.EncodeStateAsUpdate(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(full, tr.update) {
				t.Fatalf("re-encoded state differs from the input (%d vs %d bytes, first difference at %d)", len(full), len(tr.update), firstDiff(string(full), string(tr.update)))
			}
			// Loading into an empty doc changes everything: the changed
			// update is the whole state.
			if !bytes.Equal(changed, tr.update) {
				t.Fatalf("changed update differs from the input (%d vs %d bytes)", len(changed), len(tr.update))
			}
			if again, err := d.ApplyUpdate(tr.update); err != nil || again != nil {
				t.Fatalf("re-applying: changed %d bytes, err %v; want nothing", len(again), err)
			}
		})
	}
}

// TestYjsTracesInParts cuts each document into chunks (per client, clock
// ranges; the delete set travels with one of them), applies them to a fresh
// doc in a shuffled order (so most wait pending for earlier ones), and checks
// the result is the same document, byte for byte. A second pass applies only
// the first chunks and completes the doc with EncodeStateAsUpdate against its
// partial state vector.
func TestYjsTracesInParts(t *testing.T) {
	for _, tr := range loadYjsTraces(t) {
		t.Run(tr.name, func(t *testing.T) {
			src := NewDoc(Options{ClientID: 1})
			if _, err := src.ApplyUpdate(tr.update); err != nil {
				t.Fatal(err)
			}
			u, err := decodeUpdate(tr.update)
			if err != nil {
				t.Fatal(err)
			}
			for _, parts := range []int{2, 7} {
				chunks := cutUpdate(t, u, parts)
				rng := rand.New(rand.NewPCG(uint64(parts), 7))
				order := rng.Perm(len(chunks))
				dst := NewDoc(Options{ClientID: 2})
				for _, i := range order {
					if _, err := dst.ApplyUpdate(chunks[i]); err != nil {
						t.Fatalf("parts=%d chunk %d: %v", parts, i, err)
					}
				}
				checkSame(t, dst, tr, "shuffled chunks")

				// The first half of the chunks, then the rest as a diff.
				dst = NewDoc(Options{ClientID: 2})
				for _, i := range rng.Perm(len(chunks) / 2) {
					if _, err := dst.ApplyUpdate(chunks[i]); err != nil {
						t.Fatal(err)
					}
				}
				diff, err := src.EncodeStateAsUpdate(dst.EncodeStateVector())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := dst.ApplyUpdate(diff); err != nil {
					t.Fatal(err)
				}
				checkSame(t, dst, tr, "prefix and diff")
			}
		})
	}
}

func checkSame(t *testing.T, d *Doc, tr yjsTrace, what string) {
	t.Helper()
	if d.HasPending() {
		t.Fatalf("%s: pending structs after a complete sync", what)
	}
	if got := d.GetText("text").String(); got != tr.text {
		t.Fatalf("%s: text differs at byte %d", what, firstDiff(got, tr.text))
	}
	if got := d.EncodeStateVector(); !bytes.Equal(got, tr.sv) {
		t.Fatalf("%s: state vector differs", what)
	}
	full, err := d.EncodeStateAsUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(full, tr.update) {
		t.Fatalf("%s: re-encoded state differs (%d vs %d bytes, first difference at %d)", what, len(full), len(tr.update), firstDiff(string(full), string(tr.update)))
	}
}

// cutUpdate splits a whole-document update into parts updates: part k holds
// the clocks [k/parts, (k+1)/parts) of every client's structs, items cut at
// the boundaries (never inside a surrogate pair); part parts/2 carries the
// delete set.
func cutUpdate(t *testing.T, u *decodedUpdate, parts int) [][]byte {
	t.Helper()
	out := make([]*decodedUpdate, parts)
	for k := range out {
		out[k] = &decodedUpdate{ds: &deleteSet{}}
	}
	out[parts/2].ds = u.ds
	for _, seg := range u.segments {
		end := seg.refs[len(seg.refs)-1].end()
		start := seg.refs[0].clock
		var bounds []uint64
		for k := 0; k <= parts; k++ {
			bounds = append(bounds, start+(end-start)*uint64(k)/uint64(parts))
		}
		// Move boundaries that fall inside a surrogate pair one unit on.
		for _, r := range seg.refs {
			if r.kind != kindString {
				continue
			}
			for k := range bounds {
				if b := bounds[k]; b > r.clock && b < r.end() {
					if _, mid := utf16ToByteOffset(r.str, int(b-r.clock)); mid {
						bounds[k]++
					}
				}
			}
		}
		for k := 1; k < len(bounds); k++ {
			bounds[k] = max(bounds[k], bounds[k-1])
		}
		for k := 0; k < parts; k++ {
			lo, hi := bounds[k], bounds[k+1]
			if lo >= hi {
				continue
			}
			var refs []ref
			for i := range seg.refs {
				r := seg.refs[i]
				if r.end() <= lo || r.clock >= hi {
					continue
				}
				if r.clock < lo {
					r = sliceRef(&r, lo-r.clock)
				}
				if r.end() > hi {
					r = truncRef(r, hi-r.clock)
				}
				refs = append(refs, r)
			}
			if len(refs) > 0 {
				out[k].segments = append(out[k].segments, segment{client: seg.client, refs: refs})
			}
		}
	}
	var enc [][]byte
	for _, p := range out {
		enc = append(enc, p.encode())
	}
	return enc
}

// truncRef keeps the first n units of a struct.
func truncRef(r ref, n uint64) ref {
	switch r.kind {
	case kindString:
		off, _ := utf16ToByteOffset(r.str, int(n))
		r.str = r.str[:off]
	case kindJSON, kindAny:
		r.ext = &extContent{vals: r.ext.vals[:n]}
	}
	r.length = n
	return r
}

func firstDiff(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// TestReplayMatchesYjs replays every sequential trace as local edits, one
// transaction per txn, and compares with Yjs replaying the same edits
// (testdata/replays.json, from testdata/gen): the final encoded state must
// be byte-identical (by SHA-256) and the updates of all transactions must
// add up to as many bytes.
func TestReplayMatchesYjs(t *testing.T) {
	var want []struct {
		Name        string
		StateSHA256 string
		StateBytes  int
		SV          string
		UpdateBytes int
	}
	readJSONFixture(t, "testdata/replays.json", &want)
	traces := loadEditTraces(t)
	if len(want) != len(traces) {
		t.Fatalf("%d traces, %d recorded replays: regenerate testdata", len(traces), len(want))
	}
	for i, w := range want {
		tr := &traces[i]
		if tr.name != w.Name {
			t.Fatalf("trace %d is %s, recorded %s", i, tr.name, w.Name)
		}
		t.Run(tr.name, func(t *testing.T) {
			d, updateBytes := replay(t, tr, true)
			if got := d.GetText("text").String(); got != tr.end {
				t.Fatalf("final text differs at byte %d", firstDiff(got, tr.end))
			}
			if err := d.checkInvariants(); err != nil {
				t.Fatal(err)
			}
			state, err := d.EncodeStateAsUpdate(nil)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(state)
			if got := hex.EncodeToString(sum[:]); got != w.StateSHA256 || len(state) != w.StateBytes {
				t.Fatalf("final state: %d bytes sha256 %s, Yjs: %d bytes %s", len(state), got, w.StateBytes, w.StateSHA256)
			}
			if got := hex.EncodeToString(d.EncodeStateVector()); got != w.SV {
				t.Fatalf("state vector %s, Yjs %s", got, w.SV)
			}
			if updateBytes != w.UpdateBytes {
				t.Fatalf("updates add up to %d bytes, Yjs's to %d", updateBytes, w.UpdateBytes)
			}
		})
	}
}
