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
//
// Copying is not enough to keep the WAL small. SQLite starts the log again
// from the top only in a write transaction that begins when every frame of
// it has been copied; while commits never pause (W2's 1,000 rooms), one
// lands during every background checkpoint, no transaction ever begins on a
// fully copied log, and the file grew by every commit's pages: 100 MB in
// 20 s of W2. So when a checkpoint finds the log past restartFrames, it asks
// the writer, between two commits, to copy the few frames written since:
// the next commit then restarts the log. That pause is one short checkpoint
// (the frames written during the background one, two fsyncs), once per
// restartFrames of WAL. Every commit adds at least one frame, so the
// checkpointer does not wait for its tick once restartFrames commits went
// by: however fast the writes, the log stays within a few restartFrames.

// checkpointEvery is how often the WAL is checkpointed when it grew.
var checkpointEvery = 250 * time.Millisecond

// restartFrames is the length of the WAL, in pages, past which the writer
// copies its tail itself so that the log restarts (16 MiB of 4 KiB pages).
var restartFrames = 4096

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
	s.ckptEvery, s.restartFrames = checkpointEvery, restartFrames
	s.ckptSoon = make(chan struct{}, 1)
	s.stopCkpt = make(chan struct{})
	s.ckptDone = make(chan struct{})
	go s.checkpointLoop()
	return nil
}

func (s *SQLite) checkpointLoop() {
	defer close(s.ckptDone)
	t := time.NewTicker(s.ckptEvery)
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
		case <-s.ckptSoon:
		}
		if s.commits.Swap(0) == 0 {
			continue
		}
		frames, done, err := s.walCheckpoint(s.cp, "persist: checkpoint")
		if err != nil {
			s.log.Warn("persist: checkpoint failed", "err", err)
			continue
		}
		// done < frames: a reader still needs the older pages, and no
		// checkpoint could restart the log now.
		if frames >= s.restartFrames && done == frames {
			if _, err := s.submit(context.Background(), &request{kind: opCheckpoint}); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Warn("persist: checkpoint on the writer failed", "err", err)
			}
		}
	}
}

// checkpointWriter copies into the database file, on the writer's
// connection and between two commits, the frames of the WAL that the
// background checkpoint left, so that the next commit restarts the log.
// PASSIVE: it waits for no reader; one that holds old pages keeps the log
// as it is until a later try.
func (s *SQLite) checkpointWriter() error {
	if _, _, err := s.walCheckpoint(s.wconn, "persist: checkpoint on the writer"); err != nil {
		return fmt.Errorf("checkpoint on the writer: %w", err)
	}
	return nil
}

// walCheckpoint runs a PASSIVE checkpoint on conn (the checkpoint
// connection or the writer's) and returns the frames the WAL holds and how
// many of them are now copied; it logs them at debug level under msg.
func (s *SQLite) walCheckpoint(conn interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, msg string) (frames, done int, err error) {
	start := time.Now()
	var busy int
	if err := conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done); err != nil {
		return 0, 0, err
	}
	s.log.Debug(msg, "wal_frames", frames, "copied", done, "took", time.Since(start))
	return frames, done, nil
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
