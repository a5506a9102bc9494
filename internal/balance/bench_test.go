package balance

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
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

// BenchmarkPick measures one pick and its done, per method and pool size,
// on one goroutine. Weights are 1-5, so wrr's table has a period of 3n.
//
//	go test -run '^$' -bench 'BenchmarkPick$' -benchmem ./internal/balance
func BenchmarkPick(b *testing.B) {
	for _, method := range allMethods {
		for _, n := range []int{10, 100, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/%d", method, n), func(b *testing.B) {
				p := benchPicker(b, method, n)
				req := &Request{Client: clientAddr(12345), HashKey: "/index.html"}
				b.ReportAllocs()
				reportCPU(b, func() {
					_, done, err := p.Pick(req)
					if err != nil {
						b.Fatal(err)
					}
					done(Outcome{})
				})
			})
		}
	}
}

// BenchmarkPickParallel is BenchmarkPick for the O(1)/O(log n) methods
// with every core picking at once.
//
//	go test -run '^$' -bench 'BenchmarkPickParallel' -benchmem ./internal/balance
func BenchmarkPickParallel(b *testing.B) {
	for _, method := range []string{"rr", "wrr", "lc", "wlc"} {
		for _, n := range []int{10, 1000} {
			b.Run(fmt.Sprintf("%s/%d", method, n), func(b *testing.B) {
				p := benchPicker(b, method, n)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					req := &Request{}
					for pb.Next() {
						_, done, err := p.Pick(req)
						if err != nil {
							b.Error(err)
							return
						}
						done(Outcome{})
					}
				})
			})
		}
	}
}

// BenchmarkPickHeld measures lc and wlc with 8 connections held per server,
// so picks are not all ties: a realistic busy pool.
func BenchmarkPickHeld(b *testing.B) {
	for _, method := range []string{"lc", "wlc"} {
		for _, n := range []int{10, 1000} {
			b.Run(fmt.Sprintf("%s/%d", method, n), func(b *testing.B) {
				p := benchPicker(b, method, n)
				var held []func(Outcome)
				for range 8 * n {
					_, d, _ := p.Pick(&Request{})
					held = append(held, d)
				}
				req := &Request{}
				b.ReportAllocs()
				reportCPU(b, func() {
					_, done, err := p.Pick(req)
					if err != nil {
						b.Fatal(err)
					}
					done(Outcome{})
				})
				for _, d := range held {
					d(Outcome{})
				}
			})
		}
	}
}

func benchPicker(b *testing.B, method string, n int) Picker {
	ws := make([]int, n)
	for i := range ws {
		ws[i] = 1 + i%5
	}
	servers := pool(ws...)
	for i, s := range servers {
		s.Metrics().ObserveLatency(time.Duration(1+i%7) * time.Millisecond)
	}
	p := mustNewOpts(b, method, servers, Options{})
	if a, ok := p.(*adaptive); ok {
		// Let the poller's first round (every agent refused: nothing
		// listens) finish before measuring, so it is not measured.
		testkit.Within(time.Minute, func() bool { return a.poller.rounds.Load() != 0 })
	}
	return p
}

// BenchmarkLeastConnScan measures lc's linear scan, which the index
// replaces for pools above linearMax (a request that avoids a server
// outside the pool forces the scan).
func BenchmarkLeastConnScan(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			p := benchPicker(b, "lc", n)
			req := &Request{Avoid: pool(1)}
			b.ReportAllocs()
			reportCPU(b, func() {
				_, done, err := p.Pick(req)
				if err != nil {
					b.Fatal(err)
				}
				done(Outcome{})
			})
		})
	}
}
