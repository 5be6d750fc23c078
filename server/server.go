// Package server is Quire's transport: the HTTP API, the WebSocket endpoint
// that speaks y-protocols to stock y-websocket providers, metrics, and the
// editor pages. It holds no document state: rooms (package doc) do.
//
// A *Server is an http.Handler, so another Go program can mount it under its
// own router and path prefix with the store and limits it chooses:
//
//	srv, err := server.New(server.Config{Store: persist.NewMemory()})
//	mux.Handle("/collab/", http.StripPrefix("/collab", srv))
//	...
//	srv.Close(ctx) // closes the WebSockets with 1001 and flushes the rooms
//
// and reach the documents from Go through srv.Docs() without any connection.
//
// Routes (relative to where the handler is mounted):
//
//	GET  /healthz                      200 {"status":"ok"}
//	GET  /api/docs                     JSON array of documents, with live peer counts
//	POST /api/docs                     create a document with a new UUID ({"name":...} optional): 201 + JSON
//	GET  /api/docs/{id}                JSON metadata
//	GET  /api/docs/{id}/text?name=R    text/plain of root Y.Text R (default "content")
//	GET  /api/docs/{id}/update         the whole document, Yjs update v1 (application/octet-stream)
//	POST /api/docs/{id}/update         apply a Yjs update v1: 200, or 400 with the reason
//	GET  /metrics                      Prometheus text
//	GET  /ws/{id}                      WebSocket (y-protocols); bad ids are refused with 400 before the upgrade
//	GET  /, /d/{id}, /assets/*         the editor (unless Config.DisableEditor)
//
// Errors are JSON: {"error": "..."} with the HTTP status.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/quirehq/quire/auth"
	"github.com/quirehq/quire/doc"
	"github.com/quirehq/quire/editor"
	"github.com/quirehq/quire/limits"
	"github.com/quirehq/quire/persist"
)

// Defaults of Config.
const (
	// DefaultReadLimit is the largest WebSocket message accepted: a full sync
	// of a large document must fit, a 20 MB frame must not.
	DefaultReadLimit = 16 << 20
	// DefaultOutboxMessages and DefaultOutboxBytes bound what waits to be
	// written to one connection; past either the peer is dropped (1013).
	DefaultOutboxMessages = 1024
	DefaultOutboxBytes    = 32 << 20
	// DefaultWriteTimeout bounds the writing of what one connection has
	// queued; a peer that takes longer is closed.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultPingInterval: a connection that sent nothing for this long is
	// pinged, and closed when the pong does not come within DefaultPongTimeout.
	DefaultPingInterval = 30 * time.Second
	DefaultPongTimeout  = 15 * time.Second
)

// Config configures a Server. Only Store is required.
type Config struct {
	// Store holds the documents. The Server never closes it: the caller
	// owns it (and closes it after Server.Close).
	Store persist.Store
	// Logger receives the server's and the rooms' logs (default slog.Default()).
	Logger *slog.Logger
	// Metrics to record into (default: fresh ones, see NewMetrics). One
	// Metrics serves one Server.
	Metrics *Metrics

	// RoomIdle is how long a document stays loaded after its last peer left
	// (default doc.DefaultIdleTimeout).
	RoomIdle time.Duration
	// CompactRows and CompactBytes: a document whose update log grows past
	// either gets a new snapshot (defaults doc.DefaultCompactRows/Bytes).
	CompactRows  int
	CompactBytes int64

	// ReadLimit is the largest WebSocket message (and POSTed update) accepted,
	// in bytes; a larger WebSocket message closes the connection with 1009.
	ReadLimit int64
	// OutboxMessages and OutboxBytes bound one connection's queue of
	// messages not yet written.
	OutboxMessages int
	OutboxBytes    int64
	// WriteTimeout bounds the writing of one batch of queued messages.
	WriteTimeout time.Duration
	// PingInterval and PongTimeout: keep-alive of quiet connections.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// OriginPatterns are the browser origins (host patterns, see
	// websocket.AcceptOptions) allowed to open WebSockets besides the
	// server's own. Requests without an Origin (non-browser clients) pass.
	OriginPatterns []string
	// ReadLoops is how WebSocket reads are done. 0 (the default): on Linux,
	// one epoll read loop per processor reads every socket when it becomes
	// readable, and an idle connection costs no goroutine (see poller);
	// elsewhere, and when it is negative, each connection has a reader
	// goroutine. A positive value sets the number of loops.
	ReadLoops int
	// DisableEditor leaves out the editor pages (GET /, /d/{id}, /assets/*),
	// e.g. for an embedder mounting only the sync service.
	DisableEditor bool

	// Gate, when set, decides before every WebSocket upgrade and HTTP API
	// request who may do what (tokens, allowed origins, connections per
	// address, the penalty box: see package auth), and its Guard applies
	// Limits to every message of a connection (rate, read-only access, a
	// token sent in an auth message). nil: no checks, every peer may read and
	// write every document; browsers of other origins are still refused by
	// the WebSocket library unless OriginPatterns allows them.
	Gate *auth.Gate
	// Limits are the per-connection limits the Gate's Guard enforces, and
	// the document size limit (MaxDocBytes) that every room enforces.
	Limits limits.Config
}

// Server serves Quire over HTTP and WebSockets. Create it with New; it is
// safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	reg     *doc.Registry
	metrics *Metrics
	echo    *echo.Echo

	closing atomic.Bool
	nextID  atomic.Uint64

	mu     sync.Mutex
	conns  map[*wsConn]struct{}
	connWG sync.WaitGroup // readers and closers of connections

	stopPing chan struct{}
	pingDone chan struct{}

	poller *poller // nil: a reader goroutine per connection
}

// New returns a Server for cfg. It starts its background goroutines (the
// keep-alive pinger and, on Linux, the read loops); Close stops them.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("server: Config.Store is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultReadLimit
	}
	if cfg.OutboxMessages <= 0 {
		cfg.OutboxMessages = DefaultOutboxMessages
	}
	if cfg.OutboxBytes <= 0 {
		cfg.OutboxBytes = DefaultOutboxBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	dcfg := doc.Config{
		Store:        cfg.Store,
		Logger:       cfg.Logger,
		IdleTimeout:  cfg.RoomIdle,
		CompactRows:  cfg.CompactRows,
		CompactBytes: cfg.CompactBytes,
	}
	if cfg.Limits.MaxDocBytes > 0 {
		dcfg.CheckSize = cfg.Limits.CheckDocSize
	}
	reg, err := doc.NewRegistry(dcfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		reg:      reg,
		metrics:  cfg.Metrics,
		conns:    make(map[*wsConn]struct{}),
		stopPing: make(chan struct{}),
		pingDone: make(chan struct{}),
	}
	if slices.Contains(cfg.Metrics.set.ListMetricNames(), roomsGauge) {
		reg.Close(context.Background())
		return nil, errors.New("server: metrics already used by another Server")
	}
	cfg.Metrics.set.NewGauge(roomsGauge, func() float64 { return float64(reg.Rooms()) })
	if n := cfg.ReadLoops; n >= 0 {
		if n == 0 {
			n = defaultPollLoops()
		}
		if n > 0 {
			p, err := newPoller(n)
			if err != nil {
				s.log.Warn("read loops unavailable: a reader goroutine per connection", "err", err)
			}
			s.poller = p
		}
	}
	s.echo = s.routes()
	go s.pingLoop()
	return s, nil
}

// roomsGauge is the metric of the documents a Server has loaded.
const roomsGauge = `quire_rooms`

// Docs is the registry of open documents: Go code opens a document there
// (Open) to read its text or apply an update without a connection.
func (s *Server) Docs() *doc.Registry { return s.reg }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// ServeHTTP serves the routes listed in the package documentation.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.echo.ServeHTTP(w, r)
}

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.httpError
	e.Use(middleware.RequestID())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus:    true,
		LogMethod:    true,
		LogURI:       true,
		LogLatency:   true,
		LogRemoteIP:  true,
		LogRequestID: true,
		LogError:     true,
		HandleError:  true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			switch {
			case v.Status >= 500:
				level = slog.LevelError
			case v.URI == "/healthz" || v.URI == "/metrics":
				level = slog.LevelDebug // scraped every few seconds
			}
			attrs := []slog.Attr{
				slog.String("method", v.Method),
				slog.String("uri", redactURI(v.URI)),
				slog.Int("status", v.Status),
				slog.Duration("latency", v.Latency),
				slog.String("remote", v.RemoteIP),
				slog.String("request_id", v.RequestID),
			}
			if v.Error != nil {
				attrs = append(attrs, slog.String("err", v.Error.Error()))
			}
			s.log.LogAttrs(context.Background(), level, "http request", attrs...)
			return nil
		},
	}))
	e.Use(middleware.Recover())

	e.GET("/healthz", s.healthz)
	e.GET("/metrics", echo.WrapHandler(s.metrics.handler()))
	e.GET("/api/docs", s.listDocs)
	e.POST("/api/docs", s.createDoc)
	e.GET("/api/docs/:id", s.getDoc)
	e.GET("/api/docs/:id/text", s.getText)
	e.GET("/api/docs/:id/update", s.getUpdate)
	e.POST("/api/docs/:id/update", s.postUpdate)
	e.GET("/ws/*", s.upgrade)
	if !s.cfg.DisableEditor {
		pages := echo.WrapHandler(editor.Handler())
		for _, p := range []string{"/", "/d/*", "/assets/*"} {
			e.Match([]string{http.MethodGet, http.MethodHead}, p, pages)
		}
	}
	return e
}

// Close shuts the server down: new upgrades are refused with 503, every
// WebSocket is closed with 1001 (the clients reconnect elsewhere or later),
// every room commits what it has received and unloads, and Close waits for
// all of it or ctx. It does not close the Store and does not stop the
// http.Server the handler is mounted in (its owner calls Shutdown first).
func (s *Server) Close(ctx context.Context) error {
	if !s.closing.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stopPing)
	<-s.pingDone
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close(doc.CloseGoingAway, "server shutting down")
	}
	err := s.reg.Close(ctx)
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		// Every connection has finished: no loop has work left.
		if s.poller != nil {
			s.poller.stop()
		}
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("server: close: connections still open: %w", ctx.Err())
		}
	}
	return err
}

// track registers a new connection; false once the server is closing.
func (s *Server) track(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1) // its reader
	s.metrics.connections.Inc()
	s.metrics.connectionsTotal.Inc()
	return true
}

func (s *Server) untrack(c *wsConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.metrics.connections.Dec()
}

// pingLoop pings the connections that have been quiet for PingInterval, a
// quarter of them at a time so that pings (and their goroutines) are spread
// out; a connection whose pong does not come within PongTimeout is closed.
func (s *Server) pingLoop() {
	defer close(s.pingDone)
	t := time.NewTicker(s.cfg.PingInterval / 4)
	defer t.Stop()
	for {
		select {
		case <-s.stopPing:
			return
		case <-t.C:
		}
		now := time.Now().UnixNano()
		quiet := int64(s.cfg.PingInterval)
		s.mu.Lock()
		for c := range s.conns {
			if c.raw != nil { // read by a loop
				c.keepalive(now, quiet, int64(s.cfg.PongTimeout))
				continue
			}
			if now-c.lastRead.Load() >= quiet && c.pinging.CompareAndSwap(false, true) {
				s.connWG.Add(1)
				go c.ping()
			}
		}
		s.mu.Unlock()
	}
}
