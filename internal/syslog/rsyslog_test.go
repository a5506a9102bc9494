package syslog

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// needTool skips (or, under CI, fails) a test whose program is missing.
func needTool(t *testing.T, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (Debian packages rsyslog and rsyslog-gnutls)", what)
	}
	t.Skipf("%s is missing (Debian packages rsyslog and rsyslog-gnutls)", what)
}

// rsyslog is a Debian rsyslogd started by a test, receiving on UDP, plain
// TCP and TLS and writing every message, as its fields parsed, to a file.
type rsyslog struct {
	ip                string
	udp, tcp, tlsPort int
	out               string
	ca                *testkit.CA
}

const rsyslogTemplate = `%pri-text%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%|%inputname%\n`

func startRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	bin, err := exec.LookPath("rsyslogd")
	needTool(t, "rsyslogd", err == nil)
	gtls := false
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog", "/usr/lib/rsyslog"} {
		if _, err := os.Stat(filepath.Join(dir, "lmnsd_gtls.so")); err == nil {
			gtls = true
		}
	}
	needTool(t, "rsyslog's gtls driver", gtls)

	dir := t.TempDir()
	r := &rsyslog{ip: testkit.LoopbackAddr(), out: filepath.Join(dir, "messages.log"), ca: testkit.NewCA(t, "syslog test CA")}
	r.udp = testkit.FreeUDPPort(t, r.ip)
	ports := testkit.FreePorts(t, r.ip, 2)
	r.tcp, r.tlsPort = ports[0], ports[1]
	srv := r.ca.Server(t, "syslog.test", r.ip)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", r.caPEM())
	certFile := write("cert.pem", srv.ChainPEM())
	keyFile := write("key.pem", srv.KeyPEM())
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k"
  DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q)
module(load="imudp")
module(load="imtcp" maxSessions="100")
template(name="fields" type="string" string="%s")
input(type="imudp" name="udp" address=%q port="%d")
input(type="imtcp" name="tcp" address=%q port="%d")
input(type="imtcp" name="tls" address=%q port="%d" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
*.* action(type="omfile" file=%q template="fields")
`, dir, caFile, certFile, keyFile, rsyslogTemplate, r.ip, r.udp, r.ip, r.tcp, r.ip, r.tlsPort, r.out)
	confFile := write("rsyslog.conf", conf)
	pid := filepath.Join(dir, "rsyslogd.pid")
	cmd := exec.Command(bin, "-n", "-f", confFile, "-i", pid)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rsyslogd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	// Ready when its pid file is written and the TCP inputs accept.
	testkit.Eventually(t, 15*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatal("rsyslogd exited at start (see its output above)")
		default:
		}
		_, err := os.Stat(pid)
		return err == nil && canConnect(r.ip, r.tcp) && canConnect(r.ip, r.tlsPort)
	}, "rsyslogd listening")
	return r
}

func (r *rsyslog) caPEM() string { return r.ca.CertPEM() }

func canConnect(ip string, port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("rsyslogd: %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// received returns the lines rsyslogd wrote.
func (r *rsyslog) received() []string {
	f, err := os.Open(r.out)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// wait returns the received line whose msg holds marker.
func (r *rsyslog) wait(t *testing.T, marker string) []string {
	t.Helper()
	var found []string
	testkit.Eventually(t, 15*time.Second, func() bool {
		for _, l := range r.received() {
			if strings.Contains(l, marker) {
				found = strings.Split(l, "|")
				return true
			}
		}
		return false
	}, "rsyslogd received "+marker)
	return found
}

func TestRsyslogReceivesOverUDPTCPAndTLS(t *testing.T) {
	r := startRsyslog(t)
	h := New(Options{Hostname: "lb1.example"})
	defer h.Close()
	hosts := []config.SyslogHost{
		{Address: r.ip, Port: r.udp, Protocol: "udp", Severity: "warning"},
		{Address: r.ip, Port: r.tcp, Protocol: "tcp", Severity: "info", AccessLogs: true},
		{Address: r.ip, Port: r.tlsPort, Protocol: "tls", Severity: "err", ServerName: "syslog.test", CACert: r.caPEM()},
	}
	if err := h.Configure(hosts); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 8, 1, 2, 3, 456789000, time.UTC)
	h.Event(events.Event{Time: at, Severity: events.Err, Kind: events.KindRSDown, Message: "real server 10.0.0.5:80 of web is Down: marker-err",
		Fields: map[string]string{"vs": "web", "vsId": "3", "rs": "10.0.0.5:80", "reason": `http 503 "Service] Unavailable" \o/`}})
	h.Event(events.Event{Time: at, Severity: events.Notice, Kind: events.KindRSUp, Message: "marker-notice"})
	h.ForwardAccess(at, []byte(`{"vs":"web","status":200} marker-access`+"\n"))

	wantSD := `[fulcrum@32473 reason="http 503 \"Service\] Unavailable\" \\o/" rs="10.0.0.5:80" vs="web" vsId="3"]`
	for _, input := range []string{"udp", "tcp", "tls"} {
		t.Run(input, func(t *testing.T) {
			var line []string
			testkit.Eventually(t, 15*time.Second, func() bool {
				for _, l := range r.received() {
					f := strings.Split(l, "|")
					if strings.Contains(l, "marker-err") && f[len(f)-1] == input {
						line = f
						return true
					}
				}
				return false
			}, "the err event over "+input)
			want := []string{"local0.err", "lb1.example", "fulcrum", strconv.Itoa(os.Getpid()), "rs.down", wantSD,
				"real server 10.0.0.5:80 of web is Down: marker-err", input}
			if strings.Join(line, "|") != strings.Join(want, "|") {
				t.Errorf("rsyslog parsed\n%q\nwant\n%q", line, want)
			}
		})
	}
	// notice goes to tcp only (udp wants warning and above, tls err).
	r.wait(t, "marker-access")
	n := r.wait(t, "marker-notice")
	if n[0] != "local0.notice" || n[4] != "rs.up" || n[5] != "-" || n[7] != "tcp" {
		t.Errorf("notice event parsed as %q", n)
	}
	a := r.wait(t, "marker-access")
	if a[0] != "local1.info" || a[4] != "access" || a[6] != `{"vs":"web","status":200} marker-access` || a[7] != "tcp" {
		t.Errorf("access line parsed as %q", a)
	}
	for _, l := range r.received() {
		if strings.Contains(l, "marker-notice") && !strings.HasSuffix(l, "|tcp") {
			t.Errorf("notice reached a host whose severity excludes it: %q", l)
		}
		if strings.Contains(l, "marker-access") && !strings.HasSuffix(l, "|tcp") {
			t.Errorf("access line reached a host without accessLogs: %q", l)
		}
	}
	for _, s := range h.Stats() {
		if s.Dropped != 0 || s.LastError != "" {
			t.Errorf("host %s: %+v", s.Host, s)
		}
	}
}
