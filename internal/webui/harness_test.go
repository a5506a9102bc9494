package webui_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
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

// backend is a real HTTP server on a loopback address.
type backend struct {
	addr string
	port int
}

// startBackends starts n HTTP servers on distinct loopback addresses, all
// on one port, answering with their own name.
func startBackends(t *testing.T, n int) []*backend {
	t.Helper()
	var out []*backend
	var port int
	for i, addr := range testkit.LoopbackAddrs(n) {
		if port == 0 {
			port = testkit.FreePort(t, addr)
		}
		name := fmt.Sprintf("backend-%d", i+1)
		testkit.ServeHTTP(t, testkit.ListenAt(t, net.JoinHostPort(addr, fmt.Sprint(port))), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A body of some size, so that throughput shows.
			fmt.Fprintf(w, "%s\n%s\n", name, strings.Repeat("fulcrum ", 4096))
		}), nil)
		out = append(out, &backend{addr: addr, port: port})
	}
	return out
}

// certFiles writes a certificate chain made for the test: a leaf for
// meet.example.com with its key (PEM) and the intermediate that issued it.
func certFiles(t *testing.T) (leafPEM, interPEM string) {
	t.Helper()
	dir := t.TempDir()
	inter := testkit.NewCA(t, "Fulcrum Test Root").Intermediate(t, "Fulcrum Test Issuing CA")
	leaf := inter.Issue(t, testkit.Leaf{Names: []string{"meet.example.com", "lyncdiscover.example.com", "dialin.example.com"},
		NotAfter: time.Now().Add(398 * 24 * time.Hour)})
	leafPEM = filepath.Join(dir, "meet.pem")
	interPEM = filepath.Join(dir, "intermediate.pem")
	if err := os.WriteFile(leafPEM, []byte(leaf.CertPEM()+leaf.KeyPEM()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(interPEM, []byte(inter.CertPEM()), 0o600); err != nil {
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
