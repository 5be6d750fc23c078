package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/quirehq/quire/auth"
	"github.com/quirehq/quire/doc"
	"github.com/quirehq/quire/persist"
)

// redactURI keeps access tokens out of the request log.
var redactURI = auth.RedactURI

// maxNameLen bounds a document's display name, in bytes.
const maxNameLen = 256

// maxRootNameLen bounds the ?name= of /text: every name read creates a root
// type in the server's document.
const maxRootNameLen = 256

// docJSON is a document in the HTTP API.
type docJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	Bytes     int64      `json:"bytes"`
	Peers     int        `json:"peers"`
	// Editors are the users ({name, color}) of the live awareness states of
	// an open document: who the documents page shows in it.
	Editors []doc.Editor `json:"editors,omitempty"`
}

func toJSON(m persist.DocMeta, peers int) docJSON {
	d := docJSON{ID: m.ID, Name: m.Name, Bytes: m.Bytes, Peers: peers}
	if !m.CreatedAt.IsZero() {
		t := m.CreatedAt.UTC()
		d.CreatedAt = &t
	}
	if !m.UpdatedAt.IsZero() {
		t := m.UpdatedAt.UTC()
		d.UpdatedAt = &t
	}
	return d
}

// httpError answers every error of a handler as JSON {"error": "..."}.
func (s *Server) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	msg := "internal error"
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = fmt.Sprint(he.Message)
		if he.Internal != nil && code >= 500 {
			err = he.Internal
		}
	}
	if code >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "uri", redactURI(c.Request().RequestURI), "err", err)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(code)
	} else {
		err = c.JSON(code, map[string]string{"error": msg})
	}
	if err != nil {
		s.log.Debug("writing an error response failed", "err", err)
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// authorize runs the Gate's checks for an API request (docID "" for a
// request about no single document) and returns the grant to filter with;
// without a Gate everything is allowed (nil grant). A refusal is an
// *echo.HTTPError with the Gate's status and reason, and its Retry-After and
// WWW-Authenticate headers already set.
func (s *Server) authorize(c echo.Context, docID string, write bool) (*auth.Grant, error) {
	if s.cfg.Gate == nil {
		return nil, nil
	}
	grant, err := s.cfg.Gate.Authorize(c.Request(), docID, write)
	if err == nil {
		return grant, nil
	}
	var ref *auth.Refusal
	if !errors.As(err, &ref) {
		return nil, err
	}
	h := c.Response().Header()
	if ref.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((ref.RetryAfter+time.Second-1)/time.Second)))
	}
	if ref.Status == http.StatusUnauthorized {
		if errors.Is(ref, auth.ErrNoToken) {
			h.Set("WWW-Authenticate", `Bearer realm="quire"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="quire", error="invalid_token"`)
		}
	}
	h.Set("Cache-Control", "no-store")
	return nil, echo.NewHTTPError(ref.Status, ref.Reason)
}

// docID returns the validated :id of the request.
func docID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !doc.ValidID(id) {
		return "", echo.NewHTTPError(http.StatusBadRequest, "invalid document id: want 1-128 characters of [A-Za-z0-9._-]")
	}
	return id, nil
}

// listDocs serves GET /api/docs: every stored document, newest change first,
// with its live peer count and editors, plus the open documents that have not stored
// anything yet.
func (s *Server) listDocs(c echo.Context) error {
	grant, err := s.authorize(c, "", false)
	if err != nil {
		return err
	}
	visible := func(id string) bool { return grant == nil || grant.Covers(id) }
	metas, err := s.cfg.Store.ListDocs(c.Request().Context())
	if err != nil {
		return fmt.Errorf("list documents: %w", err)
	}
	live := s.reg.Live()
	out := make([]docJSON, 0, len(metas))
	for _, m := range metas {
		if visible(m.ID) {
			out = append(out, toJSON(m, live[m.ID]))
		}
		delete(live, m.ID)
	}
	var fresh []string
	for id, n := range live {
		if n > 0 && visible(id) {
			fresh = append(fresh, id)
		}
	}
	sort.Strings(fresh)
	for _, id := range fresh {
		out = append(out, docJSON{ID: id, Peers: live[id]})
	}
	var open []string
	for _, d := range out {
		if d.Peers > 0 {
			open = append(open, d.ID)
		}
	}
	editors, err := s.reg.Editors(c.Request().Context(), open...)
	if err != nil {
		return fmt.Errorf("list documents: %w", err)
	}
	for i := range out {
		out[i].Editors = editors[out[i].ID]
	}
	return c.JSON(http.StatusOK, out)
}

// createDoc serves POST /api/docs: a new document with a new UUID and the
// optional {"name": ...} of the body.
func (s *Server) createDoc(c echo.Context) error {
	if _, err := s.authorize(c, "", true); err != nil {
		return err
	}
	var body struct {
		Name string `json:"name"`
	}
	raw, err := io.ReadAll(io.LimitReader(c.Request().Body, 64<<10+1))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "reading the body: "+err.Error())
	}
	if len(raw) > 64<<10 {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "body over 64 KiB")
	}
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "body must be JSON like {\"name\": \"...\"}: "+err.Error())
		}
	}
	body.Name = strings.TrimSpace(body.Name)
	if len(body.Name) > maxNameLen || !utf8.ValidString(body.Name) {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("name must be UTF-8 of at most %d bytes", maxNameLen))
	}
	meta, err := s.cfg.Store.CreateDoc(c.Request().Context(), uuid.NewString(), body.Name)
	if err != nil {
		return fmt.Errorf("create document: %w", err)
	}
	return c.JSON(http.StatusCreated, toJSON(meta, 0))
}

// getDoc serves GET /api/docs/{id}.
func (s *Server) getDoc(c echo.Context) error {
	id, err := docID(c)
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, id, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	meta, err := s.cfg.Store.GetDoc(ctx, id)
	var d docJSON
	switch {
	case errors.Is(err, persist.ErrNotFound):
		peers := s.reg.Peers(id)
		if peers == 0 {
			return echo.NewHTTPError(http.StatusNotFound, "no such document")
		}
		d = docJSON{ID: id, Peers: peers} // open, nothing stored yet
	case err != nil:
		return fmt.Errorf("get document: %w", err)
	default:
		d = toJSON(meta, s.reg.Peers(id))
	}
	editors, err := s.reg.Editors(ctx, id)
	if err != nil {
		return fmt.Errorf("get document: %w", err)
	}
	d.Editors = editors[id]
	return c.JSON(http.StatusOK, d)
}

// open returns a Handle on an existing document: stored, or open with peers.
// Reading must not create rooms for made-up ids.
func (s *Server) open(ctx context.Context, id string) (*doc.Handle, error) {
	if s.reg.Peers(id) == 0 {
		if _, err := s.cfg.Store.GetDoc(ctx, id); errors.Is(err, persist.ErrNotFound) {
			return nil, echo.NewHTTPError(http.StatusNotFound, "no such document")
		} else if err != nil {
			return nil, fmt.Errorf("get document: %w", err)
		}
	}
	return s.openAny(ctx, id)
}

func (s *Server) openAny(ctx context.Context, id string) (*doc.Handle, error) {
	h, err := s.reg.Open(ctx, id)
	switch {
	case errors.Is(err, doc.ErrClosed):
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "server shutting down")
	case err != nil:
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "document unavailable").SetInternal(err)
	}
	return h, nil
}

// getText serves GET /api/docs/{id}/text?name=ROOT (default content): the
// text of that root Y.Text as the server's document has it.
func (s *Server) getText(c echo.Context) error {
	id, err := docID(c)
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, id, false); err != nil {
		return err
	}
	name := c.QueryParam("name")
	if name == "" {
		name = "content"
	}
	if len(name) > maxRootNameLen {
		return echo.NewHTTPError(http.StatusBadRequest, "root name too long")
	}
	h, err := s.open(c.Request().Context(), id)
	if err != nil {
		return err
	}
	defer h.Close()
	text, err := h.Text(c.Request().Context(), name)
	if err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "document unavailable").SetInternal(err)
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", []byte(text))
}

// getUpdate serves GET /api/docs/{id}/update: the whole document as one Yjs
// update v1.
func (s *Server) getUpdate(c echo.Context) error {
	id, err := docID(c)
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, id, false); err != nil {
		return err
	}
	h, err := s.open(c.Request().Context(), id)
	if err != nil {
		return err
	}
	defer h.Close()
	state, err := h.State(c.Request().Context())
	if err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "document unavailable").SetInternal(err)
	}
	return c.Blob(http.StatusOK, "application/octet-stream", state)
}

// postUpdate serves POST /api/docs/{id}/update: the body, a Yjs update v1,
// is validated, committed and sent to the document's peers, as if a peer had
// sent it. The document is created if needed. 200 means it is durable.
func (s *Server) postUpdate(c echo.Context) error {
	id, err := docID(c)
	if err != nil {
		return err
	}
	if _, err := s.authorize(c, id, true); err != nil {
		return err
	}
	body := http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.ReadLimit)
	update, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("update over the limit of %d bytes", s.cfg.ReadLimit))
		}
		return echo.NewHTTPError(http.StatusBadRequest, "reading the body: "+err.Error())
	}
	if len(update) == 0 {
		return echo.NewHTTPError(http.StatusBadRequest, "empty body: want a Yjs update v1")
	}
	h, err := s.openAny(c.Request().Context(), id)
	if err != nil {
		return err
	}
	defer h.Close()
	s.metrics.updatesIn.Inc()
	if err := h.ApplyUpdate(c.Request().Context(), update); err != nil {
		if errors.Is(err, doc.ErrInvalidUpdate) {
			return echo.NewHTTPError(http.StatusBadRequest, err.Error())
		}
		if errors.Is(err, doc.ErrTooLarge) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, err.Error())
		}
		return echo.NewHTTPError(http.StatusServiceUnavailable, "update not stored").SetInternal(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"id": id, "bytes": len(update)})
}
