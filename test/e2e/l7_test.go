package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// testCert returns a CA pool and a PEM certificate with its key, signed by
// that CA, for www.example.test.
func testCert(t *testing.T) (*x509.CertPool, string) {
	t.Helper()
	ca := testkit.NewCA(t, "e2e root")
	leaf := ca.Server(t, "www.example.test")
	return ca.Pool(), leaf.CertPEM() + leaf.KeyPEM()
}

// webBackend is a real HTTP server answering "backend <path>".
func webBackend(t *testing.T) int {
	t.Helper()
	return testkit.StartHTTP(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s", r.URL.Path)
	})).Port()
}

// TestHTTPSOffload creates, through the native API, an http service with
// TLS offload and a certificate uploaded through the API, and gets the
// real server's answer over HTTPS through the VIP.
func TestHTTPSOffload(t *testing.T) {
	s := serve(t)
	roots, certPEM := testCert(t)
	body, _ := json.Marshal(map[string]any{"name": "site", "pem": certPEM})
	if code, b, _ := s.c.do("POST", "/api/v1/certificates", string(body)); code != 201 {
		t.Fatalf("upload certificate: %d %s", code, b)
	}
	backend := webBackend(t)
	vip := freePort(t)
	vs := fmt.Sprintf(`{"address":"127.0.0.1","port":%d,"protocol":"tcp","type":"http",
		"tls":{"offload":true,"certificates":["site"]},
		"realServers":[{"address":"127.0.0.1","port":%d}]}`, vip, backend)
	if code, b, _ := s.c.do("POST", "/api/v1/virtual-services", vs); code != 201 {
		t.Fatalf("create service: %d %s", code, b)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "www.example.test"}}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := fmt.Sprintf("https://127.0.0.1:%d/hello", vip)
	var got string
	// The data plane applies the change at once; poll in case it is busy.
	testkit.EventuallyState(t, 20*time.Second, func() (bool, string) {
		resp, err := hc.Get(url)
		if err != nil {
			got = err.Error()
			return false, got + "\n" + s.p.output()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = string(b)
		return resp.StatusCode == 200, got + "\n" + s.p.output()
	}, "HTTPS through the VIP")
	if got != "backend /hello" {
		t.Fatalf("answer %q", got)
	}
	// The status counts the request at layer 7.
	code, b, _ := s.c.do("GET", "/api/v1/status", "")
	var st struct {
		VirtualServices []struct {
			Port   int    `json:"port"`
			Reason string `json:"reason"`
			L7     *struct {
				Requests int64 `json:"requests"`
			} `json:"l7"`
		} `json:"virtualServices"`
	}
	if code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("status: %d %s", code, b)
	}
	for _, v := range st.VirtualServices {
		if v.Port == vip {
			if v.L7 == nil || v.L7.Requests < 1 || v.Reason != "" {
				t.Errorf("status of the service: %s", b)
			}
			return
		}
	}
	t.Errorf("service not in status: %s", b)
}
