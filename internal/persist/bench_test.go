package persist

import (
	"net/http"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// cpuTime returns the process's user+system CPU time. Benchmarks report
// it per operation ("cpu-ns/op") besides wall time, since the test machine
// is shared and wall time then measures the neighbours too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU runs the loop of a benchmark and reports its CPU time per op.
func reportCPU(b *testing.B, loop func()) {
	start := cpuTime()
	n := 0
	for b.Loop() {
		loop()
		n++
	}
	if n > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(n), "cpu-ns/op")
	}
}

// BenchmarkTableLookupStore: one Lookup (with refresh) of a present key
// plus one Store of a new key, in a full table of 10,000, 100,000 or
// 1,000,000 entries (so each store also evicts). The largest does not fit
// in the CPU caches: every operation then waits for memory.
//
//	go test -run '^$' -bench 'BenchmarkTableLookupStore' -benchmem ./internal/persist
func BenchmarkTableLookupStore(b *testing.B) {
	for _, n := range []uint64{10_000, 100_000, 1_000_000} {
		b.Run(strconv.FormatUint(n, 10), func(b *testing.B) {
			tb := NewRegistry().Table(1, int(n))
			now := time.Now()
			for k := range n {
				tb.Store(mixKey(k), uint32(k%8), now, time.Hour)
			}
			k := n
			b.ReportAllocs()
			reportCPU(b, func() {
				if _, ok := tb.Lookup(mixKey(k-n/4), now, time.Hour); !ok {
					b.Fatal("missing")
				}
				tb.Store(mixKey(k), uint32(k%8), now, time.Hour)
				k++
			})
		})
	}
}

// BenchmarkPersistPick: the whole decorator for a returning client (src:
// key, lookup with refresh, reserve on the stuck server, done).
func BenchmarkPersistPick(b *testing.B) {
	for _, mode := range []string{ModeSrc, ModeSuperSrc, ModeActiveCookie} {
		b.Run(mode, func(b *testing.B) {
			srvs := servers(1, 10, 80)
			inner, _ := balance.New("lc", srvs)
			p, err := New(inner, srvs, NewRegistry().Table(1, 0), Settings{Mode: mode, Refresh: true, Secret: secret})
			if err != nil {
				b.Fatal(err)
			}
			r, _ := http.NewRequest(http.MethodGet, "http://lync.example.com/", nil)
			r.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Lync/15.0")
			r.Header.Set("Authorization", "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==")
			in := &Input{Request: balance.Request{Client: ip(7, 5000)}, HTTP: r}
			s, done, _ := p.PickInput(in)
			done(balance.Outcome{})
			if sc := p.OnResponse(in, s, http.Header{}); sc != "" {
				c, _ := http.ParseSetCookie(sc)
				r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
			b.ReportAllocs()
			reportCPU(b, func() {
				_, done, err := p.PickInput(in)
				if err != nil {
					b.Fatal(err)
				}
				done(balance.Outcome{})
			})
		})
	}
}

// BenchmarkPersistPickNew: a new client every time (src: lookup misses,
// the picker schedules, the entry is stored, evicting in a full table).
func BenchmarkPersistPickNew(b *testing.B) {
	srvs := servers(1, 10, 80)
	inner, _ := balance.New("rr", srvs)
	p, err := New(inner, srvs, NewRegistry().Table(1, 100_000), Settings{Mode: ModeSrc})
	if err != nil {
		b.Fatal(err)
	}
	k := 0
	b.ReportAllocs()
	reportCPU(b, func() {
		_, done, err := p.PickInput(&Input{Request: balance.Request{Client: ip(k, 1)}})
		if err != nil {
			b.Fatal(err)
		}
		done(balance.Outcome{})
		k++
	})
}

// BenchmarkTableMemory measures the heap used per entry by a table of
// 1,000,000 entries (runtime.MemStats.HeapAlloc after GC, before and
// after filling it).
//
//	go test -run '^$' -bench 'BenchmarkTableMemory' -benchtime 1x ./internal/persist
func BenchmarkTableMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb := NewRegistry().Table(1, n)
		now := time.Now()
		for k := range uint64(n) {
			tb.Store(mixKey(k), uint32(k%8), now, time.Hour)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if tb.Len() != n {
			b.Fatalf("%d entries", tb.Len())
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/entry")
		runtime.KeepAlive(tb)
	}
}

// mixKey spreads k like a hash would.
func mixKey(k uint64) uint64 {
	k ^= k >> 30
	k *= 0xbf58476d1ce4e5b9
	k ^= k >> 27
	k *= 0x94d049bb133111eb
	return k ^ k>>31
}
