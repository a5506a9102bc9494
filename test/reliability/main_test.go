// Package reliability is the fast subset of Fulcrum's reliability suite
// (bench/reliability.sh runs the whole of it): the built fulcrum binary
// under HTTP/2 rapid reset, SETTINGS, PING and CONTINUATION floods, a
// spoofed UDP flood, stalled uploads, the smuggling corpora and oversized
// heads, each for a few seconds, asserting the acceptance criteria of
// issue 14. The attack code is shared with the driver (bench/attack).
package reliability

import (
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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/attack"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// binary is the fulcrum binary; driver the suite's driver, whose
// `attack rapid-reset` runs the attacker in a process of its own.
var binary, driver string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fulcrum-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fulcrum")
	driver = filepath.Join(dir, "reliability")
	for bin, pkg := range map[string]string{binary: "../../cmd/fulcrum", driver: "../../bench/cmd/reliability"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// freePorts returns n distinct ports that were free on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	return testkit.FreePorts(t, "127.0.0.1", n)
}

// fulcrum is a running `fulcrum serve` with a configuration applied.
type fulcrum struct {
	cmd       *exec.Cmd
	dataDir   string
	adminAddr string
	password  string
	done      chan struct{}
	out       *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (f *fulcrum) pid() int { return f.cmd.Process.Pid }

// startFulcrum runs fulcrum serve in a temporary data directory, applies
// the layout's configuration with `fulcrum apply -f` and waits until its
// TCP listeners accept.
func startFulcrum(t *testing.T, l attack.Layout) *fulcrum {
	t.Helper()
	dir := t.TempDir()
	f := &fulcrum{dataDir: filepath.Join(dir, "data"), password: "reliability passphrase", done: make(chan struct{}), out: &lockedBuffer{}}
	f.adminAddr = fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])
	f.cmd = exec.Command(binary, "serve", "--data-dir", f.dataDir, "--admin-addr", f.adminAddr, "--log-level", "warn")
	f.cmd.Env = append(os.Environ(), "FULCRUM_ADMIN_PASSWORD="+f.password)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = f.cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		_ = f.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			_ = f.cmd.Process.Kill()
			<-f.done
		}
	})
	testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
		if _, err := os.Stat(filepath.Join(f.dataDir, "fulcrum.sock")); err == nil {
			return true, ""
		}
		select {
		case <-f.done:
			t.Fatalf("fulcrum exited:\n%s", f.out.String())
		default:
		}
		return false, "\n" + f.out.String()
	}, "fulcrum to open its console socket")
	doc, err := attack.FulcrumConfig(l)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "apply", "--data-dir", f.dataDir, "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("fulcrum apply: %v\n%s", err, out)
	}
	for _, p := range []int{l.HTTP, l.H2, l.TCP, l.RST, l.Hang} {
		if p != 0 {
			waitPort(t, fmt.Sprintf("127.0.0.1:%d", p))
		}
	}
	waitPort(t, f.adminAddr)
	return f
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	testkit.Eventually(t, 15*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, "something to listen on "+addr)
}

// adminProbe returns a request function that GETs /api/v1/status from the
// admin API on a new connection with an API key (created here with one Basic call: Basic
// costs a bcrypt check per call), the admin plane's self-signed
// certificate not verified (a test tool).
func (f *fulcrum) adminProbe(t *testing.T, timeout time.Duration) func(context.Context) error {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 4} //nolint:gosec // a test tool
	t.Cleanup(tr.CloseIdleConnections)
	// Each probe is a new connection, as a new administrator's would be.
	ptr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true} //nolint:gosec // a test tool
	c := &http.Client{Transport: ptr, Timeout: timeout}
	req, err := http.NewRequest(http.MethodPost, "https://"+f.adminAddr+"/api/v1/api-keys", strings.NewReader(`{"description":"reliability"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("bal", f.password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("create API key: %v", err)
	}
	var key struct {
		Secret string `json:"secret"`
	}
	err = json.NewDecoder(resp.Body).Decode(&key)
	_ = resp.Body.Close()
	if err != nil || key.Secret == "" {
		t.Fatalf("create API key: status %d, %v", resp.StatusCode, err)
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+f.adminAddr+"/api/v1/status", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key.Secret)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status: %d", resp.StatusCode)
		}
		return nil
	}
}

// backend starts an attack.Backend on a free port, closed at cleanup.
func backend(t *testing.T, mode attack.Mode) *attack.Backend {
	t.Helper()
	b, err := attack.StartBackend("127.0.0.1:0", mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// webLayout is an HTTP and an HTTP/2 service over one real server, with
// the suite's short timeouts.
func webLayout(t *testing.T, b *attack.Backend) attack.Layout {
	t.Helper()
	cert, err := attack.WriteCert(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, 2)
	return attack.Layout{HTTP: p[0], H2: p[1], Backends: []int{b.Port()}, IdleTimeout: idleTimeout, BodyTimeout: bodyTimeout,
		HeaderTimeout: headerTimeout, Cert: cert}
}

// The suite's timeouts (seconds).
const (
	idleTimeout   = 20
	bodyTimeout   = 3
	headerTimeout = 10
)
