package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// testCert returns a CA pool and a PEM certificate with its key, signed by
// that CA, for www.example.test.
func testCert(t *testing.T) (*x509.CertPool, string) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "www.example.test"},
		DNSNames: []string{"www.example.test"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// webBackend is a real HTTP server answering "backend <path>".
func webBackend(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend %s", r.URL.Path)
	})}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() { _ = srv.Close(); wg.Wait() })
	return ln.Addr().(*net.TCPAddr).Port
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
	for i := range 100 { // the data plane applies the change at once; poll in case it is busy
		resp, err := hc.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if got = string(b); resp.StatusCode == 200 {
				break
			}
		} else {
			got = err.Error()
		}
		if i == 99 {
			t.Fatalf("HTTPS through the VIP: %s\n%s", got, s.p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
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
