package control

import (
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// bigConfig adds nvs layer-4 services with nrs real servers each, on
// 127.0.0.1 and the given ports. The real servers' addresses are on
// 127.0.0.1 too (ports 20000+); nothing needs to listen there for an
// apply, and health checks are off so the benchmark measures the write
// path alone.
func bigConfig(ports []int, nrs int) func(*config.Config) error {
	return func(c *config.Config) error {
		for i, port := range ports {
			vs := config.VirtualService{Address: "127.0.0.1", Port: port, Protocol: "tcp", Type: "gen", Schedule: "lc"}
			vs.HealthCheck.Type = "none"
			for j := range nrs {
				vs.RealServers = append(vs.RealServers, config.RealServer{Address: "127.0.0.1", Port: 20000 + i%1000*10 + j, Weight: 1000})
			}
			c.VirtualServices = append(c.VirtualServices, vs)
		}
		return nil
	}
}

// BenchmarkApplyOneChange is one change through the whole write path —
// copy, mutate, defaults, IDs, Validate, diff, data-plane compile and
// swap, bbolt commit — on top of a configuration of 1,000 services with
// 10 real servers each, with the real store (fsync included) and the real
// runtime holding 1,000 listening sockets.
func BenchmarkApplyOneChange(b *testing.B) {
	st, err := store.Open(b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	eng := dataplane.New(dataplane.Options{Logger: quiet})
	defer func() { _ = eng.Close() }()
	c, err := New(st, eng, quiet)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Apply(Change{Actor: alice, Mutate: bigConfig(testkit.FreePorts(b, "127.0.0.1", 1000), 10)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	for i := range b.N {
		w := 1 + i%2
		res, err := c.Apply(Change{Actor: alice, Mutate: func(cfg *config.Config) error {
			cfg.VirtualServices[500].RealServers[3].Weight = w
			return nil
		}})
		if err != nil {
			b.Fatal(err)
		}
		if !res.Committed {
			b.Fatal("nothing committed")
		}
	}
	b.StopTimer()
	// The process's CPU time per change (all goroutines, GC included): on a
	// shared machine it varies less than the wall time above.
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// cpuTime returns the CPU time the process has used.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
