package verify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPKI makes a root, an intermediate and a leaf for names.
func testPKI(t *testing.T, names ...string) (*x509.CertPool, tls.Certificate) {
	t.Helper()
	mk := func(tmpl, parent *x509.Certificate, pub any, signer *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	now := time.Now()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	root := mk(rootT, rootT, &rootKey.PublicKey, rootKey)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Intermediate"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	inter := mk(interT, root, &interKey.PublicKey, rootKey)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	leaf := mk(leafT, inter, &leafKey.PublicKey, interKey)
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return pool, tls.Certificate{Certificate: [][]byte{leaf.Raw, inter.Raw}, PrivateKey: leafKey, Leaf: leaf}
}

func service(t *testing.T, srv *httptest.Server, checks ...config.SmokeCheck) config.VirtualService {
	t.Helper()
	a := srv.Listener.Addr().(*net.TCPAddr)
	return config.VirtualService{ID: 7, NickName: "Lync Reverse Proxy HTTPS", Address: a.IP.String(), Port: a.Port, Checks: checks,
		RealServers: []config.RealServer{{ID: 1, Address: "127.0.0.21", Port: 4443}, {ID: 2, Address: "127.0.0.22", Port: 4443}}}
}

func TestHTTPSChecks(t *testing.T) {
	roots, cert := testPKI(t, "meet.example.com", "dialin.example.com")
	hits := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		if r.Host != "meet.example.com" && r.Host != "dialin.example.com" && r.Host != "other.example.com" {
			t.Errorf("Host %q", r.Host)
		}
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
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
	srv := httptest.NewServer(http.NotFoundHandler())
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
