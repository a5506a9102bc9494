// Package control is Fulcrum's single write path. Every source of change —
// web UI, native API, LoadMaster-compatible API, CLI, templates — builds a
// Change and calls Apply, which validates the candidate, has the data plane
// compile it, commits it to the store as a new revision and swaps the
// current snapshot atomically. Nothing else writes configuration. Edits
// of one object are typed values of package control/edit; a restore of a
// backup (RestoreWith) takes the same path. See docs/architecture.md.
package control

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Sources of a change, recorded with each revision.
const (
	SourceWUI      = "wui"
	SourceAPI      = "api"
	SourceKempAPI  = "kemp-api"
	SourceCLI      = "cli"
	SourceTemplate = "template"
	SourceSystem   = "system"
)

// Store is the persistence the controller needs; *store.Store implements
// it. A clustered store (etcd) will implement the same methods.
type Store interface {
	Current() (store.Revision, error)
	Commit(base uint64, ch store.Change, cfg *config.Config) (store.Revision, error)
	Revision(n uint64) (store.Revision, error)
	// PrepareRestore reads and checks a backup and says what restoring it
	// would change, writing nothing.
	PrepareRestore(r io.Reader, o store.RestoreOptions) (*store.PreparedRestore, *store.RestorePlan, error)
	// CommitRestore stores a prepared backup as a new revision (and its
	// users and API keys, if asked), in one transaction, if the current
	// revision is still base.
	CommitRestore(base uint64, ch store.Change, p *store.PreparedRestore) (store.Revision, *store.RestorePlan, error)
	IDHighWater() (vs, rs int, err error)
}

// preparer is a Store that can encode a configuration for the commit
// ahead of it; *store.Store is one.
type preparer interface {
	Prepare(cfg *config.Config) (*store.Prepared, error)
	CommitPrepared(base uint64, ch store.Change, p *store.Prepared) (store.Revision, error)
}

// preparedResult is the outcome of preparer.Prepare.
type preparedResult struct {
	p   *store.Prepared
	err error
}

// Runtime is the data plane: Apply compiles a configuration and swaps it in,
// or returns an error and keeps running the previous one.
type Runtime interface {
	Apply(cfg *config.Config) error
}

// Snapshot is one committed, validated generation of the configuration.
// Its Config must not be modified.
type Snapshot struct {
	// Revision is the store revision the configuration was committed as.
	Revision uint64
	// Change describes who made the revision, when and why.
	Change store.Change
	// Config is the immutable configuration.
	Config *config.Config
}

// Actor says who makes a change and through which interface.
type Actor struct {
	// User is the admin-plane user name.
	User string
	// Source is one of the Source constants.
	Source string
	// RemoteAddr is the client's address, if any.
	RemoteAddr string
	// Method is how User authenticated (an admin.Method* value: basic,
	// apikey, session or console), which names the interface in the audit
	// log as it does for the user's sign-ins. A change with a Method is
	// audited when it commits (see SetAuditor); one without (made by
	// Fulcrum itself) is not.
	Method string
}

// Auditor writes audit log entries; *admin.Service is one.
type Auditor interface {
	// AuditAs records that user, authenticated by method, from remote,
	// did action (detail says what), successfully or not.
	AuditAs(user, method, remote, action, detail string, success bool)
}

// Change is one request to change the configuration.
type Change struct {
	// Base is the revision the change was prepared against. When CheckBase
	// is set, a Base other than the current revision is refused with a
	// *store.ConflictError; otherwise the change applies to whatever is
	// current.
	Base uint64
	// CheckBase enables the Base check (optimistic concurrency).
	CheckBase bool
	// Actor made the change.
	Actor Actor
	// Summary describes the change; empty means one made from the diff.
	Summary string
	// Mutate edits a private copy of the current configuration.
	Mutate func(cfg *config.Config) error
	// Edit is a typed edit (package control/edit), applied to the same
	// copy after Mutate; when Summary is empty its summary is the
	// change's.
	Edit Edit
	// DryRun validates and diffs without compiling or committing.
	DryRun bool
}

// Edit is one typed edit of the configuration, such as adding a real
// server; package control/edit has one for each edit the front ends offer.
type Edit interface {
	// Apply makes the edit on cfg, a private copy of the current
	// configuration, and returns its summary for the history and the
	// audit log ("" for one made from the diff). A missing object is an
	// error wrapping ErrNotFound.
	Apply(cfg *config.Config) (summary string, err error)
}

// Result is the outcome of Apply.
type Result struct {
	// Snapshot is the current snapshot after the change (unchanged on a dry
	// run or when nothing changed).
	Snapshot *Snapshot
	// Diff lists what the change changes.
	Diff []config.Difference
	// Committed is true when a new revision was made.
	Committed bool
}

// ErrNotFound is returned (wrapped) by Mutate functions when the object
// they edit does not exist.
var ErrNotFound = errors.New("not found")

// Controller owns the current snapshot and serialises changes.
type Controller struct {
	mu      sync.Mutex
	store   Store
	runtime Runtime
	log     *slog.Logger
	current atomic.Pointer[Snapshot]

	subMu sync.Mutex
	subs  []func(*Snapshot)

	rtErr atomic.Pointer[string]

	auditor atomic.Pointer[Auditor]

	// host prepares the host's network for each plan (nil: unmanaged,
	// for the reason unmanaged); guarded by mu.
	host      Host
	unmanaged string
	// net is the current network settings and plan.
	net atomic.Pointer[NetSnapshot]
	// netTimer rolls back an unconfirmed network change; closed stops
	// network changes. Both guarded by mu.
	netTimer *time.Timer
	closed   bool
}

// SetAuditor has the controller write, through a, the audit entry
// ("config": the revision and its summary) of every change a user commits
// (an Actor with a Method). The front ends do not audit configuration
// changes themselves.
func (c *Controller) SetAuditor(a Auditor) { c.auditor.Store(&a) }

// audit writes the audit entry of revision rev committed by actor.
func (c *Controller) audit(actor Actor, rev uint64, summary string) {
	p := c.auditor.Load()
	if p == nil || *p == nil || actor.Method == "" {
		return
	}
	(*p).AuditAs(actor.User, actor.Method, actor.RemoteAddr, "config", fmt.Sprintf("revision %d: %s", rev, summary), true)
}

// Options are the optional parts of a controller made by NewWith.
type Options struct {
	// Host prepares the host's network for each plan before the data
	// plane takes it; nil leaves the host alone.
	Host Host
	// Unmanaged says why Host is nil (shown in plans, the status and the
	// API), e.g. "--manage-network off"; "" gives a general sentence.
	Unmanaged string
	// Logger receives logs; nil means slog.Default().
	Logger *slog.Logger
}

// New loads the current revision from st and hands it to rt, leaving the
// host's network alone: NewWith without a Host.
func New(st Store, rt Runtime, log *slog.Logger) (*Controller, error) {
	return NewWith(st, rt, Options{Logger: log})
}

// NewWith loads the current revision from st, rolls back a network
// revision left unconfirmed (see RollBackUnconfirmedNetwork), prepares
// o.Host for the plan of both and hands the configuration and plan to rt:
// so a service's VIP is on its interface before the data plane binds it.
// A host or data-plane error at start-up does not stop the controller (the
// admin plane must come up so that the problem can be fixed); it is logged
// and reported by RuntimeError.
func NewWith(st Store, rt Runtime, o Options) (*Controller, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	rev, err := st.Current()
	if err != nil {
		return nil, fmt.Errorf("load current configuration: %w", err)
	}
	cfg := rev.Config
	if cfg == nil {
		cfg = config.Default()
	}
	cfg.SetDefaults()
	c := &Controller{store: st, runtime: rt, log: log, host: o.Host, unmanaged: o.Unmanaged}
	c.current.Store(&Snapshot{Revision: rev.Revision, Change: rev.Change, Config: cfg})
	if err := c.loadNetwork(); err != nil {
		return nil, err
	}
	c.startPlan(cfg)
	return c, nil
}

// Current returns the current snapshot. Callers must not modify it.
func (c *Controller) Current() *Snapshot { return c.current.Load() }

// RuntimeError returns the data plane's last start-up error, or "".
func (c *Controller) RuntimeError() string {
	if p := c.rtErr.Load(); p != nil {
		return *p
	}
	return ""
}

func (c *Controller) setRuntimeError(err error) {
	s := ""
	if err != nil {
		s = err.Error()
	}
	c.rtErr.Store(&s)
}

// Subscribe registers fn to be called, in order, with every new snapshot.
// fn must not call Apply.
func (c *Controller) Subscribe(fn func(*Snapshot)) {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.subs = append(c.subs, fn)
}

// Apply runs the write path: copy → Mutate and Edit → defaults and IDs →
// Validate → data-plane compile → commit → swap → audit (see SetAuditor) →
// notify. Validation errors come back as config.Errors; a stale Base as
// *store.ConflictError; a data-plane refusal (for example a port already
// in use) as a *RuntimeError. On any error nothing is stored and the data
// plane keeps the current snapshot.
func (c *Controller) Apply(ch Change) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.current.Load()
	if ch.CheckBase && ch.Base != cur.Revision {
		return Result{Snapshot: cur}, &store.ConflictError{Base: ch.Base, Current: cur.Revision}
	}
	cand := cur.Config.Clone()
	if ch.Mutate != nil {
		if err := ch.Mutate(cand); err != nil {
			return Result{Snapshot: cur}, err
		}
	}
	summary := ch.Summary
	if ch.Edit != nil {
		s, err := ch.Edit.Apply(cand)
		if err != nil {
			return Result{Snapshot: cur}, err
		}
		if summary == "" {
			summary = s
		}
	}
	cand.SetDefaults()
	vsFloor, rsFloor, err := c.store.IDHighWater()
	if err != nil {
		return Result{Snapshot: cur}, err
	}
	cand.AssignIDsAbove(cur.Config, vsFloor, rsFloor)
	// Validate and Diff only read cand: on a large configuration each takes
	// milliseconds, so they run side by side.
	diffs := make(chan []config.Difference, 1)
	go func() { diffs <- config.Diff(cur.Config, cand) }()
	if err := cand.Validate(); err != nil {
		<-diffs
		return Result{Snapshot: cur}, err
	}
	diff := <-diffs
	res := Result{Snapshot: cur, Diff: diff}
	// What the candidate needs of the host: a setting that cannot work
	// under the network settings is refused like a validation error.
	netSnap := c.net.Load()
	plan, err := c.makePlan(netSnap.Network, cand)
	if err != nil {
		return res, err
	}
	if ch.DryRun || len(diff) == 0 {
		return res, nil
	}
	// A store that can encode the candidate ahead of the commit does so
	// while the data plane compiles it.
	var prepared chan preparedResult
	if p, ok := c.store.(preparer); ok {
		prepared = make(chan preparedResult, 1)
		go func() {
			pr, err := p.Prepare(cand)
			prepared <- preparedResult{pr, err}
		}()
	}
	hostCommit, hostRevert, err := c.prepareHost(plan)
	if err != nil {
		if prepared != nil {
			<-prepared
		}
		return res, err
	}
	if err := c.applyRuntime(cand, plan); err != nil {
		if prepared != nil {
			<-prepared
		}
		hostRevert()
		return res, &RuntimeError{Err: err}
	}
	if summary == "" {
		summary = Summarize(diff)
	}
	change := store.Change{User: ch.Actor.User, Source: ch.Actor.Source, RemoteAddr: ch.Actor.RemoteAddr, Summary: summary}
	var rev store.Revision
	if prepared != nil {
		pr := <-prepared
		err = pr.err
		if err == nil {
			rev, err = c.store.(preparer).CommitPrepared(cur.Revision, change, pr.p)
		}
	} else {
		rev, err = c.store.Commit(cur.Revision, change, cand)
	}
	if err != nil {
		c.rollback(cur)
		hostRevert()
		return res, fmt.Errorf("saving the change: %w", err)
	}
	hostCommit()
	c.setRuntimeError(nil)
	next := &Snapshot{Revision: rev.Revision, Change: rev.Change, Config: cand}
	c.current.Store(next)
	ns := *netSnap
	ns.Plan = plan
	c.net.Store(&ns)
	c.log.Info("configuration applied", "revision", next.Revision, "user", ch.Actor.User, "source", ch.Actor.Source, "summary", summary)
	c.audit(ch.Actor, next.Revision, next.Change.Summary)
	c.notify(next)
	res.Snapshot, res.Committed = next, true
	return res, nil
}

func (c *Controller) notify(s *Snapshot) {
	c.subMu.Lock()
	subs := append([]func(*Snapshot){}, c.subs...)
	c.subMu.Unlock()
	for _, fn := range subs {
		fn(s)
	}
}

// RuntimeError is a refusal by the data plane to run a configuration.
type RuntimeError struct{ Err error }

// Error implements error.
func (e *RuntimeError) Error() string {
	return "data plane refused the configuration: " + e.Err.Error()
}

// Unwrap returns the data plane's error.
func (e *RuntimeError) Unwrap() error { return e.Err }

// Summarize describes a diff in one line of at most about 200 characters.
// An object (a list item named by its id or name) that was added or removed
// whole is shown once ("+ virtualServices[id=3]") instead of field by field.
func Summarize(diff []config.Difference) string {
	if len(diff) == 0 {
		return "no changes"
	}
	type group struct {
		object     string
		adds, dels int
		changes    []config.Difference
	}
	var groups []*group
	byObject := map[string]*group{}
	for _, d := range diff {
		obj := d.Path
		if i := strings.LastIndex(obj, "]"); i >= 0 {
			obj = obj[:i+1]
		}
		g := byObject[obj]
		if g == nil {
			g = &group{object: obj}
			byObject[obj] = g
			groups = append(groups, g)
		}
		switch {
		case d.Old == nil:
			g.adds++
		case d.New == nil:
			g.dels++
		}
		g.changes = append(g.changes, d)
	}
	var parts []string
	for _, g := range groups {
		n := len(g.changes)
		switch {
		case g.object != g.changes[0].Path && g.adds == n && n > 1:
			parts = append(parts, "+ "+g.object)
		case g.object != g.changes[0].Path && g.dels == n && n > 1:
			parts = append(parts, "- "+g.object)
		default:
			for _, d := range g.changes {
				parts = append(parts, d.String())
			}
		}
	}
	var kept []string
	size := 0
	for _, p := range parts {
		if size+len(p) > 200 && len(kept) > 0 {
			break
		}
		kept = append(kept, p)
		size += len(p) + 2
	}
	out := strings.Join(kept, "; ")
	if rest := len(parts) - len(kept); rest > 0 {
		out += fmt.Sprintf("; and %d more", rest)
	}
	return out
}
