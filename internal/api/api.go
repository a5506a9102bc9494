// Package api is Fulcrum's native REST API under /api/v1: JSON resources for
// virtual services, real servers, certificates, options, the whole
// configuration, revisions, users, API keys, backup and status. Every write
// goes through the control package's single write path; every response
// carries the configuration revision as its ETag, and a write may carry
// If-Match to be refused (412) when the configuration moved on.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/history"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
	"github.com/fulcrum-lb/fulcrum/internal/verify"
)

// Body size limits.
const (
	maxBody       = 1 << 20
	maxConfigBody = config.MaxDocumentSize
	maxBackupBody = 64 << 20
)

// History is what the API reads from the store besides the current
// configuration; *store.Store implements it.
type History interface {
	History(before uint64, limit int) ([]store.Change, error)
	Revision(n uint64) (store.Revision, error)
	Audit(before uint64, limit int) ([]store.AuditEntry, error)
	Backup(w io.Writer) error
}

// Options configure a Server.
type Options struct {
	// Control is the single write path. Required.
	Control *control.Controller
	// Auth authenticates callers and manages users and keys. Required.
	Auth *admin.Service
	// History reads revisions, the audit log and backups. Required.
	History History
	// Templates is the template library; nil means the built-in templates
	// only, with imports refused.
	Templates *templates.Library
	// Status is the data plane's status, limits and health-check events;
	// nil means no data plane: no services, no limits and no events.
	Status status.Source
	// Counters returns per real server a number that grows with each
	// connection or request, for deployment verification; nil: the answering
	// real server is not reported.
	Counters func() map[verify.RSRef]int64
	// Down returns the real servers that are Down, by service ID, for
	// deployment verification.
	Down func() map[int][]string
	// Events is the appliance's event log, served by GET /logs; nil means
	// an empty log.
	Events *events.Bus
	// StatsHistory is the statistics history GET /history reads; nil
	// answers 404 there.
	StatsHistory *history.History
	// Logger receives error logs; nil means slog.Default().
	Logger *slog.Logger
}

// Server serves the native API.
type Server struct {
	ctl      *control.Controller
	auth     *admin.Service
	hist     History
	tpl      *templates.Library
	status   status.Source
	counters func() map[verify.RSRef]int64
	down     func() map[int][]string
	events   *events.Bus
	stats    *history.History
	log      *slog.Logger
	routes   []route
}

// route is one API operation; the route table drives both the HTTP mux
// and the OpenAPI document.
type route struct {
	method, path string
	summary      string
	perm         admin.Permission // 0: no authentication needed
	body         any              // request body example type, nil for none
	resp         any              // response body example type, nil for none
	status       int              // success status, 0 means 200
	h            http.HandlerFunc
	dry          bool // a configuration change that ?dryRun=true only validates (see apply)
}

// handler is rt's handler; a write that cannot be dry-run refuses
// ?dryRun instead of ignoring it (and committing).
func (rt route) handler() http.HandlerFunc {
	if rt.dry || rt.method == http.MethodGet {
		return rt.h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("dryRun") {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %s cannot be dry-run: only configuration changes can (remove dryRun)", rt.method, rt.path), nil)
			return
		}
		rt.h(w, r)
	}
}

// New returns a Server.
func New(o Options) *Server {
	s := &Server{ctl: o.Control, auth: o.Auth, hist: o.History, tpl: o.Templates, status: o.Status, counters: o.Counters, down: o.Down, events: o.Events, stats: o.StatsHistory, log: o.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.tpl == nil {
		lib, err := templates.BuiltinOnly()
		if err != nil {
			panic(fmt.Sprintf("api: built-in templates: %v", err)) // embedded files, checked by tests
		}
		s.tpl = lib
	}
	s.routes = s.table()
	return s
}

// Handler returns the API's HTTP handler for the admin listener. Requests
// are authenticated by the admin service (Basic, API key or session with
// CSRF token), except login and the OpenAPI document.
func (s *Server) Handler() http.Handler {
	outer := http.NewServeMux()
	inner := http.NewServeMux()
	for _, rt := range s.routes {
		pattern := rt.method + " " + rt.path
		if rt.perm == 0 {
			outer.HandleFunc(pattern, rt.handler())
			continue
		}
		inner.HandleFunc(pattern, s.require(rt.perm, rt.handler()))
	}
	inner.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API resource: "+r.Method+" "+r.URL.Path, nil)
	})
	outer.Handle("/api/v1/", s.auth.Middleware(inner))
	return secureHeaders(outer)
}

// ConsoleHandler returns the API handler for the local console socket: the
// caller is trusted as the console administrator (file permissions on the
// socket are the authentication), and changes are recorded with source cli.
func (s *Server) ConsoleHandler() http.Handler {
	inner := http.NewServeMux()
	for _, rt := range s.routes {
		inner.HandleFunc(rt.method+" "+rt.path, rt.handler())
	}
	inner.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API resource: "+r.Method+" "+r.URL.Path, nil)
	})
	p := admin.Principal{User: "console", Role: config.RoleAdmin, Method: admin.MethodConsole}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r.WithContext(admin.WithPrincipal(r.Context(), p)))
	})
}

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) require(perm admin.Permission, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := admin.PrincipalFrom(r.Context())
		if !ok {
			writeError(w, http.StatusUnauthorized, "authentication required", nil)
			return
		}
		if !p.Can(perm) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("permission denied: role %s lacks %s", p.Role, perm), nil)
			return
		}
		h(w, r)
	}
}

// principal returns the authenticated caller.
func principal(r *http.Request) admin.Principal {
	p, _ := admin.PrincipalFrom(r.Context())
	return p
}

// actor describes the caller for revisions and the audit of changes.
func actor(r *http.Request) control.Actor {
	p := principal(r)
	src := control.SourceAPI
	switch p.Method {
	case admin.MethodSession:
		src = control.SourceWUI
	case admin.MethodConsole:
		src = control.SourceCLI
	}
	return control.Actor{User: p.User, Source: src, RemoteAddr: admin.RemoteHost(r.RemoteAddr), Method: p.Method}
}

// errorBody is the JSON form of every error response.
type errorBody struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Error says what went wrong.
	Error string `json:"error"`
	// Fields lists field errors with their paths, for invalid input.
	Fields []config.FieldError `json:"fields,omitempty"`
	// Revision is the current revision, for conflicts.
	Revision uint64 `json:"revision,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string, fields []config.FieldError) {
	writeJSON(w, status, errorBody{Status: status, Error: msg, Fields: fields})
}

func setETag(w http.ResponseWriter, rev uint64) {
	w.Header().Set("ETag", strconv.Quote(strconv.FormatUint(rev, 10)))
}

// fail maps an error from the write path, store or admin service to a
// response.
func (s *Server) fail(w http.ResponseWriter, err error) {
	var conflict *store.ConflictError
	var rtErr *control.RuntimeError
	var hostErr *control.HostError
	var tooBig *http.MaxBytesError
	var locked *admin.LockedError
	var exists *edit.ExistsError
	if fields, ok := config.IsErrors(err); ok {
		writeError(w, http.StatusBadRequest, "invalid input", fields)
		return
	}
	switch {
	case errors.As(err, &conflict):
		setETag(w, conflict.Current)
		writeJSON(w, http.StatusPreconditionFailed, errorBody{Status: http.StatusPreconditionFailed,
			Error: conflict.Error(), Revision: conflict.Current})
	case errors.As(err, &rtErr):
		writeError(w, http.StatusConflict, err.Error(), nil)
	case errors.As(err, &hostErr):
		writeError(w, http.StatusUnprocessableEntity, err.Error(), hostErr.Fields())
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: at most %d bytes", tooBig.Limit), nil)
	case errors.As(err, &exists):
		writeError(w, http.StatusConflict, exists.Error()+": set replace to overwrite it", nil)
	case errors.As(err, &locked):
		w.Header().Set("Retry-After", strconv.Itoa(locked.RetryAfter(timeNow())))
		writeError(w, http.StatusTooManyRequests, err.Error(), nil)
	case errors.Is(err, control.ErrNotFound), errors.Is(err, store.ErrNotFound),
		errors.Is(err, admin.ErrNoSuchUser), errors.Is(err, admin.ErrNoSuchKey):
		writeError(w, http.StatusNotFound, err.Error(), nil)
	case errors.Is(err, admin.ErrForbidden), errors.Is(err, admin.ErrWrongPassword):
		writeError(w, http.StatusForbidden, err.Error(), nil)
	case errors.Is(err, admin.ErrUserExists), errors.Is(err, admin.ErrLastAdmin):
		writeError(w, http.StatusConflict, err.Error(), nil)
	case errors.Is(err, admin.ErrBadCredentials), errors.Is(err, admin.ErrNoCredentials):
		writeError(w, http.StatusUnauthorized, err.Error(), nil)
	case errors.Is(err, errBadRequest):
		writeError(w, http.StatusBadRequest, err.Error(), nil)
	case errors.Is(err, errUnsupportedType):
		writeError(w, http.StatusUnsupportedMediaType, err.Error(), nil)
	case errors.Is(err, store.ErrNoSpace):
		// The store's message names the condition, not the file.
		s.log.Error("API request failed: the store's disk is full", "err", err)
		writeError(w, http.StatusInsufficientStorage, err.Error(), nil)
	case errors.Is(err, store.ErrDamaged):
		s.log.Error("API request failed: the store file is damaged (fulcrum store check)", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error(), nil)
	default:
		s.log.Error("API request failed", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error(), nil)
	}
}

var (
	errBadRequest      = errors.New("bad request")
	errUnsupportedType = errors.New("unsupported content type")
)

// readBody reads a request body of at most limit bytes. JSON bodies must be
// sent as application/json (YAML also as application/yaml when yamlOK):
// browsers cannot send those cross-site without a preflight, which closes
// the form-post CSRF route.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, yamlOK bool) ([]byte, error) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	ok := ct == "application/json" || (yamlOK && (ct == "application/yaml" || ct == "application/x-yaml" || ct == "text/yaml"))
	if !ok {
		want := "application/json"
		if yamlOK {
			want += " or application/yaml"
		}
		return nil, fmt.Errorf("%w: Content-Type must be %s, got %q", errUnsupportedType, want, ct)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, err
	}
	if ct == "application/json" {
		if err := strictJSON(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// strictJSON refuses a body sent as application/json that is not exactly
// one JSON document (RFC 8259) in UTF-8: the configuration decoder reads
// YAML, a superset, and would otherwise take single quotes, trailing
// commas, comments, YAML, a second document or UTF-16 as well.
func strictJSON(b []byte) error {
	if len(b) >= 2 && (b[0] == 0xff && b[1] == 0xfe || b[0] == 0xfe && b[1] == 0xff || b[0] == 0 || b[1] == 0) {
		return fmt.Errorf("%w: the body is UTF-16; JSON must be UTF-8", errBadRequest)
	}
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: the body is not valid UTF-8", errBadRequest)
	}
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%w: malformed document: not one JSON document (send YAML as application/yaml): at byte %d: %v", errBadRequest, se.Offset, err)
		}
		return fmt.Errorf("%w: malformed document: not one JSON document (send YAML as application/yaml): %v", errBadRequest, err)
	}
	return nil
}

// decodeBody strictly decodes a JSON body into v (see config.DecodeInto).
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := readBody(w, r, maxBody, false)
	if err != nil {
		return err
	}
	return config.DecodeInto(b, v)
}

// ifMatch returns the revision a write is based on, from the If-Match
// header ("12", 12 or W/"12"); ok is false when the header is absent or *.
func ifMatch(r *http.Request) (rev uint64, ok bool, err error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, false, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: If-Match must be a revision number such as \"12\", got %q", errBadRequest, r.Header.Get("If-Match"))
	}
	return n, true, nil
}

// queryBool reads a boolean query parameter.
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: query parameter %s must be true or false, got %q", errBadRequest, name, v)
	}
	return b, nil
}

// queryUint reads an unsigned query parameter with a default.
func queryUint(r *http.Request, name string, def uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: query parameter %s must be a whole number, got %q", errBadRequest, name, v)
	}
	return n, nil
}

// page reads the ?before= and ?limit= (default 100, at most 1000) of a
// listing that pages newest first.
func page(r *http.Request) (before uint64, limit int, err error) {
	before, err = queryUint(r, "before", 0)
	if err != nil {
		return 0, 0, err
	}
	l, err := queryUint(r, "limit", 100)
	if err != nil {
		return 0, 0, err
	}
	return before, int(min(l, 1000)), nil
}

// pathInt reads a numeric path parameter.
func pathInt(r *http.Request, name string) (int, error) {
	v := r.PathValue(name)
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: %s must be a positive number, got %q", control.ErrNotFound, name, v)
	}
	return n, nil
}

// changeResult is the response to a configuration change.
type changeResult struct {
	// Revision is the current revision after the change.
	Revision uint64 `json:"revision"`
	// Committed is false for a dry run or a change that changed nothing.
	Committed bool `json:"committed"`
	// Summary describes the change.
	Summary string `json:"summary"`
	// Diff lists the changed fields.
	Diff []config.Difference `json:"diff"`
}

// apply runs a change through the write path (which audits it) and
// returns the result; on error it has already written the response.
//
// Every configuration change honours ?dryRun=true: a handler that answers
// a dry run its own way sets ch.DryRun itself; for the others apply
// validates the change, answers its diff (changeResult, 200) and reports
// false, so that the handler, which would describe a committed object,
// writes nothing more.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, ch control.Change) (control.Result, bool) {
	base, check, err := ifMatch(r)
	if err != nil {
		s.fail(w, err)
		return control.Result{}, false
	}
	dry, err := queryBool(r, "dryRun")
	if err != nil {
		s.fail(w, err)
		return control.Result{}, false
	}
	answerDry := dry && !ch.DryRun
	ch.DryRun = ch.DryRun || dry
	ch.Base, ch.CheckBase, ch.Actor = base, check, actor(r)
	res, err := s.ctl.Apply(ch)
	if err != nil {
		s.fail(w, err)
		return res, false
	}
	if answerDry {
		setETag(w, res.Snapshot.Revision)
		writeJSON(w, http.StatusOK, result(res))
		return res, false
	}
	setETag(w, res.Snapshot.Revision)
	return res, true
}

func result(res control.Result) changeResult {
	out := changeResult{Revision: res.Snapshot.Revision, Committed: res.Committed, Diff: res.Diff}
	if out.Diff == nil {
		out.Diff = []config.Difference{}
	}
	if res.Committed {
		out.Summary = res.Snapshot.Change.Summary
	} else {
		out.Summary = control.Summarize(res.Diff)
	}
	return out
}
