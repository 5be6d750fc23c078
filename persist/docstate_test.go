package persist

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// docsRow is a docs row as stored, without the store's state over it.
type docsRow struct {
	lastSeq, logLen, logBytes, updatedAt int64
}

func readDocsRow(t *testing.T, db *sql.DB, id string) docsRow {
	t.Helper()
	var r docsRow
	err := db.QueryRowContext(ctx, `SELECT last_seq, log_len, log_bytes, updated_at FROM docs WHERE id = ?`, id).
		Scan(&r.lastSeq, &r.logLen, &r.logBytes, &r.updatedAt)
	if err != nil {
		t.Fatalf("docs row %q: %v", id, err)
	}
	return r
}

// noBackgroundFlush keeps the checkpointer from flushing during a test
// that reads docs rows, whatever the machine's speed. Call it before
// opening the store.
func noBackgroundFlush(t *testing.T) {
	backgroundFlush = false
	t.Cleanup(func() { backgroundFlush = true })
}

// flushNow runs one flush of up to max docs rows, as the checkpointer does.
func flushNow(t *testing.T, s *SQLite, max int) {
	t.Helper()
	if _, err := s.submit(ctx, &request{kind: opFlush, max: max}); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// An Append writes only its log row; the docs row follows at the next
// flush, and GetDoc and ListDocs see the appends before that.
func TestSQLiteDocsRowFollowsAppends(t *testing.T) {
	noBackgroundFlush(t)
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), SQLiteOptions{})
	first := mustAppend(t, s, "doc", []byte("one"))
	flushNow(t, s, flushChunk)
	before := readDocsRow(t, s.r, "doc")
	if before != (docsRow{lastSeq: 1, logLen: 1, logBytes: 3, updatedAt: before.updatedAt}) || first.Seq != 1 {
		t.Fatalf("after flush: row %+v, append %+v", before, first)
	}
	time.Sleep(2 * time.Millisecond) // a later updated_at
	mustAppend(t, s, "doc", []byte("two"))
	mustAppend(t, s, "doc", []byte("three"))
	if got := readDocsRow(t, s.r, "doc"); got != before {
		t.Errorf("Append wrote the docs row: %+v, was %+v", got, before)
	}
	m := mustGet(t, s, "doc")
	if m.LogLen != 3 || m.Bytes != 3+3+5 || !m.UpdatedAt.After(time.Unix(0, before.updatedAt)) {
		t.Errorf("GetDoc before the flush = %+v, want 3 rows, 11 bytes, updated after %v", m, time.Unix(0, before.updatedAt))
	}
	docs, err := s.ListDocs(ctx)
	if err != nil || len(docs) != 1 || docs[0] != m {
		t.Errorf("ListDocs = %+v, %v; want [%+v]", docs, err, m)
	}
	flushNow(t, s, flushChunk)
	if got := readDocsRow(t, s.r, "doc"); got != (docsRow{lastSeq: 3, logLen: 3, logBytes: 11, updatedAt: m.UpdatedAt.UnixNano()}) {
		t.Errorf("after the flush the row is %+v, want it to say what GetDoc said: %+v", got, m)
	}
}

// A docs row left behind its log (the process died before the flush) is
// repaired when the store opens: counters and the next seq are exact.
func TestSQLiteRepairsRowsBehindTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 5; seq++ {
		mustAppend(t, s, "behind", update("behind", seq))
		mustAppend(t, s, "fine", update("fine", seq))
	}
	if err := s.Compact(ctx, "behind", []byte("snap"), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash before the flush leaves: the row as of the compaction.
	db, err := sql.Open("sqlite3", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE docs SET last_seq = 2, log_len = 0, log_bytes = 0 WHERE id = 'behind'`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openTestSQLite(t, path, SQLiteOptions{})
	tail := int64(len(update("behind", 3)) + len(update("behind", 4)) + len(update("behind", 5)))
	if got := readDocsRow(t, s.r, "behind"); got.lastSeq != 5 || got.logLen != 3 || got.logBytes != tail {
		t.Errorf("repaired row = %+v, want last seq 5, 3 rows, %d bytes", got, tail)
	}
	if m := mustGet(t, s, "behind"); m.LogLen != 3 || m.Bytes != tail+4 {
		t.Errorf("GetDoc = %+v, want 3 rows, %d bytes", m, tail+4)
	}
	checkLoaded(t, mustLoad(t, s, "behind"), []byte("snap"),
		[][]byte{update("behind", 3), update("behind", 4), update("behind", 5)}, 5)
	if r := mustAppend(t, s, "behind", update("behind", 6)); r != (AppendResult{Seq: 6, LogLen: 4, LogBytes: tail + int64(len(update("behind", 6)))}) {
		t.Errorf("Append after repair = %+v", r)
	}
	if r := mustAppend(t, s, "fine", update("fine", 6)); r.Seq != 6 || r.LogLen != 6 {
		t.Errorf("Append to an intact doc = %+v, want seq 6 of 6 rows", r)
	}
}

// Load's LastSeq counts log rows the docs row does not know of yet.
func TestSQLiteLoadLastSeqBeforeFlush(t *testing.T) {
	noBackgroundFlush(t)
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), SQLiteOptions{})
	for seq := int64(1); seq <= 3; seq++ {
		mustAppend(t, s, "doc", update("doc", seq))
	}
	if row := readDocsRow(t, s.r, "doc"); row.lastSeq != 0 {
		t.Fatalf("docs row already flushed (%+v): the test proves nothing", row)
	}
	checkLoaded(t, mustLoad(t, s, "doc"), nil, [][]byte{update("doc", 1), update("doc", 2), update("doc", 3)}, 3)
}

// A document nobody writes any more is forgotten a while after its last
// write, and read again from its row when it is written next.
func TestSQLiteForgetsIdleDocs(t *testing.T) {
	noBackgroundFlush(t)
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), SQLiteOptions{})
	clock := time.Now()
	s.now = func() time.Time { return clock }
	mustAppend(t, s, "idle", []byte("a"))
	mustAppend(t, s, "busy", []byte("b"))
	flushNow(t, s, flushChunk) // both rows written, and the first aging pass
	clock = clock.Add(evictAfter + ageEvery)
	mustAppend(t, s, "busy", []byte("b"))
	flushNow(t, s, flushChunk)
	s.metaMu.Lock()
	_, idleKept := s.docs["idle"]
	_, busyKept := s.docs["busy"]
	s.metaMu.Unlock()
	if idleKept || !busyKept {
		t.Fatalf("%v after its last write: idle kept %v, busy kept %v; want false, true", evictAfter+ageEvery, idleKept, busyKept)
	}
	if m := mustGet(t, s, "idle"); m.LogLen != 1 || m.Bytes != 1 {
		t.Errorf("GetDoc of the forgotten doc = %+v", m)
	}
	if r := mustAppend(t, s, "idle", []byte("c")); r != (AppendResult{Seq: 2, LogLen: 2, LogBytes: 2}) {
		t.Errorf("Append to the forgotten doc = %+v, want seq 2 of 2 rows", r)
	}
}

// A flush writes at most its chunk of rows, the documents written longest
// ago first; a document written again while it waits keeps its place.
func TestSQLiteFlushOldestFirst(t *testing.T) {
	noBackgroundFlush(t)
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), SQLiteOptions{})
	for _, id := range []string{"a", "b", "c", "d"} {
		mustAppend(t, s, id, []byte(id))
	}
	mustAppend(t, s, "a", []byte("again"))
	flushNow(t, s, 2)
	for id, want := range map[string]int64{"a": 2, "b": 1, "c": 0, "d": 0} {
		if got := readDocsRow(t, s.r, id); got.lastSeq != want {
			t.Errorf("after one flush of 2: %s row at seq %d, want %d", id, got.lastSeq, want)
		}
	}
	mustAppend(t, s, "a", []byte("third"))
	flushNow(t, s, 2)
	for id, want := range map[string]int64{"a": 2, "c": 1, "d": 1} {
		if got := readDocsRow(t, s.r, id); got.lastSeq != want {
			t.Errorf("after two flushes: %s row at seq %d, want %d", id, got.lastSeq, want)
		}
	}
	flushNow(t, s, 2)
	if got := readDocsRow(t, s.r, "a"); got.lastSeq != 3 {
		t.Errorf("after three flushes: a row at seq %d, want 3", got.lastSeq)
	}
	if n := s.pendingFlush(); n != 0 {
		t.Errorf("%d documents still wait", n)
	}
}

// Close writes what the flush has not: a clean restart needs no repair.
func TestSQLiteCloseFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenSQLite(path, SQLiteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, "doc", []byte("abc"))
	mustAppend(t, s, "doc", []byte("de"))
	want := mustGet(t, s, "doc")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite3", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := readDocsRow(t, db, "doc"); got != (docsRow{lastSeq: 2, logLen: 2, logBytes: 5, updatedAt: want.UpdatedAt.UnixNano()}) {
		t.Errorf("docs row after Close = %+v, want what GetDoc said: %+v", got, want)
	}
}

// A batch that fails leaves no trace in the states: the next Append gets
// the seq the failed one would have had.
func TestSQLiteFailedBatchKeepsStates(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "q.db"), SQLiteOptions{})
	mustAppend(t, s, "doc", []byte("a"))
	// A row in the way of seq 2 makes the next commit fail.
	if _, err := s.wconn.ExecContext(ctx, `INSERT INTO updates (doc_id, seq, data) VALUES ('doc', 2, x'00')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "doc", []byte("b")); err == nil {
		t.Fatal("Append over an existing row succeeded")
	}
	if m := mustGet(t, s, "doc"); m.LogLen != 1 || m.Bytes != 1 {
		t.Errorf("GetDoc after the failed Append = %+v, want 1 row of 1 byte", m)
	}
}
