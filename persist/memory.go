package persist

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Memory is a Store held in memory, with the same semantics as SQLite except
// that nothing survives the process: for tests, and for embedders that keep
// documents elsewhere. Every write is "committed" when it returns.
type Memory struct {
	mu     sync.Mutex
	closed bool
	docs   map[string]*memDoc
}

type memDoc struct {
	meta     DocMeta // Bytes and LogLen are derived on read
	lastSeq  int64
	snapshot []byte
	through  int64
	log      [][]byte // rows after the snapshot; log[i] has seq through+1+i
	logBytes int64
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	return &Memory{docs: make(map[string]*memDoc)}
}

// now is the store's clock: UTC and without a monotonic reading, like the
// times that come back from SQLite.
func now() time.Time { return time.Now().UTC().Round(0) }

func (d *memDoc) metaCopy() DocMeta {
	m := d.meta
	m.Bytes = int64(len(d.snapshot)) + d.logBytes
	m.LogLen = len(d.log)
	return m
}

// CreateDoc creates an empty document; ErrExists if id exists.
func (m *Memory) CreateDoc(ctx context.Context, id, name string) (DocMeta, error) {
	if id == "" {
		return DocMeta{}, fmt.Errorf("persist: create: %w", errEmptyID)
	}
	if err := ctx.Err(); err != nil {
		return DocMeta{}, fmt.Errorf("persist: create %q: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return DocMeta{}, fmt.Errorf("persist: create %q: %w", id, ErrClosed)
	}
	if _, ok := m.docs[id]; ok {
		return DocMeta{}, fmt.Errorf("persist: create %q: %w", id, ErrExists)
	}
	t := now()
	d := &memDoc{meta: DocMeta{ID: id, Name: name, CreatedAt: t, UpdatedAt: t}}
	m.docs[id] = d
	return d.metaCopy(), nil
}

// GetDoc returns id's metadata; ErrNotFound if it does not exist.
func (m *Memory) GetDoc(ctx context.Context, id string) (DocMeta, error) {
	if err := ctx.Err(); err != nil {
		return DocMeta{}, fmt.Errorf("persist: get %q: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return DocMeta{}, fmt.Errorf("persist: get %q: %w", id, ErrClosed)
	}
	d, ok := m.docs[id]
	if !ok {
		return DocMeta{}, fmt.Errorf("persist: get %q: %w", id, ErrNotFound)
	}
	return d.metaCopy(), nil
}

// ListDocs returns every document, newest UpdatedAt first (ties by ID).
func (m *Memory) ListDocs(ctx context.Context) ([]DocMeta, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("persist: list: %w", err)
	}
	m.mu.Lock()
	docs := make([]DocMeta, 0, len(m.docs))
	closed := m.closed
	if !closed {
		for _, d := range m.docs {
			docs = append(docs, d.metaCopy())
		}
	}
	m.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("persist: list: %w", ErrClosed)
	}
	sort.Slice(docs, func(i, j int) bool {
		if !docs[i].UpdatedAt.Equal(docs[j].UpdatedAt) {
			return docs[i].UpdatedAt.After(docs[j].UpdatedAt)
		}
		return docs[i].ID < docs[j].ID
	})
	return docs, nil
}

// Load returns copies of id's snapshot and log tail.
func (m *Memory) Load(ctx context.Context, id string) (Loaded, error) {
	if err := ctx.Err(); err != nil {
		return Loaded{}, fmt.Errorf("persist: load %q: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Loaded{}, fmt.Errorf("persist: load %q: %w", id, ErrClosed)
	}
	d, ok := m.docs[id]
	if !ok {
		return Loaded{}, nil
	}
	l := Loaded{LastSeq: d.lastSeq}
	if d.snapshot != nil {
		l.Snapshot = append([]byte(nil), d.snapshot...)
	}
	for _, u := range d.log {
		l.Updates = append(l.Updates, append([]byte(nil), u...))
	}
	return l, nil
}

// Append adds a copy of update to id's log, creating the document if needed.
func (m *Memory) Append(ctx context.Context, id string, update []byte) (AppendResult, error) {
	if id == "" {
		return AppendResult{}, fmt.Errorf("persist: append: %w", errEmptyID)
	}
	if len(update) == 0 {
		return AppendResult{}, fmt.Errorf("persist: append %q: %w", id, errEmptyUpdate)
	}
	if err := ctx.Err(); err != nil {
		return AppendResult{}, fmt.Errorf("persist: append %q: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return AppendResult{}, fmt.Errorf("persist: append %q: %w", id, ErrClosed)
	}
	t := now()
	d, ok := m.docs[id]
	if !ok {
		d = &memDoc{meta: DocMeta{ID: id, CreatedAt: t, UpdatedAt: t}}
		m.docs[id] = d
	}
	if t.After(d.meta.UpdatedAt) {
		d.meta.UpdatedAt = t
	}
	d.lastSeq++
	d.log = append(d.log, append([]byte(nil), update...))
	d.logBytes += int64(len(update))
	return AppendResult{Seq: d.lastSeq, LogLen: len(d.log), LogBytes: d.logBytes}, nil
}

// Compact replaces id's snapshot and drops the log rows through throughSeq.
func (m *Memory) Compact(ctx context.Context, id string, snapshot []byte, throughSeq int64) error {
	if id == "" {
		return fmt.Errorf("persist: compact: %w", errEmptyID)
	}
	if len(snapshot) == 0 {
		return fmt.Errorf("persist: compact %q: %w", id, errEmptyUpdate)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("persist: compact %q: %w", id, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("persist: compact %q: %w", id, ErrClosed)
	}
	d, ok := m.docs[id]
	if !ok {
		return fmt.Errorf("persist: compact %q: %w", id, ErrNotFound)
	}
	if throughSeq < d.through || throughSeq > d.lastSeq {
		return fmt.Errorf("persist: compact %q: %w: through %d, snapshot at %d, last seq %d",
			id, ErrInvalidSeq, throughSeq, d.through, d.lastSeq)
	}
	drop := int(throughSeq - d.through)
	for _, u := range d.log[:drop] {
		d.logBytes -= int64(len(u))
	}
	d.log = append([][]byte(nil), d.log[drop:]...)
	d.snapshot = append([]byte(nil), snapshot...)
	d.through = throughSeq
	return nil
}

// Close releases the documents; later calls return ErrClosed and a second
// Close returns nil.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.docs = nil
	return nil
}
