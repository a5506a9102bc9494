package backend_test

import (
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// The status model's bounds (seconds) are the histograms' (durations).
func TestDurationBoundsMatchStatus(t *testing.T) {
	if len(status.DurationBounds) != backend.NumBounds {
		t.Fatalf("%d status bounds, %d histogram bounds", len(status.DurationBounds), backend.NumBounds)
	}
	for i, b := range backend.DurationBounds {
		if b.Seconds() != status.DurationBounds[i] {
			t.Errorf("bound %d: %v, status %v s", i, b, status.DurationBounds[i])
		}
	}
}

func TestStatusClass(t *testing.T) {
	for _, tc := range []struct{ status, class int }{
		{101, backend.Class1xx}, {200, backend.Class2xx}, {204, backend.Class2xx}, {302, backend.Class3xx},
		{404, backend.Class4xx}, {500, backend.Class5xx}, {599, backend.Class5xx},
		{99, backend.ClassOther}, {600, backend.ClassOther}, {0, backend.ClassOther},
	} {
		if got := backend.StatusClass(tc.status); got != tc.class {
			t.Errorf("StatusClass(%d) = %d, want %d", tc.status, got, tc.class)
		}
	}
}

func TestHistogram(t *testing.T) {
	for _, tc := range []struct {
		name string
		obs  []time.Duration
		// counts at the bounds 1 ms, 2.5 ms, 1 s and 60 s (cumulative)
		at1ms, at2500us, at1s, at60s, count uint64
	}{
		{name: "empty"},
		{name: "on a bound", obs: []time.Duration{time.Millisecond}, at1ms: 1, at2500us: 1, at1s: 1, at60s: 1, count: 1},
		{name: "just above", obs: []time.Duration{time.Millisecond + 1}, at2500us: 1, at1s: 1, at60s: 1, count: 1},
		{name: "negative is 0", obs: []time.Duration{-time.Second}, at1ms: 1, at2500us: 1, at1s: 1, at60s: 1, count: 1},
		{name: "beyond the last", obs: []time.Duration{2 * time.Minute, 500 * time.Millisecond}, at1s: 1, at60s: 1, count: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h backend.Histogram
			var sum time.Duration
			for _, d := range tc.obs {
				h.Observe(d)
				sum += max(d, 0)
			}
			s := h.Snapshot()
			got := [5]uint64{s.Counts[0], s.Counts[1], s.Counts[9], s.Counts[14], s.Count}
			want := [5]uint64{tc.at1ms, tc.at2500us, tc.at1s, tc.at60s, tc.count}
			if got != want || s.Sum != sum {
				t.Errorf("counts %v sum %v, want %v sum %v", got, s.Sum, want, sum)
			}
		})
	}
}

// Concurrent records all count: the counters are atomics.
func TestHTTPCountersConcurrent(t *testing.T) {
	var h backend.HTTPCounters
	srv := backend.NewServer(backend.Key{VS: 1, Address: "127.0.0.1", Port: 80}, backend.Settings{ID: 1})
	const workers, each = 8, 1000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				r := backend.Request{Status: []int{200, 404, 503}[i%3], ProxyError: i%3 == 2, Retries: w % 2,
					TTFB: time.Duration(i) * time.Microsecond, Duration: time.Duration(i) * time.Millisecond}
				if i%3 == 2 {
					r.TTFB = -1
				}
				h.Record(&r)
				srv.AddRequest()
				srv.AddResponse(r.Status)
			}
		})
	}
	wg.Wait()
	s := h.Snapshot()
	n := int64(workers * each)
	third := int64(workers * (each/3 + 1)) // i%3 == 0 for 334 of 1000
	if s.Requests != n || s.Responses[backend.Class2xx] != third || s.ProxyErrors != s.Responses[backend.Class5xx] ||
		s.Retries != int64(workers/2*each) || s.Duration.Count != uint64(n) || s.TTFB.Count != uint64(n-s.ProxyErrors) {
		t.Errorf("snapshot %+v", s)
	}
	if srv.Requests() != n || srv.Responses()[backend.Class4xx] != s.Responses[backend.Class4xx] {
		t.Errorf("server: %d requests, responses %v", srv.Requests(), srv.Responses())
	}
}
