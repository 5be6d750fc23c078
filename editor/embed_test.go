package editor

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerRoutes(t *testing.T) {
	t.Parallel()
	h := Handler()
	long := strings.Repeat("a", 128)
	tests := []struct {
		name, method, target string
		status               int
		ctype                string
		contains             string
	}{
		{"list page", "GET", "/", 200, "text/html; charset=utf-8", `id="docs"`},
		{"list page HEAD", "HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"editor page", "GET", "/d/abc", 200, "text/html; charset=utf-8", `id="editor"`},
		{"editor page uuid", "GET", "/d/4b0c7f1e-93a2-4c1e-8f57-0d2b1a9e6c3d", 200, "text/html; charset=utf-8", `id="status"`},
		{"editor page all id chars", "GET", "/d/A.z_0-9", 200, "text/html; charset=utf-8", ""},
		{"editor page 128 chars", "GET", "/d/" + long, 200, "text/html; charset=utf-8", ""},
		{"editor page with token", "GET", "/d/abc?token=x.y.z", 200, "text/html; charset=utf-8", ""},
		{"bundle", "GET", "/assets/editor.js", 200, "text/javascript; charset=utf-8", "WebSocket"},
		{"list bundle", "GET", "/assets/list.js", 200, "text/javascript; charset=utf-8", "/api/docs"},
		{"stylesheet", "GET", "/assets/style.css", 200, "text/css; charset=utf-8", "data-state"},
		{"id too long", "GET", "/d/" + long + "a", 404, "", ""},
		{"empty id", "GET", "/d/", 404, "", ""},
		{"id with space", "GET", "/d/a%20b", 404, "", ""},
		{"id with slash", "GET", "/d/a/b", 404, "", ""},
		{"id with percent", "GET", "/d/a%25b", 404, "", ""},
		{"id with unicode", "GET", "/d/%C3%A9t%C3%A9", 404, "", ""},
		{"no such asset", "GET", "/assets/nope.js", 404, "", ""},
		{"asset dir", "GET", "/assets/", 404, "", ""},
		{"asset traversal", "GET", "/assets/../index.html", 404, "", ""},
		{"html is not an asset", "GET", "/assets/index.html", 404, "", ""},
		{"dist file by its own name", "GET", "/index.html", 404, "", ""},
		{"other path", "GET", "/api/docs", 404, "", ""},
		{"post", "POST", "/", 405, "", ""},
		{"put asset", "PUT", "/assets/editor.js", 405, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := get(t, h, tc.method, tc.target, nil)
			if w.Code != tc.status {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.target, w.Code, tc.status)
			}
			if tc.ctype != "" && w.Header().Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", w.Header().Get("Content-Type"), tc.ctype)
			}
			if tc.contains != "" && !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			if tc.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD wrote a body of %d bytes", w.Body.Len())
			}
			if tc.status == 405 && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
		})
	}
}

// assetRef matches the versioned asset URLs build.mjs writes into the pages.
var assetRef = regexp.MustCompile(`/assets/([A-Za-z0-9._-]+)\?v=([0-9a-f]{16})`)

// TestPagesReferenceEmbeddedAssets checks that every asset a page loads exists, carries the version
// of the embedded bytes and is then served as immutable; an unversioned request must revalidate.
func TestPagesReferenceEmbeddedAssets(t *testing.T) {
	t.Parallel()
	h := Handler()
	for _, page := range []string{"/", "/d/x"} {
		w := get(t, h, "GET", page, nil)
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", page, got)
		}
		if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: missing CSP or Referrer-Policy", page)
		}
		refs := assetRef.FindAllStringSubmatch(w.Body.String(), -1)
		if len(refs) < 2 {
			t.Fatalf("%s references %d versioned assets, want a script and a stylesheet", page, len(refs))
		}
		for _, m := range refs {
			a := get(t, h, "GET", m[0], nil)
			if a.Code != 200 {
				t.Fatalf("%s: %s: status %d", page, m[0], a.Code)
			}
			if got := a.Header().Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
				t.Errorf("%s: Cache-Control %q (stale ?v= hash: run make editor)", m[0], got)
			}
			if got := get(t, h, "GET", "/assets/"+m[1], nil).Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("/assets/%s without version: Cache-Control %q, want no-cache", m[1], got)
			}
			if got := get(t, h, "GET", "/assets/"+m[1]+"?v=0000000000000000", nil).Header().Get("Cache-Control"); got != "no-cache" {
				t.Errorf("/assets/%s with a wrong version: Cache-Control %q, want no-cache", m[1], got)
			}
		}
	}
}

func TestServiceWorkerScope(t *testing.T) {
	t.Parallel()
	w := get(t, Handler(), "GET", "/assets/sw.js", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("status %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	if got := w.Header().Get("Service-Worker-Allowed"); got != "/" {
		t.Errorf("Service-Worker-Allowed %q, want /", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", got)
	}
	if got := get(t, Handler(), "GET", "/assets/editor.js", nil).Header().Get("Service-Worker-Allowed"); got != "" {
		t.Errorf("editor.js has Service-Worker-Allowed %q", got)
	}
}

func TestConditionalAndGzip(t *testing.T) {
	t.Parallel()
	h := Handler()
	plain := get(t, h, "GET", "/assets/editor.js", nil)
	etag := plain.Header().Get("ETag")
	if etag == "" || plain.Header().Get("Content-Encoding") != "" {
		t.Fatalf("plain response: ETag %q, Content-Encoding %q", etag, plain.Header().Get("Content-Encoding"))
	}
	if w := get(t, h, "GET", "/assets/editor.js", map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", w.Code)
	}
	for _, ae := range []string{"gzip", "br, gzip;q=0.8", "GZIP"} {
		w := get(t, h, "GET", "/assets/editor.js", map[string]string{"Accept-Encoding": ae})
		if w.Header().Get("Content-Encoding") != "gzip" || w.Header().Get("ETag") == etag {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q, ETag %q", ae, w.Header().Get("Content-Encoding"), w.Header().Get("ETag"))
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatalf("gzip reader: %v", err)
		}
		got, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		if !bytes.Equal(got, plain.Body.Bytes()) {
			t.Fatalf("gunzipped body differs from the plain one")
		}
	}
	for _, ae := range []string{"gzip;q=0", "br", "identity"} {
		w := get(t, h, "GET", "/assets/editor.js", map[string]string{"Accept-Encoding": ae})
		if w.Header().Get("Content-Encoding") != "" {
			t.Errorf("Accept-Encoding %q: got Content-Encoding %q", ae, w.Header().Get("Content-Encoding"))
		}
	}
}

func TestEmbeddedDistNotEmpty(t *testing.T) {
	t.Parallel()
	var total int
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(dist, p)
		if err != nil {
			return err
		}
		if len(b) == 0 {
			t.Errorf("%s is empty", p)
		}
		total += len(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The CodeMirror + Yjs bundle alone is several hundred KB; a few KB means a broken build.
	if total < 100_000 {
		t.Fatalf("embedded dist holds %d bytes, want a full bundle", total)
	}
}

func TestNewHandlerRejectsIncompleteDist(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fsys fstest.MapFS
	}{
		{"no dist", fstest.MapFS{"other/x": {Data: []byte("x")}}},
		{"no doc page", fstest.MapFS{"dist/index.html": {Data: []byte("<p>")}}},
		{"no list page", fstest.MapFS{"dist/doc.html": {Data: []byte("<p>")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := newHandler(tc.fsys); err == nil {
				t.Fatal("newHandler accepted an incomplete dist")
			}
		})
	}
}
