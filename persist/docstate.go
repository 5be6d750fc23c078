package persist

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"
)

// What the store keeps in memory of each document it writes. An Append is
// one INSERT into updates and nothing else: the document's counters (last
// seq, log rows and bytes, time of the last write) live here, and its docs
// row is brought up to date behind the appends: a few rows at a time, the
// documents written longest ago first (dirtyQ), every checkpoint tick, and
// all of them at Close; Compact writes its document's row itself. That
// halves what a keystroke commits (one B-tree page, one WAL frame, instead
// of two) and drops the read of the docs row before it: a commit after a
// millisecond of idleness, when the caches are cold, measured 71 -> 52 µs
// of CPU (BenchmarkAppendPaced), and commits were most of the server's work
// with 1,000 rooms typing. Writing every row that changed in one
// transaction each second held the other documents' commits for 3-6 ms.
//
// While the process runs the state here is the truth, and readers (GetDoc,
// ListDocs) see it over the rows. A crash can leave a docs row behind its
// log; OpenSQLite repairs such rows from the log itself (repairSQL), so the
// counters are exact again before anything is served. Only the time of the
// last write of such a document may be older than it was.

// flushChunk is how many docs rows one flush writes at most: 128 held the
// commits queued behind it for up to 1.6 ms with 1,000 rooms typing.
const flushChunk = 64

// backgroundFlush lets the checkpointer write docs rows; tests that look at
// the rows turn it off before they open a store.
var backgroundFlush = true

// ageEvery is how often states are looked at for eviction, and evictAfter
// how long a state outlives its document's last write: a document written
// now and then is not read again each time, and one nobody writes any more
// costs no memory.
const (
	ageEvery   = 10 * time.Second
	evictAfter = time.Minute
)

// docState is a document's counters as the committed log has them.
type docState struct {
	lastSeq   int64 // seq of the last appended row
	logLen    int64 // rows in the log since the snapshot
	logBytes  int64 // their bytes
	updatedAt int64 // unix nanos of the last Append (CreateDoc before any)
	dirty     bool  // the docs row lags behind these
	queued    bool  // the document is in dirtyQ
}

// repairSQL brings the counters of every docs row whose log grew past it (a
// crash came between appends and their flush) back to what its log holds.
// A row that is up to date costs one index seek.
const repairSQL = `UPDATE docs SET
	last_seq  = (SELECT max(seq) FROM updates WHERE doc_id = docs.id),
	log_len   = (SELECT count(*) FROM updates WHERE doc_id = docs.id),
	log_bytes = (SELECT coalesce(sum(length(data)), 0) FROM updates WHERE doc_id = docs.id)
WHERE last_seq < (SELECT coalesce(max(seq), 0) FROM updates WHERE doc_id = docs.id)`

// state returns the batch's view of id's state, reading its docs row the
// first time the store writes the document. exists is false when there is
// no docs row (the state is then a zero value the caller may fill).
func (b *batchTx) state(id string) (st *docState, exists bool, err error) {
	if st, ok := b.touched[id]; ok {
		return st, st != absent, nil
	}
	// Only the leader writes s.docs, and the leader is us: no lock to read.
	if cur, ok := b.s.docs[id]; ok {
		cp := b.copyState(*cur)
		b.touched[id] = cp
		return cp, true, nil
	}
	var last, logLen, logBytes, updated int64
	err = b.queryRow(stDocCounts, []driver.Value{id}, &last, &logLen, &logBytes, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		b.touched[id] = absent
		return absent, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read doc: %w", err)
	}
	st = b.copyState(docState{lastSeq: last, logLen: logLen, logBytes: logBytes, updatedAt: updated})
	b.touched[id] = st
	return st, true, nil
}

// copyState returns a copy of v the batch may change: in the store's
// scratch array while it has room (its entries stay where they are for the
// batch's life), else a new one.
func (b *batchTx) copyState(v docState) *docState {
	if len(b.slab) < cap(b.slab) {
		b.slab = append(b.slab, v)
		return &b.slab[len(b.slab)-1]
	}
	p := new(docState)
	*p = v
	return p
}

// absent marks a document with no docs row in a batch's touched map.
var absent = &docState{}

// created records that the batch inserted id's docs row (all counters zero).
func (b *batchTx) created(id string) *docState {
	st := b.copyState(docState{updatedAt: b.now})
	b.touched[id] = st
	return st
}

// publish makes the states of a committed batch the store's: the queue
// loses the documents the batch flushed, and gains those it made dirty.
func (s *SQLite) publish(b *batchTx) {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	clear(s.dirtyQ[:b.popped])
	s.dirtyQ = s.dirtyQ[b.popped:]
	for id, st := range b.touched {
		if st == absent {
			continue
		}
		if st.dirty && !st.queued {
			st.queued = true
			s.dirtyQ = append(s.dirtyQ, id)
		}
		// Copied out: the batch's states live in scratch space.
		if cur, ok := s.docs[id]; ok {
			*cur = *st
		} else {
			cp := *st
			s.docs[id] = &cp
		}
	}
	if b.aged {
		now := b.now
		for id, st := range s.docs {
			if !st.dirty && !st.queued && now-st.updatedAt > int64(evictAfter) {
				delete(s.docs, id)
			}
		}
	}
}

// flush writes the docs rows of up to max documents of the queue, those
// written longest ago first, and ages the states when that is due.
func (b *batchTx) flush(max int) error {
	q := b.s.dirtyQ // only the leader changes it, and the leader is us
	for b.popped < len(q) && max > 0 {
		id := q[b.popped]
		b.popped++
		st, exists, err := b.state(id)
		if err != nil {
			return err
		}
		if !exists {
			continue
		}
		st.queued = false
		if st.dirty {
			if err := b.writeState(id, st); err != nil {
				return err
			}
			max--
		}
	}
	if time.Duration(b.now-b.s.lastAge) >= ageEvery {
		b.s.lastAge = b.now
		b.aged = true
	}
	return nil
}

// writeState updates id's docs row to st.
func (b *batchTx) writeState(id string, st *docState) error {
	if _, err := b.exec(stSetDoc, id, st.updatedAt, st.lastSeq, st.logLen, st.logBytes); err != nil {
		return fmt.Errorf("update doc %q: %w", id, err)
	}
	st.dirty = false
	return nil
}

// pendingFlush reports how many documents wait for their docs row.
func (s *SQLite) pendingFlush() int {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	return len(s.dirtyQ)
}

// knowsDocs reports whether the store holds the state of any document.
func (s *SQLite) knowsDocs() bool {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	return len(s.docs) > 0
}

// overlay puts what the store knows of m's document in memory over what its
// docs row says; snapshotBytes is the row's.
func (s *SQLite) overlay(m *DocMeta, snapshotBytes int64) {
	s.metaMu.Lock()
	st, ok := s.docs[m.ID]
	var cp docState
	if ok {
		cp = *st
	}
	s.metaMu.Unlock()
	if !ok {
		return
	}
	m.UpdatedAt = time.Unix(0, cp.updatedAt).UTC()
	m.LogLen = int(cp.logLen)
	m.Bytes = cp.logBytes + snapshotBytes
}
