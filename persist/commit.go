package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Group commit. Every write (Append, Compact, CreateDoc) is a request on
// s.reqs. One committer goroutine takes the first request, drains whatever
// else is queued (up to MaxBatch), runs them all in ONE transaction on the
// single writer connection and, only after COMMIT has returned, completes
// each waiter. While a commit is on disk the next requests queue up, so the
// batch grows with the load and the cost of a commit (an fsync with
// synchronous=FULL) is shared by every document that wrote meanwhile,
// without any timer or artificial delay.

type opKind uint8

const (
	opAppend opKind = iota + 1
	opCreate
	opCompact
)

func (k opKind) String() string {
	switch k {
	case opAppend:
		return "append"
	case opCreate:
		return "create"
	case opCompact:
		return "compact"
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
	res     result
	// done is buffered (1) so the committer never blocks on a waiter that
	// gave up.
	done chan result
}

// result is a request's outcome. err is either the request's own error
// (ErrExists, ErrNotFound, ErrInvalidSeq: the rest of the batch commits) or
// the batch's (nothing of it was committed).
type result struct {
	append AppendResult
	meta   DocMeta
	err    error
}

// submit queues r and waits for its result. When ctx ends while r waits in
// the transaction being committed, submit returns ctx.Err() and r may still
// be committed; a request the committer has not started yet is dropped.
func (s *SQLite) submit(ctx context.Context, r *request) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	r.ctx = ctx
	r.done = make(chan result, 1)

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return result{}, ErrClosed
	}
	select {
	case s.reqs <- r:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return result{}, ctx.Err()
	}

	select {
	case res := <-r.done:
		return res, res.err
	case <-ctx.Done():
		// Prefer the real outcome when it is already there.
		select {
		case res := <-r.done:
			return res, res.err
		default:
			return result{}, ctx.Err()
		}
	}
}

// run is the committer goroutine. It exits when Close has closed s.reqs and
// every request queued before that has been committed.
func (s *SQLite) run() {
	defer close(s.done)
	batch := make([]*request, 0, s.maxBatch)
	for r := range s.reqs {
		batch = append(batch[:0], r)
	fill:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		s.commit(batch)
		clear(batch) // let the requests' buffers go
	}
}

// commit writes batch in one transaction and completes its waiters.
func (s *SQLite) commit(batch []*request) {
	live := batch[:0]
	for _, r := range batch {
		// Its caller has gone: skip it rather than write what nobody waits for.
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
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
	if s.onCommit != nil {
		s.onCommit(len(live), n, d)
	}
}

// The committer's statements. None uses RETURNING: SQLite implements it
// with an ephemeral table whose memory is allocated and freed on every
// execution, which measured at about twice the cost of a SELECT plus an
// UPDATE computed in Go.
type stmtID int

const (
	stDocCounts stmtID = iota
	stNewDoc
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
	stDocCounts: `SELECT last_seq, log_len, log_bytes, updated_at FROM docs WHERE id = ?`,
	// The docs row of a document's first Append.
	stNewDoc: `INSERT INTO docs (id, created_at, updated_at, last_seq, log_len, log_bytes)
		VALUES (?1, ?2, ?2, 1, 1, ?3)`,
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
	stSetCounts: `UPDATE docs SET log_len = ?2, log_bytes = ?3, snapshot_bytes = ?4 WHERE id = ?1`,
}

// batchTx is one group-commit transaction and its statements, bound to it
// on first use (once per batch, not once per request).
type batchTx struct {
	ctx   context.Context
	tx    *sql.Tx
	s     *SQLite
	now   int64 // the batch's time: every doc it touches gets this updated_at
	stmts [numStmts]*sql.Stmt
}

func (b *batchTx) stmt(id stmtID) *sql.Stmt {
	if b.stmts[id] == nil {
		b.stmts[id] = b.tx.StmtContext(b.ctx, b.s.stmts[id])
	}
	return b.stmts[id]
}

func (b *batchTx) exec(id stmtID, args ...any) (sql.Result, error) {
	return b.stmt(id).ExecContext(b.ctx, args...)
}

func (b *batchTx) queryRow(id stmtID, args ...any) *sql.Row {
	return b.stmt(id).QueryRowContext(b.ctx, args...)
}

// writeTx runs reqs in one transaction; it returns the bytes written. On
// error nothing of reqs is committed.
func (s *SQLite) writeTx(reqs []*request) (n int64, err error) {
	// Not a request's ctx: the batch belongs to every waiter, and one of
	// them leaving must not abort the others' commit.
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // ErrTxDone after a failed Commit, which rolled back itself
		}
	}()
	b := &batchTx{ctx: ctx, tx: tx, s: s, now: time.Now().UnixNano()}
	for _, r := range reqs {
		r.res = result{}
		switch r.kind {
		case opAppend:
			err = b.append(r)
		case opCreate:
			err = b.create(r)
		case opCompact:
			err = b.compact(r)
		default:
			err = fmt.Errorf("unknown request kind %d", r.kind)
		}
		if err != nil {
			return 0, fmt.Errorf("%s %q: %w", r.kind, r.id, err)
		}
		n += int64(len(r.data))
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return n, nil
}

func (b *batchTx) append(r *request) error {
	var res AppendResult
	var updated int64
	err := b.queryRow(stDocCounts, r.id).Scan(&res.Seq, &res.LogLen, &res.LogBytes, &updated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res = AppendResult{Seq: 1, LogLen: 1, LogBytes: int64(len(r.data))}
		if _, err := b.exec(stNewDoc, r.id, b.now, res.LogBytes); err != nil {
			return fmt.Errorf("insert doc: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read doc: %w", err)
	default:
		res.Seq++
		res.LogLen++
		res.LogBytes += int64(len(r.data))
		// Never backwards, should the wall clock step back.
		updated = max(updated, b.now)
		if _, err := b.exec(stSetDoc, r.id, updated, res.Seq, res.LogLen, res.LogBytes); err != nil {
			return fmt.Errorf("update doc: %w", err)
		}
	}
	if _, err := b.exec(stAppendRow, r.id, res.Seq, r.data); err != nil {
		return fmt.Errorf("insert update: %w", err)
	}
	r.res.append = res
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
	t := time.Unix(0, b.now).UTC()
	r.res.meta = DocMeta{ID: r.id, Name: r.name, CreatedAt: t, UpdatedAt: t}
	return nil
}

func (b *batchTx) compact(r *request) error {
	var last, updated int64
	var logLen, logBytes int64
	err := b.queryRow(stDocCounts, r.id).Scan(&last, &logLen, &logBytes, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		r.res.err = ErrNotFound
		return nil
	}
	if err != nil {
		return fmt.Errorf("read doc: %w", err)
	}
	var prev int64
	err = b.queryRow(stSnapSeq, r.id).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if r.through < prev || r.through > last {
		r.res.err = fmt.Errorf("%w: through %d, snapshot at %d, last seq %d", ErrInvalidSeq, r.through, prev, last)
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
	if err := b.queryRow(stTail, r.id).Scan(&logLen, &logBytes); err != nil {
		return fmt.Errorf("count log: %w", err)
	}
	if _, err := b.exec(stSetCounts, r.id, logLen, logBytes, len(r.data)); err != nil {
		return fmt.Errorf("update counters: %w", err)
	}
	return nil
}
