package control

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// all returns the entries written so far, one a line.
func (a *auditLog) all() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.entries, "\n")
}

var bob = Actor{User: "bob", Source: SourceAPI, RemoteAddr: "127.0.0.9", Method: "basic"}

func setNet(f func(n *netcfg.Network)) func(n *netcfg.Network) error {
	return func(n *netcfg.Network) error { f(n); return nil }
}

// TestNetworkUnmanaged: without a host, settings that change the host are
// refused (never stored unused), bad input names the field, and the
// settings of Fulcrum itself go through the write path.
func TestNetworkUnmanaged(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c, err := NewWith(st, nil, Options{Logger: quiet, Unmanaged: "--manage-network off"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if s := c.Network(); s.Revision != 0 || !s.Network.Empty() || s.Plan == nil || s.Plan.Managed || s.Plan.Reason != "--manage-network off" {
		t.Fatalf("start: %+v", s)
	}
	if _, err := c.Links(); !errors.Is(err, ErrUnmanaged) || !strings.Contains(err.Error(), "--manage-network off") {
		t.Errorf("Links unmanaged: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(n *netcfg.Network)
		path   string
	}{
		{"an address", func(n *netcfg.Network) {
			n.Interfaces = []netcfg.Interface{{Name: "eth0", Addresses: []string{"10.0.0.5/24"}}}
		}, "network"},
		{"a VLAN ID of 4095", func(n *netcfg.Network) {
			n.Interfaces = []netcfg.Interface{{Name: "eth0.9", Parent: "eth0", VLAN: 4095}}
		}, "network.interfaces[0].vlan"},
		{"an MTU of 20", func(n *netcfg.Network) { n.Interfaces = []netcfg.Interface{{Name: "eth0", MTU: 20}} }, "network.interfaces[0].mtu"},
		{"a confirm window of 2 s", func(n *netcfg.Network) { n.ConfirmSeconds = 2 }, "network.confirmSeconds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.ApplyNetwork(NetChange{Actor: bob, Mutate: setNet(tc.mutate)})
			var es config.Errors
			if !errors.As(err, &es) || es[0].Path != tc.path {
				t.Fatalf("error %v, want one naming %s", err, tc.path)
			}
			if c.Network().Revision != 0 {
				t.Fatal("a refused change was stored")
			}
		})
	}
	// A VIP outside every range when ranges are enforced: the setting
	// refuses the existing service, naming it.
	if _, err := c.Apply(Change{Actor: alice, Mutate: func(cfg *config.Config) error {
		cfg.VirtualServices = append(cfg.VirtualServices, config.VirtualService{Address: "192.0.2.80", Port: 80,
			RealServers: []config.RealServer{{Address: "10.1.0.3", Port: 80}}})
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.ApplyNetwork(NetChange{Actor: bob, Mutate: setNet(func(n *netcfg.Network) { n.EnforceVIPRanges = true })})
	var es config.Errors
	if !errors.As(err, &es) || es[0].Path != "virtualServices[id=1].address" {
		t.Fatalf("enforced VIP ranges with a VIP outside them: %v", err)
	}
	// Dry run: a diff, nothing stored.
	res, err := c.ApplyNetwork(NetChange{Actor: bob, DryRun: true, Mutate: setNet(func(n *netcfg.Network) { n.KeepOnStop = true })})
	if err != nil || res.Committed || len(res.Diff) != 1 || res.Diff[0].Path != "keepOnStop" || c.Network().Revision != 0 {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	// Confirmed at once.
	res, err = c.ApplyNetwork(NetChange{Actor: bob, Confirmed: true, Mutate: setNet(func(n *netcfg.Network) { n.KeepOnStop = true })})
	if err != nil || !res.Committed || res.Revision != 1 || !res.Deadline.IsZero() {
		t.Fatalf("confirmed change: %+v, %v", res, err)
	}
	// A stale base.
	var conflict *store.ConflictError
	if _, err := c.ApplyNetwork(NetChange{Base: 0, CheckBase: true, Actor: bob, Mutate: setNet(func(n *netcfg.Network) { n.KeepOnStop = false })}); !errors.As(err, &conflict) {
		t.Fatalf("stale base: %v", err)
	}
	h, err := c.NetworkHistory(0, 10)
	if err != nil || len(h) != 1 || h[0].Summary != "+ keepOnStop: true" || h[0].User != "bob" {
		t.Fatalf("history: %+v, %v", h, err)
	}
}

// TestNetworkConfirmWindow: an unconfirmed change is rolled back when its
// window ends, as a new revision by "system", audited; a confirmed one
// stays.
func TestNetworkConfirmWindow(t *testing.T) {
	c, st := newController(t)
	t.Cleanup(c.Close)
	audit := &auditLog{}
	c.SetAuditor(audit)
	// Revision 1: a 5 s window, confirmed at once.
	if _, err := c.ApplyNetwork(NetChange{Actor: bob, Confirmed: true, Mutate: setNet(func(n *netcfg.Network) { n.ConfirmSeconds = 5 })}); err != nil {
		t.Fatal(err)
	}
	// Revision 2, unconfirmed: rolled back after 5 s.
	res, err := c.ApplyNetwork(NetChange{Actor: bob, Mutate: setNet(func(n *netcfg.Network) { n.AdminAddress = "10.0.0.5:8443" })})
	if err != nil || res.Revision != 2 || res.Deadline.IsZero() {
		t.Fatalf("unconfirmed change: %+v, %v", res, err)
	}
	if d := time.Until(res.Deadline); d < 4*time.Second || d > 6*time.Second {
		t.Errorf("deadline in %v, want 5 s", d)
	}
	if s := c.Network(); s.Revision != 2 || s.Deadline != res.Deadline || s.Network.AdminAddress != "10.0.0.5:8443" {
		t.Fatalf("pending: %+v", s)
	}
	if cur, _ := st.NetworkCurrent(); cur.Confirmed {
		t.Fatal("the pending revision is stored confirmed")
	}
	if err := c.ConfirmNetwork(1, bob); err == nil {
		t.Error("confirming revision 1 while 2 is pending succeeded")
	}
	rolledBack := waitFor(t, 15*time.Second, func() bool { return c.Network().Revision == 3 })
	if !rolledBack {
		t.Fatalf("not rolled back: %+v", c.Network())
	}
	s := c.Network()
	if s.Network.AdminAddress != "" || !s.Deadline.IsZero() || s.Change.Source != SourceSystem ||
		s.Change.Summary != "rolled back: revision 2 was not confirmed within 5 s" {
		t.Fatalf("after the rollback: %+v", s)
	}
	if cur, _ := st.NetworkCurrent(); !cur.Confirmed || cur.Revision != 3 {
		t.Fatalf("stored: %+v", cur)
	}
	if a := audit.all(); !strings.Contains(a, "system/system/ network-rollback network revision 2 was not confirmed within 5 s") ||
		!strings.Contains(a, "bob/basic/127.0.0.9 network network revision 2: + adminAddress") {
		t.Errorf("audit log:\n%s", a)
	}

	// Revision 4, confirmed within its window: it stays.
	res, err = c.ApplyNetwork(NetChange{Actor: bob, Mutate: setNet(func(n *netcfg.Network) { n.AdminAddress = "10.0.0.6:8443" })})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ConfirmNetwork(res.Revision, bob); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfirmNetwork(res.Revision, bob); err != nil {
		t.Errorf("confirming twice: %v", err)
	}
	time.Sleep(6 * time.Second)
	if s := c.Network(); s.Revision != 4 || s.Network.AdminAddress != "10.0.0.6:8443" || !s.Deadline.IsZero() {
		t.Fatalf("a confirmed change did not stay: %+v", s)
	}
	if a := audit.all(); !strings.Contains(a, "bob/basic/127.0.0.9 network-confirm network revision 4 confirmed") {
		t.Errorf("audit log:\n%s", a)
	}
}

// TestNetworkRollbackAtStart: a revision left unconfirmed by a stop inside
// its window is rolled back when the controller starts, before anything
// is applied.
func TestNetworkRollbackAtStart(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.CommitNetwork(0, store.Change{User: "bob", Source: "api"}, &netcfg.Network{KeepOnStop: true}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CommitNetwork(1, store.Change{User: "bob", Source: "api"}, &netcfg.Network{AdminAddress: "10.9.9.9:443"}, false); err != nil {
		t.Fatal(err)
	}
	c, err := New(st, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s := c.Network()
	if s.Revision != 3 || !s.Network.KeepOnStop || s.Network.AdminAddress != "" || !s.Deadline.IsZero() ||
		!strings.HasPrefix(s.Change.Summary, "rolled back: revision 2 was not confirmed within 60 s") {
		t.Fatalf("after start: %+v", s)
	}
	if cur, err := st.NetworkCurrent(); err != nil || !cur.Confirmed {
		t.Fatalf("stored: %+v, %v", cur, err)
	}
	// A second start changes nothing.
	if rolled, err := RollBackUnconfirmedNetwork(st, quiet); rolled || err != nil {
		t.Fatalf("second rollback: %v, %v", rolled, err)
	}
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}
