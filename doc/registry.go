package doc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quirehq/quire/persist"
)

// Defaults of Config.
const (
	DefaultIdleTimeout  = 30 * time.Second
	DefaultTickInterval = 5 * time.Second
	DefaultCompactRows  = 1000
	DefaultCompactBytes = 4 << 20
	DefaultInbox        = 16
	DefaultMaxBatch     = 512
)

// ErrClosed is returned once the Registry is closed.
var ErrClosed = errors.New("doc: registry closed")

// ErrInvalidID is returned for a document ID that ValidID refuses.
var ErrInvalidID = errors.New("doc: invalid document id")

// ErrTooLarge is wrapped by the error of a Handle's ApplyUpdate when
// Config.CheckSize refused the update.
var ErrTooLarge = errors.New("doc: document too large")

// ErrInvalidUpdate is wrapped by the error of a Handle's ApplyUpdate when the
// update does not decode: nothing of it was applied.
var ErrInvalidUpdate = errors.New("doc: invalid update")

// Config configures a Registry. The zero value of every field but Store
// means its default.
type Config struct {
	// Store is where documents are loaded from and committed to. The
	// Registry never closes it: the caller owns it.
	Store persist.Store
	// Logger receives the rooms' logs (default: slog.Default()).
	Logger *slog.Logger
	// IdleTimeout is how long a room with no peers and no open Handle stays
	// loaded before it is unloaded.
	IdleTimeout time.Duration
	// TickInterval is how often rooms expire silent awareness states and idle
	// rooms are unloaded (default: DefaultTickInterval, or half of a shorter
	// IdleTimeout). Negative: no automatic ticks (tests call Tick).
	TickInterval time.Duration
	// CompactRows and CompactBytes: when a document's update log has this
	// many rows or bytes since its last snapshot, the room stores a new
	// snapshot of the whole state and the log rows it covers are deleted.
	CompactRows  int
	CompactBytes int64
	// Inbox is the capacity of a room's inbox. A connection whose room is
	// behind blocks on it, which is back-pressure on its socket.
	Inbox int
	// MaxBatch caps how many inbox messages a room handles in one batch.
	MaxBatch int
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// CheckSize, if set, is asked before each update is integrated whether a
	// document that stores current bytes may take an update of n more bytes
	// (limits.Config.CheckDocSize). An error refuses the update whole: a
	// peer is closed with the error's CloseCode() (or 1008), a Handle gets
	// the error wrapped in ErrTooLarge.
	CheckSize func(current, n int64) error

	// newEngine makes the document of a room (default: the crdt package).
	newEngine func() engine
}

// Registry opens a room for a document on first use, shares it among every
// connection and Handle of that document, and unloads it once it has been
// unused for IdleTimeout. It is safe for concurrent use.
type Registry struct {
	cfg    Config
	log    *slog.Logger
	nextID atomic.Uint64 // session ids, the owners of awareness states

	mu     sync.Mutex
	rooms  map[string]*room   // loaded (or loading) rooms by document id
	all    map[*room]struct{} // every room not finished yet, mapped or not
	closed bool

	stopTicker chan struct{}
	tickerDone chan struct{}
}

// NewRegistry returns a Registry for cfg. It starts a ticker goroutine unless
// cfg.TickInterval is negative; Close stops it.
func NewRegistry(cfg Config) (*Registry, error) {
	if cfg.Store == nil {
		return nil, errors.New("doc: Config.Store is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.TickInterval == 0 {
		// Unload within about 1.5 idle timeouts, however short.
		cfg.TickInterval = min(DefaultTickInterval, max(cfg.IdleTimeout/2, 10*time.Millisecond))
	}
	if cfg.CompactRows <= 0 {
		cfg.CompactRows = DefaultCompactRows
	}
	if cfg.CompactBytes <= 0 {
		cfg.CompactBytes = DefaultCompactBytes
	}
	if cfg.Inbox <= 0 {
		cfg.Inbox = DefaultInbox
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.newEngine == nil {
		cfg.newEngine = newCRDTEngine
	}
	r := &Registry{
		cfg:   cfg,
		log:   cfg.Logger,
		rooms: make(map[string]*room),
		all:   make(map[*room]struct{}),
	}
	if cfg.TickInterval > 0 {
		r.stopTicker = make(chan struct{})
		r.tickerDone = make(chan struct{})
		go r.tickLoop(cfg.TickInterval)
	}
	return r, nil
}

func (r *Registry) tickLoop(every time.Duration) {
	defer close(r.tickerDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stopTicker:
			return
		case <-t.C:
			r.Tick()
		}
	}
}

// Tick expires silent awareness states in every room and unloads the rooms
// that have been unused for IdleTimeout. The ticker goroutine calls it every
// TickInterval; with a negative TickInterval, the caller does.
func (r *Registry) Tick() {
	now := r.cfg.Now()
	var unload, tick []*room
	r.mu.Lock()
	for id, rm := range r.rooms {
		switch {
		case rm.refs > 0:
			tick = append(tick, rm) // a room nobody uses has no awareness states to expire
		case now.Sub(rm.idleSince) >= r.cfg.IdleTimeout:
			delete(r.rooms, id)
			unload = append(unload, rm)
		}
	}
	r.mu.Unlock()
	for _, rm := range tick {
		rm.tryPost(message{kind: msgTick})
	}
	for _, rm := range unload {
		// Nothing holds the room any more and it is out of the map, so only
		// its own leftover messages can be ahead of this one.
		rm.post(message{kind: msgUnload})
	}
}

// acquire returns id's room, creating it (its goroutine loads it) if it is not
// open, and counts one more user of it.
func (r *Registry) acquire(id string) (*room, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	rm := r.rooms[id]
	if rm == nil {
		rm = newRoom(r, id)
		r.rooms[id] = rm
		r.all[rm] = struct{}{}
	}
	rm.refs++
	return rm, nil
}

// release counts one user less of rm. A room that is no longer mapped (its
// load or a commit failed) is finished when its last user leaves; a mapped
// one starts its idle time.
func (r *Registry) release(rm *room) {
	r.mu.Lock()
	rm.refs--
	finish := rm.refs == 0 && r.rooms[rm.id] != rm
	if rm.refs == 0 {
		rm.idleSince = r.cfg.Now()
	}
	r.mu.Unlock()
	if finish {
		rm.post(message{kind: msgUnload})
	}
}

// unmap removes rm from the map of open rooms, so that the next user of its
// document gets a fresh room (after a failed load or commit).
func (r *Registry) unmap(rm *room) (finish bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rooms[rm.id] == rm {
		delete(r.rooms, rm.id)
	}
	return rm.refs == 0
}

// finished forgets rm once its goroutine is done with it for good.
func (r *Registry) finished(rm *room) {
	r.mu.Lock()
	delete(r.all, rm)
	r.mu.Unlock()
}

// Join adds p to the room of document id, loading the document first if it is
// not open. The room sends p sync step 1 and the awareness states once the
// document is loaded; if the load fails, p is closed with CloseInternalError.
// The Session is how the connection feeds the room; call Leave when it ends.
func (r *Registry) Join(id string, p Peer) (*Session, error) {
	rm, err := r.acquire(id)
	if err != nil {
		return nil, err
	}
	s := &Session{room: rm, id: r.nextID.Add(1), peer: p}
	if !rm.post(message{kind: msgJoin, sess: s}) {
		r.release(rm)
		return nil, ErrClosed
	}
	return s, nil
}

// Open returns a Handle on document id once it has loaded (or the load error).
// The room stays loaded until the Handle is closed.
func (r *Registry) Open(ctx context.Context, id string) (*Handle, error) {
	rm, err := r.acquire(id)
	if err != nil {
		return nil, err
	}
	h := &Handle{room: rm}
	if err := h.call(ctx, func(*room) error { return nil }); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Rooms returns the number of open rooms.
func (r *Registry) Rooms() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rooms)
}

// Live returns the number of connected peers of every open room, by document id.
func (r *Registry) Live() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.rooms))
	for id, rm := range r.rooms {
		m[id] = int(rm.npeers.Load())
	}
	return m
}

// Peers returns the number of peers connected to document id (0 if it is not
// open).
func (r *Registry) Peers(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rm := r.rooms[id]; rm != nil {
		return int(rm.npeers.Load())
	}
	return 0
}

// Close stops opening rooms, lets every room handle what its inbox already
// holds (so every update received is committed), closes the remaining peers
// with CloseGoingAway and waits for the rooms to finish, or for ctx. It does
// not close the Store.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	rooms := make([]*room, 0, len(r.all))
	for rm := range r.all {
		rooms = append(rooms, rm)
	}
	clear(r.rooms)
	r.mu.Unlock()
	if r.stopTicker != nil {
		close(r.stopTicker)
		<-r.tickerDone
	}
	// A stable order keeps logs readable; the rooms shut down concurrently,
	// each in its own goroutine.
	sort.Slice(rooms, func(i, j int) bool { return rooms[i].id < rooms[j].id })
	for _, rm := range rooms {
		if err := rm.postCtx(ctx, message{kind: msgShutdown}); err != nil && !errors.Is(err, ErrClosed) {
			return fmt.Errorf("doc: close: %w", err)
		}
	}
	for _, rm := range rooms {
		select {
		case <-rm.done:
		case <-ctx.Done():
			return fmt.Errorf("doc: close: %d rooms still busy: %w", r.busy(), ctx.Err())
		}
	}
	return nil
}

func (r *Registry) busy() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}
