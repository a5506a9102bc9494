// Package kempapi is Fulcrum's LoadMaster-compatible API: the v1 interface
// /access/<command>?param=value (answers in LoadMaster's XML) and the v2
// interface POST /accessv2 with a JSON object (answers in LoadMaster's
// flattened JSON), so that scripts, SDKs and Terraform providers written
// for a Kemp LoadMaster work unchanged.
//
// The API is off until an administrator enables it (Options.EnableAPI in
// the configuration); while it is off every request is answered 404, as a
// LoadMaster with its API disabled does. Every change goes through the
// single write path (control.Controller.Apply) with source kemp-api, and
// every parameter is validated by config.Validate before anything is
// applied; no parameter reaches a shell or a file path. Callers are
// authenticated by the admin service (HTTP Basic, API keys) and limited
// per client address (by default LoadMaster's 30 calls in 3 seconds;
// beyond it the answer is 429 with LoadMaster's error body and Retry-After).
//
// See docs/kemp-api.md for every command, its parameters and how they map
// onto Fulcrum's configuration.
package kempapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

// Backuper writes backup files; *store.Store implements it.
type Backuper interface {
	Backup(w io.Writer) error
}

// Options configure a Server.
type Options struct {
	// Control is the single write path. Required.
	Control *control.Controller
	// Auth authenticates callers and manages users and API keys. Required.
	Auth *admin.Service
	// Backups writes backup files for the backup command. Required.
	Backups Backuper
	// Runtime reports service status and counters for showvs, stats and
	// vstotals; nil reports every enabled service Down.
	Runtime status.Source
	// Templates is the template library (the native API's); nil means the
	// built-in templates only, with imports refused.
	Templates *templates.Library
	// Version is Fulcrum's version, reported by get?param=version,
	// listapi and licenseinfo.
	Version string
	// RateLimit is the sustained number of calls per second one client
	// address may make; 0 means DefaultRateLimit, rate.Inf no limit.
	RateLimit rate.Limit
	// RateBurst is the number of calls a client may make at once; 0 means
	// DefaultRateBurst.
	RateBurst int
	// AdminAddr is the address the admin listener is bound to (host:port).
	// A network change made through this API is confirmed at once when
	// it is a loopback or wildcard address; otherwise only when the
	// address the request arrived on stays an interface address (see
	// docs/kemp-api.md). "" means unknown.
	AdminAddr string
	// Logger receives errors; nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Server serves the LoadMaster-compatible API.
type Server struct {
	ctl     *control.Controller
	auth    *admin.Service
	backups Backuper
	rt      status.Source
	tpl     *templates.Library
	version string
	log     *slog.Logger
	nowFn   func() time.Time
	limits  *limiter
	started time.Time

	rates rateSampler

	// adminAddr is Options.AdminAddr.
	adminAddr string
}

// New returns a Server.
func New(o Options) *Server {
	s := &Server{ctl: o.Control, auth: o.Auth, backups: o.Backups, rt: o.Runtime, version: o.Version,
		adminAddr: o.AdminAddr, log: o.Logger, nowFn: o.Now, tpl: o.Templates}
	if s.tpl == nil {
		lib, err := templates.BuiltinOnly()
		if err != nil {
			panic(fmt.Sprintf("kempapi: built-in templates: %v", err)) // embedded files, checked by their tests
		}
		s.tpl = lib
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.nowFn == nil {
		s.nowFn = time.Now
	}
	if s.version == "" {
		s.version = "dev"
	}
	limit, burst := o.RateLimit, o.RateBurst
	fromConfig := limit == 0 && burst <= 0
	if fromConfig {
		limit, burst = configLimit(s.ctl.Current().Config.Options.APIRateLimit)
	}
	if limit == 0 {
		limit = DefaultRateLimit
	}
	if burst <= 0 {
		burst = DefaultRateBurst
	}
	s.limits = newLimiter(limit, burst)
	if fromConfig {
		// options.apiRateLimit takes effect with the change that sets it.
		s.ctl.Subscribe(func(snap *control.Snapshot) {
			s.limits.set(configLimit(snap.Config.Options.APIRateLimit))
		})
	}
	s.started = s.now()
	return s
}

// configLimit turns options.apiRateLimit (calls per 3 s; 0 means 30) into
// a rate and burst.
func configLimit(calls int) (rate.Limit, int) {
	if calls <= 0 {
		calls = DefaultRateBurst
	}
	return rate.Limit(calls) / 3, calls
}

func (s *Server) now() time.Time { return s.nowFn() }

// Handler returns the API's handler. Mount it on the admin listener at
// "/access/", "/access", "/accessv2" and "/accessv2/".
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.ServeHTTP) }

// ServeHTTP serves one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v2 := r.URL.Path == "/accessv2" || strings.HasPrefix(r.URL.Path, "/accessv2/")
	write := writeXML
	if v2 {
		write = writeJSON
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")

	if f := s.limits.check(admin.RemoteHost(r.RemoteAddr), s.now()); f != nil {
		retryAfterHeader(w, f)
		write(w, f.result())
		return
	}
	if !s.ctl.Current().Config.Options.EnableAPI {
		write(w, result{status: http.StatusNotFound, message: "Not found: the API interface is not enabled"})
		return
	}
	// A browser page of another origin may not run commands that change
	// anything (see forgery). Every v2 command is a POST that a form can
	// send (a text/plain form body can hold a JSON object), and cross-site
	// requests were always refused whatever the command: those are refused
	// before the body is read; v1 reads from the same site stay open.
	foreign := forgery(r)
	if foreign != nil && (v2 || crossSite(r)) {
		write(w, foreign.result())
		return
	}
	if !v2 && r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		write(w, fail(http.StatusMethodNotAllowed, "Only GET and POST are accepted").result())
		return
	}
	// A v1 file body is read after authentication (see request.fileBody);
	// of a form or v2 body, which may carry the credentials, at most
	// maxPreAuthBody bytes are read before (readPreAuth), the rest after
	// (readRest).
	var req request
	var f *failure
	if v2 {
		req, f = parseV2(w, r)
	} else {
		req, f = parseV1(w, r)
	}
	if f == nil && foreign != nil && !commands[req.cmd].readOnly {
		f = foreign
	}
	if f == nil {
		f = readPreAuth(r, &req)
	}
	if f != nil {
		retryAfterHeader(w, f)
		write(w, f.result())
		return
	}
	who, f := s.authenticate(r, &req)
	if f == nil {
		f = readRest(&req)
	}
	if f != nil {
		retryAfterHeader(w, f)
		write(w, f.result())
		return
	}
	res := s.run(r, req, who)
	write(w, res)
}

// call is one command being run.
type call struct {
	s   *Server
	r   *http.Request
	req request
	p   params
	who admin.Principal
	// links are the kernel's interfaces, read once per call (see ifaces).
	links *[]netcfg.Link
}

// command is one API command.
type command struct {
	// perm is the permission the command needs; permFn, if set, decides
	// from the parameters instead.
	perm   admin.Permission
	permFn func(p params) admin.Permission
	// readOnly commands change nothing; every other command (and every
	// unknown one) is refused when a browser page of another origin makes
	// the request (see forgery).
	readOnly bool
	run      func(c *call) result
	// binary commands take a file: the raw POST body in v1, base64 "data"
	// in v2.
	binary bool
	// bodyLimit bounds a binary body; 0 means 4 MiB.
	bodyLimit int64
}

func (c command) maxBody() int64 {
	if c.bodyLimit > 0 {
		return c.bodyLimit
	}
	return 4 << 20
}

// run dispatches an authenticated request.
func (s *Server) run(r *http.Request, req request, who admin.Principal) result {
	cmd, ok := commands[req.cmd]
	if !ok {
		if why, known := unavailable(req.cmd); known {
			return invalid("Command not available: %s", why).result()
		}
		return fail(http.StatusMethodNotAllowed, "Unknown command").result()
	}
	perm := cmd.perm
	if cmd.permFn != nil {
		perm = cmd.permFn(req.p)
	}
	if !who.Can(perm) {
		s.auth.Audit(who, r.RemoteAddr, "kemp-api", "refused "+req.cmd+": role "+who.Role+" lacks "+perm.String(), false)
		return errPermission.result()
	}
	if req.fileBody != nil {
		b, err := io.ReadAll(req.fileBody)
		if err != nil {
			return bodyError(err).result()
		}
		req.body = b
	}
	if cmd.binary && len(req.body) > int(cmd.maxBody()) {
		return fail(http.StatusRequestEntityTooLarge, "Request too large: at most %d bytes", cmd.maxBody()).result()
	}
	return cmd.run(&call{s: s, r: r, req: req, p: req.p, who: who})
}

// actor describes the caller for revisions and the audit of changes.
func (c *call) actor() control.Actor {
	return control.Actor{User: c.who.User, Source: control.SourceKempAPI, RemoteAddr: admin.RemoteHost(c.r.RemoteAddr), Method: c.who.Method}
}

// apply runs a change through the write path, which audits it. It returns
// the snapshot after the change (the current one when nothing changed).
func (c *call) apply(summary string, mutate func(cfg *config.Config) error) (*control.Snapshot, *failure) {
	return c.change(control.Change{Summary: summary, Mutate: mutate})
}

// edit runs a typed edit (package control/edit) through the write path,
// as apply does.
func (c *call) edit(e control.Edit) (*control.Snapshot, *failure) {
	return c.change(control.Change{Edit: e})
}

func (c *call) change(ch control.Change) (*control.Snapshot, *failure) {
	ch.Actor = c.actor()
	res, err := c.s.ctl.Apply(ch)
	if err != nil {
		return nil, c.s.failure(err)
	}
	return res.Snapshot, nil
}

// failure maps an error of the write path or admin service to an answer.
func (s *Server) failure(err error) *failure {
	var f *failure
	var rt *control.RuntimeError
	var exists *edit.ExistsError
	if errors.As(err, &f) {
		return f
	}
	if errors.As(err, &exists) {
		return invalid("Command Failed: certificate %q already exists (set replace=1 to replace it)", exists.Name)
	}
	if fields, ok := config.IsErrors(err); ok {
		return invalid("%s", describeFieldErrors(fields))
	}
	switch {
	case errors.As(err, &rt):
		return invalid("Command Failed: %s", err.Error())
	case errors.Is(err, admin.ErrForbidden):
		return errPermission
	case errors.Is(err, admin.ErrNoSuchUser):
		return invalid("User does not exist")
	case errors.Is(err, admin.ErrUserExists):
		return invalid("User already exists.")
	case errors.Is(err, admin.ErrLastAdmin):
		return invalid("Command Failed: %s", err.Error())
	case errors.Is(err, admin.ErrWrongPassword):
		return invalid("Command Failed: the current password is wrong")
	case errors.Is(err, admin.ErrNoSuchKey):
		return invalid("Unknown API key")
	case errors.Is(err, store.ErrBadBackup):
		return invalid("Command Failed: %s", err.Error())
	case errors.Is(err, control.ErrNotFound):
		return invalid("%s", err.Error())
	case errors.Is(err, store.ErrNoSpace):
		s.log.Error("kemp api: command failed: the store's disk is full", "err", err)
		return fail(http.StatusInsufficientStorage, "Command Failed: %s", err.Error())
	case errors.Is(err, store.ErrDamaged):
		s.log.Error("kemp api: command failed: the store file is damaged (fulcrum store check)", "err", err)
		return fail(http.StatusInternalServerError, "Command Failed: %s", err.Error())
	}
	s.log.Error("kemp api: command failed", "err", err)
	return fail(http.StatusInternalServerError, "Internal error")
}

// rateSampler turns the data plane's counters into per-second rates for
// stats: each call compares with the sample taken at least a second before.
type rateSampler struct {
	mu    sync.Mutex
	at    time.Time
	conns map[int]int64
	bytes map[int]int64
	reqs  map[int]int64 // layer-7 requests
	// rates computed at the last sample
	connRate map[int]int64
	byteRate map[int]int64
	reqRate  map[int]int64
}

// sample records counters at now and returns connections, bytes and
// layer-7 requests per second per service ID.
func (r *rateSampler) sample(now time.Time, st []status.VS) (conns, bytes, reqs map[int]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at.IsZero() || now.Sub(r.at) >= time.Second {
		elapsed := now.Sub(r.at).Seconds()
		cr, br, rr := map[int]int64{}, map[int]int64{}, map[int]int64{}
		nc, nb, nr := map[int]int64{}, map[int]int64{}, map[int]int64{}
		rate := func(now, before int64) int64 {
			if d := now - before; d > 0 && !r.at.IsZero() && elapsed > 0 {
				return int64(float64(d) / elapsed)
			}
			return 0
		}
		for _, v := range st {
			nc[v.ID], nb[v.ID] = v.TotalConns, v.BytesIn+v.BytesOut
			if v.L7 != nil {
				nr[v.ID] = v.L7.HTTP.Requests
			}
			cr[v.ID], br[v.ID], rr[v.ID] = rate(nc[v.ID], r.conns[v.ID]), rate(nb[v.ID], r.bytes[v.ID]), rate(nr[v.ID], r.reqs[v.ID])
		}
		r.at, r.conns, r.bytes, r.reqs, r.connRate, r.byteRate, r.reqRate = now, nc, nb, nr, cr, br, rr
	}
	return r.connRate, r.byteRate, r.reqRate
}
