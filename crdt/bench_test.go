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
// UTF-16 units, ready to replay. It is stored without pointers per patch
// (inserted texts are ranges of one string) so that holding every trace in
// memory adds nothing for the garbage collector to scan during the timed
// loops.
type editTrace struct {
	name  string
	start string
	end   string
	ins   string  // every inserted text, concatenated
	txns  []int32 // txns[i] is the index of the first patch of transaction i
	ps    []patch
}

type patch struct {
	pos, del     int32 // UTF-16 units
	insOff, insN int32 // the inserted text: ins[insOff:insOff+insN]
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
	// Code points and UTF-16 units differ only with astral characters;
	// convert by replaying on runes only when there are some.
	type rawPatch struct {
		pos, del int
		text     string
	}
	var txns [][]rawPatch
	astral := strings.ContainsFunc(raw.StartContent+raw.EndContent, func(r rune) bool { return r > 0xFFFF })
	for _, txn := range raw.Txns {
		var ps []rawPatch
		for _, p := range txn.Patches {
			var rp rawPatch
			if err := json.Unmarshal(p[0], &rp.pos); err != nil {
				return editTrace{}, err
			}
			if err := json.Unmarshal(p[1], &rp.del); err != nil {
				return editTrace{}, err
			}
			if err := json.Unmarshal(p[2], &rp.text); err != nil {
				return editTrace{}, err
			}
			astral = astral || strings.ContainsFunc(rp.text, func(r rune) bool { return r > 0xFFFF })
			ps = append(ps, rp)
		}
		txns = append(txns, ps)
	}
	// Code points and UTF-16 units differ only with astral characters;
	// convert by replaying on runes only when there are some.
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
	var ins strings.Builder
	for _, ps := range txns {
		tr.txns = append(tr.txns, int32(len(tr.ps)))
		for _, rp := range ps {
			pt := patch{pos: int32(rp.pos), del: int32(rp.del), insOff: int32(ins.Len()), insN: int32(len(rp.text))}
			ins.WriteString(rp.text)
			if astral {
				pt.pos, pt.del = int32(units(doc[:rp.pos])), int32(units(doc[rp.pos:rp.pos+rp.del]))
				doc = append(doc[:rp.pos], append([]rune(rp.text), doc[rp.pos+rp.del:]...)...)
			}
			tr.ps = append(tr.ps, pt)
		}
	}
	tr.ins = ins.String()
	return tr, nil
}

// replay applies the trace to a new doc, one transaction per txn.
func replay(tb testing.TB, tr *editTrace, encode bool) (*Doc, int) {
	d := NewDoc(Options{ClientID: 1})
	text := d.GetText("text")
	bytes := 0
	apply := func(ps []patch, ins string) {
		u, err := d.transact(func(tx *Transaction) error {
			for _, p := range ps {
				if p.del > 0 {
					if err := text.Delete(tx, int(p.pos), int(p.del)); err != nil {
						return err
					}
				}
				if p.insN > 0 {
					if err := text.Insert(tx, int(p.pos), ins[p.insOff:p.insOff+p.insN]); err != nil {
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
		apply([]patch{{insN: int32(len(tr.start))}}, tr.start)
	}
	for i, first := range tr.txns {
		end := int32(len(tr.ps))
		if i+1 < len(tr.txns) {
			end = tr.txns[i+1]
		}
		apply(tr.ps[first:end], tr.ins)
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
