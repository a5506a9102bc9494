package udp

import (
	"sync"
	"testing"
)

// item is a table value for tests: its age is settable.
type item struct {
	id  int
	age int64
}

func ageOf(v *item) int64 { return v.age }

// checkTable compares t with the model and checks its invariants.
func checkTable(t *testing.T, tb *table[int, *item], model map[int]*item, limit int) {
	t.Helper()
	if tb.len() != len(model) {
		t.Fatalf("len %d, model %d", tb.len(), len(model))
	}
	if tb.len() > limit {
		t.Fatalf("len %d over the bound %d", tb.len(), limit)
	}
	for k, v := range model {
		if got, ok := tb.get(k); !ok || got != v {
			t.Fatalf("get(%d) = %v, %v; want %v", k, got, ok, v)
		}
	}
	vals := tb.values()
	if len(vals) != len(model) {
		t.Fatalf("values() has %d, model %d", len(vals), len(model))
	}
	for _, v := range vals {
		if model[v.id] != v {
			t.Fatalf("values() has %v, not in the model", v)
		}
	}
}

// runOps interprets ops as a sequence of table operations and checks the
// table against a model after each: the table never exceeds its bound,
// holds exactly what was inserted and not removed or evicted, and evicts
// only when full.
func runOps(t *testing.T, limit int, ops []byte) {
	tb := newTable[int](limit, ageOf)
	model := map[int]*item{}
	var clock int64
	for i := 0; i+1 < len(ops); i += 2 {
		op, k := ops[i]%4, int(ops[i+1]%32)
		clock++
		switch op {
		case 0, 1: // insert
			v := &item{id: k, age: clock}
			actual, loaded, evicted, evictedOK := tb.insert(k, v)
			if prev, ok := model[k]; ok {
				if !loaded || actual != prev || evictedOK {
					t.Fatalf("insert of present %d: loaded %v actual %v evicted %v", k, loaded, actual, evictedOK)
				}
				continue
			}
			if loaded || actual != v {
				t.Fatalf("insert of new %d reported loaded", k)
			}
			full := len(model) >= tb.max
			if evictedOK != full {
				t.Fatalf("insert into a table of %d (bound %d): evicted %v", len(model), tb.max, evictedOK)
			}
			if evictedOK {
				if evicted == v || model[evicted.id] != evicted {
					t.Fatalf("evicted %v: the new entry or unknown", evicted)
				}
				delete(model, evicted.id)
			}
			model[k] = v
		case 2: // remove
			removed := tb.remove(k, func(v *item) bool { return v.id == k })
			if _, ok := model[k]; removed != ok {
				t.Fatalf("remove(%d) = %v, present %v", k, removed, ok)
			}
			delete(model, k)
		case 3: // touch
			if v, ok := tb.get(k); ok {
				v.age = clock
			}
		}
		checkTable(t, tb, model, tb.max)
	}
}

func TestTableOperations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit int
		ops   []byte
	}{
		{"empty", 4, nil},
		{"insert get remove", 4, []byte{0, 1, 0, 2, 2, 1, 2, 1, 2, 9}},
		{"fill and evict", 2, []byte{0, 1, 0, 2, 0, 3, 0, 4, 0, 5}},
		{"bound of zero is one", 0, []byte{0, 1, 0, 2, 0, 3}},
		{"reinsert", 3, []byte{0, 1, 0, 1, 2, 1, 0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) { runOps(t, tc.limit, tc.ops) })
	}
}

func FuzzTable(f *testing.F) {
	f.Add(uint8(3), []byte{0, 1, 0, 2, 0, 3, 0, 4, 2, 3, 3, 1, 0, 9})
	f.Add(uint8(1), []byte{0, 0, 0, 1, 2, 0, 0, 2})
	f.Add(uint8(16), []byte{0, 1, 1, 2, 2, 3, 3, 4})
	f.Fuzz(func(t *testing.T, limit uint8, ops []byte) {
		if len(ops) > 4096 {
			ops = ops[:4096]
		}
		runOps(t, int(limit%20), ops)
	})
}

// TestTableEvictsIdlest checks the LRU approximation: with many active
// entries and a few stale ones, evictions take stale ones. The sampling is
// random, so the figure is summed over 20 tables, which makes a failure of
// a correct table all but impossible (one 8-eviction round alone fell
// under its bound about once in a hundred runs).
func TestTableEvictsIdlest(t *testing.T) {
	const n, rounds = 64, 20
	staleEvicted := 0
	for range rounds {
		tb := newTable[int](n, ageOf)
		for i := range n {
			age := int64(1000 + i) // active
			if i%8 == 0 {
				age = int64(i) // 8 stale entries
			}
			tb.insert(i, &item{id: i, age: age})
		}
		for i := range 8 {
			_, _, ev, ok := tb.insert(n+i, &item{id: n + i, age: 5000})
			if !ok {
				t.Fatal("no eviction from a full table")
			}
			if ev.age < 1000 {
				staleEvicted++
			}
		}
		if tb.len() != n {
			t.Errorf("len %d, want %d", tb.len(), n)
		}
	}
	// A sample of 8 out of 64 holds a stale entry with probability about
	// 1-(7/8)^8 = 0.66 at first, less as they go: about half of the 160
	// evictions take one; a third is far below.
	if staleEvicted < rounds*8/3 {
		t.Errorf("%d of %d evictions took a stale entry", staleEvicted, rounds*8)
	}
}

// TestTableConcurrent checks the bound under concurrent inserts and
// removes (run with -race).
func TestTableConcurrent(t *testing.T) {
	const limit = 50
	tb := newTable[int](limit, ageOf)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := w*100000 + i
				tb.insert(k, &item{id: k, age: int64(i)})
				if i%3 == 0 {
					tb.remove(k, func(*item) bool { return true })
				}
			}
		}()
	}
	wg.Wait()
	if n := tb.len(); n > limit || n != len(tb.values()) {
		t.Errorf("len %d, values %d, bound %d", n, len(tb.values()), limit)
	}
}

// TestTableRemoveDuringInsert removes a key while it is being inserted (a
// session closed by its real server's drop while its start inserts it):
// the remove comes between the insert's store of the key and its listing
// of the entry. No entry may be left listed without being in the table.
func TestTableRemoveDuringInsert(t *testing.T) {
	tb := newTable[int](10, ageOf)
	stored, resume := make(chan struct{}), make(chan struct{})
	testHookStored = func() {
		stored <- struct{}{}
		<-resume
	}
	defer func() { testHookStored = nil }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tb.insert(1, &item{id: 1})
	}()
	<-stored
	if !tb.remove(1, func(*item) bool { return true }) {
		t.Error("the stored key was not removed")
	}
	close(resume)
	<-done
	if n, vals := tb.len(), tb.values(); n != 0 || len(vals) != 0 {
		t.Errorf("len %d and %d values left after the key's remove", n, len(vals))
	}
	testHookStored = nil
	tb.insert(2, &item{id: 2}) // the table still works
	if n, vals := tb.len(), tb.values(); n != 1 || len(vals) != 1 {
		t.Errorf("len %d and %d values after an insert", n, len(vals))
	}
}
