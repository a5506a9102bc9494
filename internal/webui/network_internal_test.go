package webui

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/hostnet"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
)

// testHost is a hostnet.Manager of a network namespace of the test's own
// holding eth0 (with its veth peer peer0), with its state and resolver
// files in a temporary directory. Tests never set the host name through
// it: that is the machine's (UTS), not the namespace's.
func testHost(t testing.TB) (*hostnet.Manager, *topo.NS) {
	t.Helper()
	topo.RequireRoot(t)
	ns := topo.NewNS(t, topo.Prefix(), "wui")
	topo.Veth(t, ns, "eth0", ns, "peer0")
	dir := t.TempDir()
	m, err := hostnet.New(hostnet.Options{NetNS: ns.Handle, StateFile: filepath.Join(dir, "network-state.json"),
		ResolvConf: filepath.Join(dir, "resolv.conf"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

// fieldErr returns the error text shown beside the input with the id.
func fieldErr(body, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `-err">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// netRev is the current network revision as a form value.
func (ts *testServer) netRev() string { return strconv.FormatUint(ts.ctl.Network().Revision, 10) }

func (ts *testServer) net() *netcfg.Network {
	if n := ts.ctl.Network().Network; n != nil {
		return n
	}
	return &netcfg.Network{}
}

const bannerText = "will be rolled back in"

func TestNetworkPage(t *testing.T) {
	host, ns := testHost(t)
	ts := newTestServerWith(t, host)
	vlans := vlanSupport(t, ns)
	if _, err := ts.ctl.ApplyNetwork(control.NetChange{Actor: control.Actor{User: "bal", Source: control.SourceCLI}, Confirmed: true,
		Mutate: func(n *netcfg.Network) error {
			n.Interfaces = []netcfg.Interface{{Name: "eth0", Addresses: []string{"10.0.0.5/24"}}}
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	w := ts.get("bal", "/network")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="form-if-eth0"`) || strings.Contains(w.Body.String(), bannerText) {
		t.Fatalf("GET /network: %d %.300s", w.Code, w.Body)
	}

	// Bad input: the error is beside its field, with the path's words, and
	// nothing is stored.
	rev := ts.ctl.Network().Revision
	for _, tc := range []struct {
		path   string
		form   url.Values
		id     string
		want   string
		status int
	}{
		{"/network/iface/eth0", url.Values{"addresses": {"10.0.0.5/24"}, "mtu": {"20"}}, "f-if-eth0-mtu", "must be 576-9216", 422},
		{"/network/iface/eth0", url.Values{"addresses": {"10.0.0.5/24"}, "mtu": {"big"}}, "f-if-eth0-mtu", "must be a whole number", 422},
		{"/network/iface/eth0", url.Values{"addresses": {"10.0.0.5"}}, "f-if-eth0-addresses", "must be an address with prefix length", 422},
		{"/network/iface/eth0", url.Values{"addresses": {"10.0.0.5/24"}, "vipRanges": {"10.0.1.20-10.0.1.10"}}, "f-if-eth0-vipRanges", "ends before it starts", 422},
		{"/network/vlan", url.Values{"parent": {"eth0"}, "vlan": {"4095"}}, "f-vlan-vlan", "must be 1-4094", 422},
		{"/network/vlan", url.Values{"vlan": {"10"}}, "f-vlan-parent", "is required", 422},
		{"/network/routes", url.Values{"destination": {"10.20.0.0/16"}, "gateway": {"192.0.2.1"}}, "f-route-gateway", "lies in no interface&#39;s subnet", 422},
		{"/network/routes", url.Values{"destination": {"nonsense"}, "gateway": {"10.0.0.1"}}, "f-route-destination", "must be a prefix", 422},
		{"/network", url.Values{"gateway": {"192.0.2.1"}}, "f-main-gateway", "lies in no interface&#39;s subnet", 422},
		{"/network", url.Values{"hostname": {"bad_name"}}, "f-main-hostname", "must be a host name", 422},
		{"/network/iface/eth7", url.Values{"addresses": {"10.7.0.5/24"}}, "", `network.interfaces[1].name: the host&#39;s network refused it: no interface &#34;eth7&#34;`, 422},
		{"/network", url.Values{"confirmSeconds": {"2"}}, "f-main-confirmSeconds", "must be 5-3600", 422},
		{"/network", url.Values{"dns.servers": {"10.0.0.53 nonsense"}}, "f-main-dns-servers", "must be an IP address", 422},
	} {
		tc.form.Set("netrev", ts.netRev())
		w := ts.post("bal", tc.path, tc.form)
		if w.Code != tc.status {
			t.Errorf("POST %s %v: %d, want %d", tc.path, tc.form, w.Code, tc.status)
			continue
		}
		if tc.id == "" {
			if !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("POST %s %v: the page lacks %q: %s", tc.path, tc.form, tc.want, regexp.MustCompile(`(?s)<div class="errors" role="alert">.*?</div>`).FindString(w.Body.String()))
			}
			continue
		}
		if got := fieldErr(w.Body.String(), tc.id); !strings.Contains(got, tc.want) {
			t.Errorf("POST %s %v: error beside %s is %q, want %q", tc.path, tc.form, tc.id, got, tc.want)
		}
	}
	if got := ts.ctl.Network().Revision; got != rev {
		t.Fatalf("refused forms changed the network settings: revision %d, was %d", got, rev)
	}
	// A form of an older revision is refused.
	if w := ts.post("bal", "/network", url.Values{"hostname": {"lb1"}, "netrev": {"999"}}); w.Code != http.StatusConflict ||
		!strings.Contains(w.Body.String(), "changed since you opened this page") {
		t.Errorf("stale form: %d %.300s", w.Code, w.Body)
	}

	// A VIP range: saved pending, the banner on every page, confirmed.
	w = ts.post("bal", "/network/iface/eth0", url.Values{"addresses": {"10.0.0.5/24"}, "vipRanges": {"10.0.1.0/28\n10.0.2.10-10.0.2.20"},
		"netrev": {ts.netRev()}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("save VIP ranges: %d %.300s", w.Code, w.Body)
	}
	snap := ts.ctl.Network()
	if f := ts.net().Interface("eth0"); f == nil || !slices.Equal(f.VIPRanges, []string{"10.0.1.0/28", "10.0.2.10-10.0.2.20"}) {
		t.Fatalf("eth0 after save: %+v", f)
	}
	if snap.Deadline.IsZero() {
		t.Fatal("a change from the web UI is confirmed at once; want the confirm window")
	}
	if ch := snap.Change; ch.User != "bal" || ch.Source != control.SourceWUI {
		t.Errorf("network revision by %q through %q", ch.User, ch.Source)
	}
	want := "Network change (revision " + strconv.FormatUint(snap.Revision, 10) + ") will be rolled back in"
	for _, user := range []string{"bal", "readonly"} {
		for _, path := range []string{"/", "/vs", "/system", "/network"} {
			body := ts.get(user, path).Body.String()
			if !strings.Contains(body, want) {
				t.Errorf("%s GET %s: no banner %q", user, path, want)
			}
			if hasButton := strings.Contains(body, `id="net-confirm"`); hasButton != (user == "bal") {
				t.Errorf("%s GET %s: confirm button shown %v", user, path, hasButton)
			}
		}
	}
	if w := ts.post("readonly", "/network/confirm", url.Values{"revision": {strconv.FormatUint(snap.Revision, 10)}}); w.Code != http.StatusForbidden {
		t.Errorf("read-only confirm: %d", w.Code)
	}
	w = ts.post("bal", "/network/confirm", url.Values{"revision": {strconv.FormatUint(snap.Revision, 10)}, "back": {"/vs"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/vs" {
		t.Fatalf("confirm: %d %q", w.Code, w.Header().Get("Location"))
	}
	if !ts.ctl.Network().Deadline.IsZero() {
		t.Fatal("still pending after the confirmation")
	}
	if body := ts.get("bal", "/vs").Body.String(); strings.Contains(body, bannerText) || !strings.Contains(body, "confirmed: it stays") {
		t.Errorf("after confirming: banner still shown, or no confirmation message")
	}

	if out := ns.IP("-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.0.0.5/24") {
		t.Errorf("eth0 in the kernel: %s", out)
	}

	// A VLAN child where the kernel has 802.1Q; otherwise the host's
	// refusal beside the VLAN ID, and nothing stored.
	rev = ts.ctl.Network().Revision
	w = ts.post("bal", "/network/vlan", url.Values{"parent": {"eth0"}, "vlan": {"10"}, "netrev": {ts.netRev()}})
	if vlans {
		if w.Code != http.StatusSeeOther {
			t.Fatalf("add VLAN: %d %.300s", w.Code, w.Body)
		}
		if w := ts.post("bal", "/network/iface/eth0.10", url.Values{"addresses": {"10.10.0.5/24"}, "mtu": {"1400"}, "netrev": {ts.netRev()}}); w.Code != http.StatusSeeOther {
			t.Fatalf("VLAN address: %d %.300s", w.Code, w.Body)
		}
		if v := ts.net().Interface("eth0.10"); v == nil || v.Parent != "eth0" || v.VLAN != 10 || v.MTU != 1400 {
			t.Errorf("VLAN child: %+v", v)
		}
		if body := ts.get("bal", "/network").Body.String(); !strings.Contains(body, `id="form-if-eth0-10"`) || !strings.Contains(body, "VLAN 10 on eth0") {
			t.Error("the network page lacks the VLAN child")
		}
		if w := ts.post("bal", "/network/iface/eth0.10/delete", url.Values{"netrev": {ts.netRev()}}); w.Code != http.StatusOK ||
			!strings.Contains(w.Body.String(), "Delete VLAN interface eth0.10?") {
			t.Fatalf("delete VLAN without confirmation: %d", w.Code)
		}
		if w := ts.post("bal", "/network/iface/eth0.10/delete", url.Values{"netrev": {ts.netRev()}, "confirmed": {"yes"}}); w.Code != http.StatusSeeOther {
			t.Fatalf("delete VLAN: %d %.300s", w.Code, w.Body)
		}
	} else {
		if got := fieldErr(w.Body.String(), "f-vlan-vlan"); w.Code != http.StatusUnprocessableEntity ||
			!strings.Contains(got, "the host&#39;s network refused it: ") || !strings.Contains(got, "802.1Q") {
			t.Errorf("VLAN without kernel support: %d, beside the VLAN ID %q; want the host's refusal", w.Code, got)
		}
		if ts.ctl.Network().Revision != rev {
			t.Error("a VLAN the host refused was stored")
		}
	}
	if ts.net().Interface("eth0.10") != nil {
		t.Error("the VLAN child is still configured")
	}

	// A route and the main form; then the route deleted again.
	for _, step := range []struct {
		path string
		form url.Values
	}{
		{"/network/routes", url.Values{"destination": {"10.20.0.0/16"}, "gateway": {"10.0.0.254"}}},
		{"/network", url.Values{"dns.servers": {"10.0.0.53, 10.0.0.54"}, "dns.search": {"example.com"},
			"gateway": {"10.0.0.1"}, "enforceVipRanges": {"on"}, "confirmSeconds": {"30"}}},
	} {
		step.form.Set("netrev", ts.netRev())
		if w := ts.post("bal", step.path, step.form); w.Code != http.StatusSeeOther {
			t.Fatalf("POST %s: %d %.300s", step.path, w.Code, w.Body)
		}
	}
	n := ts.net()
	if !slices.Equal(n.DNS.Servers, []string{"10.0.0.53", "10.0.0.54"}) || n.Gateway != "10.0.0.1" ||
		!n.EnforceVIPRanges || n.KeepOnStop || n.ConfirmSeconds != 30 || len(n.Routes) != 1 {
		t.Errorf("network: %+v", n)
	}
	if out := ns.IP("route", "show"); !strings.Contains(out, "10.20.0.0/16 via 10.0.0.254") || !strings.Contains(out, "default via 10.0.0.1") {
		t.Errorf("routes in the kernel:\n%s", out)
	}
	body := ts.get("bal", "/network").Body.String()
	for _, s := range []string{"10.20.0.0/16", `value="10.0.0.53 10.0.0.54"`, `<tr data-iface="peer0">`} {
		if !strings.Contains(body, s) {
			t.Errorf("network page lacks %q", s)
		}
	}
	if w := ts.post("bal", "/network/routes/delete", url.Values{"destination": {"10.20.0.0/16"}, "netrev": {ts.netRev()}}); w.Code != http.StatusSeeOther {
		t.Fatalf("delete route: %d", w.Code)
	}
	if n := ts.net(); len(n.Routes) != 0 {
		t.Errorf("after deleting: %+v", n.Routes)
	}
}

// TestNetworkPageUnmanaged: where Fulcrum does not manage the host's
// network, the page says why and a host setting is refused with it.
func TestNetworkPageUnmanaged(t *testing.T) {
	ts := newTestServer(t)
	body := ts.get("bal", "/network").Body.String()
	if !strings.Contains(body, `id="net-unmanaged"`) || !strings.Contains(body, `id="net-links-err"`) {
		t.Errorf("unmanaged page: %.500s", body)
	}
	w := ts.post("bal", "/network/iface/eth0", url.Values{"addresses": {"10.0.0.5/24"}, "netrev": {ts.netRev()}})
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "cannot be applied") {
		t.Errorf("unmanaged save: %d %s", w.Code, regexp.MustCompile(`(?s)<div class="errors" role="alert">.*?</div>`).FindString(w.Body.String()))
	}
	if ts.ctl.Network().Revision != 0 {
		t.Error("a refused change was stored")
	}
}

func TestNotApplied(t *testing.T) {
	for reason, want := range map[string][]string{
		"": nil,
		"bind 10.0.0.5:80: address not available":                                     nil,
		"not applied: default gateway 10.0.0.1: Fulcrum runs without CAP_NET_ADMIN":   {"not applied: default gateway 10.0.0.1: Fulcrum runs without CAP_NET_ADMIN"},
		"bind failed; not applied: SNAT: no host; not applied: transparency: no host": {"not applied: SNAT: no host", "not applied: transparency: no host"},
		"Down: no real server; layer 7 not applied: throughput cap":                   {"not applied: throughput cap"},
	} {
		if got := notApplied(reason); !slices.Equal(got, want) {
			t.Errorf("notApplied(%q) = %q, want %q", reason, got, want)
		}
	}
}

// NewTestHost is testHost for the browser tests (package webui_test).
func NewTestHost(t testing.TB) (control.Host, *topo.NS) { return testHost(t) }
