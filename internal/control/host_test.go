package control

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/hostnet"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ Host = (*hostnet.Manager)(nil)

// hostEnv is a controller whose host is a hostnet.Manager of a network
// namespace with one veth interface, eth0.
type hostEnv struct {
	ns  *topo.NS
	st  *store.Store
	mgr *hostnet.Manager
	c   *Controller
}

func newHostEnv(t *testing.T) *hostEnv {
	t.Helper()
	topo.RequireRoot(t)
	prefix := topo.Prefix()
	ns := topo.NewNS(t, prefix, "fulcrum")
	peer := topo.NewNS(t, prefix, "peer")
	topo.Veth(t, ns, "eth0", peer, "eth0")
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := hostnet.New(hostnet.Options{Log: quiet, StateFile: filepath.Join(dir, "hostnet-state.json"), NetNS: ns.Handle,
		ResolvConf: filepath.Join(dir, "resolv.conf")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewWith(st, nil, Options{Host: mgr, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := mgr.Close(); err != nil {
			t.Errorf("hostnet Close: %v", err)
		}
		_ = st.Close()
	})
	return &hostEnv{ns: ns, st: st, mgr: mgr, c: c}
}

// addrs lists the namespace's addresses on eth0.
func (e *hostEnv) addrs() string { return e.ns.IP("-br", "addr", "show", "dev", "eth0") }

// TestHostInWritePath: with a managed host, a network change is applied
// to the host and stored; a VIP in a VIP range is added when a service
// uses it and removed when none does; a setting the host refuses names
// the field and leaves host and store as they were; an unconfirmed
// change is rolled back on the host too.
func TestHostInWritePath(t *testing.T) {
	e := newHostEnv(t)
	if s := e.c.Network(); s.Plan == nil || !s.Plan.Managed {
		t.Fatalf("plan at start: %+v", s.Plan)
	}
	links, err := e.c.Links()
	if err != nil || !strings.Contains(strings.Join(linkNames(links), ","), "eth0") {
		t.Fatalf("Links: %v, %v", linkNames(links), err)
	}

	// The host refuses an interface it does not have.
	_, err = e.c.ApplyNetwork(NetChange{Actor: bob, Confirmed: true, Mutate: setNet(func(n *netcfg.Network) {
		n.Interfaces = []netcfg.Interface{{Name: "eth0", Addresses: []string{"10.66.0.1/24"}}, {Name: "eth7", Addresses: []string{"10.67.0.1/24"}}}
	})})
	var hostErr *HostError
	if !errors.As(err, &hostErr) || !strings.Contains(err.Error(), "network.interfaces[1].name") {
		t.Fatalf("an interface the host lacks: %v", err)
	}
	if f := hostErr.Fields(); len(f) != 1 || f[0].Path != "network.interfaces[1].name" {
		t.Errorf("the host's field error: %+v", f)
	}
	if strings.Contains(e.addrs(), "10.66.0.1") || e.c.Network().Revision != 0 {
		t.Fatalf("a refused change was half applied: %s, revision %d", e.addrs(), e.c.Network().Revision)
	}

	// Revision 1, confirmed: an address and a VIP range.
	_, err = e.c.ApplyNetwork(NetChange{Actor: bob, Confirmed: true, Mutate: setNet(func(n *netcfg.Network) {
		n.ConfirmSeconds = 5
		n.Interfaces = []netcfg.Interface{{Name: "eth0", Addresses: []string{"10.66.0.1/24"}, VIPRanges: []string{"10.66.1.0/28"}}}
	})})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.addrs(), "10.66.0.1/24") {
		t.Fatalf("address not applied: %s", e.addrs())
	}
	// A service on a VIP of the range: the VIP goes on eth0, and leaves
	// with the service.
	res, err := e.c.Apply(Change{Actor: alice, Mutate: func(cfg *config.Config) error {
		cfg.VirtualServices = append(cfg.VirtualServices, config.VirtualService{Address: "10.66.1.5", Port: 80,
			RealServers: []config.RealServer{{Address: "10.66.0.20", Port: 80}}})
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.addrs(), "10.66.1.5/32") || len(e.c.Network().Plan.VIPs) != 1 {
		t.Fatalf("the VIP is not on eth0: %s; plan %+v", e.addrs(), e.c.Network().Plan.VIPs)
	}
	id := res.Snapshot.Config.VirtualServices[0].ID
	if _, err := e.c.Apply(Change{Actor: alice, Mutate: func(cfg *config.Config) error {
		cfg.VirtualServices = withoutVS(cfg.VirtualServices, id)
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.addrs(), "10.66.1.5") {
		t.Fatalf("the VIP stayed after its service was deleted: %s", e.addrs())
	}

	// Revision 2 moves the address, unconfirmed: rolled back on the host
	// after 5 s.
	_, err = e.c.ApplyNetwork(NetChange{Actor: bob, Mutate: setNet(func(n *netcfg.Network) {
		// The same subnet: removing the primary address takes the new,
		// secondary one with it unless the host re-applies it.
		n.Interfaces[0].Addresses = []string{"10.66.0.2/24"}
	})})
	if err != nil {
		t.Fatal(err)
	}
	if a := e.addrs(); !strings.Contains(a, "10.66.0.2/24") || strings.Contains(a, "10.66.0.1/24") {
		t.Fatalf("revision 2 not applied: %s", a)
	}
	if !waitFor(t, 15*time.Second, func() bool { return e.c.Network().Revision == 3 }) {
		t.Fatal("revision 2 was not rolled back")
	}
	if a := e.addrs(); strings.Contains(a, "10.66.0.2/24") || !strings.Contains(a, "10.66.0.1/24") {
		t.Fatalf("the host after the rollback: %s", a)
	}
	if h, err := e.st.NetworkHistory(0, 1); err != nil || h[0].Summary != "rolled back: revision 2 was not confirmed within 5 s" {
		t.Fatalf("history: %+v, %v", h, err)
	}
}

func linkNames(ls []netcfg.Link) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}

// withoutVS returns vss without the service with ID id.
func withoutVS(vss []config.VirtualService, id int) []config.VirtualService {
	var out []config.VirtualService
	for _, v := range vss {
		if v.ID != id {
			out = append(out, v)
		}
	}
	return out
}
