package l7

import (
	"net"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
)

// capNotReached gives f's service a bandwidth and a throughput Shaper of
// 100 Gbit/s each: configured, never reached, so that a benchmark
// measures what shaping costs a connection that is not held back.
func capNotReached(b *testing.B, f *fixture) {
	cfg := f.svc.Config()
	cfg.Bandwidth = l4.NewShaper(12.5e9, backend.LimitBandwidth)
	cfg.Throughput = l4.NewShaper(12.5e9, backend.LimitThroughput)
	if err := f.svc.Update(cfg); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkProxyKeepAliveCapped is BenchmarkProxyKeepAlive with a cap
// configured but not reached.
func BenchmarkProxyKeepAliveCapped(b *testing.B) {
	f := benchVS(b, false)
	capNotReached(b, f)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchRequests(b, c)
}
