package history

import (
	"runtime"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// big is a status of nVS layer-7 services with nRS real servers each, all
// counters grown by step (so every column is in use).
func big(nVS, nRS int, step int64) []status.VS {
	out := make([]status.VS, nVS)
	for i := range out {
		rss := make([]status.RS, nRS)
		for j := range rss {
			rss[j] = status.RS{ID: i*nRS + j + 1, ActiveConns: step % 7, TotalConns: step, BytesIn: 100 * step, BytesOut: 1000 * step,
				Requests: 2 * step, Responses: status.Responses{C4xx: step, C5xx: step}}
		}
		out[i] = status.VS{ID: i + 1, ActiveConns: step % 70, TotalConns: 10 * step, BytesIn: 1000 * step, BytesOut: 10000 * step,
			RealServers: rss, L7: &status.L7{HTTP: status.HTTP{Requests: 20 * step, Responses: status.Responses{C4xx: 10 * step, C5xx: 10 * step}}}}
	}
	return out
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryAt1000x10 fills the history with 1,000 layer-7 services of 10
// real servers (11,000 series, every column in use: the worst case) and
// measures the heap it holds against the memory the package accounts
// for. docs/observability.md quotes the figures it logs.
func TestMemoryAt1000x10(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 100 MB")
	}
	src := &fixture{}
	before := heapAlloc()
	h := New(Options{Source: src})
	for i := range 3 {
		src.set(big(1000, 10, int64(i+1)*5)...)
		h.Sample(t0.Add(time.Duration(i) * 2 * time.Second))
	}
	src.set() // the fixture's status is not the history's
	after := heapAlloc()
	st := h.Stats()
	// The cap: every service, then real servers up to 2,000 series.
	if st.Series != DefaultMaxSeries || st.Untracked != 11_000-DefaultMaxSeries {
		t.Fatalf("stats %+v, want %d series and %d untracked", st, DefaultMaxSeries, 11_000-DefaultMaxSeries)
	}
	for _, k := range []Key{{VS: 1}, {VS: 1000}, {VS: 1, RS: 1}} {
		if d, err := h.Get(Query{Key: k, Range: Hour}); err != nil || d.Series == nil {
			t.Errorf("%v has no history: %v", k, err)
		}
	}
	if want := (DefaultMaxSeries + 1) * SeriesBytes; st.Bytes != want {
		t.Errorf("accounted %d bytes, want %d (%d × %d)", st.Bytes, want, DefaultMaxSeries+1, SeriesBytes)
	}
	grown := after - before
	t.Logf("%d series: heap %d MiB (%.0f bytes a series), columns %d MiB, %d bytes a series", st.Series, grown>>20,
		float64(grown)/float64(st.Series), st.Bytes>>20, SeriesBytes)
	// The columns are the memory: series headers and the map add little.
	if float64(grown) > 1.05*float64(st.Bytes) {
		t.Errorf("heap grew by %d bytes, more than 5%% over the %d bytes of columns", grown, st.Bytes)
	}
	runtime.KeepAlive(h)
}

// BenchmarkSample1000x10 is the cost of one sample of 1,000 layer-7
// services of 10 real servers.
func BenchmarkSample1000x10(b *testing.B) {
	src := &fixture{}
	h := New(Options{Source: src})
	list := big(1000, 10, 1)
	src.set(list...)
	at := t0
	b.ResetTimer()
	for i := range b.N {
		for j := range list {
			list[j].TotalConns += int64(i)
		}
		at = at.Add(2 * time.Second)
		h.Sample(at)
	}
}

// BenchmarkGetDay is the cost of reading a full day of one series.
func BenchmarkGetDay(b *testing.B) {
	src := &fixture{}
	h := New(Options{Source: src})
	at := t0
	for i := range DayPoints * 30 / 30 {
		src.set(status.VS{ID: 1, TotalConns: int64(i)})
		for range 30 {
			at = at.Add(2 * time.Second)
			h.Sample(at)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := h.Get(Query{Key: Key{VS: 1}, Range: Day}); err != nil {
			b.Fatal(err)
		}
	}
}
