package persist

import (
	"slices"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// outcome is the result of trying a persisted server.
type outcome int

const (
	miss outcome = iota // no entry
	hit                 // the persisted server took the connection
	full                // the persisted server is at its limit: schedule, keep the entry
	gone                // the persisted server is Down, disabled, removed or avoided: re-stick
)

// choose is PickInput; c is the connection of accept-changes, else nil.
func (p *Persister) choose(in *Input, c *Conn) (*backend.Server, func(balance.Outcome), error) {
	if p.set.Mode == ModeNone {
		return p.inner.Pick(&in.Request)
	}
	now := p.set.Now()
	var store [2]uint64
	ns := 0

	if p.signer != nil {
		if i, ok := p.fromToken(in, now); ok {
			switch done, o := p.stick(i, in); o {
			case hit:
				return p.servers[i], done, nil
			case full:
				return p.inner.Pick(&in.Request)
			}
		}
	}

	primary, hasPrimary := p.primaryKey(in)
	storePrimary := false
	if hasPrimary {
		srv, done, o := p.lookup(primary, in, now)
		switch o {
		case hit:
			return srv, done, nil
		case full:
			return p.inner.Pick(&in.Request)
		case gone:
			storePrimary = true // re-stick
		case miss:
			storePrimary = p.spec.kind == kindStored
			if c != nil && c.p.set.Always == AlwaysAcceptChanges && c.srv != nil {
				if i, ok := p.byPtr[c.srv]; ok {
					if done, o := p.stick(i, in); o == hit {
						p.table.Store(primary, p.ids[i], now, p.ttl)
						return c.srv, done, nil
					}
				}
			}
		}
		if storePrimary {
			store[ns], ns = primary, ns+1
		}
	}

	// The source address: the key of src, the fallback of the -src modes
	// (consulted when the mode's own key is absent or unknown; a hit also
	// stores the new key for the same server, so a client whose cookies
	// appear stays where it is).
	if p.spec.src {
		if k, ok := p.srcKey(in); ok {
			srv, done, o := p.lookup(k, in, now)
			switch o {
			case hit:
				if storePrimary {
					p.table.Store(primary, p.ids[p.byPtr[srv]], now, p.ttl)
				}
				return srv, done, nil
			case full:
				return p.inner.Pick(&in.Request)
			}
			store[ns], ns = k, ns+1
		}
	}

	srv, done, err := p.inner.Pick(&in.Request)
	if err != nil || ns == 0 {
		return srv, done, err
	}
	if i, ok := p.byPtr[srv]; ok {
		for _, k := range store[:ns] {
			p.table.Store(k, p.ids[i], now, p.ttl)
		}
	}
	return srv, done, nil
}

// lookup tries the server persisted under key k.
func (p *Persister) lookup(k uint64, in *Input, now time.Time) (*backend.Server, func(balance.Outcome), outcome) {
	id, ok := p.table.Lookup(k, now, p.refresh)
	if !ok {
		return nil, nil, miss
	}
	i := p.resolve(id)
	if i < 0 {
		return nil, nil, gone // no longer in this service
	}
	done, o := p.stick(i, in)
	if o != hit {
		return nil, nil, o
	}
	return p.servers[i], done, hit
}

// stick tries to reserve a slot on server i for a persisted client.
func (p *Persister) stick(i int32, in *Input) (func(balance.Outcome), outcome) {
	s := p.servers[i]
	if !p.alive(s) || (len(in.Request.Avoid) > 0 && slices.Contains(in.Request.Avoid, s)) {
		return nil, gone
	}
	done, ok := p.reserve(s)
	if !ok {
		return nil, full
	}
	return done, hit
}

// alive reports whether s may keep its persisted clients: not Down, and
// enabled or draining.
func (p *Persister) alive(s *backend.Server) bool {
	return s.Health() != backend.HealthDown && (s.Settings().Enabled || s.Draining())
}

// resolve returns the index in p.servers of the server the table numbers
// id: the same real server (backend.Key), or, for an entry made by a
// service this one follows or is followed by, the first server with the
// same address. It returns -1 if there is none.
func (p *Persister) resolve(id uint32) int32 {
	if l := p.local.Load(); l != nil && int(id) < len(*l) {
		return (*l)[id]
	}
	p.localMu.Lock()
	defer p.localMu.Unlock()
	keys := p.table.rs.all()
	l := make([]int32, len(keys))
	for n, k := range keys {
		l[n] = -1
		if i, ok := p.byKey[k]; ok {
			l[n] = i
		} else if i, ok := p.byAddr[k.Address]; ok {
			l[n] = i
		}
	}
	p.local.Store(&l)
	if int(id) < len(l) {
		return l[id]
	}
	return -1
}

// fromToken returns the server named by a valid active cookie in in.
func (p *Persister) fromToken(in *Input, now time.Time) (int32, bool) {
	tok := requestCookie(in, p.set.Name)
	if tok == "" {
		return 0, false
	}
	id, _, err := p.signer.verify(tok, now)
	if err != nil {
		return 0, false
	}
	return p.tokenServer(id)
}

// tokenServer returns the index of the server an active cookie names: the
// same real server, or (port following) the first with the same address.
func (p *Persister) tokenServer(id serverID) (int32, bool) {
	if i, ok := p.bySID[id]; ok {
		return i, true
	}
	i, ok := p.byHost[id.hostPart()]
	return i, ok
}
