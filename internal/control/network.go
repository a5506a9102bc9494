package control

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Host is the host's network as the controller drives it;
// *hostnet.Manager implements it.
type Host interface {
	// Caps says whether the host's network is managed.
	Caps() netcfg.Caps
	// Prepare adds what p needs that the host lacks; commit then removes
	// what the previous plan had and p no longer needs, revert undoes
	// Prepare's additions. An error names the field and leaves the host
	// as it was.
	Prepare(p *netcfg.Plan) (commit, revert func(), err error)
	// Links lists the host's interfaces.
	Links() ([]netcfg.Link, error)
}

// PlanRuntime is a Runtime that takes, with the configuration, the plan
// of what the host was prepared with (marks, transparency, notes);
// dataplane.Engine is one. A Runtime without it gets Apply(cfg).
type PlanRuntime interface {
	ApplyPlan(cfg *config.Config, p *netcfg.Plan) error
}

// NetStore keeps the node's network revisions; *store.Store is one. A
// controller whose Store is not one has empty network settings and
// refuses network changes.
type NetStore interface {
	NetworkCurrent() (store.NetRevision, error)
	NetworkConfirmed() (store.NetRevision, error)
	CommitNetwork(base uint64, ch store.Change, n *netcfg.Network, confirmed bool) (store.NetRevision, error)
	ConfirmNetwork(rev uint64) error
	NetworkHistory(before uint64, limit int) ([]store.Change, error)
}

// NetChange is one request to change the node's network settings.
type NetChange struct {
	// Base is the network revision the change was prepared against,
	// checked when CheckBase is set (a *store.ConflictError otherwise).
	Base uint64
	// CheckBase enables the Base check.
	CheckBase bool
	// Actor made the change.
	Actor Actor
	// Summary describes the change; empty means one made from the diff.
	Summary string
	// Mutate edits a private copy of the current settings.
	Mutate func(n *netcfg.Network) error
	// DryRun validates, plans and diffs without touching the host or the
	// store.
	DryRun bool
	// Confirmed applies the change without a confirm window: it is kept
	// at once (fulcrum setup, a confirmed rollback).
	Confirmed bool
}

// NetResult is the outcome of ApplyNetwork.
type NetResult struct {
	// Revision is the current network revision after the change.
	Revision uint64
	// Diff lists what the change changes.
	Diff []config.Difference
	// Committed is true when a new revision was made.
	Committed bool
	// Deadline is when the change is rolled back unless confirmed; zero
	// when it was made confirmed (or not committed).
	Deadline time.Time
}

// NetSnapshot is the current network settings and the plan applied.
type NetSnapshot struct {
	// Revision is the current network revision (0: none stored).
	Revision uint64
	// Change describes who made it, when and why.
	Change store.Change
	// Network is the settings; never nil; must not be modified.
	Network *netcfg.Network
	// Deadline is when the revision is rolled back unless confirmed;
	// zero when it is confirmed.
	Deadline time.Time
	// Plan is what the current configuration needs of the host under
	// Network, as applied; must not be modified.
	Plan *netcfg.Plan
}

// HostError is a refusal by the host's network (package hostnet) to take
// a plan; its message names the field.
type HostError struct{ Err error }

// Error implements error.
func (e *HostError) Error() string { return "the host's network refused the change: " + e.Err.Error() }

// Unwrap returns the host's error.
func (e *HostError) Unwrap() error { return e.Err }

// Fields returns the field the host names (hostnet.Error), or nil.
func (e *HostError) Fields() []config.FieldError {
	var fe interface{ FieldError() config.FieldError }
	if errors.As(e.Err, &fe) {
		return []config.FieldError{fe.FieldError()}
	}
	return nil
}

// ErrNoNetStore is returned by the network methods of a controller whose
// store keeps no network settings.
var ErrNoNetStore = errors.New("this store keeps no network settings")

// ErrUnmanaged is returned (wrapped, with the reason) by Links when
// Fulcrum does not manage the host's network.
var ErrUnmanaged = errors.New("the host's network is not managed by Fulcrum")

// SetHost sets the host whose network the controller prepares for each
// plan; nil leaves the host alone (unmanaged). Set it before the first
// change, or give it to NewWith so that the host is prepared before the
// data plane first opens its sockets: SetHost on a running controller
// prepares the host for the current plan and re-applies the data plane.
func (c *Controller) SetHost(h Host) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.host = h
	c.startPlan(c.current.Load().Config)
}

// Network returns the current network settings, their revision, the
// pending deadline and the plan applied.
func (c *Controller) Network() NetSnapshot { return *c.net.Load() }

// Links lists the host's interfaces as the kernel has them.
func (c *Controller) Links() ([]netcfg.Link, error) {
	c.mu.Lock()
	h, reason := c.host, c.unmanaged
	c.mu.Unlock()
	if h == nil {
		if reason == "" {
			reason = "no host was given to the controller"
		}
		return nil, fmt.Errorf("%w: %s", ErrUnmanaged, reason)
	}
	return h.Links()
}

// NetworkHistory returns the changes of the network revisions older than
// before (0: all), newest first, at most limit (<= 0: 100).
func (c *Controller) NetworkHistory(before uint64, limit int) ([]store.Change, error) {
	ns, ok := c.store.(NetStore)
	if !ok {
		return nil, ErrNoNetStore
	}
	return ns.NetworkHistory(before, limit)
}

// caps are the host's capabilities, or why it is not managed.
func (c *Controller) caps() netcfg.Caps {
	if c.host != nil {
		return c.host.Caps()
	}
	return netcfg.Caps{Reason: c.unmanaged}
}

// makePlan is netcfg.Make under the host's capabilities.
func (c *Controller) makePlan(n *netcfg.Network, cfg *config.Config) (*netcfg.Plan, error) {
	return netcfg.Make(n, cfg, c.caps())
}

// prepareHost prepares the host for p; a no-op without a managed host.
func (c *Controller) prepareHost(p *netcfg.Plan) (commit, revert func(), err error) {
	if c.host == nil || !p.Managed {
		return func() {}, func() {}, nil
	}
	commit, revert, err = c.host.Prepare(p)
	if err != nil {
		return nil, nil, &HostError{Err: err}
	}
	return commit, revert, nil
}

// applyRuntime hands cfg and p to the data plane.
func (c *Controller) applyRuntime(cfg *config.Config, p *netcfg.Plan) error {
	if c.runtime == nil {
		return nil
	}
	if pr, ok := c.runtime.(PlanRuntime); ok {
		return pr.ApplyPlan(cfg, p)
	}
	return c.runtime.Apply(cfg)
}

// loadNetwork reads the current network revision, after rolling back an
// unconfirmed one, into the controller's network snapshot (without a
// plan).
func (c *Controller) loadNetwork() error {
	ns, ok := c.store.(NetStore)
	if !ok {
		c.net.Store(&NetSnapshot{Network: &netcfg.Network{}})
		return nil
	}
	if _, err := RollBackUnconfirmedNetwork(ns, c.log); err != nil {
		return err
	}
	cur, err := ns.NetworkCurrent()
	if err != nil {
		return fmt.Errorf("load network settings: %w", err)
	}
	c.net.Store(&NetSnapshot{Revision: cur.Revision, Change: cur.Change, Network: cur.Network})
	return nil
}

// startPlan plans cfg under the current network settings, prepares the
// host and hands both to the data plane, as at start: a failure is
// logged and reported by RuntimeError, never fatal, so that the admin
// plane comes up to fix it. c.mu is held (or the controller is new).
func (c *Controller) startPlan(cfg *config.Config) {
	snap := *c.net.Load()
	var errs []error
	plan, err := c.makePlan(snap.Network, cfg)
	if err != nil {
		errs = append(errs, fmt.Errorf("the network settings of revision %d do not fit the configuration: %w", snap.Revision, err))
		plan, _ = netcfg.Make(nil, cfg, netcfg.Caps{Reason: "the network settings do not fit the configuration"})
	}
	if !plan.Managed && !snap.Network.Empty() {
		c.log.Warn("network settings not applied: "+plan.Reason, "revision", snap.Revision)
	}
	commit, _, err := c.prepareHost(plan)
	if err != nil {
		errs = append(errs, err)
	} else {
		commit()
	}
	if err := c.applyRuntime(cfg, plan); err != nil {
		errs = append(errs, err)
	}
	snap.Plan = plan
	c.net.Store(&snap)
	if err := errors.Join(errs...); err != nil {
		c.setRuntimeError(err)
		c.log.Error("the stored configuration could not be started in full", "revision", c.current.Load().Revision, "network", snap.Revision, "err", err)
		return
	}
	c.setRuntimeError(nil)
}

// RollBackUnconfirmedNetwork makes the newest confirmed network settings
// current again, as a new confirmed revision, when the current one is
// unconfirmed: Fulcrum stopped inside its confirm window. It changes
// nothing on the host; call it at start before anything is applied. It
// reports whether it rolled back.
func RollBackUnconfirmedNetwork(ns NetStore, log *slog.Logger) (bool, error) {
	if log == nil {
		log = slog.Default()
	}
	cur, err := ns.NetworkCurrent()
	if err != nil {
		return false, fmt.Errorf("load network settings: %w", err)
	}
	if cur.Confirmed {
		return false, nil
	}
	target, err := ns.NetworkConfirmed()
	if err != nil {
		return false, fmt.Errorf("load confirmed network settings: %w", err)
	}
	summary := fmt.Sprintf("rolled back: revision %d was not confirmed within %d s (Fulcrum stopped inside the window); settings of revision %d",
		cur.Revision, cur.Network.Confirm(), target.Revision)
	rev, err := ns.CommitNetwork(cur.Revision, store.Change{User: "system", Source: SourceSystem, Summary: summary}, target.Network, true)
	if err != nil {
		return false, fmt.Errorf("roll back network revision %d: %w", cur.Revision, err)
	}
	log.Warn("network change rolled back at start", "revision", rev.Revision, "unconfirmed", cur.Revision, "restored", target.Revision)
	return true, nil
}

// ApplyNetwork runs the write path of the network settings: copy →
// Mutate → Validate → plan with the current configuration → prepare the
// host → data plane → store → commit on the host. Unless ch.Confirmed,
// the change must be confirmed (ConfirmNetwork) within the settings'
// confirm window, or the newest confirmed settings are applied again as a
// new revision. Validation errors come back as config.Errors (paths under
// "network." or of the virtual service a setting no longer fits), a stale
// Base as *store.ConflictError, a host refusal as *HostError, a data-plane
// refusal as *RuntimeError; on any error nothing is stored and the host
// and data plane keep the current settings.
func (c *Controller) ApplyNetwork(ch NetChange) (NetResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applyNetwork(ch)
}

func (c *Controller) applyNetwork(ch NetChange) (NetResult, error) {
	ns, ok := c.store.(NetStore)
	if !ok {
		return NetResult{}, ErrNoNetStore
	}
	if c.closed {
		return NetResult{}, errors.New("the controller is closed")
	}
	cur := c.net.Load()
	res := NetResult{Revision: cur.Revision, Deadline: cur.Deadline}
	if ch.CheckBase && ch.Base != cur.Revision {
		return res, &store.ConflictError{Base: ch.Base, Current: cur.Revision}
	}
	cand := cur.Network.Clone()
	if ch.Mutate != nil {
		if err := ch.Mutate(cand); err != nil {
			return res, err
		}
	}
	if err := cand.Validate(); err != nil {
		return res, err
	}
	if caps := c.caps(); !caps.Managed && !cand.Empty() {
		reason := caps.Reason
		if reason == "" {
			reason = ErrUnmanaged.Error()
		}
		return res, config.Errors{{Path: "network", Message: "cannot be applied: " + reason + "; the settings are refused rather than stored unused"}}
	}
	cfg := c.current.Load().Config
	plan, err := c.makePlan(cand, cfg)
	if err != nil {
		return res, err
	}
	res.Diff = netcfg.Diff(cur.Network, cand)
	if ch.DryRun || len(res.Diff) == 0 {
		if len(res.Diff) == 0 && ch.Confirmed && !cur.Deadline.IsZero() && !ch.DryRun {
			return res, c.confirmNetwork(cur.Revision, ch.Actor)
		}
		return res, nil
	}
	commit, revert, err := c.prepareHost(plan)
	if err != nil {
		return res, err
	}
	if err := c.applyRuntime(cfg, plan); err != nil {
		revert()
		return res, &RuntimeError{Err: err}
	}
	summary := ch.Summary
	if summary == "" {
		summary = Summarize(res.Diff)
	}
	change := store.Change{User: ch.Actor.User, Source: ch.Actor.Source, RemoteAddr: ch.Actor.RemoteAddr, Summary: summary}
	rev, err := ns.CommitNetwork(cur.Revision, change, cand, ch.Confirmed)
	if err != nil {
		if rerr := c.applyRuntime(cfg, cur.Plan); rerr != nil {
			c.log.Error("data plane could not return to the current network plan", "err", rerr)
		}
		revert()
		return res, fmt.Errorf("saving the network change: %w", err)
	}
	commit()
	next := &NetSnapshot{Revision: rev.Revision, Change: rev.Change, Network: cand, Plan: plan}
	c.stopNetTimer()
	if !ch.Confirmed {
		window := time.Duration(cand.Confirm()) * time.Second
		next.Deadline = time.Now().Add(window)
		c.startNetTimer(rev.Revision, window)
	}
	c.net.Store(next)
	res.Revision, res.Committed, res.Deadline = rev.Revision, true, next.Deadline
	c.log.Info("network settings applied", "revision", rev.Revision, "user", ch.Actor.User, "source", ch.Actor.Source,
		"summary", summary, "confirmed", ch.Confirmed, "deadline", next.Deadline)
	detail := fmt.Sprintf("network revision %d: %s", rev.Revision, summary)
	if !ch.Confirmed {
		detail += fmt.Sprintf(" (to be confirmed within %d s)", cand.Confirm())
	}
	c.auditAction(ch.Actor, "network", detail)
	return res, nil
}

// ConfirmNetwork keeps the pending network revision rev: its confirm
// window ends and it is not rolled back. Confirming the current,
// already confirmed revision is no error; any other revision is.
func (c *Controller) ConfirmNetwork(rev uint64, a Actor) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.confirmNetwork(rev, a)
}

func (c *Controller) confirmNetwork(rev uint64, a Actor) error {
	ns, ok := c.store.(NetStore)
	if !ok {
		return ErrNoNetStore
	}
	cur := c.net.Load()
	if rev != cur.Revision {
		return fmt.Errorf("network revision %d is not the current one (%d): %w", rev, cur.Revision, ErrNotFound)
	}
	if cur.Deadline.IsZero() {
		return nil
	}
	if err := ns.ConfirmNetwork(rev); err != nil {
		return err
	}
	c.stopNetTimer()
	next := *cur
	next.Deadline = time.Time{}
	c.net.Store(&next)
	c.log.Info("network change confirmed", "revision", rev, "user", a.User, "source", a.Source)
	c.auditAction(a, "network-confirm", fmt.Sprintf("network revision %d confirmed", rev))
	return nil
}

// startNetTimer rolls network revision rev back when window ends. c.mu is
// held.
func (c *Controller) startNetTimer(rev uint64, window time.Duration) {
	c.netTimer = time.AfterFunc(window, func() { c.expire(rev, 0) })
}

// stopNetTimer stops a pending rollback. c.mu is held.
func (c *Controller) stopNetTimer() {
	if c.netTimer != nil {
		c.netTimer.Stop()
		c.netTimer = nil
	}
}

// rollbackRetries bounds the attempts to roll back an unconfirmed change
// whose rollback fails (5 s apart).
const rollbackRetries = 12

// expire rolls back network revision rev if it is still current and
// unconfirmed: the newest confirmed settings are applied through the same
// path as a new, confirmed revision.
func (c *Controller) expire(rev uint64, attempt int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.net.Load()
	if c.closed || cur.Revision != rev || cur.Deadline.IsZero() {
		return
	}
	c.netTimer = nil
	ns := c.store.(NetStore)
	target, err := ns.NetworkConfirmed()
	var res NetResult
	if err == nil {
		summary := fmt.Sprintf("rolled back: revision %d was not confirmed within %d s", rev, cur.Network.Confirm())
		system := Actor{User: "system", Source: SourceSystem}
		res, err = c.applyNetwork(NetChange{Base: rev, CheckBase: true, Actor: system, Summary: summary, Confirmed: true,
			Mutate: func(n *netcfg.Network) error { *n = *target.Network.Clone(); return nil }})
		if err == nil && !res.Committed {
			// Nothing differs from the confirmed settings: keep rev as it is.
			err = c.confirmNetwork(rev, system)
		}
	}
	if err != nil {
		c.log.Error("network change could not be rolled back", "revision", rev, "attempt", attempt+1, "err", err)
		c.auditAs("system", "system", "", "network-rollback", fmt.Sprintf("network revision %d: rollback failed: %v", rev, err), false)
		if attempt+1 < rollbackRetries {
			c.netTimer = time.AfterFunc(5*time.Second, func() { c.expire(rev, attempt+1) })
		}
		return
	}
	c.log.Warn("network change not confirmed in time: rolled back", "unconfirmed", rev, "revision", res.Revision, "restored", target.Revision)
	c.auditAs("system", "system", "", "network-rollback", fmt.Sprintf("network revision %d was not confirmed within %d s: rolled back to the settings of revision %d as revision %d",
		rev, cur.Network.Confirm(), target.Revision, res.Revision), true)
}

// auditAction writes an audit entry of actor's action, if actor is a
// signed-in user (see audit).
func (c *Controller) auditAction(actor Actor, action, detail string) {
	if actor.Method == "" {
		return
	}
	c.auditAs(actor.User, actor.Method, actor.RemoteAddr, action, detail, true)
}

// auditAs writes an audit entry through the auditor, if there is one.
func (c *Controller) auditAs(user, method, remote, action, detail string, success bool) {
	p := c.auditor.Load()
	if p == nil || *p == nil {
		return
	}
	(*p).AuditAs(user, method, remote, action, detail, success)
}

// Close stops a pending network rollback timer; the controller takes no
// network change after it. The data plane and host are closed by their
// owners.
func (c *Controller) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.stopNetTimer()
}
