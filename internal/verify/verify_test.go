package verify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPKI makes a root, an intermediate and a leaf for names.
func testPKI(t *testing.T, names ...string) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	root := testkit.NewCA(t, "Test Root")
	leaf := root.Intermediate(t, "Test Intermediate").Server(t, names...)
	return root.Pool(), leaf.TLS()
}

func service(t *testing.T, srv *testkit.HTTPServer, checks ...config.SmokeCheck) config.VirtualService {
	t.Helper()
	return config.VirtualService{ID: 7, NickName: "Lync Reverse Proxy HTTPS", Address: srv.IP(), Port: srv.Port(), Checks: checks,
		RealServers: []config.RealServer{{ID: 1, Address: "127.0.0.21", Port: 4443}, {ID: 2, Address: "127.0.0.22", Port: 4443}}}
}

func TestHTTPSChecks(t *testing.T) {
	roots, cert := testPKI(t, "meet.example.com", "dialin.example.com")
	hits := 0
	srv := testkit.StartHTTPS(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.Host != "meet.example.com" && r.Host != "dialin.example.com" && r.Host != "other.example.com" {
			t.Errorf("Host %q", r.Host)
		}
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}), cert)
	cfg := config.Default()
	cfg.VirtualServices = []config.VirtualService{service(t, srv,
		config.SmokeCheck{Name: "Meeting Space URL", URL: "https://meet.example.com/"},
		config.SmokeCheck{Name: "Dial in", URL: "https://dialin.example.com/dialin"},
		config.SmokeCheck{Name: "Wrong name", URL: "https://other.example.com/"},
		config.SmokeCheck{Name: "Down page", URL: "https://meet.example.com/down"},
	)}
	// Real server 2's counter moves with every request: the answer names it.
	calls := int64(0)
	counters := func() map[RSRef]int64 {
		calls++
		return map[RSRef]int64{{VS: 7, RS: 1}: 5, {VS: 7, RS: 2}: calls}
	}
	res := Run(context.Background(), cfg, Options{Roots: roots, Counters: counters})
	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
	ok := res[0]
	if !ok.Pass || ok.Status != 200 || ok.TLS == nil || !ok.TLS.CoversHost || !ok.TLS.ChainValid || ok.TLS.ChainLength != 2 ||
		ok.RealServer != "127.0.0.22:4443" || ok.Service != "Lync Reverse Proxy HTTPS" {
		t.Errorf("meeting URL: %+v %+v", ok, ok.TLS)
	}
	if !res[1].Pass {
		t.Errorf("dial-in: %+v", res[1])
	}
	if res[2].Pass || !strings.Contains(res[2].Error, "does not cover other.example.com") {
		t.Errorf("wrong name: %+v", res[2])
	}
	if res[3].Pass || res[3].Status != 503 || !strings.Contains(res[3].Error, "status 503 not expected") {
		t.Errorf("down page: %+v", res[3])
	}
	// Without the test root the chain is reported as not verifying.
	res = Run(context.Background(), cfg, Options{VS: 7})
	if !res[0].Pass || res[0].TLS.ChainValid || res[0].TLS.ChainError == "" {
		t.Errorf("untrusted chain: %+v %+v", res[0], res[0].TLS)
	}
	if hits != 8 {
		t.Errorf("%d requests reached the server, want 8", hits)
	}
}

func TestUnreachable(t *testing.T) {
	srv := testkit.StartHTTP(t, "127.0.0.1", http.NotFoundHandler())
	cfg := config.Default()
	cfg.VirtualServices = []config.VirtualService{service(t, srv, config.SmokeCheck{Name: "x", URL: "http://app.example.com/", Expect: []int{404}})}
	res := Run(context.Background(), cfg, Options{})
	if !res[0].Pass || res[0].Status != 404 {
		t.Errorf("expected 404: %+v", res[0])
	}
	srv.Close()
	res = Run(context.Background(), cfg, Options{Timeout: 2 * time.Second})
	if res[0].Pass || !strings.Contains(res[0].Error, "connect to") {
		t.Errorf("closed service: %+v", res[0])
	}
}
