// Package persist stores Quire's documents: for each document an append-only
// log of Yjs v1 updates plus, once the log has grown, a snapshot (the full
// state as one update) that replaces the log rows it covers.
//
// The Store interface is what the rest of Quire codes against. SQLite (WAL,
// one writer connection, group commit across documents) is the embedded
// default; Memory implements the same contract for tests and embedding.
// Neither knows anything about rooms, sockets or the CRDT: updates are opaque
// bytes here.
package persist

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a document does not exist.
var ErrNotFound = errors.New("persist: document not found")

// ErrExists is returned by CreateDoc when the document already exists.
var ErrExists = errors.New("persist: document exists")

// ErrLocked is returned by OpenSQLite when another process has the
// database open.
var ErrLocked = errors.New("persist: database in use by another process")

// ErrClosed is returned by every method of a Store that has been closed.
var ErrClosed = errors.New("persist: store closed")

// ErrInvalidSeq is returned by Compact when throughSeq is negative, beyond the
// document's last seq, or below the seq of the snapshot already stored (the
// log rows between were deleted, so a snapshot through an older seq would
// lose them).
var ErrInvalidSeq = errors.New("persist: invalid sequence number")

// errEmptyID and errEmptyUpdate reject arguments that can only be bugs of
// the caller; an empty update is not a valid Yjs update and would make every
// later load fail.
var (
	errEmptyID     = errors.New("persist: empty document id")
	errEmptyUpdate = errors.New("persist: empty update")
)

// DocMeta describes a stored document.
type DocMeta struct {
	ID        string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time // time of the last Append (CreateDoc for a doc never written)
	Bytes     int64     // bytes stored: snapshot + log
	LogLen    int       // update-log rows since the last snapshot
}

// Loaded is a document's stored state: apply Snapshot, then Updates in order.
type Loaded struct {
	Snapshot []byte   // full state as one v1 update, nil if none
	Updates  [][]byte // log rows after the snapshot, in commit order
	// LastSeq is the seq of the last row ever appended (0 if none), whether
	// it is still in Updates or already folded into Snapshot: the document
	// state that Snapshot+Updates rebuild is the state through LastSeq.
	LastSeq int64
}

// AppendResult reports where an appended update landed.
type AppendResult struct {
	Seq      int64 // seq of the appended row (per document, 1, 2, 3, ...; never reused)
	LogLen   int   // rows in the log since the last snapshot, this one included
	LogBytes int64 // their total bytes
}

// Store is where documents live. Implementations are safe for concurrent use.
//
// Writes are durable when they return nil: after a crash of the process
// (kill -9) a reopened Store holds them. When ctx is cancelled while a write
// is waiting for its commit, the write returns ctx.Err() but may still be
// committed (it may already be in the transaction being committed); callers
// that must know reload the document.
type Store interface {
	// CreateDoc creates an empty document named name; ErrExists if id exists
	// (including a document created implicitly by Append).
	CreateDoc(ctx context.Context, id, name string) (DocMeta, error)
	// GetDoc returns id's metadata; ErrNotFound if it does not exist.
	GetDoc(ctx context.Context, id string) (DocMeta, error)
	// ListDocs returns every document, newest UpdatedAt first (ties by ID).
	ListDocs(ctx context.Context) ([]DocMeta, error)
	// Load returns id's snapshot and log tail, read consistently (one read
	// transaction). A doc never written: empty Loaded, nil error.
	Load(ctx context.Context, id string) (Loaded, error)
	// Append durably commits one update to id's log (creating the doc row if
	// needed) and returns only once it is committed. Concurrent Appends from
	// any goroutines/docs are group-committed in one transaction. The store
	// keeps its own copy of update.
	Append(ctx context.Context, id string, update []byte) (AppendResult, error)
	// Compact stores snapshot as id's full state through throughSeq and
	// deletes the log rows with seq <= throughSeq, in one transaction: a
	// crash leaves either the old snapshot and every row or the new snapshot
	// and the rows after throughSeq. ErrNotFound if id does not exist,
	// ErrInvalidSeq for a throughSeq the log cannot honour.
	Compact(ctx context.Context, id string, snapshot []byte, throughSeq int64) error
	// Close commits every write already submitted, then releases the store;
	// later calls return ErrClosed. Calling Close again returns nil.
	Close() error
}
