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

// writeTx runs reqs in one transaction; it returns the bytes written. On
// error nothing of reqs is committed.
func (s *SQLite) writeTx(reqs []*request) (n int64, err error) {
	// Not a request's ctx: the batch belongs to every waiter, and one of
	// them leaving must not abort the others' commit.
	ctx := context.Background()
	now := time.Now().UnixNano()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // ErrTxDone after a failed Commit, which rolled back itself
		}
	}()
	for _, r := range reqs {
		r.res = result{}
		switch r.kind {
		case opAppend:
			err = s.execAppend(ctx, tx, r, now)
		case opCreate:
			err = s.execCreate(ctx, tx, r, now)
		case opCompact:
			err = s.execCompact(ctx, tx, r, now)
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

func (s *SQLite) execAppend(ctx context.Context, tx *sql.Tx, r *request, now int64) error {
	var res AppendResult
	if err := tx.StmtContext(ctx, s.stAppendDoc).QueryRowContext(ctx, r.id, now, len(r.data)).
		Scan(&res.Seq, &res.LogLen, &res.LogBytes); err != nil {
		return fmt.Errorf("docs row: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.stAppendRow).ExecContext(ctx, r.id, res.Seq, r.data); err != nil {
		return fmt.Errorf("insert update: %w", err)
	}
	r.res.append = res
	return nil
}

func (s *SQLite) execCreate(ctx context.Context, tx *sql.Tx, r *request, now int64) error {
	sr, err := tx.StmtContext(ctx, s.stCreate).ExecContext(ctx, r.id, r.name, now)
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
	t := time.Unix(0, now).UTC()
	r.res.meta = DocMeta{ID: r.id, Name: r.name, CreatedAt: t, UpdatedAt: t}
	return nil
}

func (s *SQLite) execCompact(ctx context.Context, tx *sql.Tx, r *request, now int64) error {
	var last int64
	err := tx.StmtContext(ctx, s.stDocSeq).QueryRowContext(ctx, r.id).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		r.res.err = ErrNotFound
		return nil
	}
	if err != nil {
		return fmt.Errorf("read doc: %w", err)
	}
	var prev int64
	err = tx.StmtContext(ctx, s.stSnapSeq).QueryRowContext(ctx, r.id).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read snapshot: %w", err)
	}
	if r.through < prev || r.through > last {
		r.res.err = fmt.Errorf("%w: through %d, snapshot at %d, last seq %d", ErrInvalidSeq, r.through, prev, last)
		return nil
	}
	if _, err := tx.StmtContext(ctx, s.stDelRows).ExecContext(ctx, r.id, r.through); err != nil {
		return fmt.Errorf("delete log rows: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.stPutSnap).ExecContext(ctx, r.id, r.through, r.data, now); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	// Recount the tail rather than subtract: the counters stay exact even if
	// an earlier bug had skewed them.
	var logLen, logBytes int64
	if err := tx.StmtContext(ctx, s.stTail).QueryRowContext(ctx, r.id).Scan(&logLen, &logBytes); err != nil {
		return fmt.Errorf("count log: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.stSetCounts).ExecContext(ctx, r.id, logLen, logBytes, len(r.data)); err != nil {
		return fmt.Errorf("update counters: %w", err)
	}
	return nil
}
