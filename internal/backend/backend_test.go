package backend

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(port int) Key { return Key{VS: 1, Address: "127.0.0.1", Port: port} }

func TestKeyAndAddr(t *testing.T) {
	for _, tc := range []struct {
		k         Key
		str, dial string
	}{
		{Key{3, "10.0.0.1", 80}, "3/10.0.0.1:80", "10.0.0.1:80"},
		{Key{4, "2001:db8::1", 443}, "4/[2001:db8::1]:443", "[2001:db8::1]:443"},
		{Key{5, "web.example", 8080}, "5/web.example:8080", "web.example:8080"},
	} {
		if tc.k.String() != tc.str {
			t.Errorf("String() = %q, want %q", tc.k.String(), tc.str)
		}
		if a := NewServer(tc.k, Settings{}).Addr(); a != tc.dial {
			t.Errorf("Addr() = %q, want %q", a, tc.dial)
		}
	}
}

func TestAcquireLimit(t *testing.T) {
	s := NewServer(key(1), Settings{Limit: 5})
	const workers, tries = 8, 100
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tries {
				if s.Acquire(5) {
					mu.Lock()
					got++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if got != 5 || s.Active() != 5 {
		t.Fatalf("%d slots granted, active %d; want 5 with limit 5", got, s.Active())
	}
	for range 5 {
		s.ReleaseFunc()()
	}
	if s.Active() != 0 {
		t.Errorf("active %d after releases", s.Active())
	}
	if !s.Acquire(0) || s.Active() != 1 {
		t.Error("limit 0 must be unlimited")
	}
	s.Release()
}

type closer struct{ closed int }

func (c *closer) Close() error { c.closed++; return errors.New("already closed is fine") }

func TestTrackAndCloseConns(t *testing.T) {
	s := NewServer(key(1), Settings{})
	a, b := &closer{}, &closer{}
	untrackA := s.Track(a)
	s.Track(b)
	if s.Total() != 2 || s.OpenConns() != 2 {
		t.Fatalf("total %d open %d, want 2 2", s.Total(), s.OpenConns())
	}
	untrackA()
	if n := s.CloseConns(); n != 1 || a.closed != 0 || b.closed != 1 {
		t.Errorf("CloseConns() = %d, closed a=%d b=%d; want 1, 0, 1", n, a.closed, b.closed)
	}
	if s.Total() != 2 {
		t.Errorf("untrack changed Total to %d", s.Total())
	}
	s.AddBytes(10, 20)
	s.AddFailure()
	if s.BytesIn() != 10 || s.BytesOut() != 20 || s.Failures() != 1 {
		t.Errorf("bytes %d/%d failures %d", s.BytesIn(), s.BytesOut(), s.Failures())
	}
}

func TestCounters(t *testing.T) {
	var c Counters
	c.Open()
	c.Open()
	c.Close()
	c.AddBytes(3, 4)
	if c.Active() != 1 || c.Total() != 2 || c.BytesIn() != 3 || c.BytesOut() != 4 {
		t.Errorf("counters %d %d %d %d", c.Active(), c.Total(), c.BytesIn(), c.BytesOut())
	}
}

func TestRegistryLifecycle(t *testing.T) {
	r := NewRegistry()
	set := Settings{ID: 1, Weight: 10, Enabled: true}

	// Lookup inserts nothing: a failed reload leaves no trace.
	s1 := r.Lookup(key(1), set)
	if r.Get(key(1)) != nil || len(r.Live()) != 0 {
		t.Fatal("Lookup inserted a server")
	}
	if s1.Settings() != set {
		t.Errorf("new server settings %+v", s1.Settings())
	}
	s2 := r.Lookup(key(2), set)
	r.Commit([]*Server{s1, s2})
	if r.Get(key(1)) != s1 || r.Lookup(key(1), Settings{Weight: 99}) != s1 || s1.Weight() != 10 {
		t.Fatal("committed server not returned, or Lookup changed its settings")
	}

	// s1 busy, s2 idle; both removed: s1 drains, s2 is forgotten.
	if !s1.Acquire(0) {
		t.Fatal("Acquire failed")
	}
	r.Commit(nil)
	if got := r.Draining(); !slices.Equal(got, []Key{key(1)}) {
		t.Fatalf("draining %v, want [%v]", got, key(1))
	}
	if r.Lookup(key(2), set) == s2 {
		t.Error("an idle removed server was kept")
	}

	// Re-added while draining: same *Server, counters continue.
	if r.Lookup(key(1), set) != s1 {
		t.Fatal("draining server not reused on re-add")
	}
	r.Commit([]*Server{s1})
	if len(r.Draining()) != 0 || r.Get(key(1)) != s1 {
		t.Fatal("re-added server not live")
	}
	s1.Release() // live again: release must not forget it
	if r.Get(key(1)) != s1 {
		t.Fatal("release of a live server removed it")
	}

	// Removed again while busy, then its last connection ends.
	s1.Acquire(0)
	r.Commit(nil)
	if len(r.Draining()) != 1 {
		t.Fatal("busy server not draining")
	}
	s1.Release()
	if len(r.Draining()) != 0 {
		t.Error("drained server not released after its last connection")
	}
	if r.Lookup(key(1), set) == s1 {
		t.Error("released server still returned")
	}
}

func TestRegistryConcurrentDrain(t *testing.T) {
	// Releases racing with Commit never leave a server stuck in draining.
	for range 200 {
		r := NewRegistry()
		s := r.Lookup(key(1), Settings{})
		r.Commit([]*Server{s})
		s.Acquire(0)
		done := make(chan struct{})
		go func() {
			s.Release()
			close(done)
		}()
		r.Commit(nil)
		<-done
		if d := r.Draining(); len(d) != 0 {
			t.Fatalf("idle server left draining: %v", d)
		}
	}
}
