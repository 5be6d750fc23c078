package persist

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"
)

// Group commit, led by the writers themselves. Every write (Append, Compact,
// CreateDoc) is a request put on s.queue. When no commit is running, the
// goroutine that submits becomes the leader: it takes every queued request
// (up to MaxBatch), runs them all in ONE transaction on the single writer
// connection and, only after COMMIT has returned, completes each waiter.
// Requests that arrive while a commit is on disk wait in the queue; when the
// commit ends, the leader hands the lead to the first of them, which commits
// all that queued meanwhile. So the batch grows with the load and the cost of
// a commit (an fsync with synchronous=FULL) is shared by every document that
// wrote meanwhile, without any timer or artificial delay, and an uncontended
// write costs no goroutine switch: a dedicated committer goroutine cost two
// wake-ups per commit (there and back), each a futex call and, on an idle
// core, a wake-up of that core, which profiles of the load benchmark put at
// a fifth of the server's CPU with 1,000 rooms (scripts/bench-server.sh).

type opKind uint8

const (
	opAppend opKind = iota + 1
	opCreate
	opCompact
	opFlush      // bring docs rows up to date with the documents' states (docstate.go)
	opCheckpoint // copy the WAL's tail between two commits (checkpoint.go); not a transaction
)

func (k opKind) String() string {
	switch k {
	case opAppend:
		return "append"
	case opCreate:
		return "create"
	case opCompact:
		return "compact"
	case opFlush:
		return "flush"
	case opCheckpoint:
		return "checkpoint"
	}
	return fmt.Sprintf("op%d", uint8(k))
}

// request is one write waiting for its commit.
type request struct {
	ctx     context.Context
	kind    opKind
	id      string
	name    string // opCreate
	data    []byte // opAppend: the update; opCompact: the snapshot (the store's own copy)
	through int64  // opCompact
	max     int    // opFlush: docs rows to write at most
	res     result
	// done receives the request's result, or first a lead token when the
	// request's goroutine is to commit the next batch. Buffered (1): the
	// leader never blocks on a waiter that gave up.
	done chan result
}

// result is a request's outcome. err is either the request's own error
// (ErrExists, ErrNotFound, ErrInvalidSeq: the rest of the batch commits) or
// the batch's (nothing of it was committed). lead is the lead token: no
// outcome yet, the receiver commits the next batch.
type result struct {
	append AppendResult
	meta   DocMeta
	err    error
	lead   bool
}

// submit queues r and waits for its result, committing the batch itself
// when no other goroutine is. When ctx ends while r waits in the
// transaction being committed, submit returns ctx.Err() and r may still be
// committed; a request not yet taken into a batch is dropped.
func (s *SQLite) submit(ctx context.Context, r *request) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r.ctx = ctx
	r.done = make(chan result, 1)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return result{}, ErrClosed
	}
	s.queue = append(s.queue, r)
	follow := s.leading
	s.leading = true
	s.mu.Unlock()

	if follow {
		select {
		case res := <-r.done:
			if !res.lead {
				return res, res.err
			}
		case <-ctx.Done():
			return s.abandon(r)
		}
	}
	// r is at the head of the queue (a new leader finds the queue empty but
	// for r; a promoted one is the head), so the first batch carries it.
	s.lead()
	res := <-r.done
	return res, res.err
}

// abandon handles a waiter whose ctx ended: a request still queued is taken
// out; one that was handed the lead meanwhile passes it on.
func (s *SQLite) abandon(r *request) (result, error) {
	s.mu.Lock()
	for i, q := range s.queue {
		if q == r {
			copy(s.queue[i:], s.queue[i+1:])
			s.queue[len(s.queue)-1] = nil
			s.queue = s.queue[:len(s.queue)-1]
			break
		}
	}
	var res result
	got := false
	select {
	case res = <-r.done:
		got = true
	default:
	}
	s.mu.Unlock()
	switch {
	case got && res.lead:
		s.lead() // commits the others, or gives the lead up when none wait
	case got:
		return res, res.err // the real outcome was already there
	}
	return result{}, r.ctx.Err()
}

// lead commits one batch of queued requests, then hands the lead to the
// next waiter or, when none waits, gives it up. The caller holds the lead.
func (s *SQLite) lead() {
	s.mu.Lock()
	n := min(len(s.queue), s.maxBatch)
	batch := append(s.batch[:0], s.queue[:n]...)
	rest := copy(s.queue, s.queue[n:])
	clear(s.queue[rest:])
	s.queue = s.queue[:rest]
	s.mu.Unlock()

	if len(batch) > 0 {
		s.commit(batch)
	}
	clear(batch) // let the requests' buffers go
	s.batch = batch[:0]

	s.mu.Lock()
	if len(s.queue) > 0 {
		s.queue[0].done <- result{lead: true}
	} else {
		s.leading = false
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// commit writes batch in one transaction and completes its waiters; its
// checkpoint requests run after that transaction, outside any.
func (s *SQLite) commit(batch []*request) {
	live := batch[:0]
	var checkpoints []*request
	for _, r := range batch {
		// Its caller has gone: skip it rather than write what nobody waits for.
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: err}
			continue
		}
		if r.kind == opCheckpoint {
			checkpoints = append(checkpoints, r)
			continue
		}
		live = append(live, r)
	}
	if len(live) > 0 {
		s.commitTx(live)
	}
	if len(checkpoints) > 0 {
		err := s.checkpointWriter()
		for _, r := range checkpoints {
			r.done <- result{err: err}
		}
	}
}

// commitTx writes live, requests of transactions, in one transaction and
// completes their waiters.
func (s *SQLite) commitTx(live []*request) {
	start := time.Now()
	n, err := s.writeTx(live)
	d := time.Since(start)
	if err != nil && len(live) > 1 {
		// Nothing was committed. Run each request alone so that a request
		// which cannot be written (whatever the reason) fails only itself.
		s.log.Warn("persist: group commit failed, retrying its requests one by one",
			"batch", len(live), "err", err)
		for _, r := range live {
			s.commit([]*request{r})
		}
		return
	}
	for _, r := range live {
		res := r.res
		if err != nil {
			res = result{err: err}
		}
		r.done <- res
	}
	if err != nil {
		s.log.Error("persist: commit failed", "op", live[0].kind, "doc", live[0].id, "err", err)
		return
	}
	if s.commits.Add(1) == int64(s.restartFrames) {
		select {
		case s.ckptSoon <- struct{}{}:
		default:
		}
	}
	if s.onCommit != nil {
		s.onCommit(len(live), n, d)
	}
}

// The committer's statements, prepared once on the writer's connection,
// BEGIN and COMMIT too: the driver's own transactions parse them anew each
// time. None uses RETURNING: SQLite implements it with an ephemeral table
// whose memory is allocated and freed on every execution, which measured at
// about twice the cost of a SELECT plus an UPDATE computed in Go.
type stmtID int

const (
	stBegin stmtID = iota
	stCommit
	stRollback
	stDocCounts
	stSetDoc
	stAppendRow
	stCreate
	stSnapSeq
	stDelRows
	stTail
	stPutSnap
	stSetCounts
	numStmts
)

var stmtSQL = [numStmts]string{
	// IMMEDIATE takes the write lock at BEGIN, where busy_timeout applies; a
	// deferred transaction that upgrades from read to write later can fail
	// with SQLITE_BUSY that no waiting resolves.
	stBegin:     `BEGIN IMMEDIATE`,
	stCommit:    `COMMIT`,
	stRollback:  `ROLLBACK`,
	stDocCounts: `SELECT last_seq, log_len, log_bytes, updated_at FROM docs WHERE id = ?`,
	stSetDoc:    `UPDATE docs SET updated_at = ?2, last_seq = ?3, log_len = ?4, log_bytes = ?5 WHERE id = ?1`,
	stAppendRow: `INSERT INTO updates (doc_id, seq, data) VALUES (?, ?, ?)`,
	stCreate: `INSERT INTO docs (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
		ON CONFLICT (id) DO NOTHING`,
	stSnapSeq: `SELECT through_seq FROM snapshots WHERE doc_id = ?`,
	stDelRows: `DELETE FROM updates WHERE doc_id = ? AND seq <= ?`,
	stTail:    `SELECT count(*), coalesce(sum(length(data)), 0) FROM updates WHERE doc_id = ?`,
	stPutSnap: `INSERT INTO snapshots (doc_id, through_seq, data, created_at) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (doc_id) DO UPDATE SET
			through_seq = excluded.through_seq,
			data        = excluded.data,
			created_at  = excluded.created_at`,
	// Compact's: the whole row, its snapshot's size included.
	stSetCounts: `UPDATE docs SET updated_at = ?2, last_seq = ?3, log_len = ?4, log_bytes = ?5, snapshot_bytes = ?6 WHERE id = ?1`,
}

// batchTx is one group-commit transaction on the writer's driver
// connection. The committing goroutine talks to the driver directly rather
// than through database/sql: its Tx starts a goroutine per transaction to
// watch the context, and each call adds locking, argument conversion and a
// retry loop, which together cost about as much as SQLite's own work for a
// keystroke-sized append.
type batchTx struct {
	s    *SQLite
	now  int64 // the batch's time: every doc it touches gets this updated_at
	args [6]driver.NamedValue
	dest [4]driver.Value
	// touched holds the batch's states of the documents it read or wrote
	// (absent: no docs row); they become the store's once COMMIT returned.
	touched map[string]*docState
	slab    []docState // where the batch copies states (copyState)
	popped  int        // documents the batch took off the front of s.dirtyQ
	aged    bool       // the batch ages the states (see flush)
}

// bind fills b.args with vals: int64, string or []byte, what the driver
// binds as they are, or int, converted here as database/sql would.
func (b *batchTx) bind(vals ...driver.Value) []driver.NamedValue {
	args := b.args[:len(vals)]
	for i, v := range vals {
		if n, ok := v.(int); ok {
			v = int64(n)
		}
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return args
}

func (b *batchTx) exec(id stmtID, vals ...driver.Value) (driver.Result, error) {
	return b.s.wstmts[id].(driver.StmtExecContext).ExecContext(context.Background(), b.bind(vals...))
}

// queryRow runs a one-row query of integer columns and stores them into
// dest (*int64 or *int); it returns sql.ErrNoRows when there is no row.
func (b *batchTx) queryRow(id stmtID, vals []driver.Value, dest ...any) error {
	rows, err := b.s.wstmts[id].(driver.StmtQueryContext).QueryContext(context.Background(), b.bind(vals...))
	if err != nil {
		return err
	}
	defer rows.Close()
	row := b.dest[:len(rows.Columns())]
	if err := rows.Next(row); err != nil {
		if errors.Is(err, io.EOF) {
			return sql.ErrNoRows
		}
		return err
	}
	for i, d := range dest {
		v, ok := row[i].(int64)
		if !ok {
			return fmt.Errorf("column %d is %T, want int64", i, row[i])
		}
		switch d := d.(type) {
		case *int64:
			*d = v
		case *int:
			*d = int(v)
		default:
			return fmt.Errorf("column %d: cannot store into %T", i, d)
		}
	}
	return nil
}

// writeTx runs reqs in one transaction; it returns the bytes written. On
// error nothing of reqs is committed.
func (s *SQLite) writeTx(reqs []*request) (n int64, err error) {
	// The leader's scratch, reused batch after batch: a keystroke's commit
	// allocates no map and no states.
	if s.touched == nil {
		s.touched = make(map[string]*docState)
	}
	if need := len(reqs) + flushChunk; cap(s.slab) < need {
		s.slab = make([]docState, 0, need)
	}
	b := &batchTx{s: s, now: s.now().UnixNano(), touched: s.touched, slab: s.slab[:0]}
	defer clear(s.touched)
	err = s.wconn.Raw(func(any) error {
		if _, err := b.exec(stBegin); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		for _, r := range reqs {
			r.res = result{}
			var err error
			switch r.kind {
			case opAppend:
				err = b.append(r)
			case opCreate:
				err = b.create(r)
			case opCompact:
				err = b.compact(r)
			case opFlush:
				err = b.flush(r.max)
			default:
				err = fmt.Errorf("unknown request kind %d", r.kind)
			}
			if err != nil {
				_, _ = b.exec(stRollback)
				if len(reqs) == 1 {
					return err // its caller's error names it
				}
				return fmt.Errorf("%s %q: %w", r.kind, r.id, err) // which of the batch
			}
			n += int64(len(r.data))
		}
		if _, err := b.exec(stCommit); err != nil {
			// SQLite rolls a transaction back when its COMMIT fails for
			// anything but SQLITE_BUSY; make sure either way.
			_, _ = b.exec(stRollback)
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.publish(b)
	return n, nil
}

func (b *batchTx) append(r *request) error {
	st, exists, err := b.state(r.id)
	if err != nil {
		return err
	}
	if !exists {
		if _, err := b.exec(stCreate, r.id, "", b.now); err != nil {
			return fmt.Errorf("insert doc: %w", err)
		}
		st = b.created(r.id)
	}
	seq := st.lastSeq + 1
	if _, err := b.exec(stAppendRow, r.id, seq, r.data); err != nil {
		return fmt.Errorf("insert update: %w", err)
	}
	st.lastSeq = seq
	st.logLen++
	st.logBytes += int64(len(r.data))
	// Never backwards, should the wall clock step back.
	st.updatedAt = max(st.updatedAt, b.now)
	st.dirty = true
	r.res.append = AppendResult{Seq: seq, LogLen: int(st.logLen), LogBytes: st.logBytes}
	return nil
}

func (b *batchTx) create(r *request) error {
	sr, err := b.exec(stCreate, r.id, r.name, b.now)
	if err != nil {
		return err
	}
	rows, err := sr.RowsAffected()
	if err != nil {
		return err
	}
	if rows == 0 {
		r.res.err = ErrExists
		return nil
	}
	b.created(r.id)
	t := time.Unix(0, b.now).UTC()
	r.res.meta = DocMeta{ID: r.id, Name: r.name, CreatedAt: t, UpdatedAt: t}
	return nil
}

func (b *batchTx) compact(r *request) error {
	st, exists, err := b.state(r.id)
	if err != nil {
		return err
	}
	if !exists {
		r.res.err = ErrNotFound
		return nil
	}
	var prev int64
	err = b.queryRow(stSnapSeq, []driver.Value{r.id}, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if r.through < prev || r.through > st.lastSeq {
		r.res.err = fmt.Errorf("%w: through %d, snapshot at %d, last seq %d", ErrInvalidSeq, r.through, prev, st.lastSeq)
		return nil
	}
	if _, err := b.exec(stDelRows, r.id, r.through); err != nil {
		return fmt.Errorf("delete log rows: %w", err)
	}
	if _, err := b.exec(stPutSnap, r.id, r.through, r.data, b.now); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	// Recount the tail rather than subtract: the counters stay exact even if
	// an earlier bug had skewed them.
	if err := b.queryRow(stTail, []driver.Value{r.id}, &st.logLen, &st.logBytes); err != nil {
		return fmt.Errorf("count log: %w", err)
	}
	// The docs row is written anyway: bring all of it up to date.
	if _, err := b.exec(stSetCounts, r.id, st.updatedAt, st.lastSeq, st.logLen, st.logBytes, int64(len(r.data))); err != nil {
		return fmt.Errorf("update counters: %w", err)
	}
	st.dirty = false
	return nil
}
