package netcfg

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

func twoArmed() *Network {
	return &Network{
		Interfaces: []Interface{
			{Name: "eth0", Addresses: []string{"192.0.2.10/24"}, VIPRanges: []string{"198.51.100.0/28"}},
			{Name: "eth1", Addresses: []string{"10.1.0.1/24"}},
		},
		Gateway: "192.0.2.1",
		Routes:  []Route{{Destination: "10.2.0.0/16", Gateway: "10.1.0.254"}},
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(n *Network)
		field string // "" = valid
		words string
	}{
		{"two-armed", func(*Network) {}, "", ""},
		{"overlapping subnets", func(n *Network) { n.Interfaces[1].Addresses = []string{"192.0.2.200/25"} }, "network.interfaces[1].addresses[0]", "overlaps 192.0.2.0/24"},
		{"gateway outside every subnet", func(n *Network) { n.Gateway = "203.0.113.1" }, "network.gateway", "no interface's subnet"},
		{"gateway of the wrong family", func(n *Network) { n.Gateway = "2001:db8::1" }, "network.gateway", "IPv4"},
		{"vlan 4095", func(n *Network) {
			n.Interfaces = append(n.Interfaces, Interface{Name: "eth1.4095", Parent: "eth1", VLAN: 4095})
		}, "network.interfaces[2].vlan", "1-4094"},
		{"vlan without parent", func(n *Network) { n.Interfaces[1].VLAN = 10 }, "network.interfaces[1].vlan", "parent"},
		{"mtu 20", func(n *Network) { n.Interfaces[0].MTU = 20 }, "network.interfaces[0].mtu", "576-9216"},
		{"address without prefix", func(n *Network) { n.Interfaces[0].Addresses = []string{"192.0.2.10"} }, "network.interfaces[0].addresses[0]", "prefix length"},
		{"loopback", func(n *Network) { n.Interfaces = append(n.Interfaces, Interface{Name: "lo"}) }, "network.interfaces[2].name", "loopback"},
		{"duplicate name", func(n *Network) { n.Interfaces[1].Name = "eth0" }, "network.interfaces[1].name", "also interfaces[0]"},
		{"bad range", func(n *Network) { n.Interfaces[0].VIPRanges = []string{"198.51.100.20-198.51.100.10"} }, "network.interfaces[0].vipRanges[0]", "ends before"},
		{"route gateway outside", func(n *Network) { n.Routes[0].Gateway = "172.16.0.1" }, "network.routes[0].gateway", "no interface's subnet"},
		{"default as route", func(n *Network) { n.Routes[0].Destination = "0.0.0.0/0" }, "network.routes[0].destination", "gateway or gateway6"},
		{"dns", func(n *Network) { n.DNS.Servers = []string{"1.1.1.1", "dns.example"} }, "network.dns.servers[1]", "IP address"},
		{"hostname", func(n *Network) { n.Hostname = "bad name" }, "network.hostname", "host name"},
		{"confirm", func(n *Network) { n.ConfirmSeconds = 1 }, "network.confirmSeconds", "5-3600"},
		{"admin address", func(n *Network) { n.AdminAddress = "10.1.0.1" }, "network.adminAddress", "port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := twoArmed()
			c.edit(n)
			err := n.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("valid settings refused: %v", err)
				}
				return
			}
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("want config.Errors naming %s, got %v", c.field, err)
			}
			for _, e := range es {
				if e.Path == c.field && strings.Contains(e.Message, c.words) {
					return
				}
			}
			t.Fatalf("want %s: …%s…, got %v", c.field, c.words, err)
		})
	}
}

func TestParseRange(t *testing.T) {
	r, err := ParseRange("198.51.100.0/28")
	if err != nil || r.From != netip.MustParseAddr("198.51.100.0") || r.To != netip.MustParseAddr("198.51.100.15") {
		t.Fatalf("prefix: %v %v", r, err)
	}
	r, err = ParseRange("2001:db8::10-2001:db8::20")
	if err != nil || !r.Contains(netip.MustParseAddr("2001:db8::1f")) || r.Contains(netip.MustParseAddr("2001:db8::21")) {
		t.Fatalf("range: %v %v", r, err)
	}
	if _, err := ParseRange("10.0.0.1-2001:db8::1"); err == nil {
		t.Fatal("mixed families accepted")
	}
}

func service(id int, addr, gw string, rs ...string) config.VirtualService {
	vs := config.VirtualService{ID: id, Address: addr, Port: 80, Protocol: "tcp", Enabled: config.Bool(true), DefaultGateway: gw}
	for _, a := range rs {
		vs.RealServers = append(vs.RealServers, config.RealServer{Address: a, Port: 8080})
	}
	return vs
}

func TestMake(t *testing.T) {
	n := twoArmed()
	cfg := &config.Config{Options: config.Options{SNAT: true}, VirtualServices: []config.VirtualService{
		service(1, "192.0.2.50", "", "10.1.0.20", "10.1.0.21"),
		service(2, "198.51.100.5", "10.1.0.254", "10.1.0.20"),
		service(3, "192.0.2.10", "10.1.0.254", "10.1.0.22"), // the interface's own address: not added
		service(4, "127.0.0.5", "", "127.0.0.6"),
		service(5, "192.0.2.10", "", "10.1.0.1"), // the farm-side address of this host: no SNAT rule
	}}
	cfg.VirtualServices[0].Transparent = config.Bool(true)
	p, err := Make(n, cfg, Caps{Managed: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []VIP{{netip.MustParseAddr("192.0.2.50"), "eth0"}, {netip.MustParseAddr("198.51.100.5"), "eth0"}}
	if len(p.VIPs) != 2 || p.VIPs[0] != want[0] || p.VIPs[1] != want[1] {
		t.Errorf("VIPs %v, want %v", p.VIPs, want)
	}
	if len(p.Gateways) != 1 || p.Gateways[0].Interface != "eth1" || len(p.Gateways[0].Sources) != 2 {
		t.Errorf("gateways %+v", p.Gateways)
	}
	if s := p.Service(2); s.Mark != GatewayMarkBase || s.Transparent {
		t.Errorf("service 2: %+v", s)
	}
	if s := p.Service(1); !s.Transparent || !p.Transparent {
		t.Errorf("service 1 not transparent: %+v", s)
	}
	if len(p.SNAT) != 3 || p.SNAT[0].To != netip.MustParseAddr("192.0.2.50") {
		t.Errorf("SNAT %+v", p.SNAT)
	}

	// Unmanaged: nothing for the host, a note on each service that needs it.
	u, err := Make(n, cfg, Caps{Reason: "Fulcrum runs without CAP_NET_ADMIN"})
	if err != nil {
		t.Fatal(err)
	}
	if len(u.VIPs)+len(u.Gateways)+len(u.SNAT) != 0 || u.Transparent {
		t.Errorf("unmanaged plan changes the host: %+v", u)
	}
	if notes := strings.Join(u.Service(2).Notes, "; "); !strings.Contains(notes, "not applied: default gateway 10.1.0.254: Fulcrum runs without CAP_NET_ADMIN") {
		t.Errorf("service 2 notes: %s", notes)
	}
	if notes := strings.Join(u.Service(1).Notes, "; "); !strings.Contains(notes, "not applied: transparency") {
		t.Errorf("service 1 notes: %s", notes)
	}
}

func TestMakeRefuses(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(n *Network, cfg *config.Config)
		field string
	}{
		{"gateway outside", func(_ *Network, cfg *config.Config) { cfg.VirtualServices[0].DefaultGateway = "172.16.0.1" }, "virtualServices[id=1].defaultGateway"},
		{"VIP outside ranges", func(n *Network, cfg *config.Config) {
			n.EnforceVIPRanges = true
			cfg.VirtualServices[0].Address = "203.0.113.9"
		}, "virtualServices[id=1].address"},
		{"transparent one-armed", func(_ *Network, cfg *config.Config) {
			cfg.VirtualServices[0].Transparent = config.Bool(true)
			cfg.VirtualServices[0].RealServers[0].Address = "192.0.2.77"
		}, "virtualServices[id=1].transparent"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := twoArmed()
			cfg := &config.Config{VirtualServices: []config.VirtualService{service(1, "192.0.2.50", "", "10.1.0.20")}}
			c.edit(n, cfg)
			_, err := Make(n, cfg, Caps{Managed: true})
			var es config.Errors
			if !errors.As(err, &es) || es[0].Path != c.field {
				t.Fatalf("want an error naming %s, got %v", c.field, err)
			}
		})
	}
}

// TestDiff lists the changed settings by path, names interfaces and
// routes by name and destination, and shows a list of values whole.
func TestDiff(t *testing.T) {
	a := &Network{
		Hostname:   "lb1",
		Interfaces: []Interface{{Name: "eth0", Addresses: []string{"10.0.0.5/24"}}, {Name: "eth1", MTU: 1500}},
		Routes:     []Route{{Destination: "10.20.0.0/16", Gateway: "10.0.0.1"}},
	}
	b := a.Clone()
	b.Hostname = "lb2"
	b.Interfaces = append([]Interface{{Name: "eth0.10", Parent: "eth0", VLAN: 10}}, b.Interfaces...)
	b.Interfaces[1].Addresses = []string{"10.0.0.5/24", "10.0.0.6/24"}
	b.Interfaces[2].MTU = 0
	b.Routes[0].Gateway = "10.0.0.2"
	b.KeepOnStop = true
	tests := []struct {
		name string
		a, b *Network
		want []string
	}{
		{"equal", a, a.Clone(), nil},
		{"nil and empty", nil, &Network{}, nil},
		{"changes", a, b, []string{
			`~ hostname: "lb1" -> "lb2"`,
			`+ interfaces[name=eth0.10].name: "eth0.10"`,
			`+ interfaces[name=eth0.10].parent: "eth0"`,
			`+ interfaces[name=eth0.10].vlan: 10`,
			`~ interfaces[name=eth0].addresses: ["10.0.0.5/24"] -> ["10.0.0.5/24","10.0.0.6/24"]`,
			`- interfaces[name=eth1].mtu: 1500`,
			`+ keepOnStop: true`,
			`~ routes[destination=10.20.0.0/16].gateway: "10.0.0.1" -> "10.0.0.2"`,
		}},
		{"from nothing", nil, &Network{Gateway: "10.0.0.1"}, []string{`+ gateway: "10.0.0.1"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range Diff(tc.a, tc.b) {
				got = append(got, d.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
