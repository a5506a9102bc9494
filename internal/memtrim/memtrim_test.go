package memtrim

import (
	"runtime"
	"testing"
	"time"
)

var sink [][]byte

// burn allocates n bytes of garbage.
func burn(n int) {
	for i := 0; i < n>>16; i++ {
		sink = append(sink, make([]byte, 64<<10))
		if len(sink) > 16 {
			sink = sink[:0]
		}
	}
}

func TestTrimAfterBurst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		load  []int // bytes allocated before each tick
		trims int
	}{
		{"a burst, then quiet", []int{0, 200 << 20, 200 << 20, 0, 0, 0, 0}, 1},
		{"steady heavy load", []int{0, 200 << 20, 200 << 20, 200 << 20, 200 << 20, 200 << 20, 200 << 20}, 0},
		{"no burst", []int{0, 1 << 20, 0, 0, 0, 0, 0}, 0},
		{"not quiet long enough", []int{0, 200 << 20, 0, 0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			tr := New()
			tr.free = func() {}
			now := time.Now()
			for _, n := range tc.load {
				burn(n)
				tr.Tick(now, 0)
				now = now.Add(time.Second)
			}
			if tr.Trims() != tc.trims {
				t.Errorf("%d trims, want %d", tr.Trims(), tc.trims)
			}
		})
	}
}

func TestTrimAtMostOncePerWindow(t *testing.T) {
	tr := New()
	tr.free = func() {}
	now := time.Now()
	tick := func(n int) {
		burn(n)
		tr.Tick(now, 0)
		now = now.Add(time.Second)
	}
	for range 2 {
		tick(0)
		tick(200 << 20)
		tick(0)
		tick(0)
		tick(0)
		tick(0)
	}
	if tr.Trims() != 1 {
		t.Fatalf("%d trims within %v, want 1", tr.Trims(), MinInterval)
	}
	now = now.Add(MinInterval)
	tick(0)
	tick(200 << 20)
	tick(0)
	tick(0)
	tick(0)
	tick(0)
	if tr.Trims() != 2 {
		t.Fatalf("%d trims after the window, want 2", tr.Trims())
	}
}

func TestTrimAfterConnectionFlood(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conns []int
		trims int
	}{
		{"a flood of idle connections, then gone", []int{10, 10, 5000, 10000, 10000, 20, 20, 20, 20}, 1},
		{"a steady crowd", []int{10000, 10000, 10000, 10000, 10000, 10000}, 0},
		{"a small fall", []int{400, 400, 100, 100, 100, 100}, 0},
		{"down by less than half", []int{10000, 10000, 6000, 6000, 6000, 6000}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New()
			tr.free = func() {}
			now := time.Now()
			for _, c := range tc.conns {
				tr.Tick(now, c)
				now = now.Add(time.Second)
			}
			if tr.Trims() != tc.trims {
				t.Errorf("%d trims, want %d", tr.Trims(), tc.trims)
			}
		})
	}
}
