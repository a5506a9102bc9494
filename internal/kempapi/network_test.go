package kempapi

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/hostnet"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
)

// testHost is the host of a managed controller: a hostnet.Manager of a
// network namespace of the test's own, holding two veth pairs (eth0 and
// eth1, with peers peer0 and peer1; fixed MAC addresses), with its state
// and resolver files in a temporary directory. Tests never set the host
// name through it: that is the machine's (UTS), not the namespace's.
func testHost(t testing.TB) (*hostnet.Manager, *topo.NS) {
	t.Helper()
	topo.RequireRoot(t)
	ns := topo.NewNS(t, topo.Prefix(), "kemp")
	for i := 0; i < 2; i++ {
		eth, peer := fmt.Sprintf("eth%d", i), fmt.Sprintf("peer%d", i)
		topo.Veth(t, ns, eth, ns, peer)
		ns.IP("link", "set", eth, "address", fmt.Sprintf("02:00:00:00:00:%02x", i+1))
		ns.IP("link", "set", peer, "address", fmt.Sprintf("02:00:00:00:01:%02x", i+1))
	}
	dir := t.TempDir()
	m, err := hostnet.New(hostnet.Options{NetNS: ns.Handle, StateFile: filepath.Join(dir, "network-state.json"),
		ResolvConf: filepath.Join(dir, "resolv.conf"), Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("closing the host: %v", err)
		}
	})
	if c := m.Caps(); !c.Managed {
		t.Fatalf("the test's namespace is not managed: %s", c.Reason)
	}
	return m, ns
}

// vlanSupport reports whether the kernel creates 802.1Q VLAN interfaces
// (type vlan), trying it in the namespace.
func vlanSupport(t testing.TB, ns *topo.NS) bool {
	out, err := ns.Exec("ip", "link", "add", "link", "eth0", "name", "vlprobe", "type", "vlan", "id", "5")
	if err != nil {
		t.Logf("the kernel lacks 802.1Q VLAN support (ip link add … type vlan: %s): VLAN children are refused by the host", strings.TrimSpace(out))
		return false
	}
	ns.IP("link", "del", "vlprobe")
	return true
}

func TestConfirmedFor(t *testing.T) {
	n := &netcfg.Network{Interfaces: []netcfg.Interface{
		{Name: "eth0", Addresses: []string{"10.0.0.5/24", "2001:db8::5/64"}},
		{Name: "eth1", Addresses: []string{"10.1.0.5/24"}},
	}}
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name     string
		local    netip.Addr
		listener string
		want     bool
	}{
		{"loopback listener", a("10.9.9.9"), "127.0.0.1:8443", true},
		{"wildcard listener", a("10.9.9.9"), "0.0.0.0:8443", true},
		{"wildcard v6 listener", a("10.9.9.9"), "[::]:8443", true},
		{"empty host listener", a("10.9.9.9"), ":8443", true},
		{"address kept", a("10.0.0.5"), "10.0.0.5:8443", true},
		{"address kept, mapped", a("::ffff:10.1.0.5"), "10.1.0.5:8443", true},
		{"v6 address kept", a("2001:db8::5"), "[2001:db8::5]:8443", true},
		{"address removed", a("10.0.0.6"), "10.0.0.6:8443", false},
		{"loopback request, listener unknown", a("127.0.0.1"), "", true},
		{"loopback request, listener on an address", a("127.0.0.1"), "10.0.0.6:8443", false},
		{"unknown local, listener unknown", netip.Addr{}, "", false},
		{"other address, listener unknown", a("192.0.2.1"), "", false},
	} {
		if got := confirmedFor(tc.local, tc.listener, n); got != tc.want {
			t.Errorf("%s: confirmedFor(%v, %q) = %v, want %v", tc.name, tc.local, tc.listener, got, tc.want)
		}
	}
}

func TestListIfacesNumbering(t *testing.T) {
	links := []netcfg.Link{
		{Name: "lo", Kind: "device"}, {Name: "eth10", Kind: "device"}, {Name: "eth1.10", Kind: "vlan", Parent: "eth1", VLAN: 10},
		{Name: "eth2", Kind: "veth"}, {Name: "eth0", Kind: "device"}, {Name: "eth1", Kind: "device"},
	}
	n := &netcfg.Network{Interfaces: []netcfg.Interface{
		{Name: "eth1.9", Parent: "eth1", VLAN: 9}, {Name: "eth1", Addresses: []string{"10.1.0.5/24"}}, {Name: "eth3"},
	}}
	var got []string
	for i, f := range listIfaces(links, n) {
		if f.id != i {
			t.Errorf("%s has id %d at %d", f.name, f.id, i)
		}
		got = append(got, f.name)
	}
	want := []string{"eth0", "eth1", "eth2", "eth3", "eth10", "eth1.9", "eth1.10"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	list := listIfaces(links, n)
	for key, want := range map[string]string{"0": "eth0", "4": "eth10", "eth1.10": "eth1.10", " 1 ": "eth1", "7": "", "-1": "", "eth9": ""} {
		f := findIface(list, key)
		if (f == nil) != (want == "") || (f != nil && f.name != want) {
			t.Errorf("findIface(%q) = %v, want %q", key, f, want)
		}
	}
}

func TestNaturalCmp(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"eth2", "eth10", -1}, {"eth10", "eth2", 1}, {"eth1", "eth1", 0}, {"eth1", "eth1.10", -1},
		{"ens3", "eth0", -1}, {"a", "", 1}, {"eth01", "eth1", 0}, {"bond0", "eth0", -1},
	} {
		if got := naturalCmp(tc.a, tc.b); got != tc.want {
			t.Errorf("naturalCmp(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// netOf returns the network settings the controller has now.
func (e *env) netOf() *netcfg.Network {
	n := e.ctl.Network().Network
	if n == nil {
		return &netcfg.Network{}
	}
	return n
}

// fail1 sends a v1 command and returns its error text, failing the test
// unless the answer has status.
func (e *env) fail1(status int, cmd, query string) string {
	e.t.Helper()
	x := e.mustXML(e.v1(auth{}, cmd, query, nil), status, cmd+"?"+query)
	return x.val("Error")
}

func TestNetworkCommands(t *testing.T) {
	e := newEnv(t, envOpts{managed: true})
	vlans := vlanSupport(t, e.ns)

	// An interface is named by its number (eth0 0, eth1 1, peer0 2, peer1
	// 3) or, in Fulcrum, by its name.
	e.ok1("modiface", "interface=0&addr=10.0.0.5/24&mtu=1500")
	e.ok1("modiface", "iface=eth1&addr=10.1.0.5/24")
	if f := e.netOf().Interface("eth0"); f == nil || !slices.Equal(f.Addresses, []string{"10.0.0.5/24"}) || f.MTU != 1500 {
		t.Fatalf("eth0 after modiface: %+v", f)
	}
	if out := e.ns.IP("-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.0.0.5/24") {
		t.Errorf("eth0 in the kernel: %s", out)
	}
	before := e.ctl.Network().Revision

	// Bad values are refused naming the parameter; nothing is stored.
	for _, tc := range []struct{ cmd, query, want string }{
		{"modiface", "interface=0&mtu=20", "mtu: must be 576-9216"},
		{"modiface", "interface=0&mtu=x", "mtu: Invalid integer value"},
		{"modiface", "interface=1&addr=10.0.0.9/24", "addr: subnet 10.0.0.0/24 overlaps"},
		{"modiface", "interface=1&addr=nonsense", "addr: must be an address with prefix length"},
		{"modiface", "interface=0&hacheck=1", "Command not available: hacheck"},
		{"modiface", "interface=eth7&addr=10.7.0.5/24", `interface: the host's network refused it: no interface "eth7"`},
		{"addvlan", "interface=0&vlanid=4095", "vlanid: must be 1-4094"},
		{"addvlan", "interface=eth9&vlanid=10", `interface: no interface "eth9"`},
		{"addadditional", "interface=0&addr=10.0.1.20-10.0.1.10", "addr: "},
		{"set", "param=dfltgw&value=192.0.2.1", "dfltgw: 192.0.2.1 lies in no interface's subnet"},
		{"set", "param=defaultgateway&value=192.0.2.1", "defaultgateway: 192.0.2.1 lies in no interface's subnet"},
		{"set", "param=dns1&value=not-an-ip", "dns1: must be an IP address"},
		{"set", "param=hostname&value=bad_name", "hostname: must be a host name"},
		{"addroute", "dest=10.20.0.0/16&gateway=192.0.2.1", "gateway: 192.0.2.1 lies in no interface's subnet"},
		{"delroute", "dest=10.99.0.0/16", "dest: there is no route to 10.99.0.0/16"},
		{"deladditional", "interface=0&addr=10.0.9.0/28", "addr: 10.0.9.0/28 is not an additional address of eth0"},
		{"delvlan", "interface=0&vlanid=99", "vlanid: Fulcrum created no VLAN 99 on eth0"},
	} {
		if got := e.fail1(422, tc.cmd, tc.query); !strings.Contains(got, tc.want) {
			t.Errorf("%s?%s: error %q, want %q", tc.cmd, tc.query, got, tc.want)
		}
	}
	for _, tc := range []struct{ cmd, query, want string }{
		{"modiface", "addr=10.0.0.5/24", "interface: String Value missing"},
		{"modiface", "interface=0", "addr: String Value missing"},
		{"addvlan", "interface=0", "vlanid: String Value missing"},
		{"addroute", "dest=10.20.0.0/16", "gateway: String Value missing"},
		{"addadditional", "interface=0", "addr: String Value missing"},
	} {
		if got := e.fail1(400, tc.cmd, tc.query); got != tc.want {
			t.Errorf("%s?%s: error %q, want %q", tc.cmd, tc.query, got, tc.want)
		}
	}
	if rev := e.ctl.Network().Revision; rev != before {
		t.Fatalf("refused commands changed the network settings: revision %d, was %d", rev, before)
	}

	// Additional addresses, the default gateway, DNS and routes.
	e.ok1("addadditional", "interface=0&addr=10.0.1.0/28")
	if got := e.fail1(422, "addadditional", "interface=0&addr=10.0.1.0-10.0.1.15"); !strings.Contains(got, "already an additional address") {
		t.Errorf("duplicate range: %q", got)
	}
	e.ok1("set", "param=dfltgw&value=10.0.0.1")
	e.ok1("set", "param=dns1&value=10.0.0.53")
	e.ok1("set", "param=dns2&value=10.0.0.54")
	e.ok1("set", "param=searchlist&value=example.com,example.net")
	e.ok1("addroute", "dest=10.20.0.0/16&gateway=10.1.0.254")
	n := e.netOf()
	if n.Gateway != "10.0.0.1" || !slices.Equal(n.DNS.Servers, []string{"10.0.0.53", "10.0.0.54"}) ||
		!slices.Equal(n.DNS.Search, []string{"example.com", "example.net"}) ||
		len(n.Routes) != 1 || n.Routes[0] != (netcfg.Route{Destination: "10.20.0.0/16", Gateway: "10.1.0.254"}) {
		t.Errorf("network after the commands: %+v", n)
	}
	if out := e.ns.IP("route", "show"); !strings.Contains(out, "10.20.0.0/16 via 10.1.0.254") || !strings.Contains(out, "default via 10.0.0.1") {
		t.Errorf("routes in the kernel:\n%s", out)
	}
	if got := e.ok1("get", "param=nameserver").at("Success", "Data", "nameserver"); got == nil || got.text != "10.0.0.53 10.0.0.54" {
		t.Errorf("nameserver: %+v", got)
	}
	if got := e.ok1("get", "param=dns2").at("Success", "Data", "dns2"); got == nil || got.text != "10.0.0.54" {
		t.Errorf("dns2: %+v", got)
	}
	j := e.ok2("get", map[string]any{"param": "defaultgateway"})
	if got := j.get("defaultgateway").s; got != "10.0.0.1" {
		t.Errorf("v2 defaultgateway %q", got)
	}

	// A VLAN child, where the kernel has 802.1Q; otherwise the host's
	// refusal names the field.
	if vlans {
		e.ok1("addvlan", "interface=1&vlanid=10")
		e.ok1("modiface", "interface=eth1.10&addr=10.10.0.5/24")
		if v := e.netOf().Interface("eth1.10"); v == nil || v.Parent != "eth1" || v.VLAN != 10 {
			t.Errorf("VLAN child: %+v", v)
		}
		vl := e.ok1("showiface", "interface=eth1.10").at("Success", "Data", "Interface")
		if vl.val("InterfaceType") != "VLAN" || vl.val("VlanId") != "10" || vl.val("Parent") != "eth1" || vl.val("Id") != "4" {
			t.Errorf("showiface eth1.10: %+v", vl)
		}
		e.ok1("delvlan", "interface=1&vlanid=10")
	} else if got := e.fail1(422, "addvlan", "interface=1&vlanid=10"); !strings.Contains(got, "vlanid: the host's network refused it: ") ||
		!strings.Contains(got, "802.1Q") {
		t.Errorf("VLAN without kernel support: %q, want the host's refusal naming vlanid and 802.1Q", got)
	}
	if e.netOf().Interface("eth1.10") != nil {
		t.Error("the VLAN child is still configured")
	}

	// showiface: all, one by number, one by name.
	x := e.ok1("showiface", "")
	var names []string
	for _, k := range x.at("Success", "Data").kids {
		names = append(names, k.val("Name"))
	}
	if !slices.Equal(names, []string{"eth0", "eth1", "peer0", "peer1"}) {
		t.Errorf("showiface lists %v", names)
	}
	one := e.ok1("showiface", "iface=0").at("Success", "Data", "Interface")
	if one.val("IPAddress") != "10.0.0.5/24" || one.val("Mtu") != "1500" || one.val("DefaultInterface") != "yes" ||
		one.at("AdditionalAddresses", "Opt").text != "10.0.1.0/28" || one.val("MacAddress") != "02:00:00:00:00:01" ||
		one.val("Link") != "up" || one.val("Managed") != "yes" {
		t.Errorf("showiface 0: %+v", one)
	}
	peer := e.ok1("showiface", "interface=peer1").at("Success", "Data", "Interface")
	if peer.val("Id") != "3" || peer.val("Managed") != "no" || peer.val("Link") != "down" {
		t.Errorf("showiface peer1: %+v", peer)
	}
	jv := e.ok2("showiface", map[string]any{"iface": 1})
	if arr := jv.get("Interface"); arr == nil || len(arr.arr) != 1 || arr.arr[0].get("Name").s != "eth1" {
		t.Errorf("v2 showiface: %+v", jv)
	}
	routes := e.ok1("showroute", "").at("Success", "Data", "Route")
	if routes == nil || routes.val("Destination") != "10.20.0.0/16" || routes.val("Gateway") != "10.1.0.254" {
		t.Errorf("showroute: %+v", routes)
	}

	// And back.
	e.ok1("delroute", "dest=10.20.0.0/16")
	e.ok1("deladditional", "interface=eth0&addr=10.0.1.0/28")
	n = e.netOf()
	if len(n.Routes) != 0 || len(n.Interface("eth0").VIPRanges) != 0 {
		t.Errorf("network after deleting: %+v", n)
	}
	if ch := e.ctl.Network().Change; ch.Source != control.SourceKempAPI || ch.User != "bal" {
		t.Errorf("network revision made by %q through %q", ch.User, ch.Source)
	}
}

// TestNetworkUnmanaged: where Fulcrum does not manage the host's network,
// host settings are refused with the reason, and showiface answers the
// configured interfaces (none).
func TestNetworkUnmanaged(t *testing.T) {
	e := newEnv(t, envOpts{})
	if got := e.fail1(422, "modiface", "interface=eth0&addr=10.0.0.5/24"); !strings.Contains(got, "network: cannot be applied") {
		t.Errorf("unmanaged modiface: %q", got)
	}
	if got := e.fail1(422, "set", "param=dns1&value=10.0.0.53"); !strings.Contains(got, "cannot be applied") {
		t.Errorf("unmanaged set dns1: %q", got)
	}
	if d := e.ok1("showiface", "").at("Success", "Data"); d == nil || len(d.kids) != 1 || d.kids[0].name != "Interfaces" {
		t.Errorf("unmanaged showiface: %+v", d)
	}
	if e.ctl.Network().Revision != 0 {
		t.Error("a refused change was stored")
	}
}

// TestNetworkPending: the API is served inside the test's namespace on an
// address the host has outside Fulcrum's settings. A change there could
// cut the caller off (the address is not among the new settings'), so it
// waits for confirmation: the answer says so, and confirmnetwork keeps it.
func TestNetworkPending(t *testing.T) {
	e := newEnv(t, envOpts{managed: true, hostAdmin: "10.1.0.5/24"})
	x := e.ok1("modiface", "interface=eth0&addr=10.0.0.5/24")
	d := x.at("Success", "Data")
	if d == nil || d.val("Confirmed") != "N" || d.val("NetworkRevision") == "" || d.val("RollbackIn") == "" || d.val("RollbackIn") == "0" {
		t.Fatalf("pending answer: %+v", x.at("Success"))
	}
	snap := e.ctl.Network()
	if snap.Deadline.IsZero() || d.val("NetworkRevision") != strconv.FormatUint(snap.Revision, 10) {
		t.Fatalf("controller: revision %d deadline %v; answer %s", snap.Revision, snap.Deadline, d.val("NetworkRevision"))
	}
	if want := "confirmnetwork?revision=" + strconv.FormatUint(snap.Revision, 10); d.val("Confirm") != want {
		t.Errorf("Confirm %q, want %q", d.val("Confirm"), want)
	}
	if got := e.fail1(422, "confirmnetwork", "revision=999"); !strings.Contains(got, "revision: network revision 999") {
		t.Errorf("confirm of another revision: %q", got)
	}
	e.ok1("confirmnetwork", "revision="+strconv.FormatUint(snap.Revision, 10))
	if !e.ctl.Network().Deadline.IsZero() {
		t.Errorf("still pending after confirmnetwork: %v", e.ctl.Network().Deadline)
	}
	if got := e.fail1(422, "confirmnetwork", ""); !strings.Contains(got, "no network change is waiting") {
		t.Errorf("confirm with nothing pending: %q", got)
	}
}

// FuzzNetworkParams feeds arbitrary interface keys, names, lists and
// ranges to the network commands' parsing: nothing panics, the order of
// names is a total order, lists hold no separators, VLAN names fit an
// interface name.
func FuzzNetworkParams(f *testing.F) {
	for _, s := range []string{"eth0", "0", " 1 ", "eth1.10", "10.0.1.0/28", "10.0.1.1-10.0.1.9", "a, b;c", "-1", "99999999999999999999", ""} {
		f.Add(s, "eth10", 10)
	}
	links := []netcfg.Link{{Name: "eth0"}, {Name: "eth1"}, {Name: "eth1.10", Kind: "vlan", Parent: "eth1", VLAN: 10}}
	list := listIfaces(links, &netcfg.Network{Interfaces: []netcfg.Interface{{Name: "eth2"}}})
	f.Fuzz(func(t *testing.T, a, b string, id int) {
		if x, y := naturalCmp(a, b), naturalCmp(b, a); x != -y {
			t.Fatalf("naturalCmp(%q, %q) = %d but the reverse is %d", a, b, x, y)
		}
		if naturalCmp(a, a) != 0 {
			t.Fatalf("naturalCmp(%q, itself) != 0", a)
		}
		if g := findIface(list, a); g != nil && g.name != strings.TrimSpace(a) && strconv.Itoa(g.id) != strings.TrimSpace(a) {
			if n, err := strconv.Atoi(strings.TrimSpace(a)); err != nil || n != g.id {
				t.Fatalf("findIface(%q) = %s (%d)", a, g.name, g.id)
			}
		}
		for _, v := range splitList(a) {
			if v == "" || strings.ContainsAny(v, " ,;\t") {
				t.Fatalf("splitList(%q) holds %q", a, v)
			}
		}
		if len(b) <= 15 && id >= 0 && id <= 4094 {
			if name := vlanName(b, id); len(name) > 15 {
				t.Fatalf("vlanName(%q, %d) = %q", b, id, name)
			}
		}
		_ = sameRange(a, b)
	})
}

// TestDefaultGWRoundTrip: a service's DefaultGW is stored, shown by showvs
// as it was set, changed by modvs and cleared by an empty value.
func TestDefaultGWRoundTrip(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.ok1("addvs", "vs=192.0.2.10&port=80&prot=tcp&DefaultGW=192.0.2.1")
	if got := e.ok1("showvs", "vs=1").at("Success", "Data").val("DefaultGW"); got != "192.0.2.1" {
		t.Errorf("showvs DefaultGW %q", got)
	}
	e.ok1("modvs", "vs=1&DefaultGW=192.0.2.2")
	if v := e.ctl.Current().Config.VirtualServiceByID(1); v == nil || v.DefaultGateway != "192.0.2.2" {
		t.Fatalf("after modvs: %+v", v)
	}
	j := e.ok2("showvs", map[string]any{"vs": 1})
	if got := j.get("DefaultGW"); got == nil || got.s != "192.0.2.2" {
		t.Errorf("v2 showvs DefaultGW %+v", got)
	}
	e.ok1("modvs", "vs=1&DefaultGW=")
	if v := e.ctl.Current().Config.VirtualServiceByID(1); v.DefaultGateway != "" {
		t.Errorf("DefaultGW not cleared: %q", v.DefaultGateway)
	}
	if got := e.fail1(422, "modvs", "vs=1&DefaultGW=nonsense"); !strings.Contains(got, "DefaultGW") {
		t.Errorf("bad DefaultGW: %q", got)
	}
}

// TestNetworkCutOffRolledBack, with the API served inside the test's
// namespace on eth0's address: a change that keeps that address is
// confirmed at once; one that removes it cuts the caller off, so it is
// pending, and when its window ends the old settings come back and the
// API answers on the old address again.
func TestNetworkCutOffRolledBack(t *testing.T) {
	e := newEnv(t, envOpts{managed: true, adminIn: "10.0.0.5/24"})
	if !strings.HasPrefix(e.kemp.adminAddr, "10.0.0.5:") {
		t.Fatalf("admin listener %q", e.kemp.adminAddr)
	}
	e.ok1("set", "param=dns1&value=10.0.0.53")
	s := e.ctl.Network()
	if !s.Deadline.IsZero() {
		t.Fatalf("a change keeping the admin address is pending: %+v", s)
	}
	rev := s.Revision

	// The caller is cut off: the answer is lost (or, if it arrives, says
	// the change waits for confirmation).
	r, err := http.NewRequest(http.MethodGet, e.srv.URL+"/access/modiface?interface=0&addr=10.0.9.6/24", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.SetBasicAuth("bal", balPW)
	if res, err := e.srv.Client().Do(r); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), "<Confirmed>N</Confirmed>") {
			t.Errorf("answer of the cutting change: %s", b)
		}
	} else {
		t.Logf("the cutting change's answer was lost, as expected: %v", err)
	}
	s = e.ctl.Network()
	if s.Revision != rev+1 || s.Deadline.IsZero() || s.Network.Interface("eth0").Addresses[0] != "10.0.9.6/24" {
		t.Fatalf("after the cutting change: revision %d (was %d), deadline %v", s.Revision, rev, s.Deadline)
	}
	if out := e.ns.IP("-o", "addr", "show", "dev", "eth0"); strings.Contains(out, "10.0.0.5/") || !strings.Contains(out, "10.0.9.6/24") {
		t.Errorf("eth0 during the window: %s", out)
	}

	// Rolled back when the window ends.
	if !testkit.Within(30*time.Second, func() bool {
		s := e.ctl.Network()
		return s.Revision == rev+2 && s.Deadline.IsZero()
	}) {
		t.Fatalf("not rolled back: %+v", e.ctl.Network())
	}
	if out := e.ns.IP("-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.0.0.5/24") || strings.Contains(out, "10.0.9.6/") {
		t.Errorf("eth0 after the rollback: %s", out)
	}
	e.srv.Client().CloseIdleConnections()
	if got := e.ok1("showiface", "interface=0").at("Success", "Data", "Interface").val("IPAddress"); got != "10.0.0.5/24" {
		t.Errorf("after the rollback showiface says %q", got)
	}
}
