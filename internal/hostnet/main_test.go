package hostnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
	"github.com/google/nftables"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// testLog is a logger writing to the test's log.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// manager is a Manager of ns with a state file in a temporary directory,
// closed in t.Cleanup.
func manager(t *testing.T, ns *topo.NS, state string) *Manager {
	t.Helper()
	if state == "" {
		state = filepath.Join(t.TempDir(), "hostnet.json")
	}
	m, err := New(Options{Log: testLog(t), StateFile: state, NetNS: ns.Handle, ResolvConf: filepath.Join(t.TempDir(), "resolv.conf")})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Caps().Managed {
		t.Fatalf("not managed as root: %s", m.Caps().Reason)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// apply prepares and commits p, failing the test on an error.
func apply(t *testing.T, m *Manager, p *netcfg.Plan) {
	t.Helper()
	commit, _, err := m.Prepare(p)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	commit()
}

// service is an enabled TCP virtual service.
func service(id int, addr string, servers ...string) config.VirtualService {
	vs := config.VirtualService{ID: id, Address: addr, Port: 80, Protocol: "tcp", Type: "gen", Enabled: config.Bool(true)}
	for _, s := range servers {
		vs.RealServers = append(vs.RealServers, config.RealServer{Address: s, Port: 7000})
	}
	return vs
}

// plan is the managed plan of n and the services (SNAT as given).
func plan(t *testing.T, n *netcfg.Network, snat bool, vss ...config.VirtualService) *netcfg.Plan {
	t.Helper()
	if n == nil {
		n = &netcfg.Network{}
	}
	if err := n.Validate(); err != nil {
		t.Fatalf("network settings: %v", err)
	}
	cfg := &config.Config{VirtualServices: vss}
	cfg.Options.SNAT = snat
	p, err := netcfg.Make(n, cfg, netcfg.Caps{Managed: true})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// twoArmed is Fulcrum's network in the topology: eth0 network side with
// the global gateway upstream, eth1 farm side with the route to the farm.
func twoArmed() *netcfg.Network {
	return &netcfg.Network{
		Interfaces: []netcfg.Interface{
			{Name: "eth0", Addresses: []string{topo.FulcrumEth0 + "/24"}},
			{Name: "eth1", Addresses: []string{topo.FulcrumEth1 + "/24"}},
		},
		Gateway: topo.UpstreamAddr,
		Routes:  []netcfg.Route{{Destination: topo.FarmSubnet, Gateway: topo.RouterLink}},
	}
}

// qdisc matches the queueing discipline in ip's JSON: a veth gets its
// default one ("noqueue" for "noop") the first time it is up, which no
// netlink request undoes and which is no network setting.
var qdisc = regexp.MustCompile(`"qdisc": *"[a-z_]+",`)

// snapshot is the namespace's network state as ip and nftables show it:
// links, addresses, routes of every table, rules (both families), the
// nftables ruleset and the forwarding sysctls.
func snapshot(t *testing.T, ns *topo.NS) string {
	t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"-j", "addr"}, {"-j", "route", "show", "table", "all"}, {"-6", "-j", "route", "show", "table", "all"},
		{"-j", "rule"}, {"-6", "-j", "rule"}, {"-j", "-d", "link"},
	} {
		out := qdisc.ReplaceAllString(ns.IP(append([]string{"-p"}, args...)...), "")
		fmt.Fprintf(&b, "ip %s\n%s\n", strings.Join(args, " "), out)
	}
	b.WriteString(nftRuleset(t, ns))
	for _, s := range []string{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"} {
		fmt.Fprintf(&b, "%s=%s\n", s, ns.ReadSysctl(s))
	}
	return b.String()
}

// nftRuleset lists the namespace's nftables tables, chains and rules.
func nftRuleset(t *testing.T, ns *topo.NS) string {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, tb := range tables {
		lines = append(lines, fmt.Sprintf("table %d %s", tb.Family, tb.Name))
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chains {
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(rules)
		lines = append(lines, fmt.Sprintf("chain %d %s %s: %d rules %s", ch.Table.Family, ch.Table.Name, ch.Name, len(rules), js))
	}
	sort.Strings(lines)
	return "nftables\n" + strings.Join(lines, "\n") + "\n"
}

// sameSnapshot fails the test when the namespace differs from before.
func sameSnapshot(t *testing.T, ns *topo.NS, before, when string) {
	t.Helper()
	if after := snapshot(t, ns); after != before {
		t.Errorf("%s: the namespace differs from before:\n%s", when, diffLines(before, after))
	}
}

// diffLines lists the lines only in a (-) or only in b (+).
func diffLines(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// serve accepts connections on l and writes each peer's address back.
func serve(t *testing.T, l net.Listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, c.RemoteAddr().String())
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); <-done })
}

// peerSeen dials addr from ns with d and returns the address the server
// saw (without port).
func peerSeen(ns *topo.NS, d *net.Dialer, addr string) (string, error) {
	if d.Timeout == 0 {
		d.Timeout = 2 * time.Second
	}
	c, err := ns.Dial(d, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	h, _, err := net.SplitHostPort(string(b))
	return h, err
}

// ipOut runs ip in ns and returns its output.
func ipOut(ns *topo.NS, args ...string) string { return ns.IP(args...) }

// fieldOf returns the field of an *Error, or fails.
func fieldOf(t *testing.T, err error) string {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) names no field", err, err)
	}
	return e.Field
}
