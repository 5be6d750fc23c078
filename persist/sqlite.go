package persist

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// The cgo SQLite driver: the real SQLite, the file format every tool reads.
	_ "github.com/mattn/go-sqlite3"
)

// Defaults of SQLiteOptions.
const (
	// DefaultSynchronous is PRAGMA synchronous when SQLiteOptions leaves it
	// empty. In WAL mode NORMAL writes every commit to the WAL file (the
	// kernel's page cache) before COMMIT returns and fsyncs only at
	// checkpoints: a committed transaction survives a crash of the process
	// (kill -9), which is Quire's durability invariant (TestCrashDurability),
	// and the database is never corrupted; a power loss or kernel crash may
	// roll back the last transactions. FULL also fsyncs the WAL on every
	// commit and so survives power loss, at the price of one fsync per group
	// commit. Measured with BenchmarkAppend on the development VM (ext4 on a
	// virtio disk, 2 shared cores): a lone Append takes ~26 µs with NORMAL
	// and ~150 µs with FULL; with 64 concurrent writers group commit brings
	// FULL's throughput near NORMAL's (~33 appends per commit) but each
	// append then waits ~0.5 ms. NORMAL keeps the sub-millisecond delivery
	// target; deployments that must survive power loss choose FULL.
	DefaultSynchronous = "NORMAL"
	// DefaultMaxBatch caps how many requests one group commit carries.
	DefaultMaxBatch = 256
)

const (
	// busyTimeoutMS is how long a connection waits for a lock held by another
	// process (a backup, the sqlite3 shell) before failing with SQLITE_BUSY.
	busyTimeoutMS = 5000
	// readConns is the size of the read pool; WAL lets every one of them read
	// while the writer commits.
	readConns = 4
	// walSizeLimit truncates the WAL file back to this size after a
	// checkpoint: a burst of large updates would otherwise leave a big file.
	walSizeLimit = 64 << 20
)

// SQLiteOptions configures OpenSQLite. The zero value is the defaults.
type SQLiteOptions struct {
	// Synchronous is PRAGMA synchronous: "FULL" or "NORMAL" ("" =
	// DefaultSynchronous). Both survive a process crash; only FULL survives
	// power loss. Values that could lose commits on a process crash (OFF)
	// are refused.
	Synchronous string
	// MaxBatch caps the requests of one group commit (0 = DefaultMaxBatch).
	MaxBatch int
	// OnCommit, if not nil, is called by the committing goroutine after every
	// committed transaction with the number of requests it carried, the bytes
	// of updates and snapshots written and the time from BEGIN to the end of
	// COMMIT. It must return quickly: the next commit waits for it.
	OnCommit func(batch int, bytes int64, d time.Duration)
	// Logger receives the store's warnings (nil = slog.Default()).
	Logger *slog.Logger
}

// SQLite is the embedded Store: a SQLite database in WAL mode with one writer
// connection, on which the writers of every document take turns to
// group-commit what has queued (see submit), and a separate pool of
// read-only connections.
type SQLite struct {
	path     string
	w        *sql.DB // exactly one connection; used only by migrations and the leader of a commit
	r        *sql.DB // read pool, query_only
	log      *slog.Logger
	onCommit func(int, int64, time.Duration)
	maxBatch int

	// The writer's one connection, held for the store's life, and the
	// group commit's statements prepared on its driver connection (used
	// only inside wconn.Raw).
	wconn  *sql.Conn
	wstmts [numStmts]driver.Stmt

	// The checkpoint connection and its goroutine (see checkpoint.go), and
	// the commits since the last checkpoint.
	cp            *sql.DB
	ckptEvery     time.Duration // checkpointEvery when the store opened
	restartFrames int           // restartFrames when the store opened
	ckptSoon      chan struct{} // (1) a checkpoint is due before the tick: restartFrames commits went by
	stopCkpt      chan struct{}
	ckptDone      chan struct{}
	commits       atomic.Int64

	// The documents' states (docstate.go): written by the leader of a
	// commit, read by GetDoc and ListDocs.
	metaMu  sync.Mutex
	docs    map[string]*docState
	dirtyQ  []string // documents whose docs row lags, oldest first
	lastAge int64    // unix nanos of the last eviction pass (leader only)
	// The leader's scratch for a batch's states (writeTx).
	touched map[string]*docState
	slab    []docState
	now     func() time.Time
	// autoFlush: the checkpointer writes docs rows (backgroundFlush).
	autoFlush bool

	lock *os.File // held while the store is open (lockFile)

	// mu guards the group commit's state.
	mu      sync.Mutex
	closed  bool
	queue   []*request // submitted, not yet in a batch
	leading bool       // a goroutine holds the lead (it is committing, or about to)
	idle    sync.Cond  // signalled when the lead is given up
	batch   []*request // the leader's scratch, reused across batches
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating it and its parent directories if needed) the
// database at path and brings its schema up to date.
// Close it to flush pending writes and release it.
func OpenSQLite(path string, opts SQLiteOptions) (_ *SQLite, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("persist: open %s: %w", path, err)
		}
	}()
	syncMode := strings.ToUpper(opts.Synchronous)
	switch syncMode {
	case "":
		syncMode = DefaultSynchronous
	case "FULL", "NORMAL":
	default:
		return nil, fmt.Errorf("synchronous %q: want FULL or NORMAL", opts.Synchronous)
	}
	maxBatch := opts.MaxBatch
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if path == "" {
		return nil, errors.New("empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	lock, err := lockFile(abs + ".lock")
	if err != nil {
		return nil, err
	}

	s := &SQLite{
		path:     abs,
		log:      logger,
		onCommit: opts.OnCommit,
		maxBatch: maxBatch,
		docs:     make(map[string]*docState),

		now:       time.Now,
		autoFlush: backgroundFlush,
		lock:      lock,
	}
	s.idle.L = &s.mu
	ok := false
	defer func() {
		if !ok {
			s.closeCheckpointer()
			s.closeDBs()
		}
	}()

	// The writer. Every pragma below is set on each new connection by the
	// driver (database/sql may reopen it after an error).
	w, err := sql.Open("sqlite3", dsn(abs, url.Values{
		// WAL: a commit is one sequential append to the -wal file, and
		// readers never block the writer nor the writer the readers.
		"_journal_mode": {"WAL"},
		// See DefaultSynchronous for NORMAL vs FULL.
		"_synchronous": {syncMode},
		// Wait for a lock held by another process instead of failing at once.
		"_busy_timeout": {fmt.Sprint(busyTimeoutMS)},
		// BEGIN IMMEDIATE takes the write lock at BEGIN, where busy_timeout
		// applies; a deferred transaction that upgrades from read to write
		// later can fail with SQLITE_BUSY that no waiting resolves.
		"_txlock": {"immediate"},
		// updates and snapshots rows cannot exist without their docs row.
		"_foreign_keys": {"on"},
	}))
	if err != nil {
		return nil, err
	}
	s.w = w
	// One writer connection: SQLite allows one writer at a time anyway, and a
	// single connection makes the leaders' order the commit order.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	ctx := context.Background()
	if err := checkPragma(ctx, w, "journal_mode", "wal"); err != nil {
		return nil, err
	}
	// Not a DSN parameter of the driver: set on the writer's one connection,
	// which database/sql keeps for the store's life (no lifetime or idle
	// limit above).
	if _, err := w.ExecContext(ctx, fmt.Sprintf("PRAGMA journal_size_limit = %d", walSizeLimit)); err != nil {
		return nil, fmt.Errorf("journal_size_limit: %w", err)
	}
	ms, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, w, ms); err != nil {
		return nil, err
	}
	if res, err := w.ExecContext(ctx, repairSQL); err != nil {
		return nil, fmt.Errorf("repair document counters: %w", err)
	} else if n, _ := res.RowsAffected(); n > 0 {
		logger.Warn("persist: repaired the counters of documents written before a crash", "docs", n)
	}
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	if err := s.openCheckpointer(ctx, syncMode); err != nil {
		return nil, err
	}

	// The read pool. journal_mode is a property of the file (set above), so
	// the readers do not set it.
	r, err := sql.Open("sqlite3", dsn(abs, url.Values{
		"_busy_timeout": {fmt.Sprint(busyTimeoutMS)},
		// A read connection can never write, whatever a bug asks of it.
		"_query_only":   {"on"},
		"_foreign_keys": {"on"},
	}))
	if err != nil {
		return nil, err
	}
	s.r = r
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	if err := r.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("read pool: %w", err)
	}

	ok = true
	return s, nil
}

// dsn builds a file: URI for mattn/go-sqlite3, escaping the path so that any
// file name (spaces, '?', '#') works. No shared cache: each connection has
// its own page cache, as WAL concurrency expects.
func dsn(abs string, params url.Values) string {
	u := url.URL{Path: filepath.ToSlash(abs)}
	return "file:" + u.EscapedPath() + "?" + params.Encode()
}

// checkPragma fails unless PRAGMA name reads want: journal_mode=WAL can be
// refused silently (it stays "memory" or "delete" on some file systems).
func checkPragma(ctx context.Context, db *sql.DB, name, want string) error {
	var got string
	if err := db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&got); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("%s is %q, want %q", name, got, want)
	}
	return nil
}

func (s *SQLite) prepare(ctx context.Context) error {
	c, err := s.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	s.wconn = c
	return c.Raw(func(dc any) error {
		p, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare", dc)
		}
		for id, q := range stmtSQL {
			st, err := p.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("prepare %q: %w", firstLine(q), err)
			}
			s.wstmts[id] = st
		}
		return nil
	})
}

func firstLine(q string) string {
	line, _, _ := strings.Cut(q, "\n")
	return line
}

// closeDBs releases the statements and both pools (nil-safe: it also undoes
// a half-done OpenSQLite).
func (s *SQLite) closeDBs() error {
	var errs []error
	if s.wconn != nil {
		errs = append(errs, s.wconn.Raw(func(any) error {
			var errs []error
			for _, st := range s.wstmts {
				if st != nil {
					errs = append(errs, st.Close())
				}
			}
			return errors.Join(errs...)
		}))
		errs = append(errs, s.wconn.Close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.cp != nil {
		errs = append(errs, s.cp.Close())
	}
	if s.w != nil {
		// The last connection to close checkpoints the WAL into the database.
		errs = append(errs, s.w.Close())
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

// Path returns the absolute path of the database file.
func (s *SQLite) Path() string { return s.path }

// Close commits every write already submitted and closes the database. Later calls of any method return ErrClosed; a second
// Close returns nil.
func (s *SQLite) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// Every queued request has a waiter, and the lead passes from one to
	// the next until the queue is empty.
	for s.leading {
		s.idle.Wait()
	}
	s.mu.Unlock()
	s.closeCheckpointer()
	var ferr error
	if n := s.pendingFlush(); n > 0 {
		// Nobody leads any more and nobody can: this goroutine commits.
		r := &request{ctx: context.Background(), kind: opFlush, max: n, done: make(chan result, 1)}
		s.commit([]*request{r})
		if res := <-r.done; res.err != nil {
			ferr = fmt.Errorf("persist: close %s: %w", s.path, res.err)
		}
	}
	if err := s.closeDBs(); err != nil {
		return errors.Join(ferr, fmt.Errorf("persist: close %s: %w", s.path, err))
	}
	return ferr
}

func (s *SQLite) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// CreateDoc creates an empty document; ErrExists if id exists.
func (s *SQLite) CreateDoc(ctx context.Context, id, name string) (DocMeta, error) {
	if id == "" {
		return DocMeta{}, fmt.Errorf("persist: create: %w", errEmptyID)
	}
	res, err := s.submit(ctx, &request{kind: opCreate, id: id, name: name})
	if err != nil {
		return DocMeta{}, fmt.Errorf("persist: create %q: %w", id, err)
	}
	return res.meta, nil
}

// Append durably commits update to id's log, group-committed with every
// other write queued at the same time, and returns once COMMIT has returned.
func (s *SQLite) Append(ctx context.Context, id string, update []byte) (AppendResult, error) {
	if id == "" {
		return AppendResult{}, fmt.Errorf("persist: append: %w", errEmptyID)
	}
	if len(update) == 0 {
		return AppendResult{}, fmt.Errorf("persist: append %q: %w", id, errEmptyUpdate)
	}
	// A copy: after a cancelled wait the committer may still write the
	// update, when the caller may already reuse its buffer.
	res, err := s.submit(ctx, &request{kind: opAppend, id: id, data: append([]byte(nil), update...)})
	if err != nil {
		return AppendResult{}, fmt.Errorf("persist: append %q: %w", id, err)
	}
	return res.append, nil
}

// Compact replaces id's snapshot and the log rows through throughSeq in one
// transaction (group-committed like Append).
func (s *SQLite) Compact(ctx context.Context, id string, snapshot []byte, throughSeq int64) error {
	if id == "" {
		return fmt.Errorf("persist: compact: %w", errEmptyID)
	}
	if len(snapshot) == 0 {
		return fmt.Errorf("persist: compact %q: %w", id, errEmptyUpdate)
	}
	_, err := s.submit(ctx, &request{kind: opCompact, id: id, data: append([]byte(nil), snapshot...), through: throughSeq})
	if err != nil {
		return fmt.Errorf("persist: compact %q: %w", id, err)
	}
	return nil
}

const docColumns = `id, name, created_at, updated_at, log_bytes, snapshot_bytes, log_len`

type scanner interface{ Scan(dest ...any) error }

// scanDoc reads a docs row, with what the store knows in memory over it.
func (s *SQLite) scanDoc(sc scanner) (DocMeta, error) {
	var m DocMeta
	var created, updated, logBytes, snapBytes int64
	if err := sc.Scan(&m.ID, &m.Name, &created, &updated, &logBytes, &snapBytes, &m.LogLen); err != nil {
		return DocMeta{}, err
	}
	m.CreatedAt = time.Unix(0, created).UTC()
	m.UpdatedAt = time.Unix(0, updated).UTC()
	m.Bytes = logBytes + snapBytes
	s.overlay(&m, snapBytes)
	return m, nil
}

// GetDoc returns id's metadata; ErrNotFound if it does not exist.
func (s *SQLite) GetDoc(ctx context.Context, id string) (DocMeta, error) {
	if s.isClosed() {
		return DocMeta{}, fmt.Errorf("persist: get %q: %w", id, ErrClosed)
	}
	m, err := s.scanDoc(s.r.QueryRowContext(ctx, `SELECT `+docColumns+` FROM docs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return DocMeta{}, fmt.Errorf("persist: get %q: %w", id, err)
	}
	return m, nil
}

// ListDocs returns every document, newest UpdatedAt first.
func (s *SQLite) ListDocs(ctx context.Context) (_ []DocMeta, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("persist: list: %w", err)
		}
	}()
	if s.isClosed() {
		return nil, ErrClosed
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+docColumns+` FROM docs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	docs := []DocMeta{}
	for rows.Next() {
		m, err := s.scanDoc(rows)
		if err != nil {
			return nil, err
		}
		docs = append(docs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Sorted here: the times in memory are newer than the rows'.
	slices.SortFunc(docs, func(a, b DocMeta) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return docs, nil
}

// Load returns id's snapshot and the log rows after it, read in one read
// transaction so that a concurrent Compact is seen entirely or not at all.
func (s *SQLite) Load(ctx context.Context, id string) (_ Loaded, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("persist: load %q: %w", id, err)
		}
	}()
	if s.isClosed() {
		return Loaded{}, ErrClosed
	}
	tx, err := s.r.BeginTx(ctx, nil) // a deferred BEGIN: the read snapshot starts at the first SELECT
	if err != nil {
		return Loaded{}, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to undo

	var l Loaded
	err = tx.QueryRowContext(ctx, `SELECT last_seq FROM docs WHERE id = ?`, id).Scan(&l.LastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return Loaded{}, nil
	}
	if err != nil {
		return Loaded{}, err
	}
	var through int64
	err = tx.QueryRowContext(ctx, `SELECT through_seq, data FROM snapshots WHERE doc_id = ?`, id).Scan(&through, &l.Snapshot)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Loaded{}, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, data FROM updates WHERE doc_id = ? AND seq > ? ORDER BY seq`, id, through)
	if err != nil {
		return Loaded{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return Loaded{}, err
		}
		l.Updates = append(l.Updates, b)
		// The docs row's last_seq lags behind the log while the store
		// runs (docstate.go).
		l.LastSeq = max(l.LastSeq, seq)
	}
	if err := rows.Err(); err != nil {
		return Loaded{}, err
	}
	return l, nil
}
