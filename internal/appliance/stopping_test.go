package appliance

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// stoppingValue scrapes the exporter through a listener of the test's
// own and returns the haproxy_process_stopping line's value.
func stoppingValue(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + MetricsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "haproxy_process_stopping "); ok {
			return v
		}
	}
	t.Fatalf("no haproxy_process_stopping in the scrape")
	return ""
}

// TestStoppingMetric: haproxy_process_stopping is 0 while Fulcrum runs
// and 1 from the moment Close begins — seen while Close waits for a
// request in progress on the admin listener, and after it returned.
func TestStoppingMetric(t *testing.T) {
	a, err := Start(Options{DataDir: t.TempDir(), AdminAddr: "127.0.0.1:0", AdminPassword: "correct horse battery",
		BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = a.Close()
		}
	}()
	if _, err := a.Control.Apply(control.Change{Actor: control.Actor{User: "test", Source: control.SourceSystem}, Summary: "haproxy names",
		Mutate: func(c *config.Config) error { c.Options.Metrics.HAProxyNames = true; return nil }}); err != nil {
		t.Fatal(err)
	}
	if v := stoppingValue(t, a.Metrics.Handler()); v != "0" {
		t.Fatalf("stopping = %s while running", v)
	}
	// A request in progress on the admin listener (its head not yet
	// complete) holds Close in the listeners' shutdown.
	conn, err := tls.Dial("tcp", a.AdminAddr(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the appliance's own self-signed admin certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /api/v1/status HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Close() }()
	closed = true
	testkit.Eventually(t, 5*time.Second, func() bool { return stoppingValue(t, a.Metrics.Handler()) == "1" },
		"stopping to be 1 while Close runs")
	select {
	case <-done:
		t.Log("Close ended before the request was released") // the shutdown's own 5 s bound
	default:
	}
	_ = conn.Close()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if v := stoppingValue(t, a.Metrics.Handler()); v != "1" {
		t.Errorf("stopping = %s after Close", v)
	}
}
