// Package e2e runs the built fulcrum binary the way a user does: serve,
// demo, apply, export, passwd and version, with real sockets on 127.0.0.1
// and real backends started by the test.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fulcrum-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fulcrum")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=e2e -X main.commit=test", "-o", binary, "../../cmd/fulcrum")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fulcrum:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	return testkit.FreePort(t, "127.0.0.1")
}

// proc is a running fulcrum process whose output is collected.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs the binary in dir and waits until its output matches ready.
func start(t *testing.T, dir string, env []string, ready string, args ...string) *proc {
	t.Helper()
	return startCmd(t, dir, env, ready, exec.Command(binary, args...))
}

// startCmd runs cmd (the binary, or a command that runs it) in dir and
// waits until its output matches ready.
func startCmd(t *testing.T, dir string, env []string, ready string, cmd *exec.Cmd) *proc {
	t.Helper()
	args := cmd.Args[1:]
	p := &proc{cmd: cmd, done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
		out := p.output()
		select {
		case <-p.done:
			if !strings.Contains(out, ready) {
				t.Fatalf("fulcrum %v exited before %q:\n%s", args, ready, out)
			}
		default:
		}
		return strings.Contains(out, ready), "\n" + out
	}, fmt.Sprintf("fulcrum %v to print %q", args, ready))
	return p
}

func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("fulcrum did not stop on SIGTERM:\n%s", p.output())
	}
}

// run runs the binary to completion and returns its output and exit code.
func run(t *testing.T, dir string, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return string(out), code
}

// client talks to the admin API, trusting its self-signed certificate
// (pinned from the data directory).
type client struct {
	t          *testing.T
	base       string
	user, pass string
	hc         *http.Client
}

func newClient(t *testing.T, addr, dataDir, user, pass string) *client {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "admin-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509Pool(t, pemBytes)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: "https://" + addr, user: user, pass: pass, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *client) do(method, path, body string, header ...string) (int, []byte, http.Header) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

var passwordRE = regexp.MustCompile(`Created administrator "bal" with password: (\S+)`)

// TestServeDefaults runs `fulcrum serve` with no flags at all, as the README
// says, checks the generated password works and that a restart keeps
// everything.
func TestServeDefaults(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil, "serving configuration revision", "serve")
	out := p.output()
	if !strings.Contains(out, "https://127.0.0.1:8443/api/v1/") {
		t.Errorf("serve does not say where the admin API listens:\n%s", out)
	}
	m := passwordRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no generated password printed:\n%s", out)
	}
	dataDir := filepath.Join(dir, "fulcrum-data")
	c := newClient(t, "127.0.0.1:8443", dataDir, "bal", m[1])
	if code, body, _ := c.do("GET", "/api/v1/status", ""); code != 200 {
		t.Fatalf("status with the printed password: %d %s", code, body)
	}
	anon := newClient(t, "127.0.0.1:8443", dataDir, "", "")
	if code, _, _ := anon.do("GET", "/api/v1/virtual-services", ""); code != 401 {
		t.Errorf("unauthenticated call got %d, want 401", code)
	}
	code, body, _ := c.do("POST", "/api/v1/virtual-services", `{"address":"127.0.0.2","port":`+fmt.Sprint(freePort(t))+`,"realServers":[{"address":"127.0.0.3","port":9001}]}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	p.stop(t)

	p2 := start(t, dir, nil, "serving configuration revision 1", "serve")
	if passwordRE.MatchString(p2.output()) {
		t.Error("a restart printed a new password")
	}
	if code, body, _ := c.do("GET", "/api/v1/virtual-services/1", ""); code != 200 || !bytes.Contains(body, []byte(`"127.0.0.3"`)) {
		t.Errorf("after restart: %d %s", code, body)
	}
}

// stack is a running server on free ports with a known password.
type stack struct {
	dir, dataDir, admin string
	p                   *proc
	c                   *client
}

const password = "e2e test passphrase"

func serve(t *testing.T) *stack {
	t.Helper()
	s := &stack{dir: t.TempDir()}
	s.dataDir = filepath.Join(s.dir, "data")
	s.admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.p = start(t, s.dir, []string{"FULCRUM_ADMIN_PASSWORD=" + password}, "serving configuration revision",
		"serve", "--data-dir", s.dataDir, "--admin-addr", s.admin)
	if passwordRE.MatchString(s.p.output()) {
		t.Error("a password was generated although FULCRUM_ADMIN_PASSWORD was set")
	}
	s.c = newClient(t, s.admin, s.dataDir, "bal", password)
	return s
}

func TestLockoutThroughTheBinary(t *testing.T) {
	s := serve(t)
	code, body, _ := s.c.do("POST", "/api/v1/api-keys", `{"description":"auditor"}`)
	var key struct{ Secret string }
	if code != 201 || json.Unmarshal(body, &key) != nil {
		t.Fatalf("create API key: %d %s", code, body)
	}
	bad := newClient(t, s.admin, s.dataDir, "bal", "wrong password")
	for i := 0; i < 3; i++ {
		if code, _, _ := bad.do("GET", "/api/v1/status", ""); code != 401 {
			t.Fatalf("attempt %d: %d", i+1, code)
		}
	}
	code, _, h := s.c.do("GET", "/api/v1/status", "")
	if code != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("right password during lockout: %d (Retry-After %q)", code, h.Get("Retry-After"))
	}
	keyed := newClient(t, s.admin, s.dataDir, "", "")
	code, body, _ = keyed.do("GET", "/api/v1/audit", "", "Authorization", "Bearer "+key.Secret)
	var audit struct {
		Entries []struct {
			Action  string `json:"action"`
			Success bool   `json:"success"`
			User    string `json:"user"`
		} `json:"entries"`
	}
	if code != 200 || json.Unmarshal(body, &audit) != nil {
		t.Fatalf("audit: %d %s", code, body)
	}
	fails, locks := 0, 0
	for _, e := range audit.Entries {
		if e.Action == "login" && !e.Success && e.User == "bal" {
			fails++
		}
		if e.Action == "lockout" {
			locks++
		}
	}
	if fails < 3 || locks != 1 {
		t.Errorf("audit shows %d failed logins and %d lockouts:\n%s", fails, locks, body)
	}
}

func TestApplyExportRoundTrip(t *testing.T) {
	s := serve(t)
	backend := echoBackend(t)
	vip := freePort(t)
	doc := fmt.Sprintf(`virtualServices:
- address: 127.0.0.1
  port: %d
  nickname: e2e
  schedule: lc
  realServers:
  - address: 127.0.0.1
    port: %d
`, vip, backend)
	file := filepath.Join(s.dir, "lb.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, rc := run(t, s.dir, "", "apply", "-f", file, "--dry-run", "--data-dir", s.dataDir)
	if rc != 0 || !strings.Contains(out, `+ virtualServices[id=1].nickname: "e2e"`) || !strings.Contains(out, "Dry run") {
		t.Fatalf("dry run: %d\n%s", rc, out)
	}
	out, rc = run(t, s.dir, "", "apply", "-f", file, "--data-dir", s.dataDir)
	if rc != 0 || !strings.Contains(out, "as revision 1") {
		t.Fatalf("apply: %d\n%s", rc, out)
	}
	// The data plane serves it at once.
	if got := roundTrip(t, vip, "ping"); got != "echo: ping" {
		t.Errorf("through the VS: %q", got)
	}
	exported, rc := run(t, s.dir, "", "export", "--data-dir", s.dataDir)
	if rc != 0 {
		t.Fatalf("export: %d %s", rc, exported)
	}
	if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	out, rc = run(t, s.dir, "", "apply", "-f", file, "--data-dir", s.dataDir)
	if rc != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("re-applying the export: %d\n%s", rc, out)
	}
	// Invalid files are refused with the field path and a non-zero exit.
	bad := strings.Replace(doc, fmt.Sprintf("port: %d\n", backend), "port: 70000\n", 1) + "bogus: 1\n"
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, rc = run(t, s.dir, "", "apply", "-f", file, "--data-dir", s.dataDir)
	if rc == 0 || !strings.Contains(out, "bogus: unknown field") {
		t.Errorf("bad file: %d\n%s", rc, out)
	}
	bad = strings.Replace(doc, fmt.Sprintf("port: %d\n", backend), "port: 70000\n", 1)
	_ = os.WriteFile(file, []byte(bad), 0o600)
	out, rc = run(t, s.dir, "", "apply", "-f", file, "--data-dir", s.dataDir)
	if rc == 0 || !strings.Contains(out, "virtualServices[0].realServers[0].port: must be 1-65535, got 70000") {
		t.Errorf("bad port: %d\n%s", rc, out)
	}
	// History: the CLI's change is recorded with source cli.
	code, body, _ := s.c.do("GET", "/api/v1/revisions", "")
	var hist struct {
		Revisions []struct{ Source, User string } `json:"revisions"`
	}
	if code != 200 || json.Unmarshal(body, &hist) != nil || len(hist.Revisions) != 1 || hist.Revisions[0].Source != "cli" {
		t.Errorf("revisions: %d %s", code, body)
	}

	// With the server stopped, apply and export work on the store directly.
	s.p.stop(t)
	_ = os.WriteFile(file, []byte(strings.Replace(doc, "nickname: e2e", "nickname: offline", 1)), 0o600)
	out, rc = run(t, s.dir, "", "apply", "-f", file, "--data-dir", s.dataDir)
	if rc != 0 || !strings.Contains(out, "takes effect when it starts") {
		t.Fatalf("offline apply: %d\n%s", rc, out)
	}
	out, _ = run(t, s.dir, "", "export", "--data-dir", s.dataDir)
	if !strings.Contains(out, "nickname: offline") {
		t.Errorf("offline export:\n%s", out)
	}
}

func TestPasswdFromConsole(t *testing.T) {
	s := serve(t)
	// Lock the account out first: the console reset also lifts the lockout.
	bad := newClient(t, s.admin, s.dataDir, "bal", "wrong password")
	for i := 0; i < 3; i++ {
		bad.do("GET", "/api/v1/status", "")
	}
	if code, _, _ := s.c.do("GET", "/api/v1/status", ""); code != 429 {
		t.Fatalf("not locked out: %d", code)
	}
	out, rc := run(t, s.dir, "", "passwd", "--generate", "--data-dir", s.dataDir)
	m := regexp.MustCompile(`New password for bal: (\S+)`).FindStringSubmatch(out)
	if rc != 0 || m == nil {
		t.Fatalf("passwd: %d %s", rc, out)
	}
	if code, _, _ := s.c.do("GET", "/api/v1/status", ""); code != 401 {
		t.Errorf("old password after the reset: %d, want 401", code)
	}
	fresh := newClient(t, s.admin, s.dataDir, "bal", m[1])
	if code, _, _ := fresh.do("GET", "/api/v1/status", ""); code != 200 {
		t.Errorf("new password refused: %d", code)
	}
	out, rc = run(t, s.dir, "short\n", "passwd", "--data-dir", s.dataDir)
	if rc == 0 || !strings.Contains(out, "password: must have at least 12 characters") {
		t.Errorf("short password: %d %s", rc, out)
	}
}

func TestDemo(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	p := start(t, dir, nil, "Stop with Ctrl-C", "demo", "--port", fmt.Sprint(port), "--admin-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	// A new connection per request, as a curl loop makes: the demo VS is
	// layer 4, so it balances connections.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	seen := map[string]int{}
	for i := 0; i < 6; i++ {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, p.output())
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`demo backend (\d)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("answer %q", b)
		}
		seen[string(m[1])]++
	}
	if len(seen) != 3 || seen["1"] != 2 || seen["2"] != 2 || seen["3"] != 2 {
		t.Errorf("round robin over 3 backends gave %v", seen)
	}
}

func TestVersion(t *testing.T) {
	out, rc := run(t, t.TempDir(), "", "version")
	if rc != 0 || strings.TrimSpace(out) != "fulcrum e2e (commit test)" {
		t.Errorf("version: %d %q", rc, out)
	}
	out, rc = run(t, t.TempDir(), "", "export", "--data-dir", "nowhere")
	if rc == 0 || !strings.Contains(out, "no Fulcrum data directory") {
		t.Errorf("export without data: %d %q", rc, out)
	}
}

// echoBackend answers each line with "echo: " and the line.
func echoBackend(t *testing.T) int {
	t.Helper()
	return testkit.StartTCP(t, "127.0.0.1", func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			fmt.Fprintf(c, "echo: %s\n", sc.Text())
		}
	}).Port()
}

func roundTrip(t *testing.T, port int, line string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintln(c, line)
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read through VS: %v", err)
	}
	return strings.TrimSpace(got)
}

func TestTemplateCLI(t *testing.T) {
	s := serve(t)
	out, rc := run(t, s.dir, "", "template", "list", "--data-dir", s.dataDir)
	if rc != 0 || !strings.Contains(out, "lync2013-reverse-proxy") || !strings.Contains(out, "built-in") {
		t.Fatalf("template list: %d\n%s", rc, out)
	}
	out, rc = run(t, s.dir, "", "template", "instantiate", "lync2013-internal-hlb", "--data-dir", s.dataDir,
		"--param", "vip=127.0.0.60", "--param", "frontEnds=127.0.0.61,127.0.0.62:5062")
	if rc != 0 || !strings.Contains(out, "as revision 1") {
		t.Fatalf("instantiate: %d\n%s", rc, out)
	}
	out, rc = run(t, s.dir, "", "template", "instantiate", "lync2013-internal-hlb", "--data-dir", s.dataDir, "--param", "vip=127.0.0.60")
	if rc == 0 || !strings.Contains(out, "duplicate service") {
		t.Errorf("second instantiate on the same VIP: %d\n%s", rc, out)
	}
	code, body, _ := s.c.do("GET", "/api/v1/virtual-services", "")
	if code != 200 || strings.Count(string(body), `"nickname": "Lync Internal`) != 15 {
		t.Errorf("services after instantiate: %d", code)
	}
}
