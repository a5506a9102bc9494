package dataplane

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestL7BandwidthAndThroughput: the per-service bandwidth limit and the
// global throughput limit hold back layer-7 services too, both ways. A
// transfer through a capped service cannot beat its cap by much (the
// first burst, a fifth of a second, passes at once; the bound below has a
// margin of half the rate), the hits are counted, and no status note
// says the cap is not applied.
func TestL7BandwidthAndThroughput(t *testing.T) {
	const size = 1500 << 10
	body := bytes.Repeat([]byte("x"), size)
	web := testkit.StartHTTP(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
			return
		}
		_, _ = w.Write(body)
	}))
	for _, tc := range []struct {
		name    string
		set     func(c *config.Config)
		bytesPS float64 // the cap, in bytes per second
		hits    func(e *Engine) int64
	}{
		{"bandwidth", func(c *config.Config) { c.VirtualServices[0].Limits.Bandwidth = 4000 }, 500e3, // kbit/s
			func(e *Engine) int64 { return e.Status()[0].LimitHits.Bandwidth }},
		{"throughput", func(c *config.Config) { c.Options.ThroughputLimit = 4 }, 500e3, // Mbit/s
			func(e *Engine) int64 { return e.Status()[0].LimitHits.Throughput }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			port := testkit.FreePort(t, "127.0.0.1")
			cfg := conf(t, httpVS(1, "127.0.0.1", port, config.RealServer{ID: 11, Address: "127.0.0.1", Port: web.Port(), Weight: 1}))
			tc.set(cfg)
			mustApply(t, e, cfg)
			if r := e.Status()[0].Reason; strings.Contains(r, "not applied") {
				t.Errorf("status reason %q", r)
			}
			c := newClient(nil, false)
			url := fmt.Sprintf("http://%s/", hostPort("127.0.0.1", port))
			for _, dir := range []string{"down", "up"} {
				start := time.Now()
				var got int
				if dir == "down" {
					b, _ := get(t, c, url, "")
					got = len(b)
				} else {
					resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if string(b) != fmt.Sprint(size) {
						t.Fatalf("upload: the real server got %q bytes, want %d", b, size)
					}
					got = size
				}
				secs := time.Since(start).Seconds()
				rate := float64(got) / secs
				t.Logf("%s: %d bytes in %.2f s: %.0f B/s (cap %.0f B/s)", dir, got, secs, rate, tc.bytesPS)
				if got != size || rate > 1.5*tc.bytesPS {
					t.Errorf("%s: %d bytes at %.0f B/s; the cap is %.0f B/s", dir, got, rate, tc.bytesPS)
				}
			}
			if tc.hits(e) == 0 {
				t.Errorf("no %s limit hit counted", tc.name)
			}
		})
	}
}
