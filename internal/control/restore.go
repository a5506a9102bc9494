package control

import (
	"errors"
	"io"

	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// optionRestorer is a Store that restores with options and reports what
// changed; *store.Store is one.
type optionRestorer interface {
	RestoreWith(r io.Reader, ch store.Change, o store.RestoreOptions) (store.Revision, *store.RestorePlan, error)
}

// RestoreWith is Restore with options (see store.RestoreWith): it can
// accept an unverified backup, restore users and API keys too, or, with
// o.DryRun, only answer what the restore would change. It returns the new
// snapshot (the current one for a dry run) and what changed.
func (c *Controller) RestoreWith(r io.Reader, actor Actor, o store.RestoreOptions) (*Snapshot, *store.RestorePlan, error) {
	rs, ok := c.store.(optionRestorer)
	if !ok {
		return nil, nil, errors.New("restore: this store cannot restore with options")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rev, plan, err := rs.RestoreWith(r, store.Change{User: actor.User, Source: actor.Source, RemoteAddr: actor.RemoteAddr}, o)
	if err != nil {
		return nil, nil, err
	}
	if o.DryRun {
		return c.current.Load(), plan, nil
	}
	rev.Config.SetDefaults()
	if c.runtime != nil {
		if err := c.runtime.Apply(rev.Config); err != nil {
			c.setRuntimeError(err)
			c.log.Error("data plane could not run the restored configuration", "revision", rev.Revision, "err", err)
		}
	}
	next := &Snapshot{Revision: rev.Revision, Change: rev.Change, Config: rev.Config}
	c.current.Store(next)
	c.log.Info("backup restored", "revision", next.Revision, "user", actor.User, "source", actor.Source, "summary", rev.Summary)
	c.notify(next)
	return next, plan, nil
}
