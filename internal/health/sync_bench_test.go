package health

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// stallListener accepts connections on 127.0.0.1 and never answers them,
// so that an HTTP check against it stays in flight until its timeout. It
// returns the port.
func stallListener(tb testing.TB) int {
	return testkit.StartTCP(tb, "127.0.0.1", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }).Port()
}

// syncConfig returns a validated configuration of services services of
// perService real servers each, checked over HTTP on port checkPort of
// 127.0.0.1.
func syncConfig(tb testing.TB, services, perService, checkPort int) *config.Config {
	c := &config.Config{Options: config.DefaultOptions()}
	id := 0
	for s := range services {
		v := config.VirtualService{ID: s + 1, Address: "127.0.1.1", Port: 1000 + s,
			HealthCheck: config.HealthCheck{Type: TypeHTTP, Port: checkPort, URL: "/health"}}
		for j := range perService {
			id++
			v.RealServers = append(v.RealServers, config.RealServer{ID: id, Address: "127.0.0.1", Port: 20000 + j, Weight: 1000})
		}
		c.VirtualServices = append(c.VirtualServices, v)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		tb.Fatal(err)
	}
	return c
}

// BenchmarkSyncOneChange measures one Sync of a configuration of 1,000
// services × 10 real servers that differs from the one in force by one
// real server's weight (which does not touch any check) or by one
// service's check URL (which restarts that service's 10 checks). The
// Monitor checks nothing meanwhile: one check is in flight to a listener
// that never answers, with MaxConcurrent 1 and a unit of an hour, and the
// others wait for it.
func BenchmarkSyncOneChange(b *testing.B) {
	const services, perService = 1000, 10
	port := stallListener(b)
	cases := []struct {
		name   string
		change func(c *config.Config)
	}{
		{"rsWeight", func(c *config.Config) { c.VirtualServices[500].RealServers[5].Weight = 500 }},
		{"vsCheck", func(c *config.Config) { c.VirtualServices[500].HealthCheck.URL = "/other" }},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			a := syncConfig(b, services, perService, port)
			other := syncConfig(b, services, perService, port)
			tc.change(other)
			srvs := map[backend.Key]*backend.Server{}
			for _, v := range a.VirtualServices {
				for _, rs := range v.RealServers {
					k := backend.Key{VS: v.ID, Address: rs.Address, Port: rs.Port}
					srvs[k] = backend.NewServer(k, backend.Settings{ID: rs.ID, Weight: rs.Weight})
				}
			}
			lookup := func(k backend.Key) *backend.Server { return srvs[k] }
			m := New(Options{Logger: quiet, MaxConcurrent: 1, Unit: time.Hour})
			defer m.Close()
			if err := m.Sync(a, lookup); err != nil {
				b.Fatal(err)
			}
			cfgs := [2]*config.Config{other, a}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := m.Sync(cfgs[i%2], lookup); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.StopTimer()
			if st := m.Status(); len(st) != services || len(st[500].RealServers) != perService {
				b.Fatalf("status has %d services", len(st))
			}
		})
	}
}
