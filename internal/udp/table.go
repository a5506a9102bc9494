package udp

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// table is a bounded map of sessions with approximate least-recently-used
// eviction. Lookups (one per datagram) take no lock: they read a
// sync.Map. Inserts and removals (one per session) lock one of a few
// shards that index the entries for sampling.
//
// When the table is full, an insert evicts the entry of lowest age (rank)
// in a small random sample of entries (the approach Redis takes for its
// LRU): a new client is always served, and a session that keeps exchanging
// datagrams is very unlikely to be the one evicted, while one-datagram
// floods from spoofed sources age out first. The proxy ranks sessions so
// that those that have not proved a round trip come first (see
// session.rank), and takes room before it opens a socket (evict).
type table[K comparable, V any] struct {
	max    int
	age    func(V) int64 // eviction rank; smallest goes first
	n      atomic.Int64
	m      sync.Map // K → *entry[K, V]
	shards [tableShards]tableShard[K, V]
}

const (
	tableShards = 16
	// evictSample is how many entries an eviction compares.
	evictSample = 8
)

type tableShard[K comparable, V any] struct {
	mu   sync.Mutex
	list []*entry[K, V]
}

type entry[K comparable, V any] struct {
	key   K
	val   V
	shard int
	idx   int // position in its shard's list, or unlisted, or removed
}

// Values of entry.idx other than positions, read and written with the
// entry's shard locked.
const (
	removed  = -1 // removed from the table
	unlisted = -2 // in the map, not yet in its shard's list (an insert under way)
)

// testHookStored, when set by a test, runs in insert between storing the
// key in the map and listing the entry.
var testHookStored func()

// newTable returns a table of at most limit entries (at least 1) whose
// entries' ages age reads.
func newTable[K comparable, V any](limit int, age func(V) int64) *table[K, V] {
	return &table[K, V]{max: max(1, limit), age: age}
}

// get returns the value of k.
func (t *table[K, V]) get(k K) (v V, ok bool) {
	e, ok := t.m.Load(k)
	if !ok {
		return v, false
	}
	return e.(*entry[K, V]).val, true
}

// len returns the number of entries.
func (t *table[K, V]) len() int { return int(t.n.Load()) }

// insert adds k → v. If k is present already, it returns its value with
// loaded set and changes nothing. Otherwise, when the table is full, it
// first evicts an entry and returns it in evicted (evictedOK set); the
// caller ends the evicted session.
func (t *table[K, V]) insert(k K, v V) (actual V, loaded bool, evicted V, evictedOK bool) {
	e := &entry[K, V]{key: k, val: v, shard: rand.IntN(tableShards), idx: unlisted}
	if prev, ok := t.m.LoadOrStore(k, e); ok {
		return prev.(*entry[K, V]).val, true, evicted, false
	}
	if testHookStored != nil {
		testHookStored()
	}
	sh := &t.shards[e.shard]
	sh.mu.Lock()
	if e.idx == removed { // a remove of k came between the store and here
		sh.mu.Unlock()
		return v, false, evicted, false
	}
	e.idx = len(sh.list)
	sh.list = append(sh.list, e)
	sh.mu.Unlock()
	if int(t.n.Add(1)) > t.max {
		if victim := t.evictOne(e); victim != nil {
			evicted, evictedOK = victim.val, true
		}
	}
	return v, false, evicted, evictedOK
}

// evictOne removes and returns the oldest of a random sample of entries
// other than keep, or nil if there is none.
func (t *table[K, V]) evictOne(keep *entry[K, V]) *entry[K, V] {
	for range 4 * tableShards { // bounded: concurrent removals may empty shards under us
		var best *entry[K, V]
		var bestAge int64
		for range evictSample {
			sh := &t.shards[rand.IntN(tableShards)]
			sh.mu.Lock()
			if len(sh.list) > 0 {
				e := sh.list[rand.IntN(len(sh.list))]
				if e != keep {
					if a := t.age(e.val); best == nil || a < bestAge {
						best, bestAge = e, a
					}
				}
			}
			sh.mu.Unlock()
		}
		if best != nil && t.removeEntry(best) {
			return best
		}
	}
	return nil
}

// evictMatch removes and returns the oldest of the entries matching match
// among a random sample (four times evictSample draws), or reports false
// when the sample holds none.
func (t *table[K, V]) evictMatch(match func(V) bool) (v V, ok bool) {
	if t.n.Load() == 0 {
		return v, false
	}
	for range 4 { // bounded: concurrent removals may take the best first
		var best *entry[K, V]
		var bestAge int64
		for range 4 * evictSample {
			sh := &t.shards[rand.IntN(tableShards)]
			sh.mu.Lock()
			if len(sh.list) > 0 {
				e := sh.list[rand.IntN(len(sh.list))]
				if match(e.val) {
					if a := t.age(e.val); best == nil || a < bestAge {
						best, bestAge = e, a
					}
				}
			}
			sh.mu.Unlock()
		}
		if best == nil {
			return v, false
		}
		if t.removeEntry(best) {
			return best.val, true
		}
	}
	return v, false
}

// evict removes and returns the oldest of a random sample of entries
// (see evictOne), or reports false when the table is empty.
func (t *table[K, V]) evict() (v V, ok bool) {
	if t.n.Load() == 0 {
		return v, false
	}
	if e := t.evictOne(nil); e != nil {
		return e.val, true
	}
	return v, false
}

// remove deletes k if same reports true for its value, and reports
// whether it did. It may run concurrently with the insert of k (a session
// can be closed while its start is inserting it): the entry is then never
// listed.
func (t *table[K, V]) remove(k K, same func(V) bool) bool {
	e, ok := t.m.Load(k)
	if !ok || !same(e.(*entry[K, V]).val) {
		return false
	}
	return t.removeEntry(e.(*entry[K, V]))
}

// removeEntry deletes e if it is still in the table.
func (t *table[K, V]) removeEntry(e *entry[K, V]) bool {
	if !t.m.CompareAndDelete(e.key, e) {
		return false
	}
	sh := &t.shards[e.shard]
	sh.mu.Lock()
	listed := false
	if i := e.idx; i >= 0 && i < len(sh.list) && sh.list[i] == e {
		last := len(sh.list) - 1
		sh.list[i] = sh.list[last]
		sh.list[i].idx = i
		sh.list[last] = nil
		sh.list = sh.list[:last]
		listed = true
	}
	e.idx = removed
	sh.mu.Unlock()
	if listed {
		t.n.Add(-1) // n counts listed entries: an unlisted one was never counted
	}
	return true
}

// each calls f with every value, in no order, a shard at a time; f runs
// with the shard locked, so it must not call the table.
func (t *table[K, V]) each(f func(V)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, e := range sh.list {
			f(e.val)
		}
		sh.mu.Unlock()
	}
}

// values returns every value, in no order.
func (t *table[K, V]) values() []V {
	var out []V
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, e := range sh.list {
			out = append(out, e.val)
		}
		sh.mu.Unlock()
	}
	return out
}
