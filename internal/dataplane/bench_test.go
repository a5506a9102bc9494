package dataplane

import (
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// BenchmarkEngineRoundTrip is a small request/response over a kept
// connection through a virtual service applied to an Engine (listener
// registry, picker and layer-4 proxy together). The real server is a
// line-echo server written for the test, so it costs more than the bare
// echo of l4's BenchmarkRoundTrip.
func BenchmarkEngineRoundTrip(b *testing.B) {
	a := startTag(b, "a")
	e := newEngine(b)
	port := testkit.FreePort(b, "127.0.0.1")
	mustApply(b, e, conf(b, vsOf(1, "127.0.0.1", port, rsOf(11, a, 1))))
	c := mustDial(b, hostPort("127.0.0.1", port))
	_ = c.c.SetDeadline(time.Time{})
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.ask("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply is one reload of 100 services with 10 real servers each
// in which one weight changes and every socket is kept.
func BenchmarkApply(b *testing.B) {
	a := startTag(b, "a")
	e := newEngine(b)
	ports := testkit.FreePorts(b, "127.0.0.1", 100)
	build := func(w int) *config.Config {
		var vss []config.VirtualService
		for i, port := range ports {
			var rss []config.RealServer
			for j := range 10 {
				rs := rsOf(1000+i*10+j, a, 1+j)
				rs.Port = 20000 + j
				rss = append(rss, rs)
			}
			vss = append(vss, vsOf(i+1, "127.0.0.1", port, rss...))
		}
		vss[0].RealServers[0].Weight = w
		return conf(b, vss...)
	}
	cfgs := [2]*config.Config{build(1), build(2)}
	mustApply(b, e, cfgs[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		mustApply(b, e, cfgs[(i+1)%2])
	}
}
