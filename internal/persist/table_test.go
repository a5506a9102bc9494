package persist

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// TestTableLRU: a full table evicts the least recently used entry, and
// lookups count as use.
func TestTableLRU(t *testing.T) {
	clk := newClock()
	tb := NewRegistry().Table(1, 4)
	for k := uint64(1); k <= 4; k++ {
		tb.Store(k, uint32(k), clk.now(), time.Hour)
	}
	if _, ok := tb.Lookup(1, clk.now(), 0); !ok { // 1 becomes the most recent
		t.Fatal("entry 1 missing")
	}
	tb.Store(5, 5, clk.now(), time.Hour) // evicts 2
	for k, want := range map[uint64]bool{1: true, 2: false, 3: true, 4: true, 5: true} {
		if _, ok := tb.Lookup(k, clk.now(), 0); ok != want {
			t.Errorf("entry %d present %v, want %v", k, ok, want)
		}
	}
	st := tb.Stats()
	if st.Entries != 4 || st.Capacity != 4 || st.Evictions != 1 || st.ApproxBytes != 4*BytesPerEntry {
		t.Errorf("stats %+v", st)
	}
	// Replacing an entry does not grow the table.
	tb.Store(5, 9, clk.now(), time.Hour)
	if rs, _ := tb.Lookup(5, clk.now(), 0); rs != 9 || tb.Len() != 4 {
		t.Errorf("replace: rs %d len %d", rs, tb.Len())
	}
	// Shrinking evicts at once.
	tb.SetCapacity(2)
	if tb.Len() != 2 {
		t.Errorf("len %d after shrinking to 2", tb.Len())
	}
	tb.Delete(5)
	if _, ok := tb.Lookup(5, clk.now(), 0); ok {
		t.Error("deleted entry found")
	}
}

// TestTableFullStillServes: with a table far too small, every new client
// is still served and persisted (the oldest are evicted).
func TestTableFullStillServes(t *testing.T) {
	srvs := servers(1, 3, 80)
	p := build(t, NewRegistry().Table(1, 10), srvs, Settings{Mode: ModeSrc})
	for k := range 1000 {
		a := pick(t, p, &Input{Request: balance.Request{Client: ip(k, 1)}})
		if b := pick(t, p, &Input{Request: balance.Request{Client: ip(k, 2)}}); b != a {
			t.Fatalf("client %d not persisted in a full table", k)
		}
	}
	st := p.Table().Stats()
	if st.Entries != 10 || st.Evictions != 990 {
		t.Errorf("stats %+v, want 10 entries and 990 evictions", st)
	}
}

// TestTableTTL: entries expire after the timeout; with refresh, the
// timeout restarts on every use; Sweep reclaims expired entries.
func TestTableTTL(t *testing.T) {
	for _, refresh := range []bool{false, true} {
		t.Run(fmt.Sprint("refresh=", refresh), func(t *testing.T) {
			clk := newClock()
			srvs := servers(1, 2, 80)
			p := build(t, NewRegistry().Table(1, 100), srvs, Settings{Mode: ModeSrc, Timeout: 10 * time.Minute, Refresh: refresh, Now: clk.now})
			in := &Input{Request: balance.Request{Client: ip(1, 1)}}
			first := pick(t, p, in)
			for range 3 { // used every 6 minutes: 18 minutes in all
				clk.advance(6 * time.Minute)
				s := pick(t, p, in)
				if refresh && s != first {
					t.Fatal("refreshed entry expired while in use")
				}
			}
			st := p.Table().Stats()
			if !refresh && st.Expired != 1 {
				t.Errorf("without refresh: %d expired, want 1 (after 12 minutes)", st.Expired)
			}
			clk.advance(11 * time.Minute)
			before := p.Table().Stats().Expired
			for k := 2; k < 12; k++ {
				pick(t, p, &Input{Request: balance.Request{Client: ip(k, 1)}})
			}
			clk.advance(11 * time.Minute)
			n := p.Table().Sweep(clk.now())
			// Client 1's entry went at the first store (the tail sweep), the
			// ten others in Sweep.
			if n != 10 || p.Table().Len() != 0 || p.Table().Stats().Expired-before != 11 {
				t.Errorf("Sweep dropped %d, %d left, %d expired; want 10, 0, 11", n, p.Table().Len(), p.Table().Stats().Expired-before)
			}
		})
	}
}

// TestTableTimeoutBounds: a 28-day timeout works.
func TestTableTimeoutBounds(t *testing.T) {
	clk := newClock()
	tb := NewRegistry().Table(1, 10)
	tb.Store(1, 1, clk.now(), MaxTimeout)
	clk.advance(MaxTimeout - time.Minute)
	if _, ok := tb.Lookup(1, clk.now(), 0); !ok {
		t.Error("entry gone before 28 days")
	}
	clk.advance(2 * time.Minute)
	if _, ok := tb.Lookup(1, clk.now(), 0); ok {
		t.Error("entry alive after 28 days")
	}
}

// TestTableConcurrent: lookups, stores, deletes and sweeps from many
// goroutines keep the table consistent (run with -race).
func TestTableConcurrent(t *testing.T) {
	tb := NewRegistry().Table(1, 8192) // sharded
	var wg sync.WaitGroup
	now := time.Now()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for range 20000 {
				k := r.Uint64N(20000)
				switch r.IntN(10) {
				case 0:
					tb.Delete(k)
				case 1, 2, 3:
					tb.Store(k, uint32(k%7), now, time.Duration(1+r.IntN(3))*time.Second)
				case 4:
					if r.IntN(100) == 0 {
						tb.Sweep(now.Add(2 * time.Second))
					}
				default:
					if rs, ok := tb.Lookup(k, now, 0); ok && rs != uint32(k%7) {
						t.Errorf("key %d maps to %d", k, rs)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	st := tb.Stats()
	if st.Entries > st.Capacity || st.Capacity < 8192 {
		t.Errorf("stats %+v", st)
	}
	// Every shard's list and index agree.
	for i := range tb.shards {
		s := &tb.shards[i]
		n := 0
		for j := s.head; j >= 0; j = s.slots[j].next {
			if got, ok := s.find(s.slots[j].key); !ok || got != j {
				t.Fatalf("shard %d: slot %d not indexed", i, j)
			}
			n++
		}
		if n != s.index.used {
			t.Fatalf("shard %d: list has %d, index %d", i, n, s.index.used)
		}
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	a := r.Table(1, 10)
	if r.Table(1, 20) != a || a.Stats().Capacity != 20 {
		t.Error("Table does not return the existing table with the new capacity")
	}
	b := r.Table(2, 0)
	if b.Stats().Capacity != DefaultCapacity {
		t.Errorf("default capacity %d", b.Stats().Capacity)
	}
	a.Store(1, a.ServerID(backend.Key{VS: 1, Address: "10.0.0.1", Port: 80}), time.Now(), time.Hour)
	st := r.Stats()
	if len(st) != 2 || st[0].VS != 1 || st[0].Entries != 1 || st[1].VS != 2 {
		t.Errorf("Stats %+v", st)
	}
	if k, ok := a.Server(0); !ok || k.Address != "10.0.0.1" {
		t.Errorf("Server(0) = %v %v", k, ok)
	}
	if _, ok := a.Server(5); ok {
		t.Error("Server of an unknown number")
	}
	r.Retain(2)
	if _, ok := r.Lookup(1); ok {
		t.Error("Retain kept table 1")
	}
	if _, ok := r.Lookup(2); !ok {
		t.Error("Retain dropped table 2")
	}
}

// TestIndexMatchesMap: random inserts and deletes in the open-addressing
// index (with colliding low bits, so runs wrap around and shift) agree
// with a Go map.
func TestIndexMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var x index
	slots := make([]slot, 0, 5000)
	want := map[uint64]int32{}
	var free []int32
	for step := range 200000 {
		// Keys share their low 6 bits often: long runs.
		key := r.Uint64()&^63 | uint64(r.IntN(4))
		if r.IntN(3) == 0 && len(want) > 0 {
			for k, i := range want { // delete some key
				x.delete(k, i)
				delete(want, k)
				free = append(free, i)
				break
			}
		} else if _, dup := want[key]; !dup {
			var i int32
			if len(free) > 0 {
				i, free = free[len(free)-1], free[:len(free)-1]
			} else {
				slots = append(slots, slot{})
				i = int32(len(slots) - 1)
			}
			slots[i].key = key
			x.insert(key, i)
			want[key] = i
		}
		if step%1000 == 0 {
			if x.used != len(want) {
				t.Fatalf("step %d: index holds %d, map %d", step, x.used, len(want))
			}
			for k, i := range want {
				if got, ok := x.find(k, slots); !ok || got != i {
					t.Fatalf("step %d: key %x at %d (%v), want %d", step, k, got, ok, i)
				}
			}
			if _, ok := x.find(r.Uint64()|1<<40, slots); ok {
				t.Fatalf("step %d: found an absent key", step)
			}
		}
	}
}
