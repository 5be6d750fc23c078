package persist

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the CPU time the calling thread has used.
func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}

// BenchmarkAppendPaced: lone Appends with an idle gap before each, as a
// room that gets a keystroke now and then commits them. After a gap the
// caches are cold and a commit costs several times what back-to-back
// commits (BenchmarkAppend) do; cpu-µs/append is the committing thread's
// CPU time, wall-µs/append the latency of the Append.
func BenchmarkAppendPaced(b *testing.B) {
	for _, gap := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
		b.Run("gap="+gap.String(), func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			s, err := OpenSQLite(filepath.Join(b.TempDir(), "bench.db"), SQLiteOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var wall, cpu time.Duration
			for b.Loop() {
				time.Sleep(gap)
				t, c := time.Now(), threadCPU(b)
				if _, err := s.Append(ctx, "doc", benchUpdate); err != nil {
					b.Fatal(err)
				}
				cpu += threadCPU(b) - c
				wall += time.Since(t)
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/append")
			b.ReportMetric(float64(wall.Nanoseconds())/1e3/float64(b.N), "wall-µs/append")
			b.ReportMetric(0, "ns/op") // the gap, not the append
		})
	}
}
