//go:build linux

package dataplane

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
)

// The network-namespace test builds, from the test process (root, in the
// root namespace, which it never changes):
//
//	client ns C            Fulcrum ns F                     server ns S
//	10.71.1.2, 10.71.1.3 ─ 10.71.1.1 (fc) | (fs) 10.71.2.1 ─ 10.71.2.2, and 10.71.9.9 on lo
//
// S's default route goes back through F, as a farm behind a two-armed
// appliance. F has the two policy rules package hostnet installs for a
// plan (here with `ip rule`, inside F): packets from the farm side are
// delivered locally (so replies to transparent sockets reach them), and
// packets with the first gateway mark are routed by table
// netcfg.GatewayTableBase, whose default route goes through 10.71.2.2 —
// the only way to 10.71.9.9, which F's main table does not know.
//
// Then the test binary runs again inside F (ip netns exec) with
// netnsEnv set: that child serves a configuration with the plan of
// netcfg.Make and checks, as a client in C, what the real servers in S
// see.
const netnsEnv = "FULCRUM_TEST_NETNS"

// netnsNames are the namespaces and F's two interfaces.
type netnsNames struct{ c, f, s, fc, fs string }

func (n netnsNames) String() string { return strings.Join([]string{n.c, n.f, n.s, n.fc, n.fs}, ",") }

func parseNetnsNames(v string) (netnsNames, bool) {
	p := strings.Split(v, ",")
	if len(p) != 5 {
		return netnsNames{}, false
	}
	return netnsNames{p[0], p[1], p[2], p[3], p[4]}, true
}

// needRoot fails the test in CI (which runs as root) and skips it
// elsewhere when not root.
func needRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, and this test needs root to " + why)
		}
		t.Skip("needs root to " + why)
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestNetnsTransparencyMarksSubnetOriginating(t *testing.T) {
	if v := os.Getenv(netnsEnv); v != "" {
		n, ok := parseNetnsNames(v)
		if !ok {
			t.Fatalf("%s=%q", netnsEnv, v)
		}
		netnsChild(t, n)
		return
	}
	needRoot(t, "build network namespaces")
	p := fmt.Sprintf("fu%d", os.Getpid()%1000)
	n := netnsNames{c: p + "c", f: p + "f", s: p + "s", fc: p + "fc", fs: p + "fs"}
	for _, ns := range []string{n.c, n.f, n.s} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	ipCmd(t, "-n", n.c, "link", "add", p+"cf", "type", "veth", "peer", "name", n.fc, "netns", n.f)
	ipCmd(t, "-n", n.s, "link", "add", p+"sf", "type", "veth", "peer", "name", n.fs, "netns", n.f)
	for _, c := range [][]string{
		{"-n", n.c, "addr", "add", "10.71.1.2/24", "dev", p + "cf"},
		{"-n", n.c, "addr", "add", "10.71.1.3/24", "dev", p + "cf"},
		{"-n", n.c, "link", "set", p + "cf", "up"},
		{"-n", n.c, "link", "set", "lo", "up"},
		{"-n", n.c, "route", "add", "default", "via", "10.71.1.1"},
		{"-n", n.f, "addr", "add", "10.71.1.1/24", "dev", n.fc},
		{"-n", n.f, "addr", "add", "10.71.2.1/24", "dev", n.fs},
		{"-n", n.f, "link", "set", n.fc, "up"},
		{"-n", n.f, "link", "set", n.fs, "up"},
		{"-n", n.f, "link", "set", "lo", "up"},
		{"-n", n.f, "rule", "add", "iif", n.fs, "lookup", fmt.Sprint(netcfg.TransparentTable), "pref", "100"},
		{"-n", n.f, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", fmt.Sprint(netcfg.TransparentTable)},
		{"-n", n.f, "rule", "add", "fwmark", fmt.Sprintf("%#x", netcfg.GatewayMarkBase), "lookup", fmt.Sprint(netcfg.GatewayTableBase), "pref", "101"},
		{"-n", n.f, "route", "add", "default", "via", "10.71.2.2", "dev", n.fs, "table", fmt.Sprint(netcfg.GatewayTableBase)},
		{"-n", n.s, "addr", "add", "10.71.2.2/24", "dev", p + "sf"},
		{"-n", n.s, "addr", "add", "10.71.9.9/32", "dev", "lo"},
		{"-n", n.s, "link", "set", p + "sf", "up"},
		{"-n", n.s, "link", "set", "lo", "up"},
		{"-n", n.s, "route", "add", "default", "via", "10.71.2.1"},
	} {
		ipCmd(t, c...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.f, os.Args[0],
		"-test.run=^TestNetnsTransparencyMarksSubnetOriginating$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"="+n.String())
	out, err := cmd.CombinedOutput()
	t.Logf("inside namespace %s:\n%s", n.f, out)
	if err != nil {
		t.Fatalf("the checks inside namespace %s failed: %v", n.f, err)
	}
	if !strings.Contains(string(out), "netns checks done") {
		t.Fatal("the child did not run the checks")
	}
}

// inNetns runs fn on a thread in the named network namespace: the sockets
// fn opens belong to it. The thread is never given back to the runtime
// (it ends with its goroutine), so no other goroutine runs in it.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + name)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// netnsChild runs inside namespace F.
func netnsChild(t *testing.T, n netnsNames) {
	// Replies from 10.71.9.9 arrive on fs, which F's main table does not
	// route back to: turn the reverse-path filter off in this namespace.
	for _, f := range []string{"all", "default", n.fs} {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+f+"/rp_filter", []byte("0"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The real servers, in S: each answers with the address it sees.
	var tcpL, httpL net.Listener
	var udpC net.PacketConn
	inNetns(t, n.s, func() {
		var err error
		if tcpL, err = net.Listen("tcp4", ":8080"); err != nil {
			t.Error(err)
		}
		if httpL, err = net.Listen("tcp4", ":8081"); err != nil {
			t.Error(err)
		}
		if udpC, err = net.ListenPacket("udp4", ":8082"); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Cleanup(func() { tcpL.Close(); udpC.Close() })
	go func() {
		for {
			c, err := tcpL.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_, _ = io.WriteString(c, host+"\n")
			_ = c.Close()
		}
	}()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintf(w, "remote=%s xff=%s\n", host, r.Header.Get("X-Forwarded-For"))
	})}
	go func() { _ = hs.Serve(httpL) }()
	t.Cleanup(func() { _ = hs.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := udpC.ReadFrom(buf)
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(from.String())
			_, _ = udpC.WriteTo([]byte(host+"\n"), from)
		}
	}()

	// The configuration and its plan, as the appliance makes it.
	rs := func(id int, addr string, port int) config.RealServer {
		return config.RealServer{ID: id, Address: addr, Port: port, Weight: 1}
	}
	vs := func(id, port int, typ string, r config.RealServer) config.VirtualService {
		v := vsOf(id, "10.71.1.1", port, r)
		v.Type, v.HealthCheck.Type = typ, "none"
		v.Transparent, v.SubnetOriginating = config.Bool(false), config.Bool(true)
		return v
	}
	transparent := func(v config.VirtualService) config.VirtualService {
		v.Transparent, v.SubnetOriginating = config.Bool(true), config.Bool(false)
		return v
	}
	gateway := func(v config.VirtualService) config.VirtualService { v.DefaultGateway = "10.71.2.2"; return v }
	udp := transparent(vs(7, 86, "gen", rs(71, "10.71.2.2", 8082)))
	udp.Protocol = "udp"
	cfg := conf(t,
		transparent(vs(1, 80, "gen", rs(11, "10.71.2.2", 8080))),
		vs(2, 81, "gen", rs(21, "10.71.2.2", 8080)),
		gateway(vs(3, 82, "gen", rs(31, "10.71.9.9", 8080))),
		vs(4, 83, "gen", rs(41, "10.71.9.9", 8080)),
		transparent(vs(5, 84, "http", rs(51, "10.71.2.2", 8081))),
		gateway(vs(6, 85, "http", rs(61, "10.71.9.9", 8081))),
		udp,
	)
	nw := &netcfg.Network{Interfaces: []netcfg.Interface{
		{Name: n.fc, Addresses: []string{"10.71.1.1/24"}},
		{Name: n.fs, Addresses: []string{"10.71.2.1/24"}},
	}}
	if err := nw.Validate(); err != nil {
		t.Fatal(err)
	}
	plan, err := netcfg.Make(nw, cfg, netcfg.Caps{Managed: true})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[int]netcfg.Service{1: {Transparent: true}, 3: {Mark: netcfg.GatewayMarkBase},
		5: {Transparent: true}, 6: {Mark: netcfg.GatewayMarkBase}, 7: {Transparent: true}} {
		if got := plan.Service(id); got.Mark != want.Mark || got.Transparent != want.Transparent || len(got.Notes) > 0 {
			t.Fatalf("plan of service %d: %+v, want %+v", id, got, want)
		}
	}
	e := newEngine(t)
	if err := e.ApplyPlan(cfg, plan); err != nil {
		t.Fatal(err)
	}
	for _, st := range e.Status() {
		if strings.Contains(st.Reason, "not applied") {
			t.Errorf("service %d: %s", st.ID, st.Reason)
		}
	}

	// The clients, in C.
	tcpAsk := func(port int) (string, error) {
		var line string
		var err error
		inNetns(t, n.c, func() {
			var c net.Conn
			if c, err = net.DialTimeout("tcp4", fmt.Sprintf("10.71.1.1:%d", port), 5*time.Second); err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err = bufio.NewReader(c).ReadString('\n')
		})
		return strings.TrimSpace(line), err
	}
	for _, tc := range []struct {
		name string
		port int
		want string // "" for a connection that gets no answer
	}{
		{"transparent: the real server sees the client's own address", 80, "10.71.1.2"},
		{"subnet originating: the real server sees Fulcrum's farm-side address", 81, "10.71.2.1"},
		{"marked: routed by the gateway's table to a server the main table cannot reach", 82, "10.71.2.1"},
		{"unmarked: the same server is unreachable", 83, ""},
	} {
		got, err := tcpAsk(tc.port)
		if got != tc.want || (tc.want != "" && err != nil) {
			t.Errorf("%s: got %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}

	// Layer 7: two client addresses on one kept-alive pool must each be
	// seen as themselves; the marked service reaches 10.71.9.9.
	httpGet := func(from string, port int) string {
		var out string
		inNetns(t, n.c, func() {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err := d.Dial("tcp4", fmt.Sprintf("10.71.1.1:%d", port))
			if err != nil {
				out = err.Error()
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n")
			b, _ := io.ReadAll(c)
			out = string(b)
		})
		return out
	}
	for _, from := range []string{"10.71.1.2", "10.71.1.3", "10.71.1.2", "10.71.1.3"} {
		if got := httpGet(from, 84); !strings.Contains(got, "remote="+from+" xff="+from+"\n") {
			t.Errorf("layer 7 transparent from %s: got %q", from, got)
		}
	}
	if got := httpGet("10.71.1.2", 85); !strings.Contains(got, "200 OK") || !strings.Contains(got, "remote=10.71.2.1") {
		t.Errorf("layer 7 marked: got %q", got)
	}

	// UDP, transparent.
	var reply string
	inNetns(t, n.c, func() {
		c, err := net.Dial("udp4", "10.71.1.1:86")
		if err != nil {
			reply = err.Error()
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for range 5 { // a datagram may be lost: a few tries, each bounded
			_, _ = c.Write([]byte("who\n"))
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if k, err := c.Read(buf); err == nil {
				reply = strings.TrimSpace(string(buf[:k]))
				return
			}
		}
	})
	if reply != "10.71.1.2" {
		t.Errorf("udp transparent: got %q, want 10.71.1.2", reply)
	}
	netnsHealth(t, e, nw)
	t.Log("netns checks done")
}
