package health

import (
	"errors"
	"fmt"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// planned is a candidate configuration turned into states and wanted
// checks, built without the lock.
type planned struct {
	forest  []*tree       // every top-level service's plan, in configuration order
	changed []*tree       // the ones built by this Sync (the others are kept)
	updates []srvUpdate   // new data-plane servers of the kept ones
	byID    map[int]*tree // forest by service ID; nil when IDs repeat
	health  config.HealthTimers
}

// wanted is the check a real server should have.
type wanted struct {
	spec    Spec
	fp      string
	checker Checker
}

// plan builds the states and checks of cfg, with the data plane's servers
// and the services' packet marks (nil: none). A top-level service
// unchanged since the last Sync (config.SameService), whose services keep
// their marks (and global timers unchanged) keeps its plan; only the
// data-plane servers of its real servers are looked up again. m.syncMu
// is held.
func (m *Monitor) plan(cfg *config.Config, servers func(backend.Key) *backend.Server, marks func(vsID int) uint32) (*planned, error) {
	p := &planned{health: cfg.Options.Health}
	// Keys hold the service ID, so real servers of different services can
	// only collide when service IDs repeat (cfg not validated): then every
	// key is checked against every other and nothing is reused.
	if m.ids == nil {
		m.ids = map[int]struct{}{}
	}
	clear(m.ids)
	unique := true
	var count func(vs *config.VirtualService)
	count = func(vs *config.VirtualService) {
		if _, dup := m.ids[vs.ID]; dup {
			unique = false
		}
		m.ids[vs.ID] = struct{}{}
		for i := range vs.SubVSs {
			count(&vs.SubVSs[i])
		}
	}
	for i := range cfg.VirtualServices {
		count(&cfg.VirtualServices[i])
	}
	reuse := unique && m.byID != nil && cfg.Options.Health == m.health
	var keys map[backend.Key]*rsState // all of cfg's when IDs repeat
	if !unique {
		keys = map[backend.Key]*rsState{}
	}
	checkers := map[string]Checker{}
	var errs []error
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if reuse {
			if old := m.byID[vs.ID]; old != nil && config.SameService(old.vs, vs) && old.sameMarks(marks) {
				p.forest = append(p.forest, old)
				for _, v := range old.services {
					for _, s := range v.servers {
						// s.srv is written by apply alone, under syncMu.
						if srv := servers(s.key); srv != s.srv {
							p.updates = append(p.updates, srvUpdate{s: s, srv: srv})
						}
					}
				}
				continue
			}
		}
		t := m.buildTree(cfg, vs, fmt.Sprintf("virtualServices[%d]", i), servers, marks, keys, checkers, &errs)
		p.forest = append(p.forest, t)
		p.changed = append(p.changed, t)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("health: %w", errors.Join(errs...))
	}
	switch {
	case reuse && len(p.changed) == 0 && len(p.forest) == len(m.forest):
		p.byID = m.byID // the same trees
	case unique:
		p.byID = make(map[int]*tree, len(p.forest))
		for _, t := range p.forest {
			p.byID[t.vs.ID] = t
		}
	}
	return p, nil
}

// buildTree plans vs and its SubVSs afresh. keys, when not nil, holds the
// real servers of the whole configuration, to find duplicates across
// services; otherwise duplicates are looked for within vs.
func (m *Monitor) buildTree(cfg *config.Config, top *config.VirtualService, path string,
	servers func(backend.Key) *backend.Server, marks func(vsID int) uint32,
	keys map[backend.Key]*rsState, checkers map[string]Checker, errs *[]error) *tree {
	tr := &tree{vs: config.CloneService(top)}
	if keys == nil {
		keys = map[backend.Key]*rsState{}
	}
	checked := map[backend.Key]bool{}
	var walk func(vs *config.VirtualService, path string, parent *vsState)
	walk = func(vs *config.VirtualService, path string, parent *vsState) {
		v := newVSState(vs, parent)
		v.mark = markOf(marks, vs.ID, parent)
		tr.services = append(tr.services, v)
		byID := make(map[int]*config.RealServer, len(vs.RealServers))
		for i := range vs.RealServers {
			byID[vs.RealServers[i].ID] = &vs.RealServers[i]
		}
		for i := range vs.RealServers {
			rs := &vs.RealServers[i]
			s := newRSState(v, rs)
			if _, dup := keys[s.key]; dup {
				*errs = append(*errs, fmt.Errorf("%s.realServers[%d]: duplicate real server %s", path, i, s.key))
				continue
			}
			keys[s.key] = s
			v.servers = append(v.servers, s)
			s.leaderCfg = leaderOf(rs, byID)
			s.srv = servers(s.key)
		}
		// A real server is checked when its service is enabled and checked
		// and it, or a real server following it, is enabled.
		if v.enabled && v.check != TypeNone {
			for i, s := range v.servers {
				if !s.enabled {
					continue
				}
				l := s.leaderCfg
				key := backend.Key{VS: vs.ID, Address: l.Address, Port: l.Port}
				if checked[key] {
					continue
				}
				spec := specFor(&cfg.Options, vs, l)
				spec.Target.Mark = v.mark
				spec.Params.RootCAs = m.opts.RootCAs
				pk := spec.paramsKey()
				c, ok := checkers[pk]
				if !ok {
					var err error
					if c, err = NewChecker(spec.Params); err != nil {
						*errs = append(*errs, fmt.Errorf("%s.healthCheck (real server %d): %w", path, i, err))
						continue
					}
					checkers[pk] = c
				}
				checked[key] = true
				tr.checks = append(tr.checks, keyedCheck{key: key, w: wanted{spec: spec, fp: spec.fingerprint(), checker: c}})
			}
		}
		for i := range vs.SubVSs {
			walk(&vs.SubVSs[i], fmt.Sprintf("%s.subVSs[%d]", path, i), v)
		}
	}
	walk(top, path, nil)
	return tr
}

// leaderOf follows rs's Follow chain to the real server whose check it
// takes. A chain that loops or leaves the service is ignored: rs is then
// checked itself.
func leaderOf(rs *config.RealServer, byID map[int]*config.RealServer) *config.RealServer {
	cur := rs
	for range len(byID) + 1 {
		if cur.Follow == 0 {
			return cur
		}
		next := byID[cur.Follow]
		if next == nil || next == rs {
			return rs
		}
		cur = next
	}
	return rs
}

// markOf returns the packet mark of the checks of the service with ID id
// whose parent is parent (nil for a top-level one): its own in marks,
// else its parent's, as the data plane marks a SubVS's connections with
// its service's mark.
func markOf(marks func(vsID int) uint32, id int, parent *vsState) uint32 {
	var mark uint32
	if marks != nil {
		mark = marks(id)
	}
	if mark == 0 && parent != nil {
		mark = parent.mark
	}
	return mark
}

// sameMarks reports whether the services of tr keep the marks they were
// planned with. A parent comes before its SubVSs, so its mark is
// compared (and found equal) before theirs are resolved from it.
func (tr *tree) sameMarks(marks func(vsID int) uint32) bool {
	for _, v := range tr.services {
		if markOf(marks, v.id, v.parent) != v.mark {
			return false
		}
	}
	return true
}
