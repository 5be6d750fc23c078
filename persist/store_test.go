package persist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The crash test re-executes this binary as the process it kills.
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path))
	}
	goleak.VerifyTestMain(m)
}

// impl is one Store implementation under the contract suite.
type impl struct {
	name string
	open func(t *testing.T) Store // a fresh, empty store, closed by t.Cleanup
}

func impls() []impl {
	return []impl{
		{"sqlite", func(t *testing.T) Store {
			return openTestSQLite(t, filepath.Join(t.TempDir(), "nested", "dir", "quire.db"), SQLiteOptions{})
		}},
		{"memory", func(t *testing.T) Store {
			m := NewMemory()
			t.Cleanup(func() { _ = m.Close() })
			return m
		}},
	}
}

func openTestSQLite(t *testing.T, path string, opts SQLiteOptions) *SQLite {
	t.Helper()
	s, err := OpenSQLite(path, opts)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestStoreContract runs the one contract suite against every implementation.
func TestStoreContract(t *testing.T) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"CreateGetList", testCreateGetList},
		{"BadArguments", testBadArguments},
		{"AppendLoad", testAppendLoad},
		{"AppendCopiesBuffers", testAppendCopiesBuffers},
		{"Compact", testCompact},
		{"CompactInvalid", testCompactInvalid},
		{"ConcurrentAppends", testConcurrentAppends},
		{"CancelledContext", testCancelledContext},
		{"Close", testClose},
	}
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					c.fn(t, im.open(t))
				})
			}
		})
	}
}

var ctx = context.Background()

func mustAppend(t *testing.T, s Store, id string, update []byte) AppendResult {
	t.Helper()
	res, err := s.Append(ctx, id, update)
	if err != nil {
		t.Fatalf("Append(%q): %v", id, err)
	}
	return res
}

func mustLoad(t *testing.T, s Store, id string) Loaded {
	t.Helper()
	l, err := s.Load(ctx, id)
	if err != nil {
		t.Fatalf("Load(%q): %v", id, err)
	}
	return l
}

func mustGet(t *testing.T, s Store, id string) DocMeta {
	t.Helper()
	m, err := s.GetDoc(ctx, id)
	if err != nil {
		t.Fatalf("GetDoc(%q): %v", id, err)
	}
	return m
}

func update(doc string, seq int64) []byte { return []byte(fmt.Sprintf("update %s #%d", doc, seq)) }

func checkLoaded(t *testing.T, got Loaded, wantSnap []byte, wantUpdates [][]byte, wantLast int64) {
	t.Helper()
	if !bytes.Equal(got.Snapshot, wantSnap) || (got.Snapshot == nil) != (wantSnap == nil) {
		t.Errorf("Snapshot = %q, want %q", got.Snapshot, wantSnap)
	}
	if len(got.Updates) != len(wantUpdates) {
		t.Fatalf("Updates has %d rows, want %d: %q", len(got.Updates), len(wantUpdates), got.Updates)
	}
	for i := range wantUpdates {
		if !bytes.Equal(got.Updates[i], wantUpdates[i]) {
			t.Errorf("Updates[%d] = %q, want %q", i, got.Updates[i], wantUpdates[i])
		}
	}
	if got.LastSeq != wantLast {
		t.Errorf("LastSeq = %d, want %d", got.LastSeq, wantLast)
	}
}

func checkSorted(t *testing.T, docs []DocMeta) {
	t.Helper()
	ok := sort.SliceIsSorted(docs, func(i, j int) bool {
		if !docs[i].UpdatedAt.Equal(docs[j].UpdatedAt) {
			return docs[i].UpdatedAt.After(docs[j].UpdatedAt)
		}
		return docs[i].ID < docs[j].ID
	})
	if !ok {
		t.Errorf("ListDocs not newest first: %+v", docs)
	}
}

func testCreateGetList(t *testing.T, s Store) {
	if docs, err := s.ListDocs(ctx); err != nil || len(docs) != 0 {
		t.Fatalf("ListDocs on an empty store = %v, %v; want empty, nil", docs, err)
	}
	for _, d := range []struct{ id, name string }{{"alpha", "Alpha"}, {"beta", ""}, {"gamma", "Γάμμα ✓"}} {
		m, err := s.CreateDoc(ctx, d.id, d.name)
		if err != nil {
			t.Fatalf("CreateDoc(%q): %v", d.id, err)
		}
		if m.ID != d.id || m.Name != d.name || m.Bytes != 0 || m.LogLen != 0 || m.CreatedAt.IsZero() || !m.UpdatedAt.Equal(m.CreatedAt) {
			t.Errorf("CreateDoc(%q) = %+v", d.id, m)
		}
		got := mustGet(t, s, d.id)
		if got != m {
			t.Errorf("GetDoc(%q) = %+v, want %+v", d.id, got, m)
		}
	}
	if _, err := s.CreateDoc(ctx, "beta", "again"); !errors.Is(err, ErrExists) {
		t.Errorf("CreateDoc of an existing doc: err = %v, want ErrExists", err)
	}
	if m := mustGet(t, s, "beta"); m.Name != "" {
		t.Errorf("a failed CreateDoc renamed the doc to %q", m.Name)
	}
	if _, err := s.GetDoc(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetDoc(missing): err = %v, want ErrNotFound", err)
	}

	// Append creates the doc row; CreateDoc then finds it.
	mustAppend(t, s, "delta", []byte("u1"))
	if _, err := s.CreateDoc(ctx, "delta", "late"); !errors.Is(err, ErrExists) {
		t.Errorf("CreateDoc of a doc created by Append: err = %v, want ErrExists", err)
	}
	before := mustGet(t, s, "beta")
	mustAppend(t, s, "beta", []byte("u1"))
	after := mustGet(t, s, "beta")
	if after.UpdatedAt.Before(before.UpdatedAt) || !after.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("after Append: %+v, before: %+v", after, before)
	}

	docs, err := s.ListDocs(ctx)
	if err != nil {
		t.Fatalf("ListDocs: %v", err)
	}
	var ids []string
	for _, d := range docs {
		ids = append(ids, d.ID)
		if want := mustGet(t, s, d.ID); d != want {
			t.Errorf("ListDocs has %+v, GetDoc %+v", d, want)
		}
	}
	sort.Strings(ids)
	if fmt.Sprint(ids) != "[alpha beta delta gamma]" {
		t.Errorf("ListDocs ids = %v", ids)
	}
	checkSorted(t, docs)
}

func testBadArguments(t *testing.T, s Store) {
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"CreateDoc empty id", func() error { _, err := s.CreateDoc(ctx, "", "x"); return err }(), errEmptyID},
		{"Append empty id", func() error { _, err := s.Append(ctx, "", []byte("x")); return err }(), errEmptyID},
		{"Append empty update", func() error { _, err := s.Append(ctx, "d", nil); return err }(), errEmptyUpdate},
		{"Compact empty snapshot", s.Compact(ctx, "d", []byte{}, 0), errEmptyUpdate},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, err := s.GetDoc(ctx, "d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused Append created the doc: GetDoc err = %v", err)
	}
}

func testAppendLoad(t *testing.T, s Store) {
	checkLoaded(t, mustLoad(t, s, "never"), nil, nil, 0)
	if _, err := s.CreateDoc(ctx, "empty", ""); err != nil {
		t.Fatal(err)
	}
	checkLoaded(t, mustLoad(t, s, "empty"), nil, nil, 0)

	var want [][]byte
	var total int64
	for seq := int64(1); seq <= 5; seq++ {
		u := update("doc", seq)
		want = append(want, u)
		total += int64(len(u))
		res := mustAppend(t, s, "doc", u)
		if res != (AppendResult{Seq: seq, LogLen: int(seq), LogBytes: total}) {
			t.Errorf("Append #%d = %+v, want seq %d, len %d, bytes %d", seq, res, seq, seq, total)
		}
		// A second doc interleaved: seqs are per document.
		if r := mustAppend(t, s, "other", update("other", seq)); r.Seq != seq {
			t.Errorf("other doc: seq %d, want %d", r.Seq, seq)
		}
	}
	checkLoaded(t, mustLoad(t, s, "doc"), nil, want, 5)
	if m := mustGet(t, s, "doc"); m.LogLen != 5 || m.Bytes != total || m.Name != "" {
		t.Errorf("GetDoc = %+v, want LogLen 5, Bytes %d", m, total)
	}
}

func testAppendCopiesBuffers(t *testing.T, s Store) {
	buf := []byte("original")
	mustAppend(t, s, "doc", buf)
	copy(buf, "XXXXXXXX")
	l := mustLoad(t, s, "doc")
	checkLoaded(t, l, nil, [][]byte{[]byte("original")}, 1)
	l.Updates[0][0] = 'Y'
	checkLoaded(t, mustLoad(t, s, "doc"), nil, [][]byte{[]byte("original")}, 1)

	snap := []byte("snapshot")
	if err := s.Compact(ctx, "doc", snap, 1); err != nil {
		t.Fatal(err)
	}
	copy(snap, "XXXXXXXX")
	l = mustLoad(t, s, "doc")
	l.Snapshot[0] = 'Y'
	checkLoaded(t, mustLoad(t, s, "doc"), []byte("snapshot"), nil, 1)
}

func testCompact(t *testing.T, s Store) {
	var all [][]byte
	for seq := int64(1); seq <= 6; seq++ {
		all = append(all, update("doc", seq))
		mustAppend(t, s, "doc", all[seq-1])
	}
	created := mustGet(t, s, "doc")

	snap := []byte("state through 4")
	if err := s.Compact(ctx, "doc", snap, 4); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	checkLoaded(t, mustLoad(t, s, "doc"), snap, all[4:], 6)
	m := mustGet(t, s, "doc")
	if want := int64(len(snap) + len(all[4]) + len(all[5])); m.Bytes != want || m.LogLen != 2 {
		t.Errorf("after Compact: %+v, want Bytes %d, LogLen 2", m, want)
	}
	if !m.UpdatedAt.Equal(created.UpdatedAt) {
		t.Errorf("Compact changed UpdatedAt: %v -> %v (the content did not change)", created.UpdatedAt, m.UpdatedAt)
	}

	// Seqs go on after the snapshot, and the log counters restart from it.
	all = append(all, update("doc", 7))
	res := mustAppend(t, s, "doc", all[6])
	if want := (AppendResult{Seq: 7, LogLen: 3, LogBytes: int64(len(all[4]) + len(all[5]) + len(all[6]))}); res != want {
		t.Errorf("Append after Compact = %+v, want %+v", res, want)
	}

	// The same seq again replaces the snapshot (e.g. re-encoded after GC).
	snap2 := []byte("state through 4, re-encoded")
	if err := s.Compact(ctx, "doc", snap2, 4); err != nil {
		t.Fatalf("Compact at the same seq: %v", err)
	}
	checkLoaded(t, mustLoad(t, s, "doc"), snap2, all[4:], 7)

	// Everything folded in: an empty log.
	snap3 := []byte("state through 7")
	if err := s.Compact(ctx, "doc", snap3, 7); err != nil {
		t.Fatalf("Compact of the whole log: %v", err)
	}
	checkLoaded(t, mustLoad(t, s, "doc"), snap3, nil, 7)
	if m := mustGet(t, s, "doc"); m.Bytes != int64(len(snap3)) || m.LogLen != 0 {
		t.Errorf("after full Compact: %+v", m)
	}

	// A doc created but never written can get a snapshot through 0.
	if _, err := s.CreateDoc(ctx, "imported", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, "imported", []byte("imported state"), 0); err != nil {
		t.Fatalf("Compact through 0: %v", err)
	}
	checkLoaded(t, mustLoad(t, s, "imported"), []byte("imported state"), nil, 0)
	if r := mustAppend(t, s, "imported", []byte("next")); r.Seq != 1 || r.LogLen != 1 {
		t.Errorf("Append after a snapshot through 0 = %+v", r)
	}
}

func testCompactInvalid(t *testing.T, s Store) {
	for seq := int64(1); seq <= 5; seq++ {
		mustAppend(t, s, "doc", update("doc", seq))
	}
	if err := s.Compact(ctx, "doc", []byte("snap3"), 3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		id      string
		through int64
		want    error
	}{
		{"missing doc", "missing", 0, ErrNotFound},
		{"negative", "doc", -1, ErrInvalidSeq},
		{"below the snapshot", "doc", 2, ErrInvalidSeq},
		{"beyond the last seq", "doc", 6, ErrInvalidSeq},
	} {
		if err := s.Compact(ctx, c.id, []byte("bad"), c.through); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// Nothing of the refused calls stuck.
	checkLoaded(t, mustLoad(t, s, "doc"), []byte("snap3"), [][]byte{update("doc", 4), update("doc", 5)}, 5)
	if _, err := s.GetDoc(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Compact created a missing doc: %v", err)
	}
}

// testConcurrentAppends: many goroutines append to several docs at once;
// every Append that returned is there, in an order consistent with the seqs
// each goroutine saw, and the seqs of a doc are exactly 1..N.
func testConcurrentAppends(t *testing.T, s Store) {
	const (
		goroutines = 16
		docs       = 5
		each       = 25
	)
	type ack struct {
		doc  string
		seq  int64
		data []byte
	}
	acks := make([][]ack, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := fmt.Sprintf("doc-%d", g%docs)
			var prev int64
			for k := range each {
				data := []byte(fmt.Sprintf("g%d k%d", g, k))
				res, err := s.Append(ctx, doc, data)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				if res.Seq <= prev {
					t.Errorf("goroutine %d: seq %d after %d", g, res.Seq, prev)
				}
				prev = res.Seq
				acks[g] = append(acks[g], ack{doc, res.Seq, data})
			}
		}()
	}
	wg.Wait()

	loaded := map[string]Loaded{}
	for d := range docs {
		id := fmt.Sprintf("doc-%d", d)
		l := mustLoad(t, s, id)
		loaded[id] = l
		wantN := each * (goroutines / docs)
		if g := goroutines % docs; d < g {
			wantN += each
		}
		if len(l.Updates) != wantN || l.LastSeq != int64(wantN) {
			t.Errorf("%s: %d updates, LastSeq %d; want %d", id, len(l.Updates), l.LastSeq, wantN)
		}
	}
	for _, as := range acks {
		for _, a := range as {
			l := loaded[a.doc]
			if a.seq < 1 || a.seq > int64(len(l.Updates)) || !bytes.Equal(l.Updates[a.seq-1], a.data) {
				t.Errorf("%s seq %d: acknowledged %q, not found at its seq", a.doc, a.seq, a.data)
			}
		}
	}
}

func testCancelledContext(t *testing.T, s Store) {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Append(cctx, "doc", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled ctx: err = %v", err)
	}
	if _, err := s.CreateDoc(cctx, "doc2", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateDoc with a cancelled ctx: err = %v", err)
	}
	for _, id := range []string{"doc", "doc2"} {
		if _, err := s.GetDoc(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s written despite a cancelled ctx: GetDoc err = %v", id, err)
		}
	}
}

func testClose(t *testing.T, s Store) {
	mustAppend(t, s, "doc", []byte("x"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"Append", func() error { _, err := s.Append(ctx, "doc", []byte("y")); return err }()},
		{"CreateDoc", func() error { _, err := s.CreateDoc(ctx, "new", ""); return err }()},
		{"Compact", s.Compact(ctx, "doc", []byte("s"), 1)},
		{"GetDoc", func() error { _, err := s.GetDoc(ctx, "doc"); return err }()},
		{"ListDocs", func() error { _, err := s.ListDocs(ctx); return err }()},
		{"Load", func() error { _, err := s.Load(ctx, "doc"); return err }()},
	} {
		if !errors.Is(c.err, ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", c.name, c.err)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
