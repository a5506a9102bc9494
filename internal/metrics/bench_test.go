package metrics

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// BenchmarkScrape1000x10 scrapes a real data plane serving 1,000 layer-7
// services of 10 real servers each (listening on 127.0.0.1, health checks
// off), with haproxyNames on, and reports the exposition's size and
// series.
func BenchmarkScrape1000x10(b *testing.B) {
	ports := testkit.FreePorts(b, "127.0.0.1", 1000)
	c := config.Default()
	c.Options.Metrics.HAProxyNames = true
	id := 1
	for i := range 1000 {
		vs := config.VirtualService{ID: id, NickName: "svc" + string(rune('a'+i%26)) + itoa(i), Address: "127.0.0.1",
			Port: ports[i], Protocol: "tcp", Type: "http", HealthCheck: config.HealthCheck{Type: "none"}}
		id++
		for j := range 10 {
			vs.RealServers = append(vs.RealServers, config.RealServer{ID: id, Address: "127.0.0.1", Port: 20000 + j})
			id++
		}
		c.VirtualServices = append(c.VirtualServices, vs)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	e := dataplane.New(dataplane.Options{Logger: quiet})
	defer e.Close()
	if err := e.Apply(c); err != nil {
		b.Fatal(err)
	}
	off := *c
	off.Options.Metrics.HAProxyNames = false
	for _, run := range []struct {
		name string
		cfg  *config.Config
	}{{"fulcrum", &off}, {"fulcrum+haproxy", c}} {
		b.Run(run.name, func(b *testing.B) { benchScrape(b, e, run.cfg) })
	}
}

func benchScrape(b *testing.B, e *dataplane.Engine, c *config.Config) {
	exp, err := New(Options{Source: e, Config: func() *config.Config { return c }, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	var size, lines int
	for b.Loop() {
		rec := httptest.NewRecorder()
		exp.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body := rec.Body.Bytes()
		size = len(body)
		lines = 0
		for _, l := range bytes.Split(body, []byte("\n")) {
			if len(l) > 0 && l[0] != '#' {
				lines++
			}
		}
	}
	b.ReportMetric(float64(size), "bytes/scrape")
	b.ReportMetric(float64(lines), "series/scrape")
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}
