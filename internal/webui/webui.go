// Package webui is Fulcrum's web user interface: server-rendered pages
// (html/template) for every screen an administrator uses on an appliance —
// login, dashboard, virtual services with their real servers, certificates,
// system configuration, users and API keys, audit log, configuration
// history and backup — with a little JavaScript (htmx for live fragments,
// uPlot for the graphs and a small app.js) embedded in the binary.
//
// The UI writes configuration only through the control package's single
// write path (control.Controller.Apply), like the native API, and reuses
// its semantics: validation errors come back as config.Errors with field
// paths, which the UI shows next to the form field they name. It accepts
// only browser sessions (admin.Service.Login); every state-changing request
// carries the session's CSRF token in a form field and must be same-origin.
// Pages are served with a strict Content-Security-Policy (no inline script
// or style) and X-Frame-Options DENY.
package webui

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/history"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
	"github.com/fulcrum-lb/fulcrum/internal/verify"
)

//go:embed static
var staticFS embed.FS

//go:embed templates
var templateFS embed.FS

// History is what the UI reads from the store besides the current
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
	// Auth authenticates sessions and manages users and keys. Required.
	Auth *admin.Service
	// History reads revisions, the audit log and backups. Required.
	History History
	// Status is the data plane's status; nil means no status.
	Status status.Source
	// StatsHistory is the statistics history the graphs start from; nil
	// means graphs of what the open page sees only.
	StatsHistory *history.History
	// Templates is the application template library; nil means the
	// built-in templates only.
	Templates *templates.Library
	// Logger receives error logs; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Events is the appliance's event log, shown by the Logs page; nil
	// means an empty log (and no test events).
	Events *events.Bus
	// Verify gives deployment verification the data plane's view: Counters
	// (to tell which real server answered) and Down (the real servers that
	// are Down). Roots, VS and Timeout are set per run. Zero means
	// verification without them.
	Verify verify.Options
}

// Server serves the web UI.
type Server struct {
	ctl    *control.Controller
	auth   *admin.Service
	hist   History
	tpl    *templates.Library
	status status.Source
	events *events.Bus
	stats  *history.History
	log    *slog.Logger
	now    func() time.Time
	// verifyOpt are the Options.Verify.
	verifyOpt verify.Options

	pages   map[string]*template.Template
	static  fs.FS
	assetV  map[string]string // static path → content hash, for cache busting
	metrics *sampler

	flashMu sync.Mutex
	flashes map[string]flash // session ID → message for its next page
}

// New returns a Server. It panics only if the embedded page templates or
// built-in application templates do not parse, which tests rule out.
func New(o Options) *Server {
	s := &Server{ctl: o.Control, auth: o.Auth, hist: o.History, tpl: o.Templates, status: o.Status, events: o.Events, stats: o.StatsHistory, log: o.Logger, now: o.Now,
		verifyOpt: o.Verify, flashes: map[string]flash{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.tpl == nil {
		lib, err := templates.BuiltinOnly()
		if err != nil {
			panic(fmt.Sprintf("webui: built-in templates: %v", err)) // embedded files, checked by their tests
		}
		s.tpl = lib
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	s.static = sub
	s.assetV = hashAssets(sub)
	s.pages = s.parsePages()
	s.metrics = newSampler(maxSamples)
	return s
}

// hashAssets returns a short content hash of every embedded static file.
func hashAssets(fsys fs.FS) map[string]string {
	out := map[string]string{}
	_ = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		out[path] = hex.EncodeToString(h[:6])
		return nil
	})
	return out
}

// Handler returns the UI's HTTP handler, to be mounted at "/" of the admin
// listener (the API keeps /api/).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(s.serveStatic)))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.loginSubmit)
	mux.HandleFunc("POST /logout", s.logout)

	read, write, op, users, secrets := admin.PermRead, admin.PermWrite, admin.PermOperate, admin.PermUsers, admin.PermReadSecrets
	mux.HandleFunc("GET /{$}", s.page(read, s.dashboard))
	mux.HandleFunc("GET /ui/metrics", s.page(read, s.metricsJSON))
	mux.HandleFunc("GET /ui/history", s.page(read, s.historyJSON))

	mux.HandleFunc("GET /vs", s.page(read, s.vsList))
	mux.HandleFunc("GET /vs/live", s.page(read, s.vsListLive))
	mux.HandleFunc("GET /vs/new", s.page(write, s.vsNewPage))
	mux.HandleFunc("POST /vs/new", s.action(write, s.vsCreate))
	mux.HandleFunc("GET /vs/{id}", s.page(read, s.vsPage))
	mux.HandleFunc("GET /vs/{id}/live", s.page(read, s.vsLive))
	mux.HandleFunc("POST /vs/{id}/section/{section}", s.action(write, s.vsUpdate))
	mux.HandleFunc("POST /vs/{id}/delete", s.action(write, s.vsDelete))
	mux.HandleFunc("POST /vs/{id}/subvs", s.action(write, s.subVSCreate))
	mux.HandleFunc("POST /vs/{id}/rs", s.action(write, s.rsCreate))
	mux.HandleFunc("GET /vs/{id}/rs/{rsid}", s.page(read, s.rsPage))
	mux.HandleFunc("POST /vs/{id}/rs/{rsid}", s.action(write, s.rsUpdate))
	mux.HandleFunc("POST /vs/{id}/rs/{rsid}/enable", s.action(op, s.rsEnable))
	mux.HandleFunc("POST /vs/{id}/rs/{rsid}/disable", s.action(op, s.rsDisable))
	mux.HandleFunc("POST /vs/{id}/rs/{rsid}/delete", s.action(write, s.rsDelete))

	mux.HandleFunc("GET /templates", s.page(read, s.templatesPage))
	mux.HandleFunc("POST /templates", s.action(write, s.templateImport))
	mux.HandleFunc("GET /templates/{name}", s.page(write, s.templatePage))
	mux.HandleFunc("POST /templates/{name}", s.action(write, s.templateUse))
	mux.HandleFunc("POST /templates/{name}/delete", s.action(write, s.templateDelete))

	mux.HandleFunc("GET /verify", s.page(read, s.verifyPage))
	mux.HandleFunc("POST /verify", s.action(op, s.verifyRun))

	mux.HandleFunc("GET /certificates", s.page(read, s.certsPage))
	mux.HandleFunc("POST /certificates", s.action(write, s.certImport))
	mux.HandleFunc("POST /certificates/{name}/delete", s.action(write, s.certDelete))

	mux.HandleFunc("GET /system", s.page(read, s.systemPage))
	mux.HandleFunc("POST /system", s.action(write, s.systemUpdate))

	mux.HandleFunc("GET /logs", s.page(read, s.logsPage))
	mux.HandleFunc("GET /system/logging", s.page(read, s.loggingPage))
	mux.HandleFunc("POST /system/logging", s.action(write, s.loggingUpdate))
	mux.HandleFunc("POST /system/logging/email", s.action(write, s.emailUpdate))
	mux.HandleFunc("POST /system/logging/syslog", s.action(write, s.syslogAdd))
	mux.HandleFunc("POST /system/logging/syslog/{i}", s.action(write, s.syslogUpdate))
	mux.HandleFunc("POST /system/logging/syslog/{i}/delete", s.action(write, s.syslogDelete))
	mux.HandleFunc("POST /system/logging/webhooks", s.action(write, s.webhookAdd))
	mux.HandleFunc("POST /system/logging/webhooks/{i}", s.action(write, s.webhookUpdate))
	mux.HandleFunc("POST /system/logging/webhooks/{i}/delete", s.action(write, s.webhookDelete))
	mux.HandleFunc("POST /system/logging/test", s.action(op, s.testEvent))

	mux.HandleFunc("GET /network", s.page(read, s.networkPage))
	mux.HandleFunc("POST /network", s.action(write, s.networkUpdate))
	mux.HandleFunc("POST /network/iface/{name}", s.action(write, s.ifaceUpdate))
	mux.HandleFunc("POST /network/iface/{name}/delete", s.action(write, s.ifaceDelete))
	mux.HandleFunc("POST /network/vlan", s.action(write, s.vlanAdd))
	mux.HandleFunc("POST /network/routes", s.action(write, s.routeAdd))
	mux.HandleFunc("POST /network/routes/delete", s.action(write, s.routeDelete))
	mux.HandleFunc("POST /network/confirm", s.action(write, s.networkConfirm))

	mux.HandleFunc("GET /users", s.page(read, s.usersPage))
	mux.HandleFunc("POST /users", s.action(users, s.userCreate))
	mux.HandleFunc("POST /users/{name}/role", s.action(users, s.userRole))
	mux.HandleFunc("POST /users/{name}/password", s.action(read, s.userPassword))
	mux.HandleFunc("POST /users/{name}/delete", s.action(users, s.userDelete))
	mux.HandleFunc("POST /api-keys", s.action(read, s.keyCreate))
	mux.HandleFunc("POST /api-keys/{id}/revoke", s.action(read, s.keyRevoke))

	mux.HandleFunc("GET /audit", s.page(users, s.auditPage))
	mux.HandleFunc("GET /history", s.page(read, s.historyPage))
	mux.HandleFunc("GET /history/{rev}", s.page(read, s.revisionPage))
	mux.HandleFunc("POST /history/{rev}/rollback", s.action(write, s.rollback))
	mux.HandleFunc("GET /backup", s.page(read, s.backupPage))
	mux.HandleFunc("GET /backup/download", s.page(secrets, s.backupDownload))
	mux.HandleFunc("POST /backup/restore", s.action(write, s.restore))

	mux.HandleFunc("/", s.notFound)
	return secureHeaders(mux)
}

// contentSecurityPolicy allows scripts, styles, fonts and fetches from the
// admin plane itself only: no inline script or style attribute, no frames.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// serveStatic serves an embedded asset. A request whose ?v= matches the
// asset's content hash may be cached for a year.
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path
	v, ok := s.assetV[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == v {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("ETag", `"`+v+`"`)
	http.ServeFileFS(w, r, s.static, name)
}

// asset returns the URL of a static file with its cache-busting version.
func (s *Server) asset(name string) string {
	return "/static/" + name + "?v=" + s.assetV[name]
}

// handlerFunc is a UI handler for an authenticated user.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p admin.Principal)

// authenticate returns the session's principal, or answers the request
// (a redirect to the login page) and returns false.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (admin.Principal, bool) {
	p, err := s.auth.SessionPrincipal(r)
	if err == nil {
		return p, true
	}
	target := "/login"
	switch {
	case errors.Is(err, admin.ErrSessionExpired):
		http.SetCookie(w, admin.ClearCookie())
		target += "?expired=1"
		if r.Method == http.MethodGet && r.URL.Path != "/" && !isFragment(r) {
			target += "&next=" + urlQueryEscape(r.URL.RequestURI())
		}
	case errors.Is(err, admin.ErrNoCredentials):
		if r.Method == http.MethodGet && r.URL.Path != "/" && !isFragment(r) {
			target += "?next=" + urlQueryEscape(r.URL.RequestURI())
		}
	default:
		s.log.Error("webui: session lookup failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return admin.Principal{}, false
	}
	if isFragment(r) {
		// htmx and app.js follow this header instead of swapping a login
		// page into the current one.
		w.Header().Set("HX-Redirect", target)
		w.WriteHeader(http.StatusUnauthorized)
		return admin.Principal{}, false
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return admin.Principal{}, false
}

// isFragment reports whether r asks for a fragment or JSON for a live
// update rather than a whole page.
func isFragment(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" || r.Header.Get("X-Fulcrum-Live") == "1"
}

// page wraps a handler of a safe (GET) request that needs perm.
func (s *Server) page(perm admin.Permission, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		if !p.Can(perm) {
			s.forbidden(w, r, p, perm)
			return
		}
		h(w, r, p)
	}
}

// Body size limits of form posts.
const (
	maxFormBody   = 1 << 20
	maxUploadBody = 64 << 20
)

// action wraps a handler of a state-changing form post that needs perm: the
// session must be live, the request same-origin (Origin and
// Sec-Fetch-Site), and the form's csrf field (or the X-CSRF-Token header)
// must hold the session's token. The form is parsed before h runs.
func (s *Server) action(perm admin.Permission, h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		// Refuse a cross-site request before reading its body.
		if !sameOriginForm(r) {
			s.refuseCSRF(w, r, p)
			return
		}
		limit := int64(maxFormBody)
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			limit = maxUploadBody
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		var err error
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			err = r.ParseMultipartForm(8 << 20)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			s.errorPage(w, r, p, http.StatusBadRequest, "The form could not be read: "+err.Error())
			return
		}
		tok := r.PostFormValue("csrf")
		if h := r.Header.Get(admin.CSRFHeader); h != "" {
			tok = h
		}
		if err := admin.CheckCSRF(r, p, tok); err != nil {
			s.refuseCSRF(w, r, p)
			return
		}
		if !p.Can(perm) {
			s.forbidden(w, r, p, perm)
			return
		}
		h(w, r, p)
	}
}

// sameOriginForm is the UI's own, stricter origin check of a form post:
// browsers send Sec-Fetch-Site and Origin with every POST, and the UI's
// forms are always same-origin.
func sameOriginForm(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		want := "https://" + r.Host
		if r.TLS == nil {
			want = "http://" + r.Host
		}
		if !strings.EqualFold(o, want) {
			return false
		}
	}
	return true
}

func (s *Server) refuseCSRF(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	s.auth.Audit(p, r.RemoteAddr, "csrf", "web UI form post refused: "+r.Method+" "+r.URL.Path, false)
	s.errorPage(w, r, p, http.StatusForbidden, "This request was refused: it did not come from a Fulcrum page of this session (cross-site request or stale form). Reload the page and try again.")
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, p admin.Principal, perm admin.Permission) {
	s.errorPage(w, r, p, http.StatusForbidden, "Your role ("+p.Role+") does not allow this ("+perm.String()+" permission needed).")
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	s.errorPage(w, r, p, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
}

// actor describes the caller for revisions.
func actor(r *http.Request, p admin.Principal) control.Actor {
	return control.Actor{User: p.User, Source: control.SourceWUI, RemoteAddr: admin.RemoteHost(r.RemoteAddr), Method: p.Method}
}

// flash is a message shown once on the next page of a session.
type flash struct {
	Kind   string // "ok", "error" or "secret"
	Text   string
	Secret string // for "secret": a value shown once
}

// maxFlashes bounds the flash table.
const maxFlashes = 10_000

func (s *Server) setFlash(p admin.Principal, kind, text string) {
	if p.SessionID == "" {
		return
	}
	s.flashMu.Lock()
	defer s.flashMu.Unlock()
	if len(s.flashes) >= maxFlashes {
		clear(s.flashes)
	}
	s.flashes[p.SessionID] = flash{Kind: kind, Text: text}
}

func (s *Server) takeFlash(p admin.Principal) *flash {
	s.flashMu.Lock()
	defer s.flashMu.Unlock()
	f, ok := s.flashes[p.SessionID]
	if !ok {
		return nil
	}
	delete(s.flashes, p.SessionID)
	return &f
}

// redirect ends a successful post (post/redirect/get) with a message.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, p admin.Principal, to, msg string) {
	if msg != "" {
		s.setFlash(p, "ok", msg)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
