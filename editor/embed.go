// Package editor serves Quire's browser editor: the document list, the editor page and the bundle
// built from editor/src by editor/build.mjs (committed in editor/dist and embedded in the binary, so
// `go build` needs no npm). The pages talk to the HTTP API and the WebSocket endpoint themselves;
// this package never touches documents.
package editor

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

//go:embed dist
var dist embed.FS

// docIDPattern is the document id contract of DESIGN.md; anything else is not a document page.
var docIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// serviceWorker is the offline page cache; its URL must stay stable across builds.
const serviceWorker = "assets/sw.js"

// compressMin is the size below which gzip is not worth a Vary header and the CPU.
const compressMin = 1024

// file is one embedded file, prepared once: its type, version hash and a gzipped copy.
type file struct {
	name    string
	body    []byte
	gz      []byte // nil when not worth compressing
	ctype   string
	version string // first 16 hex digits of SHA-256, as editor/build.mjs writes in ?v=
}

type handler struct {
	files map[string]*file // by path inside dist: "index.html", "assets/editor.js"
}

// Handler serves the editor: GET / (document list), GET /d/{docID} (editor page), GET /assets/*
// (bundle), from the embedded editor/dist. It never touches documents itself (the pages call the
// HTTP API/WS). Any other path is 404; methods other than GET and HEAD are 405.
// The files are read and compressed once per process, on the first request: a server whose
// clients never open the editor (an embedder's own frontend, a load test) does not keep the
// compressed copies (about a megabyte of heap).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		embedded().ServeHTTP(w, r)
	})
}

// embedded prepares the embedded dist once: gzip at best compression costs tens of milliseconds.
var embedded = sync.OnceValue(func() *handler {
	h, err := newHandler(dist)
	if err != nil {
		// The embedded tree is part of the binary: failing here is a build defect, not a runtime state.
		panic(fmt.Sprintf("editor: embedded dist: %v", err))
	}
	return h
})

func newHandler(fsys fs.FS) (*handler, error) {
	sub, err := fs.Sub(fsys, "dist")
	if err != nil {
		return nil, fmt.Errorf("open dist: %w", err)
	}
	h := &handler{files: map[string]*file{}}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		sum := sha256.Sum256(body)
		f := &file{name: p, body: body, ctype: contentType(p), version: hex.EncodeToString(sum[:])[:16]}
		if len(body) >= compressMin {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			if _, err := zw.Write(body); err != nil {
				return fmt.Errorf("gzip %s: %w", p, err)
			}
			if err := zw.Close(); err != nil {
				return fmt.Errorf("gzip %s: %w", p, err)
			}
			if buf.Len() < len(body) {
				f.gz = buf.Bytes()
			}
		}
		h.files[p] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk dist: %w", err)
	}
	for _, need := range []string{"index.html", "doc.html"} {
		if _, ok := h.files[need]; !ok {
			return nil, fmt.Errorf("dist has no %s (run `make editor`)", need)
		}
	}
	return h, nil
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// pageCSP keeps the pages to their own scripts and server. 'unsafe-inline' styles are needed by
// CodeMirror and y-codemirror.next, which set style attributes on carets and selections.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	var f *file
	switch {
	case p == "/":
		f = h.files["index.html"]
	case strings.HasPrefix(p, "/d/"):
		if docIDPattern.MatchString(p[len("/d/"):]) {
			f = h.files["doc.html"]
		}
	case strings.HasPrefix(p, "/assets/"):
		name := p[len("/assets/"):]
		if name != "" && !strings.Contains(name, "/") {
			f = h.files["assets/"+name]
		}
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("X-Content-Type-Options", "nosniff")
	// Pages may carry ?token=...: never leak it to other sites through Referer.
	hd.Set("Referrer-Policy", "no-referrer")
	switch {
	case f.name == serviceWorker:
		// Registered with scope "/" so that it can answer navigations to / and /d/{id} offline.
		// Browsers revalidate worker scripts themselves; no-cache keeps proxies honest too.
		hd.Set("Service-Worker-Allowed", "/")
		hd.Set("Cache-Control", "no-cache")
	case strings.HasSuffix(f.name, ".html"):
		hd.Set("Cache-Control", "no-cache")
		hd.Set("Content-Security-Policy", pageCSP)
	case r.URL.Query().Get("v") == f.version:
		// The URL names this exact content: it can be cached forever.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	default:
		hd.Set("Cache-Control", "no-cache")
	}
	body := f.body
	etag := `"` + f.version + `"`
	if f.gz != nil {
		hd.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body = f.gz
			etag = `"` + f.version + `-gz"`
			hd.Set("Content-Encoding", "gzip")
		}
	}
	hd.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the client listed gzip without q=0.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
