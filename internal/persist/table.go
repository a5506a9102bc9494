package persist

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// DefaultCapacity is the number of entries a table holds unless told
// otherwise: about BytesPerEntry × 1 Mi ≈ 49 MB when full.
const DefaultCapacity = 1 << 20

// BytesPerEntry is the measured memory of one table entry at 1,000,000
// entries (BenchmarkTableMemory: runtime.MemStats heap in use after GC,
// divided by the entries), rounded up. Stats uses it to estimate a table's
// memory.
const BytesPerEntry = 47

// shardedMin is the capacity from which a table is split into shards.
const shardedMin = 4096

// shardCount is the number of shards of a large table.
const shardCount = 64

// epoch is the origin of the seconds an entry's expiry is stored in (a
// uint32 of seconds covers 2020-2156).
var epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// seconds returns t as seconds since epoch, at least 1.
func seconds(t time.Time) uint32 {
	d := t.Sub(epoch)
	if d < time.Second {
		return 1
	}
	return uint32(min(int64(d/time.Second), 1<<32-1))
}

// Table is one persistence table: a bounded map from a client key (a
// 64-bit keyed hash of what the mode looks at) to a real server, with a
// time to live per entry. When it is full, storing a new key evicts the
// least recently used entry, so new clients are always served. Entries
// expire a timeout after they were stored or, with refresh, last used;
// expired entries are dropped when met (lookup, the tail of the LRU order,
// a sweep hand that advances with every store) or by Sweep.
//
// Real servers are stored by backend.Key, interned to a 32-bit number per
// table, never by pointer: an entry outlives configuration generations and
// keeps naming the same real server.
//
// Large tables (capacity ≥ 4096) are split into 64 shards by key, each
// with its own lock and LRU order: when the table is full, a store evicts
// the least recently used entry of the new key's shard, an approximation
// of global LRU that keeps every lock short (the table may then exceed its
// capacity by at most one entry per shard, when the new key's shard is
// empty). All methods are safe for concurrent use.
type Table struct {
	id       int
	seed     maphash.Seed
	shards   []shard
	rs       intern
	count    atomic.Int64 // entries in all shards
	capacity atomic.Int64
}

// shard is one part of a Table. The capacity is the table's: a store into
// a full table evicts the tail of the new key's shard.
type shard struct {
	mu    sync.Mutex
	index index
	slots []slot
	head  int32 // most recently used; -1 when empty
	tail  int32 // least recently used; -1 when empty
	free  int32 // first free slot (chained by next); -1 when none
	hand  int32 // sweep position

	hits, misses, stores, evictions, expired uint64
	_                                        [40]byte // keep shards on separate cache lines
}

// find returns the slot of key; s.mu must be held.
func (s *shard) find(key uint64) (int32, bool) {
	return s.index.find(key, s.slots)
}

// slot is one entry: 24 bytes.
type slot struct {
	key        uint64
	rs         uint32 // interned real server
	exp        uint32 // expiry, seconds since epoch; 0 marks a free slot
	prev, next int32
}

// newTable returns an empty table with the given capacity (≤ 0:
// DefaultCapacity).
func newTable(id int, seed maphash.Seed, capacity int) *Table {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	n := 1
	if capacity >= shardedMin {
		n = shardCount
	}
	t := &Table{id: id, seed: seed, shards: make([]shard, n)}
	for i := range t.shards {
		s := &t.shards[i]
		s.head, s.tail, s.free = -1, -1, -1
	}
	t.setCapacity(capacity)
	return t
}

// ID returns the ID of the virtual service the table belongs to.
func (t *Table) ID() int { return t.id }

// shard returns the shard of key.
func (t *Table) shard(key uint64) *shard {
	return &t.shards[(key>>58)%uint64(len(t.shards))]
}

// Lookup returns the real server stored for key, if there is an entry that
// has not expired at now. With refresh > 0 the entry's expiry becomes
// now+refresh. Either way it becomes the most recently used.
func (t *Table) Lookup(key uint64, now time.Time, refresh time.Duration) (rs uint32, ok bool) {
	s := t.shard(key)
	sec := seconds(now)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.find(key)
	if !ok {
		s.misses++
		return 0, false
	}
	e := &s.slots[i]
	if e.exp <= sec {
		s.remove(i)
		t.count.Add(-1)
		s.expired++
		s.misses++
		return 0, false
	}
	if refresh > 0 {
		e.exp = addSeconds(sec, refresh)
	}
	s.toFront(i)
	s.hits++
	return e.rs, true
}

// Store makes key map to rs until now+ttl, as the most recently used
// entry, evicting the least recently used entry of a full shard.
func (t *Table) Store(key uint64, rs uint32, now time.Time, ttl time.Duration) {
	s := t.shard(key)
	sec := seconds(now)
	exp := addSeconds(sec, ttl)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stores++
	if i, ok := s.find(key); ok {
		e := &s.slots[i]
		e.rs, e.exp = rs, exp
		s.toFront(i)
		return
	}
	t.count.Add(-int64(s.sweep(sec, 2)))
	if t.count.Load() >= t.capacity.Load() && s.tail >= 0 {
		s.remove(s.tail)
		t.count.Add(-1)
		s.evictions++
	}
	var i int32
	if s.free >= 0 {
		i = s.free
		s.free = s.slots[i].next
	} else {
		s.slots = append(s.slots, slot{})
		i = int32(len(s.slots) - 1)
	}
	s.slots[i] = slot{key: key, rs: rs, exp: exp, prev: -1, next: s.head}
	if s.head >= 0 {
		s.slots[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
	s.index.insert(key, i)
	t.count.Add(1)
}

// Delete removes key's entry, if any.
func (t *Table) Delete(key uint64) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.find(key); ok {
		s.remove(i)
		t.count.Add(-1)
	}
}

// Sweep drops every entry expired at now and returns how many it dropped.
// Expired entries are never returned by Lookup; Sweep only gives their
// memory back and makes Stats exact. It is O(entries).
func (t *Table) Sweep(now time.Time) int {
	sec := seconds(now)
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for j := range s.slots {
			if e := &s.slots[j]; e.exp != 0 && e.exp <= sec {
				s.remove(int32(j))
				t.count.Add(-1)
				s.expired++
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Len returns the number of entries, expired ones not yet dropped included.
func (t *Table) Len() int { return int(t.count.Load()) }

// SetCapacity changes the maximum number of entries (≤ 0: DefaultCapacity);
// a smaller capacity evicts least recently used entries at once.
func (t *Table) SetCapacity(capacity int) {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	t.setCapacity(capacity)
}

func (t *Table) setCapacity(capacity int) {
	t.capacity.Store(int64(capacity))
	// Shrink: evict from the shards in turn, each its least recently used.
	for t.count.Load() > int64(capacity) {
		evicted := false
		for i := range t.shards {
			if t.count.Load() <= int64(capacity) {
				break
			}
			s := &t.shards[i]
			s.mu.Lock()
			if s.tail >= 0 {
				s.remove(s.tail)
				t.count.Add(-1)
				s.evictions++
				evicted = true
			}
			s.mu.Unlock()
		}
		if !evicted {
			return
		}
	}
}

// Stats are a table's size and counters.
type Stats struct {
	// VS is the ID of the virtual service the table belongs to.
	VS int `json:"vs"`
	// Entries is the number of entries (expired ones not yet dropped
	// included).
	Entries int `json:"entries"`
	// Capacity is the maximum number of entries.
	Capacity int `json:"capacity"`
	// ApproxBytes estimates the memory of the entries (Entries ×
	// BytesPerEntry).
	ApproxBytes int64 `json:"approxBytes"`
	// Hits counts lookups that found a live entry.
	Hits uint64 `json:"hits"`
	// Misses counts lookups that found none (or an expired one).
	Misses uint64 `json:"misses"`
	// Stores counts entries stored or replaced.
	Stores uint64 `json:"stores"`
	// Evictions counts entries dropped to make room (LRU).
	Evictions uint64 `json:"evictions"`
	// Expired counts entries dropped because their time was up.
	Expired uint64 `json:"expired"`
}

// Stats returns the table's size and counters.
func (t *Table) Stats() Stats {
	st := Stats{VS: t.id, Capacity: int(t.capacity.Load())}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		st.Entries += s.index.used
		st.Hits += s.hits
		st.Misses += s.misses
		st.Stores += s.stores
		st.Evictions += s.evictions
		st.Expired += s.expired
		s.mu.Unlock()
	}
	st.ApproxBytes = int64(st.Entries) * BytesPerEntry
	return st
}

// Server returns the real server interned as rs.
func (t *Table) Server(rs uint32) (backend.Key, bool) { return t.rs.key(rs) }

// ServerID interns k and returns its number in this table.
func (t *Table) ServerID(k backend.Key) uint32 { return t.rs.id(k) }

// toFront makes slot i the most recently used; s.mu must be held.
func (s *shard) toFront(i int32) {
	if s.head == i {
		return
	}
	e := &s.slots[i]
	// unlink
	s.slots[e.prev].next = e.next
	if e.next >= 0 {
		s.slots[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	// push front
	e.prev, e.next = -1, s.head
	s.slots[s.head].prev = i
	s.head = i
}

// remove frees slot i; s.mu must be held.
func (s *shard) remove(i int32) {
	e := &s.slots[i]
	if e.prev >= 0 {
		s.slots[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.slots[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	s.index.delete(e.key, i)
	*e = slot{next: s.free, prev: -1}
	s.free = i
}

// sweep drops expired entries at the LRU tail and among the next n slots
// of the sweep hand, and returns how many it dropped; s.mu must be held.
func (s *shard) sweep(sec uint32, n int) int {
	dropped := 0
	for range n {
		if s.tail >= 0 && s.slots[s.tail].exp <= sec {
			s.remove(s.tail)
			s.expired++
			dropped++
		}
		if len(s.slots) == 0 {
			break
		}
		s.hand++
		if int(s.hand) >= len(s.slots) {
			s.hand = 0
		}
		if e := &s.slots[s.hand]; e.exp != 0 && e.exp <= sec {
			s.remove(s.hand)
			s.expired++
			dropped++
		}
	}
	return dropped
}

// addSeconds returns sec+d in seconds, saturating.
func addSeconds(sec uint32, d time.Duration) uint32 {
	return uint32(min(int64(sec)+max(int64(d/time.Second), 1), 1<<32-1))
}

// intern numbers the real servers a table has stored.
type intern struct {
	mu   sync.Mutex
	ids  map[backend.Key]uint32
	keys atomic.Pointer[[]backend.Key]
}

// id returns k's number, adding it if new.
func (n *intern) id(k backend.Key) uint32 {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ids == nil {
		n.ids = map[backend.Key]uint32{}
	}
	if id, ok := n.ids[k]; ok {
		return id
	}
	var keys []backend.Key
	if p := n.keys.Load(); p != nil {
		keys = *p
	}
	id := uint32(len(keys))
	next := append(keys[:len(keys):len(keys)], k)
	n.keys.Store(&next)
	n.ids[k] = id
	return id
}

// key returns the real server numbered id.
func (n *intern) key(id uint32) (backend.Key, bool) {
	p := n.keys.Load()
	if p == nil || int(id) >= len(*p) {
		return backend.Key{}, false
	}
	return (*p)[id], true
}

// all returns every interned key, by number.
func (n *intern) all() []backend.Key {
	if p := n.keys.Load(); p != nil {
		return *p
	}
	return nil
}
