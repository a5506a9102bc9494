package persist

import (
	"hash/maphash"
	"maps"
	"slices"
	"sync"
)

// Registry holds the persistence tables of all virtual services, keyed by
// the VS ID, outside any configuration generation: a reload that keeps a
// virtual service keeps its table and every entry in it. Port following
// is a lookup of another ID: a service that follows VS 3 uses Table(3).
//
// All methods are safe for concurrent use.
type Registry struct {
	seed maphash.Seed

	mu     sync.Mutex
	tables map[int]*Table
}

// NewRegistry returns an empty Registry. Keys are hashed with a seed drawn
// here, so they cannot be predicted from outside the process.
func NewRegistry() *Registry {
	return &Registry{seed: maphash.MakeSeed(), tables: map[int]*Table{}}
}

// Table returns the table of the virtual service with the given ID,
// creating it with capacity (≤ 0: DefaultCapacity) if there is none. An
// existing table keeps its entries and takes the new capacity.
func (r *Registry) Table(vsID, capacity int) *Table {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tables[vsID]; ok {
		t.SetCapacity(capacity)
		return t
	}
	t := newTable(vsID, r.seed, capacity)
	r.tables[vsID] = t
	return t
}

// Lookup returns the table of vsID if it exists.
func (r *Registry) Lookup(vsID int) (*Table, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tables[vsID]
	return t, ok
}

// Retain drops the tables of every virtual service not in ids (services
// removed by a reload, or that no longer persist); their entries are gone.
func (r *Registry) Retain(ids ...int) {
	keep := make(map[int]bool, len(ids))
	for _, id := range ids {
		keep[id] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.tables {
		if !keep[id] {
			delete(r.tables, id)
		}
	}
}

// Stats returns the statistics of every table, by VS ID.
func (r *Registry) Stats() []Stats {
	r.mu.Lock()
	ids := slices.Sorted(maps.Keys(r.tables))
	tables := make([]*Table, len(ids))
	for i, id := range ids {
		tables[i] = r.tables[id]
	}
	r.mu.Unlock()
	out := make([]Stats, len(tables))
	for i, t := range tables {
		out[i] = t.Stats()
	}
	return out
}
