package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// The quick-setup tests run the built binary: the terminal form in a
// tmux pane (keys sent, the screen read back), the flags directly; both
// in a network namespace with a veth pair the test creates, so that the
// interfaces offered do not depend on the machine's.

const setupPassword = "correct horse battery"

var nsSeq atomic.Int32

// needTool returns the path of a program the test needs. Without it the
// test is skipped, except under CI=true, where it fails.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing: apt-get install %s (scripts/test installs it)", name, pkg)
	}
	t.Skipf("%s is not installed (apt-get install %s); set CI=true to make this a failure", name, pkg)
	return ""
}

// setupNetns makes a network namespace holding a veth pair, removed when
// the test ends, and returns its name and the two interfaces' names.
func setupNetns(t *testing.T) (ns string, links [2]string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, and this test needs root to make a network namespace")
		}
		t.Skip("needs root to make a network namespace")
	}
	ip := needTool(t, "ip", "iproute2")
	ns = fmt.Sprintf("fu%d%d", os.Getpid()%1000, nsSeq.Add(1))
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v\n%s", ns, err, out)
		}
	})
	links = [2]string{ns + "a", ns + "b"}
	if out, err := exec.Command(ip, "-n", ns, "link", "add", links[0], "type", "veth", "peer", "name", links[1]).CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v\n%s", err, out)
	}
	return ns, links
}

// inNetns is the command line that runs the binary with args in ns.
func inNetns(t *testing.T, ns string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns, fulcrumBinary(t)}, args...)
}

// pane is a tmux pane running one command, on a tmux server of its own.
type pane struct {
	t    *testing.T
	tmux string
	sock string
	// status is the file the command's exit status is written to.
	status string
}

// newPane starts argv in a new 150×50 tmux pane that stays after the
// command exits, so that its screen and exit status can be read.
func newPane(t *testing.T, argv ...string) *pane {
	t.Helper()
	p := &pane{t: t, tmux: needTool(t, "tmux", "tmux"), sock: fmt.Sprintf("fu%d-%d", os.Getpid(), nsSeq.Add(1))}
	conf := filepath.Join(t.TempDir(), "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g history-limit 2000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	// tmux's own record of the exit status (pane_dead_status) is
	// sometimes never set, so the shell writes it to a file.
	p.status = filepath.Join(filepath.Dir(conf), "status")
	p.run("-f", conf, "new-session", "-d", "-x", "150", "-y", "50", "-s", "setup",
		strings.Join(quoted, " ")+"; echo $? > '"+p.status+"'")
	sockPath := strings.TrimSpace(p.run("display-message", "-p", "-t", "setup", "#{socket_path}"))
	t.Cleanup(func() {
		_ = exec.Command(p.tmux, "-L", p.sock, "kill-server").Run()
		_ = os.Remove(sockPath)
	})
	return p
}

func (p *pane) run(args ...string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.tmux, append([]string{"-L", p.sock}, args...)...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "FULCRUM_") && !strings.HasPrefix(e, "TMUX") && !strings.HasPrefix(e, "TERM=") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "TERM=xterm-256color")
	out, err := cmd.CombinedOutput()
	if err != nil {
		p.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// keys sends keys by tmux's names (Enter, Down, C-u, …).
func (p *pane) keys(keys ...string) { p.run(append([]string{"send-keys", "-t", "setup"}, keys...)...) }

// typeText types text literally and then Enter.
func (p *pane) typeText(text string) {
	p.run("send-keys", "-t", "setup", "-l", text)
	p.keys("Enter")
}

// answer types text into the focused field, presses Enter and waits
// until the field titled next has the focus (huh moves the focus after
// the key is handled: keys sent at once would land in the old field).
func (p *pane) answer(text, next string) {
	p.t.Helper()
	if text != "" {
		p.run("send-keys", "-t", "setup", "-l", text)
	}
	p.keys("Enter")
	p.wait("┃ " + next)
}

// screen is the pane's text, with its scrolled-off lines.
func (p *pane) screen() string { return p.run("capture-pane", "-p", "-t", "setup", "-S", "-2000") }

// wait waits (20 s at most) until the screen shows every one of want,
// and returns it.
func (p *pane) wait(want ...string) string {
	p.t.Helper()
	var s string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s = p.screen()
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(s, w)
		}
		if !missing {
			return s
		}
	}
	p.t.Fatalf("the screen does not show %q within 20 s:\n%s", want, s)
	return ""
}

// waitGone waits (20 s at most) until the screen no longer shows gone.
func (p *pane) waitGone(gone string) string {
	p.t.Helper()
	var s string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if s = p.screen(); !strings.Contains(s, gone) {
			return s
		}
	}
	p.t.Fatalf("the screen still shows %q after 20 s:\n%s", gone, s)
	return ""
}

// exit waits (30 s at most) for the command to end and returns its exit
// status.
func (p *pane) exit() int {
	p.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(p.status)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			p.t.Fatalf("exit status %q", b)
		}
		return n
	}
	p.t.Fatalf("the command did not end within 30 s:\n%s", p.screen())
	return 0
}

// readSetup opens the store in dir after the setup ended and returns its
// network revision and checks the administrator's password.
func readSetup(t *testing.T, dir, password string) store.NetRevision {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cur, err := st.NetworkCurrent()
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.User(config.FirstAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		t.Errorf("the password of %s is not %q", u.Name, password)
	}
	return cur
}

// TestSetupTerminal drives the terminal form from start to end: the
// second interface of the list, the network answers, the password twice,
// the default admin listener, the summary, and checks what was stored.
func TestSetupTerminal(t *testing.T) {
	ns, links := setupNetns(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := newPane(t, inNetns(t, ns, "setup", "--data-dir", dir)...)
	s := p.wait("Network-side interface", links[0], links[1])
	second := links[1]
	if strings.Index(s, links[1]) < strings.Index(s, links[0]) {
		second = links[0]
	}
	p.keys("Down", "Enter")
	p.wait("Fulcrum quick setup: network (" + second + ")")
	p.answer("192.0.2.10/24", "Default gateway")
	p.answer("192.0.2.1", "DNS servers")
	p.answer("192.0.2.53 192.0.2.54", "Search domains")
	p.answer("example.com", "Host name")
	p.keys("C-u")
	p.answer("lb1", "Admin password")
	p.wait("Fulcrum quick setup: administration", "empty for 192.0.2.10:8443")
	p.answer(setupPassword, "Admin password again")
	p.answer(setupPassword, "Admin listener")
	p.answer("", "Write these settings")
	s = p.wait("Fulcrum quick setup: confirm", "https://192.0.2.10:8443/")
	if strings.Contains(s, setupPassword) {
		t.Errorf("the password shows on the screen:\n%s", s)
	}
	p.keys("Enter")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, p.screen())
	}
	p.wait("Quick setup written to "+dir+" (network revision 1)", "Web UI: https://192.0.2.10:8443/",
		"fulcrum serve --data-dir "+dir, "bal, password set")

	cur := readSetup(t, dir, setupPassword)
	want := &netcfg.Network{Hostname: "lb1", Gateway: "192.0.2.1", AdminAddress: "192.0.2.10:8443",
		DNS:        netcfg.DNS{Servers: []string{"192.0.2.53", "192.0.2.54"}, Search: []string{"example.com"}},
		Interfaces: []netcfg.Interface{{Name: second, Addresses: []string{"192.0.2.10/24"}}}}
	if cur.Revision != 1 || !cur.Confirmed || cur.Source != "console" {
		t.Errorf("network revision %+v", cur.Change)
	}
	if !reflect.DeepEqual(cur.Network, want) {
		t.Errorf("stored network\n%+v\nwant\n%+v", cur.Network, want)
	}
}

// TestSetupTerminalBadAddress: a bad address shows the field's error and
// the form stays on it; leaving with Ctrl-C writes nothing.
func TestSetupTerminalBadAddress(t *testing.T) {
	ns, links := setupNetns(t)
	dir := filepath.Join(t.TempDir(), "data")
	p := newPane(t, inNetns(t, ns, "setup", "--data-dir", dir)...)
	p.wait("Network-side interface", links[0], links[1])
	p.keys("Enter")
	p.wait("Fulcrum quick setup: network")
	p.typeText("192.0.2.300/24")
	const msg = `Address: must be an address with prefix length such as 10.0.0.5/24, got "192.0.2.300/24"`
	s := p.wait(msg)
	if strings.Contains(s, "Fulcrum quick setup: administration") {
		t.Fatalf("the form moved on:\n%s", s)
	}
	// The form stays: the address can be typed again, and the error goes.
	p.keys("C-u")
	p.typeText("192.0.2.10/24")
	p.waitGone(msg)
	p.keys("C-c")
	if code := p.exit(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	p.wait("setup cancelled: nothing was written")
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was made: %v", err)
	}
}

// TestSetupTerminalLocked: a running Fulcrum (which holds the store) is
// refused before any question.
func TestSetupTerminalLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := newPane(t, fulcrumBinary(t), "setup", "--data-dir", dir)
	if code := p.exit(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	s := p.wait("Fulcrum is running (the store is locked): change the network in the web UI or stop Fulcrum first")
	if strings.Contains(s, "Network-side interface") {
		t.Errorf("the form was shown:\n%s", s)
	}
	if cur, err := st.NetworkCurrent(); err != nil || cur.Revision != 0 {
		t.Errorf("network revision %d, %v", cur.Revision, err)
	}
}

// TestSetupFlags runs `fulcrum setup --non-interactive`: good flags
// write and print the summary; each bad flag exits with status 2, names
// the flag and writes nothing.
func TestSetupFlags(t *testing.T) {
	ns, links := setupNetns(t)
	tmp := t.TempDir()
	pwFile := filepath.Join(tmp, "pw")
	shortFile := filepath.Join(tmp, "short")
	for f, pw := range map[string]string{pwFile: setupPassword + "\n", shortFile: "short\n"} {
		if err := os.WriteFile(f, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"--interface", links[0], "--address", "192.0.2.10/24", "--gateway", "192.0.2.1", "--dns", "192.0.2.53",
		"--dns", "192.0.2.54", "--search", "example.com", "--hostname", "lb1", "--admin-addr", "192.0.2.10:8443"}
	with := func(flag, value string) []string {
		out := append([]string{}, base...)
		for i := 0; i < len(out); i += 2 {
			if out[i] == flag {
				out[i+1] = value
				return out
			}
		}
		return append(out, flag, value)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  string // FULCRUM_ADMIN_PASSWORD
		code int
		want string // in the output
	}{
		{"good", with("--admin-password-file", pwFile), "", 0, "Web UI: https://192.0.2.10:8443/"},
		{"password from the environment", base, setupPassword, 0, "bal, password set"},
		{"generated password", []string{"--interface", links[1], "--address", "2001:db8::10/64"}, "", 0, "Web UI: https://[2001:db8::10]:8443/"},
		{"no interface", []string{"--address", "192.0.2.10/24"}, setupPassword, 2, "--interface: is required"},
		{"unknown interface", with("--interface", "eth77"), setupPassword, 2, `--interface: this host has no interface "eth77"`},
		{"bad address", with("--address", "192.0.2.10/33"), setupPassword, 2, "--address: must be an address with prefix length"},
		{"gateway outside", with("--gateway", "198.51.100.1"), setupPassword, 2, "--gateway: 198.51.100.1 lies in no interface's subnet"},
		{"bad DNS", with("--dns", "ns1"), setupPassword, 2, `--dns: must be an IP address, got "ns1"`},
		{"four DNS", append(with("--dns", "192.0.2.1,192.0.2.2,192.0.2.3"), "--dns", "192.0.2.4"), setupPassword, 2, "--dns: at most 3 name servers"},
		{"bad search", with("--search", "-x-"), setupPassword, 2, `--search: must be a domain name, got "-x-"`},
		{"bad host name", with("--hostname", "lb 1"), setupPassword, 2, "--hostname: must be a host name"},
		{"bad admin listener", with("--admin-addr", "lb1:8443"), setupPassword, 2, "--admin-addr: must be an IP address and port"},
		{"admin listener elsewhere", with("--admin-addr", "198.51.100.9:8443"), setupPassword, 2, "--admin-addr: 198.51.100.9 is neither"},
		{"short password", with("--admin-password-file", shortFile), "", 2, "--admin-password-file (or $FULCRUM_ADMIN_PASSWORD): must have at least 12 characters"},
		{"missing password file", with("--admin-password-file", filepath.Join(tmp, "nope")), "", 2, "--admin-password-file: admin password file"},
		{"answers without --non-interactive", []string{"--interface", links[0]}, "", 2, "--interface needs --non-interactive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := []string{"setup", "--data-dir", dir}
			if tc.name != "answers without --non-interactive" {
				args = append(args, "--non-interactive")
			}
			argv := inNetns(t, ns, append(args, tc.args...)...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "FULCRUM_ADMIN_PASSWORD="+tc.env)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("exit status %d, want %d; output does not say %q:\n%s", code, tc.code, tc.want, out.String())
			}
			if tc.code != 0 {
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the data directory was made: %v", err)
				}
				return
			}
			pw := setupPassword
			if tc.name == "generated password" {
				_, after, ok := strings.Cut(out.String(), "bal, password ")
				pw, _, _ = strings.Cut(after, " ")
				if !ok || !strings.Contains(after, "(shown only once)") {
					t.Fatalf("no generated password in:\n%s", out.String())
				}
			}
			cur := readSetup(t, dir, pw)
			if cur.Revision != 1 || !cur.Confirmed || len(cur.Network.Interfaces) != 1 {
				t.Errorf("network revision %+v", cur)
			}
		})
	}
}

// TestSetupThenServe: what setup writes is what serve uses — the admin
// listener from the network settings (serve is not given --admin-addr)
// and the administrator's password. Serve runs with --manage-network off,
// so the host is left alone; the interface is one of the machine's.
func TestSetupThenServe(t *testing.T) {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	iface := ""
	for _, f := range ifs {
		if f.Flags&net.FlagLoopback == 0 {
			iface = f.Name
			break
		}
	}
	if iface == "" {
		t.Fatal("this machine has no interface but loopback (net.Interfaces); the quick setup needs one to set up")
	}
	dir := filepath.Join(t.TempDir(), "data")
	admin := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t, "127.0.0.1"))
	out, errOut, code := runEnv(t, []string{"FULCRUM_ADMIN_PASSWORD=" + setupPassword}, "setup", "--non-interactive", "--data-dir", dir,
		"--interface", iface, "--address", "192.0.2.10/24", "--admin-addr", admin)
	if code != 0 || !strings.Contains(out, "Web UI: https://"+admin+"/") {
		t.Fatalf("setup: status %d\n%s%s", code, out, errOut)
	}

	cmd := exec.Command(fulcrumBinary(t), "serve", "--data-dir", dir, "--manage-network", "off")
	cmd.Env = os.Environ()
	var serveOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &serveOut, &serveOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var status int
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "https://"+admin+"/api/v1/status", nil)
		req.SetBasicAuth(config.FirstAdmin, setupPassword)
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		status = resp.StatusCode
		break
	}
	if status != http.StatusOK {
		_ = cmd.Process.Kill()
		_ = cmd.Wait() // serveOut is read after the process ended
		t.Fatalf("GET https://%s/api/v1/status as %s: status %d; serve said:\n%s", admin, config.FirstAdmin, status, serveOut.String())
	}
}

// runEnv runs the binary with args and extra environment.
func runEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, fulcrumBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("fulcrum %v: %v", args, err)
	}
	return o.String(), e.String(), code
}
