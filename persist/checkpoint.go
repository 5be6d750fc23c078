package persist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Checkpoints off the commit path, and the documents' counters written
// behind the appends (docstate.go) from the same goroutine.
//
// Checkpoints off the commit path. SQLite's automatic checkpoint runs inside
// the COMMIT that crosses 1,000 WAL pages: that commit copies the pages into
// the database file and, with synchronous=NORMAL, fsyncs it, which held
// every document waiting on that group commit for milliseconds (the p99.9
// of the load benchmark, and its p99 with 1,000 rooms committing 1,000 times
// a second). So the writer's automatic checkpoint is off, and a goroutine of
// the store checkpoints on a connection of its own every checkpointEvery
// when there were commits: a PASSIVE checkpoint copies what no reader still
// needs while the writer goes on appending to the WAL.

// checkpointEvery is how often the WAL is checkpointed when it grew.
const checkpointEvery = 250 * time.Millisecond

// openCheckpointer opens the checkpoint connection and starts its goroutine.
func (s *SQLite) openCheckpointer(ctx context.Context, syncMode string) error {
	if _, err := s.wconn.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0"); err != nil {
		return fmt.Errorf("wal_autocheckpoint: %w", err)
	}
	cp, err := sql.Open("sqlite3", dsn(s.path, url.Values{
		"_busy_timeout": {fmt.Sprint(busyTimeoutMS)},
		// The checkpoint's fsync of the database file follows this.
		"_synchronous": {syncMode},
	}))
	if err != nil {
		return fmt.Errorf("checkpoint connection: %w", err)
	}
	cp.SetMaxOpenConns(1)
	cp.SetMaxIdleConns(1)
	cp.SetConnMaxLifetime(0)
	cp.SetConnMaxIdleTime(0)
	if err := cp.PingContext(ctx); err != nil {
		cp.Close()
		return fmt.Errorf("checkpoint connection: %w", err)
	}
	s.cp = cp
	s.stopCkpt = make(chan struct{})
	s.ckptDone = make(chan struct{})
	go s.checkpointLoop()
	return nil
}

func (s *SQLite) checkpointLoop() {
	defer close(s.ckptDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	lastAge := time.Now()
	for {
		select {
		case <-s.stopCkpt:
			return
		case now := <-t.C:
			// A flush with nothing to write still ages the states.
			aging := now.Sub(lastAge) >= ageEvery && s.knowsDocs()
			if s.autoFlush && (s.pendingFlush() > 0 || aging) {
				if aging {
					lastAge = now
				}
				if _, err := s.submit(context.Background(), &request{kind: opFlush, max: flushChunk}); err != nil && !errors.Is(err, ErrClosed) {
					s.log.Warn("persist: writing document counters failed", "err", err)
				}
			}
		}
		if s.commits.Swap(0) == 0 {
			continue
		}
		start := time.Now()
		var busy, frames, done int
		err := s.cp.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done)
		if err != nil {
			s.log.Warn("persist: checkpoint failed", "err", err)
			continue
		}
		s.log.Debug("persist: checkpoint", "wal_frames", frames, "copied", done, "took", time.Since(start))
	}
}

// closeCheckpointer stops the goroutine; the connection is closed with the
// others (the writer's close, last, checkpoints what is left).
func (s *SQLite) closeCheckpointer() {
	if s.stopCkpt != nil {
		close(s.stopCkpt)
		<-s.ckptDone
		s.stopCkpt = nil
	}
}
