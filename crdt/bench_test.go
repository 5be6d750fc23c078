package crdt

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// editTrace is a sequential editing trace with positions converted to
// UTF-16 units, ready to replay.
type editTrace struct {
	name  string
	start string
	end   string
	txns  [][]patch
}

type patch struct {
	pos, del int // UTF-16 units
	ins      string
}

var (
	editTracesOnce sync.Once
	editTraces     []editTrace
	editTracesErr  error
)

// loadEditTraces reads traces/sequential/*.json.gz. Positions there count
// code points; they are converted to UTF-16 units by replaying the trace on
// a slice of runes once, outside the timed loops.
func loadEditTraces(tb testing.TB) []editTrace {
	dir := filepath.Join(tracesDir(tb), "sequential")
	editTracesOnce.Do(func() {
		files, err := filepath.Glob(filepath.Join(dir, "*.json.gz"))
		if err != nil || len(files) == 0 {
			editTracesErr = err
			return
		}
		for _, f := range files {
			tr, err := readEditTrace(f)
			if err != nil {
				editTracesErr = err
				return
			}
			editTraces = append(editTraces, tr)
		}
	})
	if editTracesErr != nil || len(editTraces) == 0 {
		tb.Fatalf("reading %s: %v", dir, editTracesErr)
	}
	return editTraces
}

func readEditTrace(path string) (editTrace, error) {
	f, err := os.Open(path)
	if err != nil {
		return editTrace{}, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return editTrace{}, err
	}
	var raw struct {
		StartContent string `json:"startContent"`
		EndContent   string `json:"endContent"`
		Txns         []struct {
			Patches [][3]json.RawMessage `json:"patches"`
		} `json:"txns"`
	}
	if err := json.NewDecoder(zr).Decode(&raw); err != nil {
		return editTrace{}, err
	}
	tr := editTrace{
		name:  strings.TrimSuffix(filepath.Base(path), ".json.gz"),
		start: raw.StartContent,
		end:   raw.EndContent,
	}
	doc := []rune(raw.StartContent)
	units := func(rs []rune) int {
		n := len(rs)
		for _, r := range rs {
			if r > 0xFFFF {
				n++
			}
		}
		return n
	}
	for _, txn := range raw.Txns {
		var ps []patch
		for _, p := range txn.Patches {
			var pos, del int
			var ins string
			if err := json.Unmarshal(p[0], &pos); err != nil {
				return editTrace{}, err
			}
			if err := json.Unmarshal(p[1], &del); err != nil {
				return editTrace{}, err
			}
			if err := json.Unmarshal(p[2], &ins); err != nil {
				return editTrace{}, err
			}
			ps = append(ps, patch{pos: units(doc[:pos]), del: units(doc[pos : pos+del]), ins: ins})
			insRunes := []rune(ins)
			doc = append(doc[:pos], append(insRunes, doc[pos+del:]...)...)
		}
		tr.txns = append(tr.txns, ps)
	}
	return tr, nil
}

// replay applies the trace to a new doc, one transaction per txn.
func replay(tb testing.TB, tr *editTrace, encode bool) (*Doc, int) {
	d := NewDoc(Options{ClientID: 1})
	text := d.GetText("text")
	bytes := 0
	apply := func(ps []patch) {
		u, err := d.transact(func(tx *Transaction) error {
			for _, p := range ps {
				if p.del > 0 {
					if err := text.Delete(tx, p.pos, p.del); err != nil {
						return err
					}
				}
				if p.ins != "" {
					if err := text.Insert(tx, p.pos, p.ins); err != nil {
						return err
					}
				}
			}
			return nil
		}, encode)
		if err != nil {
			tb.Fatal(err)
		}
		bytes += len(u)
	}
	if tr.start != "" {
		apply([]patch{{pos: 0, ins: tr.start}})
	}
	for _, ps := range tr.txns {
		apply(ps)
	}
	return d, bytes
}

func checkReplay(b *testing.B, d *Doc, tr *editTrace) {
	if got := d.GetText("text").String(); got != tr.end {
		b.Fatalf("%s: final text differs at byte %d (%d vs %d bytes)", tr.name, firstDiff(got, tr.end), len(got), len(tr.end))
	}
	if !utf8.ValidString(tr.end) {
		b.Fatalf("%s: endContent is not UTF-8", tr.name)
	}
}

// liveHeap reports the heap a value keeps alive: heap in use after a GC
// with keep reachable, minus the heap before it was built.
func liveHeap(before uint64, keep any) float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	runtime.KeepAlive(keep)
	return float64(ms.HeapAlloc) - float64(before)
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func BenchmarkReplay(b *testing.B) {
	for i := range loadEditTraces(b) {
		tr := &loadEditTraces(b)[i]
		b.Run(tr.name, func(b *testing.B) {
			b.ReportAllocs()
			var d *Doc
			for b.Loop() {
				d, _ = replay(b, tr, false)
			}
			checkReplay(b, d, tr)
			before := heapNow()
			d, _ = replay(b, tr, false)
			b.ReportMetric(liveHeap(before, d), "live-B")
		})
	}
}

func BenchmarkReplayUpdates(b *testing.B) {
	for i := range loadEditTraces(b) {
		tr := &loadEditTraces(b)[i]
		b.Run(tr.name, func(b *testing.B) {
			b.ReportAllocs()
			var d *Doc
			var n int
			for b.Loop() {
				d, n = replay(b, tr, true)
			}
			checkReplay(b, d, tr)
			b.ReportMetric(float64(n), "update-B")
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, tr := range loadYjsTraces(b) {
		b.Run(tr.name, func(b *testing.B) {
			b.ReportAllocs()
			var d *Doc
			var s string
			for b.Loop() {
				d = NewDoc(Options{ClientID: 1})
				if _, err := d.ApplyUpdate(tr.update); err != nil {
					b.Fatal(err)
				}
				s = d.GetText("text").String()
			}
			if s != tr.text {
				b.Fatalf("%s: text differs", tr.name)
			}
			before := heapNow()
			d = NewDoc(Options{ClientID: 1})
			if _, err := d.ApplyUpdate(tr.update); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(liveHeap(before, d), "live-B")
		})
	}
}
