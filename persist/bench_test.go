package persist

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// benchUpdate is about the size of one Yjs keystroke update.
var benchUpdate = []byte("\x01\x01\xb1\xd0\xa8\xf3\x0b\x2a\x84\xb1\xd0\xa8\xf3\x0b\x29\x01x\x00")

// commitStats counts commits through SQLiteOptions.OnCommit.
type commitStats struct {
	commits, requests atomic.Int64
	commitTime        atomic.Int64 // ns from BEGIN to the end of COMMIT, summed
}

func (c *commitStats) hook(batch int, _ int64, d time.Duration) {
	c.commits.Add(1)
	c.requests.Add(int64(batch))
	c.commitTime.Add(int64(d))
}

func (c *commitStats) report(b *testing.B) {
	commits := float64(c.commits.Load())
	if commits == 0 {
		return
	}
	b.ReportMetric(commits/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(float64(c.requests.Load())/commits, "appends/commit")
	b.ReportMetric(float64(c.commitTime.Load())/commits/1e3, "µs/commit")
}

var syncModes = []string{"NORMAL", "FULL"}

// BenchmarkAppend: one goroutine appending to one document, so every Append
// is its own commit: ns/op is the latency of a durable commit.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range syncModes {
		b.Run("sync="+mode, func(b *testing.B) {
			var st commitStats
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "bench.db"), SQLiteOptions{Synchronous: mode, OnCommit: st.hook})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.SetBytes(int64(len(benchUpdate)))
			for b.Loop() {
				if _, err := s.Append(ctx, "doc", benchUpdate); err != nil {
					b.Fatal(err)
				}
			}
			st.report(b)
		})
	}
}

// BenchmarkAppendParallel: many goroutines, each appending to its own
// document (a room each), as the rooms of a busy server do. Group commit
// shows as appends/commit > 1: the cost of one commit is shared.
func BenchmarkAppendParallel(b *testing.B) {
	for _, mode := range syncModes {
		for _, par := range []int{4, 32} {
			b.Run(fmt.Sprintf("sync=%s/writers=%dxGOMAXPROCS", mode, par), func(b *testing.B) {
				var st commitStats
				s, err := OpenSQLite(filepath.Join(b.TempDir(), "bench.db"), SQLiteOptions{Synchronous: mode, OnCommit: st.hook})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var next atomic.Int64
				b.SetBytes(int64(len(benchUpdate)))
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					doc := fmt.Sprintf("doc-%d", next.Add(1))
					for pb.Next() {
						if _, err := s.Append(ctx, doc, benchUpdate); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				st.report(b)
			})
		}
	}
}

// BenchmarkLoad: loading a document of a snapshot and a 100-row tail.
func BenchmarkLoad(b *testing.B) {
	s, err := OpenSQLite(filepath.Join(b.TempDir(), "bench.db"), SQLiteOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 200; i++ {
		if _, err := s.Append(ctx, "doc", benchUpdate); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Compact(ctx, "doc", make([]byte, 64<<10), 100); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		l, err := s.Load(ctx, "doc")
		if err != nil || len(l.Updates) != 100 {
			b.Fatalf("Load: %d updates, %v", len(l.Updates), err)
		}
	}
}
