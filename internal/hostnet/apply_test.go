package hostnet

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// pair is two namespaces joined by a veth pair: "host" (eth0, eth1 with
// its peer in "peer" as eth0/eth1), for tests without traffic.
func pair(t *testing.T) (host, peer *topo.NS) {
	topo.RequireRoot(t)
	p := topo.Prefix()
	host, peer = topo.NewNS(t, p, "host"), topo.NewNS(t, p, "peer")
	topo.Veth(t, host, "eth0", peer, "eth0")
	topo.Veth(t, host, "eth1", peer, "eth1")
	return host, peer
}

// TestNoOpPlanChangesNothing: plans that need nothing (no plan, an empty
// network, services whose addresses are not Fulcrum's to add) change
// nothing in the namespace and write no state file.
func TestNoOpPlanChangesNothing(t *testing.T) {
	host, _ := pair(t)
	before := snapshot(t, host)
	state := filepath.Join(t.TempDir(), "hostnet.json")
	m := manager(t, host, state)
	cases := []struct {
		name string
		p    *netcfg.Plan
	}{
		{"nil plan", nil},
		{"empty network, no services", plan(t, nil, false)},
		{"services with loopback and foreign addresses", plan(t, nil, false, service(1, "127.0.0.1", "127.0.0.2"), service(2, "203.0.113.9", "127.0.0.3"))},
		{"unmanaged plan", func() *netcfg.Plan {
			p, err := netcfg.Unmanaged(&config.Config{VirtualServices: []config.VirtualService{service(3, "127.0.0.1")}}, "test")
			if err != nil {
				t.Fatal(err)
			}
			return p
		}()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			apply(t, m, c.p)
			sameSnapshot(t, host, before, c.name)
			if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state file written: %v", err)
			}
		})
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, host, before, "after Close")
}

// TestInterfaceSettings walks plans through one namespace: addresses,
// MTU, link state, gateway and static routes are applied, removed when
// no longer wanted, an address the host had is never removed, and Close
// leaves the namespace as found.
func TestInterfaceSettings(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	f.IP("addr", "add", "192.0.2.2/24", "dev", "eth0") // the host's own
	before := snapshot(t, f)
	m := manager(t, f, "")
	serve(t, tp.Farm.Listen("tcp", topo.FarmAddrs[0]+":7000"))
	serve(t, tp.Outside.Listen("tcp", topo.OutsideAddr+":7000"))

	full := twoArmed()
	full.Interfaces[0].Addresses = append(full.Interfaces[0].Addresses, "192.0.2.2/24", "2001:db8:1::1/64")
	full.Interfaces[0].MTU = 1400
	less := twoArmed()
	less.Interfaces = less.Interfaces[:1]
	less.Interfaces[0].Down = false
	less.Gateway, less.Routes = "", nil

	steps := []struct {
		name  string
		n     *netcfg.Network
		check func(t *testing.T)
	}{
		{"two-armed", full, func(t *testing.T) {
			addr := ipOut(f, "-br", "addr")
			for _, a := range []string{"192.0.2.1/24", "192.0.2.2/24", "10.0.1.1/24", "2001:db8:1::1/64"} {
				if !strings.Contains(addr, a) {
					t.Errorf("address %s missing:\n%s", a, addr)
				}
			}
			if l := ipOut(f, "link", "show", "eth0"); !strings.Contains(l, "mtu 1400") || !strings.Contains(l, ",UP") {
				t.Errorf("eth0: %s", l)
			}
			if r := ipOut(f, "route", "show", "default"); !strings.Contains(r, "via 192.0.2.254 dev eth0 proto 245") {
				t.Errorf("default route: %s", r)
			}
			if got, err := peerSeen(f, &net.Dialer{}, topo.FarmAddrs[0]+":7000"); err != nil || got != topo.FulcrumEth1 {
				t.Errorf("farm through the static route: %q %v", got, err)
			}
			if got, err := peerSeen(f, &net.Dialer{}, topo.OutsideAddr+":7000"); err != nil || !strings.HasPrefix(got, "192.0.2.") {
				t.Errorf("outside through the default gateway: %q %v", got, err)
			}
		}},
		{"eth1, routes and extra addresses dropped", less, func(t *testing.T) {
			addr := ipOut(f, "-br", "addr")
			if strings.Contains(addr, "10.0.1.1/24") || strings.Contains(addr, "2001:db8:1::1") {
				t.Errorf("addresses no longer wanted are still there:\n%s", addr)
			}
			if !strings.Contains(addr, "192.0.2.2/24") {
				t.Errorf("the host's own address was removed:\n%s", addr)
			}
			if l := ipOut(f, "link", "show", "eth0"); !strings.Contains(l, "mtu 1500") {
				t.Errorf("eth0's MTU not restored: %s", l)
			}
			if l := ipOut(f, "link", "show", "eth1"); strings.Contains(l, ",UP") {
				t.Errorf("eth1 still up: %s", l)
			}
			if r := ipOut(f, "route", "show", "default"); r != "" {
				t.Errorf("default route left: %s", r)
			}
			if _, err := peerSeen(f, &net.Dialer{}, topo.FarmAddrs[0]+":7000"); err == nil {
				t.Error("the farm is still reached")
			}
		}},
		{"down", &netcfg.Network{Interfaces: []netcfg.Interface{{Name: "eth0", Down: true, Addresses: []string{"192.0.2.1/24"}}}}, func(t *testing.T) {
			if l := ipOut(f, "link", "show", "eth0"); strings.Contains(l, ",UP") {
				t.Errorf("eth0 up: %s", l)
			}
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			apply(t, m, plan(t, s.n, false))
			s.check(t)
		})
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, f, before, "after Close")
}

// TestReplacedDefaultRoute: a default route the host had is replaced by
// the configured gateway and put back when Fulcrum no longer sets one.
func TestReplacedDefaultRoute(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	tp.ConfigureFulcrum() // default via upstream
	f.IP("route", "replace", "default", "via", topo.IGWAddr)
	before := snapshot(t, f)
	m := manager(t, f, "")
	apply(t, m, plan(t, twoArmed(), false))
	if r := ipOut(f, "route", "show", "default"); !strings.Contains(r, "via "+topo.UpstreamAddr) || strings.Contains(r, topo.IGWAddr) {
		t.Errorf("default route: %s", r)
	}
	apply(t, m, plan(t, nil, false))
	sameSnapshot(t, f, before, "after an empty plan")
}

// TestVLAN: a VLAN child with an address is created, used for a VIP and
// removed; on a kernel without 802.1Q the netlink request is checked and
// the error names the field.
func TestVLAN(t *testing.T) {
	host, _ := pair(t)
	n := &netcfg.Network{Interfaces: []netcfg.Interface{
		{Name: "eth1", Addresses: []string{"10.0.1.1/24"}},
		{Name: "eth1.10", Parent: "eth1", VLAN: 10, MTU: 1400, Addresses: []string{"10.0.10.1/24"}, VIPRanges: []string{"10.0.20.0/28"}},
	}}
	p := plan(t, n, false, service(4, "10.0.20.5"))
	before := snapshot(t, host)
	m := manager(t, host, "")
	_, probeErr := host.Exec("ip", "link", "add", "link", "eth1", "name", "probe", "type", "vlan", "id", "9")
	if probeErr == nil {
		host.IP("link", "del", "probe")
		apply(t, m, p)
		l, err := m.h.LinkByName("eth1.10")
		if err != nil {
			t.Fatal(err)
		}
		v, ok := l.(*netlink.Vlan)
		if !ok || v.VlanId != 10 || v.Attrs().MTU != 1400 || v.Attrs().Alias != Alias {
			t.Fatalf("VLAN child %+v", l)
		}
		addr := ipOut(host, "-br", "addr", "show", "eth1.10")
		if !strings.Contains(addr, "10.0.10.1/24") || !strings.Contains(addr, "10.0.20.5/32") {
			t.Errorf("addresses: %s", addr)
		}
		apply(t, m, plan(t, nil, false))
		sameSnapshot(t, host, before, "after removing the VLAN")
		return
	}
	t.Log("kernel lacks 802.1Q VLAN support (8021q): checked the netlink request instead")
	parent, err := m.h.LinkByName("eth1")
	if err != nil {
		t.Fatal(err)
	}
	v := vlanLink("eth1.10", 10, 1400, parent.Attrs().Index)
	if v.Attrs().ParentIndex != parent.Attrs().Index || v.VlanId != 10 || v.Attrs().Name != "eth1.10" || v.Attrs().MTU != 1400 ||
		v.Attrs().Alias != Alias || v.VlanProtocol != netlink.VLAN_PROTOCOL_8021Q || v.Type() != "vlan" {
		t.Errorf("request %+v", v)
	}
	_, _, err = m.Prepare(p)
	if err == nil {
		t.Fatal("Prepare succeeded on a kernel without 802.1Q")
	}
	want := "network.interfaces[1].vlan: this kernel has no 802.1Q VLAN support (module 8021q)"
	if !strings.HasPrefix(err.Error(), want) || !errors.Is(err, errNoVLAN) {
		t.Errorf("error %q, want %q", err, want)
	}
	sameSnapshot(t, host, before, "after the refused VLAN")
}

// TestBadInput: what the host refuses fails Prepare with an error naming
// the field, and what Prepare had done before is undone.
func TestBadInput(t *testing.T) {
	eth0 := netcfg.Interface{Name: "eth0", Addresses: []string{"192.0.2.1/24"}, MTU: 1400}
	nftChain := func(name string) func(t *testing.T, ns *topo.NS) {
		return func(t *testing.T, ns *topo.NS) {
			c, err := nftables.New(nftables.WithNetNSFd(int(ns.Handle)))
			if err != nil {
				t.Fatal(err)
			}
			c.AddTable(fulcrumTable)
			c.AddChain(&nftables.Chain{Name: name, Table: fulcrumTable})
			if err := c.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, ns *topo.NS)
		n     *netcfg.Network
		snat  bool
		vss   []config.VirtualService
		field string
		words string
	}{
		{"missing interface", nil, &netcfg.Network{Interfaces: []netcfg.Interface{eth0, {Name: "eth7", Addresses: []string{"10.9.0.1/24"}}}},
			false, nil, "network.interfaces[1].name", `no interface "eth7" on this host`},
		{"missing VLAN parent", nil, &netcfg.Network{Interfaces: []netcfg.Interface{eth0, {Name: "eth9.5", Parent: "eth9", VLAN: 5}}},
			false, nil, "network.interfaces[1].parent", `no interface "eth9" on this host`},
		{"VLAN name of another interface", nil, &netcfg.Network{Interfaces: []netcfg.Interface{eth0, {Name: "eth1", Parent: "eth0", VLAN: 5}}},
			false, nil, "network.interfaces[1].vlan", `"eth1" exists and is not VLAN 5 of eth0`},
		{"per-service gateway out of reach", nil, &netcfg.Network{}, false,
			[]config.VirtualService{func() config.VirtualService {
				v := service(4, "127.0.0.1")
				v.DefaultGateway = "203.0.113.77"
				return v
			}()},
			"virtualServices[id=4].defaultGateway", "203.0.113.77"},
		{"transparency: a foreign chain in Fulcrum's table", nftChain("prerouting"), &netcfg.Network{Interfaces: []netcfg.Interface{eth0}}, false,
			[]config.VirtualService{func() config.VirtualService {
				v := service(5, "192.0.2.50", "10.0.2.10")
				v.Transparent = config.Bool(true)
				return v
			}()},
			"virtualServices[id=5].transparent", "not Fulcrum's"},
		{"SNAT: a foreign chain in Fulcrum's table", nftChain("postrouting"), &netcfg.Network{Interfaces: []netcfg.Interface{eth0}}, true,
			[]config.VirtualService{service(6, "192.0.2.60", "10.0.2.10")},
			"options.snat", "not Fulcrum's"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host, _ := pair(t)
			if c.setup != nil {
				c.setup(t, host)
			}
			before := snapshot(t, host)
			m := manager(t, host, "")
			_, _, err := m.Prepare(plan(t, c.n, c.snat, c.vss...))
			if err == nil {
				t.Fatal("Prepare succeeded")
			}
			if f := fieldOf(t, err); f != c.field || !strings.Contains(err.Error(), c.words) {
				t.Errorf("error %q, want field %s and %q", err, c.field, c.words)
			}
			var e *Error
			if errors.As(err, &e) && e.FieldError().Error() != err.Error() {
				t.Errorf("as a field error: %q, want %q", e.FieldError(), err)
			}
			sameSnapshot(t, host, before, "after the error")
			// the manager is usable again
			apply(t, m, plan(t, nil, false))
		})
	}
}

// TestLinks lists the namespace's interfaces, marking those of the plan.
func TestLinks(t *testing.T) {
	host, _ := pair(t)
	m := manager(t, host, "")
	apply(t, m, plan(t, &netcfg.Network{Interfaces: []netcfg.Interface{{Name: "eth0", Addresses: []string{"192.0.2.1/24"}, MTU: 1400}}}, false))
	ls, err := m.Links()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]netcfg.Link{}
	for _, l := range ls {
		got[l.Name] = l
	}
	e0, e1, lo := got["eth0"], got["eth1"], got["lo"]
	if !e0.Managed || e0.Kind != "veth" || e0.MTU != 1400 || !e0.Up || e0.MAC == "" || !strings.Contains(strings.Join(e0.Addresses, " "), "192.0.2.1/24") {
		t.Errorf("eth0 %+v", e0)
	}
	if e1.Managed || e1.Up || e1.Index == 0 {
		t.Errorf("eth1 %+v", e1)
	}
	if lo.Managed || !lo.Up || lo.Kind != "device" {
		t.Errorf("lo %+v", lo)
	}
}

// TestUnprivileged: without CAP_NET_ADMIN (dropped from this thread's
// effective set), Probe says why, New works, a plan that needs nothing is
// fine and one that needs something is refused naming the field.
func TestUnprivileged(t *testing.T) {
	topo.RequireRoot(t)
	host, _ := pair(t)
	type result struct {
		caps              netcfg.Caps
		newErr, noop, bad error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // the thread dies with the goroutine: its capabilities stay dropped
		var r result
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			r.newErr = err
			done <- r
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			r.newErr = err
			done <- r
			return
		}
		r.caps = Probe()
		m, err := New(Options{StateFile: filepath.Join(t.TempDir(), "s.json"), NetNS: host.Handle})
		r.newErr = err
		if err == nil {
			var commit func()
			if commit, _, r.noop = m.Prepare(plan(t, nil, false)); r.noop == nil {
				commit()
			}
			_, _, r.bad = m.Prepare(plan(t, &netcfg.Network{Hostname: "x"}, false))
			_ = m.Close()
		}
		done <- r
	}()
	r := <-done
	if r.caps.Managed || !strings.Contains(r.caps.Reason, "CAP_NET_ADMIN") {
		t.Errorf("Probe %+v", r.caps)
	}
	if r.newErr != nil || r.noop != nil {
		t.Fatalf("New: %v, no-op plan: %v", r.newErr, r.noop)
	}
	if r.bad == nil || fieldOf(t, r.bad) != "network.hostname" || !strings.Contains(r.bad.Error(), "CAP_NET_ADMIN") {
		t.Errorf("plan needing the host: %v", r.bad)
	}
	if c := Probe(); !c.Managed {
		t.Errorf("Probe as root: %+v", c)
	}
}
