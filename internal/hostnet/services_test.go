package hostnet

import (
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
	"github.com/google/nftables"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ndp"
	"golang.org/x/sys/unix"
)

// announcements collects the gratuitous ARP and unsolicited neighbour
// advertisements arriving at ns's eth0 until stop.
type announcements struct {
	mu   sync.Mutex
	seen map[string]string // VIP → MAC announced
	wg   sync.WaitGroup
}

func listenAnnouncements(t *testing.T, ns *topo.NS) *announcements {
	a := &announcements{seen: map[string]string{}}
	var ac *arp.Client
	var nc *ndp.Conn
	err := ns.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if ac, err = arp.Dial(ifi); err != nil {
			return err
		}
		nc, _, err = ndp.Listen(ifi, ndp.LinkLocal)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	_ = ac.SetReadDeadline(deadline)
	_ = nc.SetReadDeadline(deadline)
	a.wg.Go(func() {
		for {
			p, _, err := ac.Read()
			if err != nil {
				return
			}
			if p.Operation == arp.OperationRequest && p.SenderIP == p.TargetIP {
				a.mu.Lock()
				a.seen[p.SenderIP.String()] = p.SenderHardwareAddr.String()
				a.mu.Unlock()
			}
		}
	})
	a.wg.Go(func() {
		for {
			m, _, _, err := nc.ReadFrom()
			if err != nil {
				return
			}
			if na, ok := m.(*ndp.NeighborAdvertisement); ok && na.Override && !na.Solicited {
				for _, o := range na.Options {
					if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Target {
						a.mu.Lock()
						a.seen[na.TargetAddress.String()] = l.Addr.String()
						a.mu.Unlock()
					}
				}
			}
		}
	})
	stop := func() { _ = ac.Close(); _ = nc.Close(); a.wg.Wait() }
	t.Cleanup(stop)
	return a
}

func (a *announcements) mac(vip string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[vip]
}

// TestVIP: a VIP in eth0's subnet (IPv4 and IPv6) is added while a
// service uses it, announced to the peer with gratuitous ARP / an
// unsolicited neighbour advertisement carrying eth0's MAC, reached by the
// client, and removed when no service uses it.
func TestVIP(t *testing.T) {
	tp := topo.New(t)
	tp.Client.IP("addr", "add", "2001:db8:1::100/64", "dev", "eth0")
	f := tp.Fulcrum
	n := twoArmed()
	n.Interfaces[0].Addresses = append(n.Interfaces[0].Addresses, "2001:db8:1::1/64")
	m := manager(t, f, "")
	apply(t, m, plan(t, n, false))
	ann := listenAnnouncements(t, tp.Client)
	apply(t, m, plan(t, n, false, service(1, "192.0.2.50"), service(2, "2001:db8:1::50"), service(3, "192.0.2.50")))
	mac := ipOut(f, "-br", "link", "show", "eth0")
	for _, vip := range []string{"192.0.2.50", "2001:db8:1::50"} {
		ok := false
		for i := 0; i < 100 && !ok; i++ {
			if got := ann.mac(vip); got != "" {
				if !strings.Contains(mac, got) {
					t.Errorf("%s announced with %s, eth0 is %s", vip, got, mac)
				}
				ok = true
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !ok {
			t.Errorf("no announcement of %s seen by the peer", vip)
		}
	}
	addr := ipOut(f, "addr", "show", "eth0")
	if !strings.Contains(addr, "192.0.2.50/32") || !strings.Contains(addr, "2001:db8:1::50/128") || strings.Contains(addr, "tentative") {
		t.Errorf("VIPs on eth0:\n%s", addr)
	}
	serve(t, f.Listen("tcp", "192.0.2.50:80"))
	if got, err := peerSeen(tp.Client, &net.Dialer{}, "192.0.2.50:80"); err != nil || got != topo.ClientAddr {
		t.Errorf("client to the VIP: %q %v", got, err)
	}
	apply(t, m, plan(t, n, false, service(2, "2001:db8:1::50")))
	addr = ipOut(f, "addr", "show", "eth0")
	if strings.Contains(addr, "192.0.2.50") || !strings.Contains(addr, "2001:db8:1::50/128") {
		t.Errorf("after the IPv4 services went:\n%s", addr)
	}
	if _, err := peerSeen(tp.Client, &net.Dialer{}, "192.0.2.50:80"); err == nil {
		t.Error("the unused VIP still answers")
	}
}

// markDialer is a dialer whose socket carries mark (SO_MARK), from local
// (may be nil).
func markDialer(mark uint32, local net.Addr) *net.Dialer {
	return &net.Dialer{LocalAddr: local, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark)) })
		if err != nil {
			return err
		}
		return serr
	}}
}

// TestPerServiceGateway: an internal service's traffic (from its VIP, or
// marked with its gateway's mark) reaches the internal subnet only
// through its own gateway, while the global default gateway knows
// nothing of it; without the per-service gateway it fails.
func TestPerServiceGateway(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	m := manager(t, f, "")
	serve(t, tp.Internal.Listen("tcp", topo.InternalAddr+":7000"))
	vs := service(7, "192.0.2.50", topo.FarmAddrs[0])
	vs.DefaultGateway = topo.IGWAddr
	p := plan(t, twoArmed(), false, vs)
	mark := p.Service(7).Mark
	if mark == 0 || len(p.Gateways) != 1 {
		t.Fatalf("plan %+v", p)
	}
	apply(t, m, p)
	vip := &net.TCPAddr{IP: net.ParseIP("192.0.2.50")}
	cases := []struct {
		name string
		d    func() *net.Dialer
		seen string
	}{
		{"from the VIP", func() *net.Dialer { return &net.Dialer{LocalAddr: vip} }, "192.0.2.50"},
		{"marked", func() *net.Dialer { return markDialer(mark, nil) }, topo.FulcrumEth0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, err := peerSeen(f, c.d(), topo.InternalAddr+":7000"); err != nil || got != c.seen {
				t.Errorf("through the service's gateway: %q %v", got, err)
			}
		})
	}
	if _, err := peerSeen(f, &net.Dialer{}, topo.InternalAddr+":7000"); err == nil {
		t.Error("unmarked traffic from eth0's address reached the internal subnet through the global gateway")
	}
	rules := ipOut(f, "rule")
	for _, r := range []string{
		"4610:\tfrom 192.0.2.50 lookup main suppress_prefixlength 0 proto 245",
		"4620:\tfrom 192.0.2.50 lookup 4600 proto 245",
		"4610:\tfrom all fwmark 0x46520100 lookup main suppress_prefixlength 0 proto 245",
		"4620:\tfrom all fwmark 0x46520100 lookup 4600 proto 245",
	} {
		if !strings.Contains(rules, r) {
			t.Errorf("rule %q missing:\n%s", r, rules)
		}
	}
	if r := ipOut(f, "route", "show", "table", "4600"); !strings.Contains(r, "default via 192.0.2.253 dev eth0 proto 245") {
		t.Errorf("table 4600: %s", r)
	}
	vs.DefaultGateway = ""
	apply(t, m, plan(t, twoArmed(), false, vs))
	for _, c := range cases {
		if _, err := peerSeen(f, c.d(), topo.InternalAddr+":7000"); err == nil {
			t.Errorf("%s: reached the internal subnet without the per-service gateway", c.name)
		}
	}
	if r := ipOut(f, "rule"); strings.Contains(r, "proto 245") {
		t.Errorf("rules left:\n%s", r)
	}
}

// TestSNAT: with SNAT on, a real server's own connection to an outside
// host leaves through Fulcrum from the VIP's address; with it off it does
// not, and forwarding is back as it was.
func TestSNAT(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	m := manager(t, f, "")
	serve(t, tp.Outside.Listen("tcp", topo.OutsideAddr+":7000"))
	vs := service(3, "192.0.2.60", topo.FarmAddrs[0])
	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(topo.FarmAddrs[0])}}
	fwd := f.ReadSysctl("net.ipv4.ip_forward")
	for _, snat := range []bool{true, false, true} {
		apply(t, m, plan(t, twoArmed(), snat, vs))
		got, err := peerSeen(tp.Farm, from, topo.OutsideAddr+":7000")
		switch {
		case snat && (err != nil || got != "192.0.2.60"):
			t.Errorf("SNAT on: the outside host saw %q (%v), want the VIP", got, err)
		case !snat && err == nil && got == "192.0.2.60":
			t.Errorf("SNAT off: the outside host saw the VIP")
		case !snat && f.ReadSysctl("net.ipv4.ip_forward") != fwd:
			t.Errorf("SNAT off: ip_forward is %s, was %s", f.ReadSysctl("net.ipv4.ip_forward"), fwd)
		case snat && f.ReadSysctl("net.ipv4.ip_forward") != "1":
			t.Error("SNAT on: ip_forward is not 1")
		}
	}
	if rs := nftRuleset(t, f); !strings.Contains(rs, "chain 1 fulcrum postrouting: 1 rules") {
		t.Errorf("nftables:\n%s", rs)
	}
}

// TestTransparent: the nftables table and rules exist, and a transparent
// socket bound to the client's address connects to a real server whose
// way back to the client goes through Fulcrum: the server sees the
// client's address. Without transparency the same connection fails.
func TestTransparent(t *testing.T) {
	tp := topo.New(t)
	f := tp.Fulcrum
	m := manager(t, f, "")
	serve(t, tp.Farm.Listen("tcp", topo.FarmAddrs[0]+":7000"))
	vs := service(9, "192.0.2.70", topo.FarmAddrs[0])
	vs.Transparent = config.Bool(true)
	p := plan(t, twoArmed(), false, vs)
	if !p.Transparent || !p.Service(9).Transparent {
		t.Fatalf("plan %+v", p)
	}
	apply(t, m, p)
	client := func() *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(topo.ClientAddr)}, Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1) })
			if err != nil {
				return err
			}
			return serr
		}}
	}
	if got, err := peerSeen(f, client(), topo.FarmAddrs[0]+":7000"); err != nil || got != topo.ClientAddr {
		t.Errorf("transparent connection: the server saw %q (%v), want the client", got, err)
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := chains(c)
	if err != nil || len(cs) != 1 || cs[0].Name != "prerouting" || *cs[0].Priority != *nftables.ChainPriorityMangle || cs[0].Type != nftables.ChainTypeFilter {
		t.Fatalf("chains %+v %v", cs, err)
	}
	if rules, err := c.GetRules(fulcrumTable, cs[0]); err != nil || len(rules) != 2 {
		t.Errorf("rules %d %v", len(rules), err)
	}
	if r := ipOut(f, "rule"); !strings.Contains(r, "4600:\tfrom all fwmark 0x465200ff lookup 4599 proto 245") {
		t.Errorf("rules:\n%s", r)
	}
	for _, fam := range []string{"-4", "-6"} {
		if r := ipOut(f, fam, "route", "show", "table", "4599"); !strings.Contains(r, "local default dev lo") {
			t.Errorf("table 4599 %s: %s", fam, r)
		}
	}
	vs.Transparent = config.Bool(false)
	apply(t, m, plan(t, twoArmed(), false, vs))
	if _, err := peerSeen(f, client(), topo.FarmAddrs[0]+":7000"); err == nil {
		t.Error("the transparent connection works without the interception")
	}
	if rs := nftRuleset(t, f); strings.Contains(rs, "fulcrum") {
		t.Errorf("the table is left:\n%s", rs)
	}
}
