package hostnet

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
)

// everything is a plan using every part: interface settings, a VIP in a
// VIP range, a per-service gateway, transparency and SNAT.
func everything(t *testing.T, keep bool) *netcfg.Plan {
	n := twoArmed()
	n.KeepOnStop = keep
	n.Interfaces[0].MTU = 1400
	n.Interfaces[0].VIPRanges = []string{"192.0.2.128/25"}
	gw := service(1, "192.0.2.150", topo.FarmAddrs[0])
	gw.DefaultGateway = topo.IGWAddr
	tr := service(2, "192.0.2.151", topo.FarmAddrs[1])
	tr.Transparent = config.Bool(true)
	return plan(t, n, true, gw, tr)
}

// TestCloseRestores: Close leaves addresses, routes of every table,
// rules, the nftables ruleset and the sysctls exactly as they were; with
// KeepOnStop the interface settings stay (and the state file lists them)
// while what services needed goes.
func TestCloseRestores(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepOnStop=%v", keep), func(t *testing.T) {
			tp := topo.New(t)
			f := tp.Fulcrum
			before := snapshot(t, f)
			state := filepath.Join(t.TempDir(), "hostnet.json")
			m := manager(t, f, state)
			apply(t, m, everything(t, keep))
			if s := snapshot(t, f); s == before {
				t.Fatal("the plan changed nothing")
			}
			b, err := os.ReadFile(state)
			if err != nil {
				t.Fatal(err)
			}
			if fi, _ := os.Stat(state); fi.Mode().Perm() != 0o600 {
				t.Errorf("state file mode %v", fi.Mode())
			}
			for _, w := range []string{`"kind": "vip"`, `"kind": "rule"`, `"kind": "nftChain"`, `"name": "net.ipv4.ip_forward"`, `"prev": "0"`, `"kind": "mtu"`, `"prev": "1500"`} {
				if !strings.Contains(string(b), w) {
					t.Errorf("state file lacks %s:\n%s", w, b)
				}
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if !keep {
				sameSnapshot(t, f, before, "after Close")
				if _, err := os.Stat(state); err == nil {
					t.Error("state file left with nothing owned")
				}
				return
			}
			addr := ipOut(f, "-br", "addr")
			if !strings.Contains(addr, topo.FulcrumEth0+"/24") || strings.Contains(addr, "192.0.2.150") {
				t.Errorf("KeepOnStop: addresses\n%s", addr)
			}
			if r := ipOut(f, "rule"); strings.Contains(r, "proto 245") {
				t.Errorf("KeepOnStop: rules left\n%s", r)
			}
			if rs := nftRuleset(t, f); strings.Contains(rs, "fulcrum") || f.ReadSysctl("net.ipv4.ip_forward") != "0" {
				t.Errorf("KeepOnStop: nftables or forwarding left\n%s", rs)
			}
			// the next run owns the kept settings and, told to keep nothing, removes them
			m2 := manager(t, f, state)
			if err := m2.Close(); err != nil {
				t.Fatal(err)
			}
			sameSnapshot(t, f, before, "after the next run's Close")
		})
	}
}

// TestCrashRecovery: a manager that dies without Close leaves its state
// file; the next one removes on its first commit what the new plan does
// not want, and on Close the rest.
func TestCrashRecovery(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	before := snapshot(t, f)
	state := filepath.Join(t.TempDir(), "hostnet.json")
	m1, err := New(Options{Log: testLog(t), StateFile: state, NetNS: f.Handle})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, m1, everything(t, false))
	crashed := snapshot(t, f)
	m1.ann.stop() // the process "dies": nothing removed
	m1.h.Close()

	m2 := manager(t, f, state)
	if s := snapshot(t, f); s != crashed {
		t.Fatalf("New changed the host:\n%s", diffLines(crashed, s))
	}
	apply(t, m2, plan(t, twoArmed(), false))
	if r := ipOut(f, "rule"); strings.Contains(r, "proto 245") {
		t.Errorf("leftover rules:\n%s", r)
	}
	if a := ipOut(f, "-br", "addr"); strings.Contains(a, "192.0.2.150") || !strings.Contains(a, topo.FulcrumEth0) {
		t.Errorf("addresses:\n%s", a)
	}
	if rs := nftRuleset(t, f); strings.Contains(rs, "fulcrum") {
		t.Errorf("leftover nftables:\n%s", rs)
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, f, before, "after the second run's Close")
}

// TestRevert: revert undoes exactly what Prepare did; the previous plan
// stays in place.
func TestRevert(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	m := manager(t, f, "")
	apply(t, m, plan(t, twoArmed(), false))
	before := snapshot(t, f)
	_, revert, err := m.Prepare(everything(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if snapshot(t, f) == before {
		t.Fatal("Prepare changed nothing")
	}
	revert()
	sameSnapshot(t, f, before, "after revert")
	if _, _, err := m.Prepare(nil); err != nil {
		t.Fatalf("Prepare after revert: %v", err)
	}
}

// The host name is per UTS namespace: its test runs in a child process of
// its own UTS and network namespaces.
const childEnv = "FULCRUM_HOSTNET_CHILD"

// TestHostnameAndDNS: the host name and resolver file are set and put
// back (the file's earlier content, or its absence) on Close.
func TestHostnameAndDNS(t *testing.T) {
	topo.RequireRoot(t)
	dir := t.TempDir()
	for _, existed := range []bool{true, false} {
		conf := filepath.Join(dir, fmt.Sprintf("resolv-%v.conf", existed))
		if existed {
			if err := os.WriteFile(conf, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+conf)
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS | syscall.CLONE_NEWNET}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "child ok") {
			t.Fatalf("child (resolver file existed: %v): %v\n%s", existed, err, out)
		}
		t.Logf("child: %s", out)
	}
	if h, _ := os.Hostname(); h == "fulcrum-test-node" {
		t.Fatal("the machine's host name changed")
	}
}

// childMain is TestHostnameAndDNS in the child: it prints "child ok" or
// the problem.
func childMain() int {
	conf := os.Getenv(childEnv)
	fail := func(f string, a ...any) int { fmt.Printf(f+"\n", a...); return 1 }
	prevName, _ := os.Hostname()
	prevConf, prevErr := os.ReadFile(conf)
	m, err := New(Options{StateFile: filepath.Join(filepath.Dir(conf), "state-"+filepath.Base(conf)), ResolvConf: conf})
	if err != nil {
		return fail("New: %v", err)
	}
	n := &netcfg.Network{Hostname: "fulcrum-test-node", DNS: netcfg.DNS{Servers: []string{"192.0.2.1", "2001:db8::1"}, Search: []string{"example.net", "lab.example.net"}}}
	if err := n.Validate(); err != nil {
		return fail("%v", err)
	}
	p, err := netcfg.Make(n, &config.Config{}, netcfg.Caps{Managed: true})
	if err != nil {
		return fail("%v", err)
	}
	commit, _, err := m.Prepare(p)
	if err != nil {
		return fail("Prepare: %v", err)
	}
	commit()
	if h, _ := os.Hostname(); h != "fulcrum-test-node" {
		return fail("host name %q", h)
	}
	b, _ := os.ReadFile(conf)
	if want := "nameserver 192.0.2.1\nnameserver 2001:db8::1\nsearch example.net lab.example.net\n"; !strings.HasSuffix(string(b), want) {
		return fail("resolver file %q", b)
	}
	st, _ := os.ReadFile(m.o.StateFile)
	var sf stateFile
	if err := json.Unmarshal(st, &sf); err != nil || len(sf.Items) != 2 {
		return fail("state file %s: %v", st, err)
	}
	if err := m.Close(); err != nil {
		return fail("Close: %v", err)
	}
	if h, _ := os.Hostname(); h != prevName {
		return fail("host name %q after Close, was %q", h, prevName)
	}
	b, err = os.ReadFile(conf)
	if prevErr != nil {
		if !os.IsNotExist(err) {
			return fail("resolver file not removed: %v", err)
		}
	} else if string(b) != string(prevConf) {
		return fail("resolver file %q after Close, was %q", b, prevConf)
	}
	fmt.Println("child ok")
	return 0
}

// TestChanges: changes between plans that the kernel makes hard: the
// interface's primary address replaced (the kernel drops the subnet's
// other addresses and the routes through it with the old one), and a VIP
// moving to another interface.
func TestChanges(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	m := manager(t, f, "")
	topo.ServePeer(t, f.Listen("tcp", "0.0.0.0:80"))
	vip := service(1, "192.0.2.50")
	apply(t, m, plan(t, twoArmed(), false, vip))
	moved := twoArmed()
	moved.Interfaces[0].Addresses = []string{"192.0.2.5/24"}
	apply(t, m, plan(t, moved, false, vip))
	addr := ipOut(f, "-br", "addr", "show", "eth0")
	if !strings.Contains(addr, "192.0.2.5/24") || !strings.Contains(addr, "192.0.2.50/32") || strings.Contains(addr, "192.0.2.1/") {
		t.Errorf("eth0 after its address changed: %s", addr)
	}
	if r := ipOut(f, "route", "show", "default"); !strings.Contains(r, "via "+topo.UpstreamAddr) {
		t.Errorf("default route after the address changed: %q", r)
	}
	if got, err := peerSeen(tp.Client, &net.Dialer{}, "192.0.2.50:80"); err != nil || got != topo.ClientAddr {
		t.Errorf("client to the VIP: %q %v", got, err)
	}

	ranges := func(on int) *netcfg.Network {
		n := twoArmed()
		n.Interfaces[on].VIPRanges = []string{"10.9.0.0/24"}
		return n
	}
	r := service(2, "10.9.0.5")
	apply(t, m, plan(t, ranges(0), false, r))
	if a := ipOut(f, "-br", "addr", "show", "eth0"); !strings.Contains(a, "10.9.0.5/32") {
		t.Fatalf("VIP not on eth0: %s", a)
	}
	apply(t, m, plan(t, ranges(1), false, r))
	if a0, a1 := ipOut(f, "-br", "addr", "show", "eth0"), ipOut(f, "-br", "addr", "show", "eth1"); strings.Contains(a0, "10.9.0.5") || !strings.Contains(a1, "10.9.0.5/32") {
		t.Errorf("VIP did not move to eth1:\n%s%s", a0, a1)
	}
}

// TestClosePending: Close reverts a Prepare not yet committed; the late
// commit does nothing.
func TestClosePending(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	before := snapshot(t, f)
	m, err := New(Options{Log: testLog(t), NetNS: f.Handle, StateFile: filepath.Join(t.TempDir(), "s.json")})
	if err != nil {
		t.Fatal(err)
	}
	commit, _, err := m.Prepare(everything(t, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	commit()
	sameSnapshot(t, f, before, "after Close and a late commit")
	if _, _, err := m.Prepare(nil); err == nil {
		t.Error("Prepare after Close succeeded")
	}
}

// TestHostnameOfForeignNamespace: a manager given another network
// namespace refuses a host name (it would rename the machine: the host
// name is the UTS namespace's) and changes nothing.
func TestHostnameOfForeignNamespace(t *testing.T) {
	topo.RequireRoot(t)
	ns := topo.NewNS(t, topo.Prefix(), "uts")
	m := manager(t, ns, "")
	before, _ := os.Hostname()
	_, _, err := m.Prepare(plan(t, &netcfg.Network{Hostname: "not-this-machine"}, false))
	if err == nil || !strings.Contains(err.Error(), "network.hostname") || !strings.Contains(err.Error(), "UTS namespace") {
		t.Fatalf("want a refusal naming network.hostname, got %v", err)
	}
	if after, _ := os.Hostname(); after != before {
		t.Fatalf("the machine's host name changed from %q to %q", before, after)
	}
}
