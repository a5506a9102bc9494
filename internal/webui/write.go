package webui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// errStale is returned by a change whose object was changed by someone
// else since the form was shown.
type errStale struct {
	rev  store.Change
	what string
}

func (e *errStale) Error() string {
	who := e.rev.User
	if who == "" {
		who = "someone"
	}
	return fmt.Sprintf("%s was changed by %s (revision %d, %s) since you opened this page. "+
		"Your entries are kept below: review them and save again.", e.what, who, e.rev.Revision, e.rev.Summary)
}

// formEdit is one change made from a form: the write path with the UI's
// actor, an optimistic check that the edited object did not change since
// the form's revision, and the posted values' parse errors merged with the
// validation errors.
type formEdit struct {
	// base is the revision the form was shown at (its "rev" field).
	base uint64
	// object extracts the edited object from a configuration, for the
	// staleness check; nil skips the check. what names it for the message.
	object func(c *config.Config) any
	what   string
	// parsed are the posted values' parse errors.
	parsed config.Errors
	// summary describes the change; "" makes one from the diff, or takes
	// the edit's.
	summary string
	// mutate changes the configuration; with an edit it runs first, to
	// find where the edited object is (for the errors' paths).
	mutate func(c *config.Config) error
	// edit is the typed edit (package control/edit) the form makes, if
	// any.
	edit control.Edit
}

// formRevision reads the form's "rev" field.
func formRevision(r *http.Request) uint64 {
	n, _ := strconv.ParseUint(r.PostFormValue("rev"), 10, 64)
	return n
}

// run applies the edit. With parse errors it only validates (a dry run)
// and returns the parse and validation errors together.
func (s *Server) run(r *http.Request, p admin.Principal, e formEdit) (control.Result, error) {
	var baseObj []byte
	if e.object != nil && e.base != 0 && e.base != s.ctl.Current().Revision {
		old, err := s.hist.Revision(e.base)
		if err == nil && old.Config != nil {
			old.Config.SetDefaults()
			baseObj, _ = json.Marshal(e.object(old.Config))
		}
	}
	var stale *errStale
	ch := control.Change{Actor: actor(r, p), Summary: e.summary, DryRun: len(e.parsed) > 0, Edit: e.edit,
		Mutate: func(c *config.Config) error {
			if baseObj != nil {
				cur, _ := json.Marshal(e.object(c))
				if string(cur) != string(baseObj) {
					snap := s.ctl.Current()
					stale = &errStale{rev: snap.Change, what: e.what}
					stale.rev.Revision = snap.Revision
					return stale
				}
			}
			if e.mutate == nil {
				return nil
			}
			return e.mutate(c)
		}}
	res, err := s.ctl.Apply(ch)
	if len(e.parsed) > 0 {
		if es, ok := config.IsErrors(err); ok {
			return res, withoutParsed(es, e.parsed)
		}
		if err == nil {
			return res, e.parsed
		}
		return res, err
	}
	return res, err
}

// explain puts a write-path error into f (field errors next to their
// fields, under prefix) and returns the status to answer with, or 0 when
// the error is not one a form can show.
func explain(f *form, err error, prefix string) int {
	var conflict *store.ConflictError
	var rtErr *control.RuntimeError
	var stale *errStale
	if es, ok := config.IsErrors(err); ok {
		f.addErrors(es, prefix)
		return http.StatusUnprocessableEntity
	}
	switch {
	case errors.As(err, &stale):
		f.addGeneral(stale.Error())
		return http.StatusConflict
	case errors.As(err, &conflict):
		f.addGeneral("The configuration changed since you opened this page (now revision " +
			strconv.FormatUint(conflict.Current, 10) + "). Review your entries and save again.")
		return http.StatusConflict
	case errors.As(err, &rtErr):
		f.addGeneral(rtErr.Error() + ". Nothing was changed.")
		return http.StatusConflict
	case errors.Is(err, control.ErrNotFound):
		f.addGeneral(err.Error())
		return http.StatusNotFound
	case errors.Is(err, store.ErrNoSpace):
		f.addGeneral("The disk that holds the configuration is full: " + err.Error() + ". Free space on it and save again.")
		return http.StatusInsufficientStorage
	}
	return 0
}

// committedMsg is the confirmation shown after a change.
func committedMsg(res control.Result, what string) string {
	if !res.Committed {
		return what + ": nothing changed."
	}
	return fmt.Sprintf("%s — saved as revision %d.", what, res.Snapshot.Revision)
}

// vsPath returns the path of the service or SubVS id in c
// ("virtualServices[2]" or "virtualServices[2].subVSs[0]"), or "".
func vsPath(c *config.Config, id int) string {
	for i := range c.VirtualServices {
		v := &c.VirtualServices[i]
		if v.ID == id {
			return fmt.Sprintf("virtualServices[%d]", i)
		}
		for j := range v.SubVSs {
			if v.SubVSs[j].ID == id {
				return fmt.Sprintf("virtualServices[%d].subVSs[%d]", i, j)
			}
		}
	}
	return ""
}

// rsPath returns the path of real server rsID of service vsID, or "".
func rsPath(c *config.Config, vsID, rsID int) string {
	p := vsPath(c, vsID)
	v := c.VirtualServiceByID(vsID)
	if p == "" || v == nil {
		return ""
	}
	for i := range v.RealServers {
		if v.RealServers[i].ID == rsID {
			return fmt.Sprintf("%s.realServers[%d]", p, i)
		}
	}
	return ""
}

// parent returns the parent of SubVS id, or nil.
func parent(c *config.Config, id int) *config.VirtualService {
	for i := range c.VirtualServices {
		for j := range c.VirtualServices[i].SubVSs {
			if c.VirtualServices[i].SubVSs[j].ID == id {
				return &c.VirtualServices[i]
			}
		}
	}
	return nil
}

// pathID reads a numeric path parameter.
func pathID(r *http.Request, name string) (int, bool) {
	n, err := strconv.Atoi(r.PathValue(name))
	return n, err == nil && n > 0
}
