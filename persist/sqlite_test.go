package persist

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "quire.db")
	s, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateDoc(ctx, "named", "A name"); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 4; seq++ {
		mustAppend(t, s, "named", update("named", seq))
		mustAppend(t, s, "plain", update("plain", seq))
	}
	if err := s.Compact(ctx, "plain", []byte("plain through 3"), 3); err != nil {
		t.Fatal(err)
	}
	wantDocs, err := s.ListDocs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestSQLite(t, path, SQLiteOptions{})
	gotDocs, err := s.ListDocs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gotDocs) != fmt.Sprint(wantDocs) {
		t.Errorf("after reopen ListDocs = %+v\nwant %+v", gotDocs, wantDocs)
	}
	checkLoaded(t, mustLoad(t, s, "named"), nil,
		[][]byte{update("named", 1), update("named", 2), update("named", 3), update("named", 4)}, 4)
	checkLoaded(t, mustLoad(t, s, "plain"), []byte("plain through 3"), [][]byte{update("plain", 4)}, 4)
	if r := mustAppend(t, s, "plain", update("plain", 5)); r.Seq != 5 || r.LogLen != 2 {
		t.Errorf("Append after reopen = %+v, want seq 5, log len 2", r)
	}
}

func TestSQLitePragmas(t *testing.T) {
	for _, c := range []struct {
		opt  string
		want int // PRAGMA synchronous reads 1 for NORMAL, 2 for FULL
	}{
		{"", map[string]int{"NORMAL": 1, "FULL": 2}[DefaultSynchronous]},
		{"NORMAL", 1},
		{"full", 2},
	} {
		t.Run("synchronous="+c.opt, func(t *testing.T) {
			s := openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), SQLiteOptions{Synchronous: c.opt})
			for _, p := range []struct {
				db   string
				name string
				want string
			}{
				{"w", "journal_mode", "wal"},
				{"w", "synchronous", fmt.Sprint(c.want)},
				{"w", "foreign_keys", "1"},
				{"w", "busy_timeout", fmt.Sprint(busyTimeoutMS)},
				{"w", "query_only", "0"},
				{"r", "journal_mode", "wal"},
				{"r", "query_only", "1"},
				{"r", "busy_timeout", fmt.Sprint(busyTimeoutMS)},
			} {
				// The writer's one connection is held by the store (wconn).
				var q interface {
					QueryRowContext(context.Context, string, ...any) *sql.Row
				} = s.wconn
				if p.db == "r" {
					q = s.r
				}
				var got string
				if err := q.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(&got); err != nil {
					t.Fatalf("%s PRAGMA %s: %v", p.db, p.name, err)
				}
				if got != p.want {
					t.Errorf("%s PRAGMA %s = %q, want %q", p.db, p.name, got, p.want)
				}
			}
			if _, err := s.r.ExecContext(ctx, `INSERT INTO docs (id, created_at, updated_at) VALUES ('x', 0, 0)`); err == nil {
				t.Errorf("the read pool accepted a write")
			}
		})
	}
}

func TestSQLiteOpenErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		path string
		opts SQLiteOptions
	}{
		{"synchronous OFF", filepath.Join(t.TempDir(), "a.db"), SQLiteOptions{Synchronous: "OFF"}},
		{"bogus synchronous", filepath.Join(t.TempDir(), "b.db"), SQLiteOptions{Synchronous: "sometimes"}},
		{"empty path", "", SQLiteOptions{}},
		{"path is a directory", t.TempDir(), SQLiteOptions{}},
	} {
		if s, err := OpenSQLite(c.path, c.opts); err == nil {
			_ = s.Close()
			t.Errorf("%s: OpenSQLite succeeded", c.name)
		}
	}
}

// A file name that needs escaping in a SQLite URI.
func TestSQLiteOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "with space", "what?#%20.db")
	s := openTestSQLite(t, path, SQLiteOptions{})
	mustAppend(t, s, "d", []byte("x"))
	if got := s.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
	var file string
	if err := s.wconn.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		t.Fatal(err)
	}
	if file != path {
		t.Errorf("SQLite opened %q, want %q", file, path)
	}
}

// Compact deletes the log rows it replaces, in its own transaction.
func TestSQLiteCompactDeletesRows(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), SQLiteOptions{})
	for seq := int64(1); seq <= 10; seq++ {
		mustAppend(t, s, "d", update("d", seq))
	}
	if err := s.Compact(ctx, "d", []byte("snap"), 7); err != nil {
		t.Fatal(err)
	}
	var n, lo, hi int64
	if err := s.r.QueryRowContext(ctx, `SELECT count(*), min(seq), max(seq) FROM updates WHERE doc_id = 'd'`).Scan(&n, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if n != 3 || lo != 8 || hi != 10 {
		t.Errorf("log rows after Compact: %d rows, seq %d..%d; want 3 rows 8..10", n, lo, hi)
	}
	var through int64
	if err := s.r.QueryRowContext(ctx, `SELECT through_seq FROM snapshots WHERE doc_id = 'd'`).Scan(&through); err != nil || through != 7 {
		t.Errorf("snapshot through_seq = %d, %v; want 7", through, err)
	}
}

// blockedCommitter opens a store whose first commit stops in OnCommit until
// release is closed, so that a test can queue requests behind it and know
// exactly what the next batch holds. The first commit's leader is a
// goroutine of its own (it holds the lead while blocked), and
// blockedCommitter returns once that commit is in OnCommit.
func blockedCommitter(t *testing.T, maxBatch int) (s *SQLite, release chan struct{}, batches func() []int) {
	t.Helper()
	release = make(chan struct{})
	blocked := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	opts := SQLiteOptions{MaxBatch: maxBatch, OnCommit: func(batch int, _ int64, _ time.Duration) {
		mu.Lock()
		sizes = append(sizes, batch)
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			close(blocked)
			<-release
		}
	}}
	s = openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), opts)
	firstErr := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "first", []byte("first"))
		firstErr <- err
	}()
	<-blocked
	t.Cleanup(func() {
		if err := <-firstErr; err != nil {
			t.Errorf("first Append: %v", err)
		}
	})
	return s, release, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), sizes...)
	}
}

// waitQueued waits until n requests wait behind the lead.
func waitQueued(s *SQLite, n int) {
	for {
		s.mu.Lock()
		q := len(s.queue)
		s.mu.Unlock()
		if q >= n {
			return
		}
		runtime.Gosched()
	}
}

// Appends queued while a commit is in progress go into the next transaction
// together (up to MaxBatch), and each returns only once it is readable.
func TestSQLiteGroupCommit(t *testing.T) {
	for _, c := range []struct {
		name      string
		maxBatch  int
		appends   int
		wantFirst int // size of the batch committed right after the release
	}{
		{"all in one", 0, 20, 20},
		{"capped", 8, 20, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, release, batches := blockedCommitter(t, c.maxBatch)
			var wg sync.WaitGroup
			for i := range c.appends {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("doc-%d", i)
					if _, err := s.Append(ctx, id, []byte("x")); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
					// Committed before Append returned: a reader sees it.
					if m, err := s.GetDoc(ctx, id); err != nil || m.LogLen != 1 {
						t.Errorf("GetDoc(%s) right after Append = %+v, %v", id, m, err)
					}
				}()
			}
			waitQueued(s, c.appends)
			close(release)
			wg.Wait()

			got := batches()
			if len(got) < 2 || got[0] != 1 || got[1] != c.wantFirst {
				t.Fatalf("batches = %v, want [1 %d ...]", got, c.wantFirst)
			}
			total := 0
			for _, b := range got[1:] {
				total += b
				if b > s.maxBatch {
					t.Errorf("batch of %d > MaxBatch %d", b, s.maxBatch)
				}
			}
			if total != c.appends {
				t.Errorf("batches %v carry %d appends, want %d", got, total, c.appends)
			}
		})
	}
}

// A request whose ctx ends while it is queued is not written, and the rest
// of its batch commits.
func TestSQLiteCancelWhileQueued(t *testing.T) {
	s, release, batches := blockedCommitter(t, 0)
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Append(cctx, "cancelled", []byte("x"))
		errc <- err
	}()
	waitQueued(s, 1)
	okc := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "kept", []byte("y"))
		okc <- err
	}()
	waitQueued(s, 2)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Append: err = %v", err)
	}
	close(release)
	if err := <-okc; err != nil {
		t.Fatalf("Append queued beside a cancelled one: %v", err)
	}
	if _, err := s.GetDoc(ctx, "cancelled"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the cancelled Append was written: %v", err)
	}
	checkLoaded(t, mustLoad(t, s, "kept"), nil, [][]byte{[]byte("y")}, 1)
	if got := batches(); len(got) != 2 || got[1] != 1 {
		t.Errorf("batches = %v, want [1 1]", got)
	}
}

// Close commits what was queued before it; every Append either commits (and
// is found after reopening) or reports ErrClosed, never anything else, and
// nothing that reported ErrClosed was written.
func TestSQLiteCloseDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	committed := make([][]int64, writers)
	var wg sync.WaitGroup
	started := make(chan struct{}, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("doc-%d", g)
			for k := int64(1); ; k++ {
				res, err := s.Append(ctx, id, update(id, k))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Append during Close: %v", err)
					return
				}
				if res.Seq != k {
					t.Errorf("%s: seq %d, want %d", id, res.Seq, k)
				}
				committed[g] = append(committed[g], res.Seq)
				if k == 3 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range writers {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()

	s = openTestSQLite(t, path, SQLiteOptions{})
	for g := range writers {
		id := fmt.Sprintf("doc-%d", g)
		l := mustLoad(t, s, id)
		if n := int64(len(committed[g])); l.LastSeq != n || int64(len(l.Updates)) != n {
			t.Errorf("%s: %d acknowledged, reopened with LastSeq %d and %d rows", id, n, l.LastSeq, len(l.Updates))
		}
		for i, u := range l.Updates {
			if want := update(id, int64(i+1)); string(u) != string(want) {
				t.Errorf("%s row %d = %q, want %q", id, i+1, u, want)
			}
		}
	}
}

// A waiter handed the lead just as its ctx ends passes the lead on: the
// requests behind it commit and the store is left without a leader.
func TestSQLiteAbandonPassesLead(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), SQLiteOptions{})
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	r := &request{ctx: cctx, kind: opAppend, id: "gone", data: []byte("x"), done: make(chan result, 1)}
	s.mu.Lock()
	s.leading = true
	s.queue = append(s.queue, r)
	s.mu.Unlock()
	okc := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "kept", []byte("y"))
		okc <- err
	}()
	waitQueued(s, 2)
	s.mu.Lock()
	r.done <- result{lead: true}
	s.mu.Unlock()
	if _, err := s.abandon(r); !errors.Is(err, context.Canceled) {
		t.Errorf("abandon: err = %v, want context.Canceled", err)
	}
	if err := <-okc; err != nil {
		t.Fatalf("Append behind the abandoned leader: %v", err)
	}
	if _, err := s.GetDoc(ctx, "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the abandoned request was written: %v", err)
	}
	checkLoaded(t, mustLoad(t, s, "kept"), nil, [][]byte{[]byte("y")}, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leading || len(s.queue) != 0 {
		t.Errorf("after the queue drained: leading=%v queue=%d", s.leading, len(s.queue))
	}
}

// The writer never checkpoints inside a commit; the store's own checkpointer
// copies the WAL into the database file in the background.
func TestSQLiteCheckpointsInBackground(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := openTestSQLite(t, path, SQLiteOptions{})
	var auto int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer's wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		mustAppend(t, s, fmt.Sprintf("doc-%d", i%50), bytes.Repeat([]byte{byte(i)}, 100))
	}
	// Only a checkpoint writes pages into the database file.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > before.Size()+100_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes after 2,000 appends (was %d): no checkpoint ran", fi.Size(), before.Size())
		}
		time.Sleep(checkpointEvery / 5)
	}
}

// Under writes that never pause, the background checkpoint always overlaps
// a commit, so SQLite never finds the WAL fully copied when a write
// transaction begins, which is when it restarts the log from the top; the
// WAL then grew by every commit's pages (100 MB in 20 s of the load
// benchmark's W2). The store bounds it: when the log passes restartFrames,
// the writer copies what is left itself, between two commits.
func TestSQLiteWALStaysBounded(t *testing.T) {
	every, frames := checkpointEvery, restartFrames
	t.Cleanup(func() { checkpointEvery, restartFrames = every, frames })
	for _, tc := range []struct {
		name  string
		every time.Duration
	}{
		{"by the clock", 20 * time.Millisecond},
		// Never by the clock: the count of commits alone wakes the checkpointer.
		{"by commits", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkpointEvery, restartFrames = tc.every, 256
			path := filepath.Join(t.TempDir(), "q.db")
			s := openTestSQLite(t, path, SQLiteOptions{})
			appends, maxWAL := writeSteadily(t, s, path+"-wal", time.Second)
			// Each commit appends at least one 4 KiB page: an unbounded log
			// grows with the commits (about 350 MB in a second here before the
			// fix), a bounded one holds a few restartFrames plus what comes in
			// while a checkpoint runs (8-14 MB here).
			const limit = 32 << 20
			t.Logf("%d appends; largest WAL %d bytes", appends, maxWAL)
			if maxWAL > limit {
				t.Fatalf("WAL file reached %d bytes under steady writes, want at most %d: the log is never restarted", maxWAL, limit)
			}
		})
	}
}

// writeSteadily appends from 4 goroutines that never pause, for d; it returns
// the appends made and the largest size the file wal had meanwhile.
func writeSteadily(t *testing.T, s *SQLite, wal string, d time.Duration) (int64, int64) {
	t.Helper()
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	var appends atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte(w)}, 64)
			for i := 0; time.Now().Before(stop); i++ {
				if _, err := s.Append(ctx, fmt.Sprintf("doc-%d-%d", w, i%20), data); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				appends.Add(1)
			}
		}()
	}
	var maxWAL int64
	for time.Now().Before(stop) {
		if fi, err := os.Stat(wal); err == nil {
			maxWAL = max(maxWAL, fi.Size())
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	return appends.Load(), maxWAL
}

// A full disk fails the appends that do not fit, and only them: what was
// acknowledged loads intact, the counters stay exact, and once there is room
// again the log goes on at the next seq, before and after a reopen.
// max_page_count stands in for the disk: SQLite reports both as
// SQLITE_FULL.
func TestSQLiteDiskFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	mustAppend(t, s, "d", []byte("first"))
	var pages int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wconn.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages+3)); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{[]byte("first")}
	var full error
	for i := range 100 {
		u := bytes.Repeat([]byte{byte('a' + i%26)}, 3000)
		if _, err := s.Append(ctx, "d", u); err != nil {
			full = err
			break
		}
		want = append(want, u)
	}
	if full == nil || !strings.Contains(full.Error(), "full") {
		t.Fatalf("100 appends of 3 KB into 3 free pages: last error %v, want the database full", full)
	}
	if n := strings.Count(full.Error(), `append "d"`); n != 1 {
		t.Errorf("error %q names the append %d times, want once", full, n)
	}
	t.Logf("%d appends fit, then: %v", len(want)-1, full)
	checkLoaded(t, mustLoad(t, s, "d"), nil, want, int64(len(want)))
	if m, err := s.GetDoc(ctx, "d"); err != nil || m.LogLen != len(want) {
		t.Fatalf("GetDoc = %+v, %v; want %d log rows", m, err, len(want))
	}
	if _, err := s.wconn.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	if res := mustAppend(t, s, "d", []byte("room again")); res.Seq != int64(len(want)+1) {
		t.Fatalf("append after the disk had room: seq %d, want %d", res.Seq, len(want)+1)
	}
	want = append(want, []byte("room again"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestSQLite(t, path, SQLiteOptions{})
	checkLoaded(t, mustLoad(t, s, "d"), nil, want, int64(len(want)))
}

// A database is one store's: a second open fails until the first closes.
func TestSQLiteOneProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := OpenSQLite(path, SQLiteOptions{}); !errors.Is(err, ErrLocked) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("second OpenSQLite: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openTestSQLite(t, path, SQLiteOptions{})
}
