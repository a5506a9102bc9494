package webui_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// adminPassword is the first administrator's password in these tests.
const adminPassword = "correct horse battery staple"

// startAppliance starts a real Fulcrum on a temporary data directory with
// its admin listener on a free loopback port.
func startAppliance(t *testing.T) *appliance.Appliance {
	t.Helper()
	a, err := appliance.Start(appliance.Options{DataDir: t.TempDir(), AdminAddr: "127.0.0.1:0",
		AdminPassword: adminPassword, BcryptCost: bcrypt.MinCost,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close appliance: %v", err)
		}
	})
	return a
}

// loopback returns an address in 127.0.0.0/8 that is unlikely to be used
// by the other packages' tests running at the same time: 127.<a>.<b>.<host>
// with a and b from the process ID.
func loopback(host int) string {
	pid := os.Getpid()
	return fmt.Sprintf("127.%d.%d.%d", 100+pid%100, (pid/100)%250+1, host)
}

// freePort returns a TCP port free on addr just now.
func freePort(t *testing.T, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// backend is a real HTTP server on a loopback address.
type backend struct {
	addr string
	port int
	srv  *http.Server
}

// startBackends starts n HTTP servers on consecutive loopback addresses
// from host, all on one port, answering with their own name.
func startBackends(t *testing.T, host, n int) []*backend {
	t.Helper()
	var out []*backend
	var port int
	for i := 0; i < n; i++ {
		addr := loopback(host + i)
		if port == 0 {
			port = freePort(t, addr)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(port)))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("backend-%d", i+1)
		b := &backend{addr: addr, port: port, srv: &http.Server{ReadHeaderTimeout: 5 * time.Second,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// A body of some size, so that throughput shows.
				fmt.Fprintf(w, "%s\n%s\n", name, strings.Repeat("fulcrum ", 4096))
			})}}
		go func() { _ = b.srv.Serve(ln) }()
		out = append(out, b)
	}
	t.Cleanup(func() {
		for _, b := range out {
			_ = b.srv.Close()
		}
	})
	return out
}

// certFiles writes a certificate chain made for the test: a leaf for
// meet.example.com with its key (PEM) and the intermediate that issued it.
func certFiles(t *testing.T) (leafPEM, interPEM string) {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	mk := func(tpl, parent *x509.Certificate, pub, signer any) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rootKey, interKey, leafKey := newKey(), newKey(), newKey()
	rootTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Fulcrum Test Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	root := mk(rootTpl, rootTpl, &rootKey.PublicKey, rootKey)
	interTpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Fulcrum Test Issuing CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	inter := mk(interTpl, root, &interKey.PublicKey, rootKey)
	leafTpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "meet.example.com"},
		DNSNames:  []string{"meet.example.com", "lyncdiscover.example.com", "dialin.example.com"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(398 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leaf := mk(leafTpl, inter, &leafKey.PublicKey, interKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM = filepath.Join(dir, "meet.pem")
	interPEM = filepath.Join(dir, "intermediate.pem")
	leafData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(leafPEM, leafData, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(interPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return leafPEM, interPEM
}

// chromiumPath finds Debian's chromium. Without it the browser tests are
// skipped, except under CI=true, where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("FULCRUM_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing: the web UI's browser tests need /usr/bin/chromium (apt-get install chromium; scripts/test installs it)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); set CI=true to make this a failure")
	return ""
}

// artifactDir is where screenshots go: $FULCRUM_ARTIFACTS/webui, or
// test-artifacts/webui at the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("FULCRUM_ARTIFACTS")
	if base == "" {
		dir, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			dir = filepath.Dir(dir)
		}
		base = filepath.Join(dir, "test-artifacts")
	}
	out := filepath.Join(base, "webui")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// client is a browser-like HTTP client of the admin plane: it keeps
// cookies and sends the Origin and Sec-Fetch-Site headers a browser sends.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	jar  *cookiejar.Jar
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: base, jar: jar, hc: &http.Client{Transport: tr, Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request and returns the status, the Location and the body.
func (c *client) do(method, path string, form url.Values, hdr map[string]string) (int, string, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.base)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

var (
	tokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)
	csrfRE  = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
)

// login signs in through the login form and returns the CSRF token of
// the session's pages.
func (c *client) login(user, password string) (string, error) {
	c.t.Helper()
	_, _, page := c.do("GET", "/login", nil, nil)
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		return "", errors.New("no login token on the login page")
	}
	status, loc, body := c.do("POST", "/login", url.Values{"user": {user}, "password": {password}, "token": {m[1]}}, nil)
	if status != http.StatusSeeOther {
		return "", fmt.Errorf("login: status %d: %s", status, body)
	}
	_, _, page = c.do("GET", loc, nil, nil)
	m = csrfRE.FindStringSubmatch(page)
	if m == nil {
		return "", errors.New("no CSRF token on the page after login")
	}
	return m[1], nil
}

// cookie returns the value of a cookie the client holds for the admin
// plane.
func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.base)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// waitFor polls cond every 100 ms until it holds or the deadline passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for i := 0; time.Now().Before(deadline) && i < 10000; i++ {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
	return cond()
}

// trafficGen sends HTTP requests to addr until stopped.
type trafficGen struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	ok   int
}

func startTraffic(addr string) *trafficGen {
	g := &trafficGen{stop: make(chan struct{})}
	tr := &http.Transport{DisableKeepAlives: true}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer tr.CloseIdleConnections()
		for i := 0; i < 5000; i++ {
			select {
			case <-g.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			resp, err := hc.Get("http://" + addr + "/")
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			g.mu.Lock()
			g.ok++
			g.mu.Unlock()
		}
	}()
	return g
}

func (g *trafficGen) close() int {
	close(g.stop)
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ok
}
