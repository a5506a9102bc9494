package backend

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Registry owns the *Server of every real server of the configuration in
// force, keyed by Key, so that state survives reloads.
//
// A reload uses it in two steps: Lookup for every real server of the
// candidate configuration (which inserts nothing, so a failed reload leaves
// the Registry as it was), then Commit with the servers of the configuration
// that took effect. A server that Commit leaves out while it still has
// active connections is kept aside as draining until its last connection
// ends; if a later configuration brings it back before that, Lookup returns
// the same *Server and its counters continue.
type Registry struct {
	mu       sync.Mutex
	live     map[Key]*Server
	draining map[Key]*Server
	hook     atomic.Pointer[HealthHook]
}

// HealthHook is called by Server.SetHealth when the health of one of the
// Registry's servers changes from from to to. It runs on the caller's
// goroutine (a health checker) and must not block for long.
type HealthHook func(s *Server, from, to Health)

// SetHealthHook installs f (nil removes it). The data plane uses it to
// apply the "drop connections on RS failure" policy whatever calls
// SetHealth.
func (r *Registry) SetHealthHook(f HealthHook) {
	if f == nil {
		r.hook.Store(nil)
		return
	}
	r.hook.Store(&f)
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{live: map[Key]*Server{}, draining: map[Key]*Server{}}
}

// Lookup returns the live or draining server with key k, or else a new
// server with settings set that is not yet part of the Registry. It does
// not change the settings of an existing server.
func (r *Registry) Lookup(k Key, set Settings) *Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.live[k]; ok {
		return s
	}
	if s, ok := r.draining[k]; ok {
		return s
	}
	s := NewServer(k, set)
	s.reg = r
	return s
}

// Get returns the live server with key k, or nil.
func (r *Registry) Get(k Key) *Server {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[k]
}

// Commit makes servers, which come from Lookup, the live set. Servers that were live and are not in
// servers are released: forgotten at once when idle, otherwise kept as
// draining until their last connection ends.
func (r *Registry) Commit(servers []*Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[Key]*Server, len(servers))
	for _, s := range servers {
		if s.reg == nil { // made by NewServer: adopt it before it is shared
			s.reg = r
		}
		s.removed.Store(false)
		next[s.key] = s
		delete(r.draining, s.key)
	}
	for k, s := range r.live {
		if next[k] == s {
			continue
		}
		// Mark first, then look at Active: a Release that brings Active to
		// zero after this check sees the mark and removes the entry.
		s.removed.Store(true)
		if s.Active() > 0 {
			r.draining[k] = s
		}
	}
	r.live = next
}

// Live returns the keys of the live servers, sorted by VS, address, port.
func (r *Registry) Live() []Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedKeys(r.live)
}

// Draining returns the keys of removed servers that still have active
// connections, sorted.
func (r *Registry) Draining() []Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedKeys(r.draining)
}

// idle is called by a removed server whose last connection ended.
func (r *Registry) idle(s *Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining[s.key] == s && s.Active() == 0 {
		delete(r.draining, s.key)
	}
}

func sortedKeys(m map[Key]*Server) []Key {
	return slices.SortedFunc(maps.Keys(m), func(a, b Key) int {
		switch {
		case a.VS != b.VS:
			return a.VS - b.VS
		case a.Address != b.Address:
			if a.Address < b.Address {
				return -1
			}
			return 1
		default:
			return a.Port - b.Port
		}
	})
}
