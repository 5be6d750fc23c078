package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quirehq/quire/auth"
	"github.com/quirehq/quire/doc"
	"github.com/quirehq/quire/limits"
	"github.com/quirehq/quire/persist"
	"github.com/quirehq/quire/server"
)

// serveConfig is what `quire serve` is told by flags and environment.
type serveConfig struct {
	listen          string
	db              string
	roomIdle        time.Duration
	limits          limits.Config // --read-limit is --max-message-bytes
	access          auth.Flags
	synchronous     string
	compactRows     int
	compactBytes    int64
	shutdownTimeout time.Duration
	logLevel        string
	logFormat       string
	pprof           string
	memoryLimit     int64
	gcPercent       int
	readLoops       int64
}

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// parseServe reads the flags of `quire serve`. Every flag has an environment
// variable (QUIRE_ + its name in upper case, dashes as underscores) that sets
// its default; the flag wins.
func parseServe(args []string, stderr io.Writer) (serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c serveConfig
	var errs []error
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		env := envName(name)
		if v, ok := os.LookupEnv(env); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("$%s: %w", env, err))
			} else {
				def = d
			}
		}
		fs.DurationVar(p, name, def, usage+" ($"+env+")")
	}
	num := func(p *int64, name string, def int64, usage string) {
		env := envName(name)
		if v, ok := os.LookupEnv(env); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("$%s: %w", env, err))
			} else {
				def = n
			}
		}
		fs.Int64Var(p, name, def, usage+" ($"+env+")")
	}
	str := func(p *string, name, def, usage string) {
		env := envName(name)
		fs.StringVar(p, name, envOr(env, def), usage+" ($"+env+")")
	}
	str(&c.listen, "listen", "127.0.0.1:8080", "address to listen on, HOST:PORT (port 0: any free port)")
	str(&c.db, "db", "./data/quire.db", "SQLite database file (created with its directory if missing)")
	dur(&c.roomIdle, "room-idle", doc.DefaultIdleTimeout, "unload a document this long after its last peer left")
	c.limits = limits.DefaultConfig()
	c.limits.MaxMessageBytes = server.DefaultReadLimit
	num(&c.limits.MaxMessageBytes, "read-limit", c.limits.MaxMessageBytes, "largest WebSocket message or posted update, in bytes (same as --max-message-bytes)")
	c.limits.RegisterFlags(fs)
	c.access.RegisterFlags(fs)
	str(&c.synchronous, "sync", persist.DefaultSynchronous, "SQLite synchronous mode: NORMAL survives a crash of the process, FULL also a power loss")
	var rows int64
	num(&rows, "compact-rows", doc.DefaultCompactRows, "snapshot a document when its update log has this many rows")
	num(&c.compactBytes, "compact-bytes", doc.DefaultCompactBytes, "snapshot a document when its update log has this many bytes")
	dur(&c.shutdownTimeout, "shutdown-timeout", 20*time.Second, "how long SIGTERM waits for connections and rooms to finish")
	str(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	str(&c.logFormat, "log-format", "text", "text or json")
	str(&c.pprof, "pprof", "", "serve net/http/pprof on this address, for profiling (off when empty; never expose it)")
	num(&c.readLoops, "read-loops", 0, "WebSocket reads: 0 = one epoll loop per CPU on Linux (no goroutine per idle connection), N = N loops, -1 = a reader goroutine per connection")
	num(&c.memoryLimit, "memory-limit", 0, "soft limit of the Go runtime's memory in bytes, as GOMEMLIMIT: the GC works harder near it (0: none)")
	gc := fs.String("gc-percent", envOr(envName("gc-percent"), envOr("GOGC", strconv.Itoa(defaultGCPercent))),
		"heap growth between collections in percent, as GOGC, or off (default "+strconv.Itoa(defaultGCPercent)+", or $GOGC) ($"+envName("gc-percent")+")")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: quire serve [--listen HOST:PORT] [--db PATH] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.compactRows = int(rows)
	if p, err := parseGCPercent(*gc); err != nil {
		errs = append(errs, fmt.Errorf("--gc-percent: %w", err))
	} else {
		c.gcPercent = p
	}
	if len(errs) > 0 {
		return c, errors.Join(errs...)
	}
	if err := c.limits.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// defaultGCPercent is the server's GOGC. A server's heap is mostly its open
// documents and connections, small and long-lived, and what it allocates per
// message dies at once: growing the heap by 30% of the live one between
// collections instead of all of it keeps 2,000 connections on 1,000 rooms
// small (../shared/bench W2, anonymous memory: 17.3 MB with 50, 15.2 with
// 30, 14.4 with 20), for collections costing 6% of the server's CPU there
// (4.4% with 50, 10% with 20).
const defaultGCPercent = 30

// parseGCPercent reads a GOGC value: a percentage, or off (-1).
func parseGCPercent(v string) (int, error) {
	if strings.EqualFold(v, "off") {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is neither a percentage nor off", v)
	}
	return n, nil
}

// startPprof serves the profiler on its own listener, so that it is never
// reachable through the public address.
func startPprof(addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Warn("pprof not started", "err", err)
		return
	}
	log.Info("pprof listening", "addr", ln.Addr().String())
	go http.Serve(ln, mux)
}

func envName(flagName string) string {
	return "QUIRE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

// runServe runs the collaboration server until SIGTERM or SIGINT, then stops
// accepting, closes the WebSockets (1001), flushes every room, closes the
// store and exits 0.
func runServe(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseServe(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "quire serve: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "quire serve: %v\n", err)
		return 2
	}
	if cfg.pprof == "" {
		// Nobody will read a heap profile: do not sample allocations for
		// one. The sampler's stack table alone (runtime BuckHashSys) was
		// 1.4 MB of a 35 MB server with 2,000 connections. Set before the
		// server allocates anything much, as the runtime asks.
		runtime.MemProfileRate = 0
	}
	debug.SetGCPercent(cfg.gcPercent)
	if cfg.memoryLimit > 0 {
		debug.SetMemoryLimit(cfg.memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("quire serve failed", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg serveConfig, log *slog.Logger) (err error) {
	metrics := server.NewMetrics()
	store, err := persist.OpenSQLite(cfg.db, persist.SQLiteOptions{
		Synchronous: cfg.synchronous,
		OnCommit:    metrics.ObserveCommit,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close the store: %w", cerr)
		}
	}()
	gate, err := cfg.access.NewGate(cfg.limits, nil)
	if err != nil {
		return err
	}
	readLimit := cfg.limits.MaxMessageBytes
	if readLimit == 0 {
		readLimit = 1 << 62 // "no limit"
	}
	srv, err := server.New(server.Config{
		Store:        store,
		Logger:       log,
		Metrics:      metrics,
		RoomIdle:     cfg.roomIdle,
		ReadLimit:    readLimit,
		CompactRows:  cfg.compactRows,
		CompactBytes: cfg.compactBytes,
		Gate:         gate,
		Limits:       cfg.limits,
		ReadLoops:    int(cfg.readLoops),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		srv.Close(context.Background())
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if cfg.pprof != "" {
		startPprof(cfg.pprof, log)
	}
	for _, w := range gate.Warnings(ln.Addr().String()) {
		log.Warn(w)
	}
	log.Info("listening", "addr", ln.Addr().String(), "db", cfg.db, "sync", cfg.synchronous, "auth", gate.Tokens != nil)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-served:
		srv.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// Stop accepting and finish the plain HTTP requests; the WebSockets are
	// hijacked connections, which Shutdown does not see: the Server closes
	// them, then its rooms commit what they hold.
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := srv.Close(sctx); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	log.Info("stopped")
	return nil
}
