package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestPrometheusScrapesFulcrum starts the built binary with an HTTP
// service and two real backends, and Debian's prometheus scraping it every
// second: through the admin listener with an API key (the documented way)
// and through --metrics-addr without credentials. Under load, a PromQL
// query over Prometheus's HTTP API returns a positive rate for the service.
func TestPrometheusScrapesFulcrum(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus not found (Debian package prometheus): %v", err)
		}
		t.Skip("prometheus not found (Debian package prometheus)")
	}
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	start(t, dir, []string{"FULCRUM_ADMIN_PASSWORD=" + password}, "serving configuration revision",
		"serve", "--data-dir", dataDir, "--admin-addr", adminAddr, "--metrics-addr", metricsAddr, "--manage-network", "off")
	c := newClient(t, adminAddr, dataDir, "bal", password)

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body); fmt.Fprint(w, "ok") })
	b1, b2 := testkit.StartHTTP(t, "127.0.0.1", h), testkit.StartHTTP(t, "127.0.0.1", h)
	vip := freePort(t)
	code, body, _ := c.do("POST", "/api/v1/virtual-services", fmt.Sprintf(`{"address":"127.0.0.1","port":%d,"nickname":"web","type":"http",
		"realServers":[{"address":"127.0.0.1","port":%d},{"address":"127.0.0.1","port":%d}]}`, vip, b1.Port(), b2.Port()))
	if code != 201 {
		t.Fatalf("create the service: %d %s", code, body)
	}
	code, body, _ = c.do("POST", "/api/v1/api-keys", `{"description":"prometheus"}`)
	var key struct{ Secret string }
	if code != 201 || json.Unmarshal(body, &key) != nil || key.Secret == "" {
		t.Fatalf("create an API key: %d %s", code, body)
	}
	keyFile := filepath.Join(dir, "fulcrum.key")
	if err := os.WriteFile(keyFile, []byte(key.Secret), 0o600); err != nil {
		t.Fatal(err)
	}
	promCfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fulcrum
    scheme: https
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: %s
    tls_config:
      ca_file: %s
    static_configs:
      - targets: ['%s']
  - job_name: fulcrum-open
    static_configs:
      - targets: ['%s']
`, keyFile, filepath.Join(dataDir, "admin-cert.pem"), adminAddr, metricsAddr)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(promCfg), 0o600); err != nil {
		t.Fatal(err)
	}
	promIP := testkit.LoopbackAddr()
	promAddr := fmt.Sprintf("%s:%d", promIP, testkit.FreePort(t, promIP))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := exec.CommandContext(ctx, prom, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	out := &proc{done: make(chan struct{})}
	p.Stdout, p.Stderr = out, out
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Wait(); close(out.done) }()
	defer func() {
		cancel()
		<-out.done
	}()

	query := func(q string) (float64, bool, string) {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if json.Unmarshal(b, &r) != nil || r.Status != "success" || len(r.Data.Result) == 0 {
			return 0, false, string(b)
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil, string(b)
	}
	testkit.EventuallyState(t, 60*time.Second, func() (bool, string) {
		a, okA, sa := query(`up{job="fulcrum"}`)
		o, okO, so := query(`up{job="fulcrum-open"}`)
		return okA && okO && a == 1 && o == 1, sa + "\n" + so + "\n" + out.output()
	}, "prometheus to scrape both Fulcrum targets")

	// Load: bounded in time (10 s) and count (20,000 requests), on
	// keep-alive connections (requests, not connections, are counted).
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var sent int
	wg.Add(1)
	go func() {
		defer wg.Done()
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		deadline := time.Now().Add(10 * time.Second)
		for sent < 20000 && time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", vip))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			sent++
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	q := `rate(fulcrum_vs_requests_total{job="fulcrum",vs_name="web"}[5s])`
	testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
		v, ok, s := query(q)
		return ok && v > 0, s
	}, "a positive request rate of the service in Prometheus")
	v, _, _ := query(q)
	t.Logf("%s = %.1f/s", q, v)
}
