// Package memtrim gives memory back to the operating system when a burst
// of allocation ends — an attack such as HTTP/2 rapid reset, or a load
// spike — instead of leaving it to the Go runtime's own pace: a collection
// is forced only every two minutes when nothing allocates, and the
// background scavenger returns free pages a little at a time. Without it
// the resident size stays near the burst's peak for minutes after the
// connections that caused it are gone.
//
// A Trimmer is told the time and the number of connections the data plane
// holds about once a second (Tick). It watches the allocation rate
// (runtime/metrics /gc/heap/allocs:bytes) and the connections: when the
// rate was high (MinBurst) within the last Window and the last few
// seconds allocated less than a tenth of that, or when the connections
// fell by at least MinDrop and by half from their peak within the Window
// and stayed down, the burst is over (a flood of idle or slow connections
// allocates little, but leaves their buffers and stacks behind): it runs
// a collection once, at most once per MinInterval, which lowers the heap goal
// to what is live now, and the runtime's background scavenger then
// returns the pages above it within seconds. (debug.FreeOSMemory would
// return them at once, but it scavenges on the system stack: with one
// CPU that stalled every connection for 10–15 ms.) A steady load,
// however heavy, never triggers it.
package memtrim

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// MinBurst is the allocation rate, in bytes per second, that counts as a
// burst.
const MinBurst = 8 << 20

// Window is how far back a burst is remembered.
const Window = 30 * time.Second

// MinInterval is the least time between two trims: a burst of allocation
// may end (and trim) while the connections it brought are still open,
// and their end must be able to trim again soon.
const MinInterval = 10 * time.Second

// MinDrop is the fall in connections that counts as the end of a burst.
const MinDrop = 500

// quiet is how many of the latest ticks must be quiet.
const quiet = 3

// Trimmer decides when to give memory back. It is used by one goroutine.
type Trimmer struct {
	sample   []metrics.Sample
	last     uint64    // allocated bytes at the last tick
	lastTick time.Time // zero before the first tick
	rates    []float64 // bytes per second, one per tick, newest last
	conns    []int     // connections, one per tick, newest last
	lastTrim time.Time
	free     func() // runtime.GC; replaced in tests
	trims    int
}

// New returns a Trimmer.
func New() *Trimmer {
	return &Trimmer{
		sample: []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}},
		free:   runtime.GC,
	}
}

// Trims returns how many times the Trimmer gave memory back.
func (t *Trimmer) Trims() int { return t.trims }

// Tick samples the allocation rate at now, with conns the connections (and
// sessions) the data plane holds, and trims when a burst has just ended;
// it reports whether it trimmed.
func (t *Trimmer) Tick(now time.Time, conns int) bool {
	metrics.Read(t.sample)
	allocs := t.sample[0].Value.Uint64()
	if t.lastTick.IsZero() || !now.After(t.lastTick) {
		t.last, t.lastTick = allocs, now
		return false
	}
	rate := float64(allocs-t.last) / now.Sub(t.lastTick).Seconds()
	t.last, t.lastTick = allocs, now
	keep := int(Window / time.Second)
	t.rates = append(t.rates, rate)
	t.conns = append(t.conns, conns)
	if len(t.rates) > keep {
		t.rates = append(t.rates[:0], t.rates[len(t.rates)-keep:]...)
		t.conns = append(t.conns[:0], t.conns[len(t.conns)-keep:]...)
	}
	if len(t.rates) <= quiet || (!t.lastTrim.IsZero() && now.Sub(t.lastTrim) < MinInterval) {
		return false
	}
	if !t.allocBurstOver() && !t.connBurstOver() {
		return false
	}
	t.free()
	t.trims++
	t.lastTrim = now
	t.rates, t.conns = t.rates[:0], t.conns[:0]
	return true
}

// allocBurstOver reports whether the allocation rate was at least MinBurst
// and the last quiet ticks allocated less than a tenth of its peak.
func (t *Trimmer) allocBurstOver() bool {
	n := len(t.rates) - quiet
	peak := 0.0
	for _, r := range t.rates[:n] {
		peak = max(peak, r)
	}
	if peak < MinBurst {
		return false
	}
	for _, r := range t.rates[n:] {
		if r*10 >= peak {
			return false
		}
	}
	return true
}

// connBurstOver reports whether the connections fell from their peak by
// MinDrop and by half, and stayed there for the last quiet ticks.
func (t *Trimmer) connBurstOver() bool {
	n := len(t.conns) - quiet
	peak := 0
	for _, c := range t.conns[:n] {
		peak = max(peak, c)
	}
	for _, c := range t.conns[n:] {
		if peak-c < MinDrop || 2*c > peak {
			return false
		}
	}
	return true
}
