// Package e2e holds black-box tests of the real quire binary: TestMain builds
// it once, each test starts it on a free loopback port with a fresh database,
// and real Yjs clients (Node scripts in e2e/js) or a real browser drive it
// through the contracts of DESIGN.md only.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Deadlines of the harness. They are generous because the tests share two
// cores with other work; they bound waits, they are not what is measured.
const (
	startTimeout = 30 * time.Second // process start until /healthz answers 200
	stopTimeout  = 30 * time.Second // SIGTERM until exit
	killTimeout  = 10 * time.Second // SIGKILL until the process is reaped
	logTailLines = 300              // server log lines printed when a test fails
)

var (
	moduleRoot string // directory holding go.mod
	quireBin   string // the binary TestMain built
	setupErr   error  // why the module root or the binary is missing
)

// TestMain builds the quire binary once for the whole package.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain builds the binary once for every test of the package. A build
// failure does not abort the package here: each test that needs the server
// fails with the compiler's output, which is where one looks first.
func runMain(m *testing.M) int {
	flag.Parse()
	if f := flag.Lookup("test.list"); f != nil && f.Value.String() != "" {
		return m.Run() // only listing tests (make fuzz does): no binary needed
	}
	root, err := findModuleRoot()
	if err != nil {
		setupErr = err
		return m.Run()
	}
	moduleRoot = root
	// QUIRE_E2E_BIN runs the tests against a binary built elsewhere (a
	// release artifact, or a build with other flags) instead of building one.
	if bin := os.Getenv("QUIRE_E2E_BIN"); bin != "" {
		quireBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "quire-e2e-")
	if err != nil {
		setupErr = fmt.Errorf("temp dir for the binary: %w", err)
		return m.Run()
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "quire")
	// The binary is a separate process, so it is built without -race: the
	// test package itself is what `go test -race` checks. It is linked as
	// make links it (scripts/go-ldflags), so that the tests run what ships.
	ldflags, err := os.ReadFile(filepath.Join(root, "scripts", "go-ldflags"))
	if err != nil {
		setupErr = fmt.Errorf("link flags of the binary: %w", err)
		return m.Run()
	}
	cmd := exec.Command(goTool(), "build", "-ldflags", strings.TrimSpace(string(ldflags)), "-o", bin, ".")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		setupErr = fmt.Errorf("go build -o %s . (in %s): %w\n%s", bin, root, err, out)
		return m.Run()
	}
	quireBin = bin
	return m.Run()
}

// findModuleRoot walks up from the working directory to the one holding go.mod.
func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// goTool is the go command that runs this test, so the binary is built by
// the same toolchain.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// requireBinary fails the test when TestMain could not build the server.
func requireBinary(t testing.TB) {
	t.Helper()
	if setupErr != nil {
		t.Fatalf("e2e setup: %v", setupErr)
	}
}

// requireNode skips the test when node or the repo-root node_modules are
// missing, except in CI (env CI set), where that is a failure.
func requireNode(t testing.TB) {
	t.Helper()
	requireBinary(t)
	var why string
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not on PATH"
	} else if !fileExists(filepath.Join(moduleRoot, "node_modules", "yjs", "package.json")) ||
		!fileExists(filepath.Join(moduleRoot, "node_modules", "y-websocket", "package.json")) ||
		!fileExists(filepath.Join(moduleRoot, "node_modules", "ws", "package.json")) {
		why = "node_modules (yjs, y-websocket, ws) missing at the module root: run `make deps-npm`"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// Flags of `quire serve` beyond the --listen and --db of DESIGN.md that the
// tests use (see cmd_serve.go).
const (
	roomIdleFlag    = "--room-idle"    // how long a room without peers stays loaded
	compactRowsFlag = "--compact-rows" // snapshot a document when its log has this many rows
)

// ServerOpts configures StartServer.
type ServerOpts struct {
	DB   string   // database path; empty means <t.TempDir()>/quire.db
	Args []string // extra flags after `serve --listen ... --db ...`
	Env  []string // extra KEY=VALUE entries on top of the test's environment
}

// Server is one quire process (across restarts: same address and database).
type Server struct {
	Addr string // 127.0.0.1:PORT
	URL  string // http://Addr
	WS   string // ws://Addr/ws, the serverUrl a WebsocketProvider takes
	DB   string // the database file

	opts    ServerOpts
	logPath string
	starts  int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	werr error         // its exit status, valid once done is closed
}

// StartServer starts `quire serve` on a free loopback port, waits until
// GET /healthz answers 200, and stops it at the end of the test (SIGTERM,
// expecting exit 0). Its stderr goes to a log printed when the test fails.
func StartServer(t *testing.T, opts ServerOpts) *Server {
	t.Helper()
	requireBinary(t)
	if opts.DB == "" {
		opts.DB = filepath.Join(t.TempDir(), "quire.db")
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{
		Addr:    addr,
		URL:     "http://" + addr,
		WS:      "ws://" + addr + "/ws",
		DB:      opts.DB,
		opts:    opts,
		logPath: filepath.Join(t.TempDir(), "server.log"),
	}
	t.Cleanup(func() { s.cleanup(t) })
	s.start(t)
	return s
}

// freePort asks the kernel for an unused loopback port. The listener is
// closed before the server binds it; on a test machine the window is harmless.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	if s.cmd != nil && !closed(s.done) {
		s.mu.Unlock()
		t.Fatal("server: start while the previous process still runs")
	}
	s.starts++
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.mu.Unlock()
		t.Fatalf("server log: %v", err)
	}
	fmt.Fprintf(logf, "=== start %d: %s serve --listen %s --db %s %s\n", s.starts, quireBin, s.Addr, s.DB, strings.Join(s.opts.Args, " "))
	args := append([]string{"serve", "--listen", s.Addr, "--db", s.DB}, s.opts.Args...)
	cmd := exec.Command(quireBin, args...)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), s.opts.Env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		logf.Close()
		t.Fatalf("start server: %v", err)
	}
	done := make(chan struct{})
	s.cmd, s.done, s.werr = cmd, done, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		s.mu.Lock()
		s.werr = err
		s.mu.Unlock()
		close(done)
	}()

	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-done:
			t.Fatalf("server exited during start (%v); its log follows", s.exitErr())
		default:
		}
		resp, err := client.Get(s.URL + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server: GET /healthz not 200 within %v (last error %v); its log follows", startTimeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (s *Server) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.werr
}

// Running reports whether the current process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil && !closed(s.done)
}

// PID is the process id of the current process (0 if never started).
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop sends SIGTERM and requires exit status 0 within stopTimeout.
func (s *Server) Stop(t *testing.T) {
	t.Helper()
	if err := s.signalAndWait(syscall.SIGTERM, stopTimeout); err != nil {
		t.Fatalf("server stop: %v; its log follows", err)
	}
	if err := s.exitErr(); err != nil {
		t.Fatalf("server stop: SIGTERM must exit 0, got %v; its log follows", err)
	}
}

// Kill sends SIGKILL (a crash) and waits until the process is gone.
func (s *Server) Kill(t *testing.T) {
	t.Helper()
	if err := s.signalAndWait(syscall.SIGKILL, killTimeout); err != nil {
		t.Fatalf("server kill: %v", err)
	}
}

// Restart starts the server again on the same database and address; the
// previous process must have been stopped or killed.
func (s *Server) Restart(t *testing.T) {
	t.Helper()
	if s.Running() {
		t.Fatal("server restart: the process is still running; Stop or Kill it first")
	}
	s.start(t)
}

// signalAndWait signals the current process and waits for it to exit; on
// timeout it kills it so no process outlives the test.
func (s *Server) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || closed(done) {
		return errors.New("server is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil && !closed(done) {
		return fmt.Errorf("signal %v: %w", sig, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("no exit within %v of %v (killed)", timeout, sig)
	}
}

func (s *Server) cleanup(t *testing.T) {
	if s.Running() {
		// Every test also checks the shutdown contract: SIGTERM exits 0.
		if err := s.signalAndWait(syscall.SIGTERM, stopTimeout); err != nil {
			t.Errorf("server at test end: %v", err)
		} else if err := s.exitErr(); err != nil {
			t.Errorf("server at test end: SIGTERM must exit 0, got %v", err)
		}
	}
	if t.Failed() {
		t.Logf("server log (%s, last %d lines):\n%s", s.logPath, logTailLines, s.LogTail(logTailLines))
	}
}

// Log returns everything the server wrote to stdout/stderr, all starts.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// LogTail returns the last n lines of the server log.
func (s *Server) LogTail(n int) string {
	return tailLines(s.Log(), n)
}

func tailLines(text string, n int) string {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// apiClient opens a connection per request, so that no idle keep-alive
// connection of the test holds a socket or goroutine in the server.
var apiClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// Do sends one HTTP request to the server and returns the status and body.
// A transport error fails the test.
func (s *Server) Do(t testing.TB, method, path, contentType string, body []byte) (int, []byte) {
	t.Helper()
	hdr := http.Header{}
	if contentType != "" {
		hdr.Set("Content-Type", contentType)
	}
	code, _, b := s.Request(t, method, path, hdr, body)
	return code, b
}

// Request sends one HTTP request with the headers hdr to the server and
// returns the status, headers and body. A transport error fails the test.
func (s *Server) Request(t testing.TB, method, path string, hdr http.Header, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// Get is Do for a GET that must answer 200; it returns the body.
func (s *Server) Get(t testing.TB, path string) []byte {
	t.Helper()
	code, body := s.Do(t, http.MethodGet, path, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %q", path, code, truncate(body, 300))
	}
	return body
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// nodeCommand prepares `node e2e/js/<script> args...` run from the module root.
func nodeCommand(ctx context.Context, script string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join("e2e", "js", script)}, args...)...)
	cmd.Dir = moduleRoot
	return cmd
}

// RunNode runs `node e2e/js/<script> args...` (cwd = module root) to completion
// and returns its stdout; a non-zero exit is an error carrying its stderr.
func RunNode(t *testing.T, ctx context.Context, script string, args ...string) ([]byte, error) {
	t.Helper()
	requireNode(t)
	cmd := nodeCommand(ctx, script, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("node %s: %w; stderr:\n%s", script, err, tailLines(stderr.String(), 60))
	}
	return stdout.Bytes(), nil
}

// NodeProc is a long-running Node client. It prints JSON lines on stdout,
// read here one at a time; commands go to its stdin as JSON lines.
type NodeProc struct {
	Script string

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr lockedBuffer
	done   chan struct{}
	werr   error

	mu     sync.Mutex
	lines  []string      // stdout lines not yet read
	all    []string      // every stdout line so far
	eof    bool          // stdout is closed
	notify chan struct{} // signalled when lines or eof change
}

// StartNode starts `node e2e/js/<script> args...` (cwd = module root); it is
// killed at the end of the test, and its stderr is logged if the test failed.
func StartNode(t *testing.T, script string, args ...string) *NodeProc {
	t.Helper()
	requireNode(t)
	cmd := nodeCommand(context.Background(), script, args...)
	p := &NodeProc{Script: script, cmd: cmd, done: make(chan struct{}), notify: make(chan struct{}, 1)}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
	cmd.Stderr = &p.stderr
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
	// The reader never blocks the process: lines queue without bound, so a
	// chatty client (a watcher) cannot stall on a full pipe.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.all = append(p.all, sc.Text())
			p.mu.Unlock()
			p.signal()
		}
		p.mu.Lock()
		p.eof = true
		p.mu.Unlock()
		p.signal()
	}()
	go func() {
		<-readDone // Wait closes the pipe: read everything first
		p.werr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("node %s %s stderr:\n%s", script, strings.Join(args, " "), tailLines(p.stderr.String(), 60))
		}
	})
	return p
}

func (p *NodeProc) signal() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// Line returns the next stdout line, failing the test if none arrives
// within timeout or the process ends first.
func (p *NodeProc) Line(t testing.TB, timeout time.Duration) string {
	t.Helper()
	line, ok := p.next(t, timeout)
	if !ok {
		t.Fatalf("node %s: no output line within %v; stderr:\n%s", p.Script, timeout, tailLines(p.stderr.String(), 60))
	}
	return line
}

// next returns the next stdout line, or false after timeout; it fails the
// test if the process ends first.
func (p *NodeProc) next(t testing.TB, timeout time.Duration) (string, bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		if len(p.lines) > 0 {
			l := p.lines[0]
			p.lines = p.lines[1:]
			p.mu.Unlock()
			return l, true
		}
		eof := p.eof
		p.mu.Unlock()
		if eof {
			<-p.done
			t.Fatalf("node %s: exited (%v) while a line was expected; stderr:\n%s", p.Script, p.werr, tailLines(p.stderr.String(), 60))
		}
		select {
		case <-p.notify:
		case <-deadline.C:
			return "", false
		}
	}
}

// Expect reads lines until a JSON object whose "ev" field is ev and decodes
// it into v (which may be nil). Other lines are skipped, except an
// {"ev":"error"} line, which fails the test with its message.
func (p *NodeProc) Expect(t testing.TB, timeout time.Duration, ev string, v any) {
	t.Helper()
	if !p.TryExpect(t, timeout, ev, v) {
		t.Fatalf("node %s: no %q event within %v; stderr:\n%s", p.Script, ev, timeout, tailLines(p.stderr.String(), 60))
	}
}

// TryExpect is Expect that returns false instead of failing when no such
// event arrives within timeout.
func (p *NodeProc) TryExpect(t testing.TB, timeout time.Duration, ev string, v any) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		line, ok := p.next(t, left)
		if !ok {
			return false
		}
		var head struct {
			Ev string `json:"ev"`
		}
		if json.Unmarshal([]byte(line), &head) != nil {
			continue
		}
		if head.Ev == "error" && ev != "error" {
			t.Fatalf("node %s: error event while waiting for %q: %s", p.Script, ev, line)
		}
		if head.Ev != ev {
			continue
		}
		if v != nil {
			if err := json.Unmarshal([]byte(line), v); err != nil {
				t.Fatalf("node %s: decode %q event: %v (%s)", p.Script, ev, err, truncate([]byte(line), 300))
			}
		}
		return true
	}
}

// Lines returns every stdout line the process printed so far, read or not.
func (p *NodeProc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.all...)
}

// Send writes v as one JSON line to the process's stdin.
func (p *NodeProc) Send(t testing.TB, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("node %s: encode command: %v", p.Script, err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("node %s: send %s: %v", p.Script, b, err)
	}
}

// SendLine writes one raw line to the process's stdin.
func (p *NodeProc) SendLine(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		t.Fatalf("node %s: send %q: %v", p.Script, line, err)
	}
}

// Wait closes stdin and waits for the process to exit by itself; it returns
// its exit error (nil for status 0) or fails the test on timeout.
func (p *NodeProc) Wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	_ = p.stdin.Close()
	select {
	case <-p.done:
		return p.werr
	case <-time.After(timeout):
		p.Kill()
		t.Fatalf("node %s: no exit within %v", p.Script, timeout)
		return nil
	}
}

// Kill kills the process (SIGKILL) if it still runs and waits until it is reaped.
func (p *NodeProc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended.
func (p *NodeProc) Exited() bool {
	return closed(p.done)
}

// PID is the process id.
func (p *NodeProc) PID() int { return p.cmd.Process.Pid }

// Stderr returns what the process wrote to stderr so far.
func (p *NodeProc) Stderr() string { return p.stderr.String() }

// lockedBuffer is a bytes.Buffer safe for the writer goroutine of exec and readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
