package control

import (
	"io"

	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Restore replaces the configuration with that of a backup file, keeping
// the users and API keys: RestoreWith with the default options.
func (c *Controller) Restore(r io.Reader, actor Actor) (*Snapshot, error) {
	snap, _, err := c.RestoreWith(r, actor, store.RestoreOptions{})
	return snap, err
}

// RestoreWith restores a backup file through the write path, as Apply
// makes a change: the store reads and checks the backup (see
// store.RestoreWith for the options: accept an unverified backup, restore
// users and API keys too, or with o.DryRun only answer what the restore
// would change), the data plane compiles its configuration and swaps it in,
// and only then the store commits the configuration (and the users and
// API keys) as one transaction. A data-plane refusal comes back as a
// *RuntimeError with nothing stored; a commit that fails puts the data
// plane back on the current configuration. So the current snapshot always
// names the configuration that runs.
//
// It returns the new snapshot (the current one for a dry run) and what
// changed.
func (c *Controller) RestoreWith(r io.Reader, actor Actor, o store.RestoreOptions) (*Snapshot, *store.RestorePlan, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, plan, err := c.store.PrepareRestore(r, o)
	if err != nil {
		return nil, nil, err
	}
	cur := c.current.Load()
	if o.DryRun {
		return cur, plan, nil
	}
	cand := p.Config()
	netSnap := c.net.Load()
	hostPlan, err := c.makePlan(netSnap.Network, cand)
	if err != nil {
		return nil, nil, err
	}
	hostCommit, hostRevert, err := c.prepareHost(hostPlan)
	if err != nil {
		return nil, nil, err
	}
	if err := c.applyRuntime(cand, hostPlan); err != nil {
		hostRevert()
		return nil, nil, &RuntimeError{Err: err}
	}
	rev, plan, err := c.store.CommitRestore(cur.Revision, store.Change{User: actor.User, Source: actor.Source, RemoteAddr: actor.RemoteAddr}, p)
	if err != nil {
		c.rollback(cur)
		hostRevert()
		return nil, nil, err
	}
	hostCommit()
	c.setRuntimeError(nil)
	next := &Snapshot{Revision: rev.Revision, Change: rev.Change, Config: cand}
	c.current.Store(next)
	ns := *netSnap
	ns.Plan = hostPlan
	c.net.Store(&ns)
	c.log.Info("backup restored", "revision", next.Revision, "user", actor.User, "source", actor.Source, "summary", rev.Summary)
	c.notify(next)
	return next, plan, nil
}

// rollback puts the data plane back on cur, with the current plan, after
// it took a configuration that could not be stored.
func (c *Controller) rollback(cur *Snapshot) {
	if err := c.applyRuntime(cur.Config, c.net.Load().Plan); err != nil {
		c.log.Error("data plane could not return to the current configuration", "err", err)
	}
}
