package netcfg

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Routing tables and packet marks Fulcrum uses for its policy routing.
// They are chosen away from the host's usual ones (main 254, local 255,
// default 253, and small numbers admins pick).
const (
	// GatewayTableBase is the routing table of the first per-service
	// gateway; the i-th distinct gateway uses GatewayTableBase+i.
	GatewayTableBase = 4600
	// GatewayMarkBase is the packet mark of the first per-service gateway;
	// the i-th uses GatewayMarkBase+i. Server-side sockets of a service
	// with a gateway carry its mark (SO_MARK).
	GatewayMarkBase uint32 = 0x46520100
	// TransparentTable is the table that delivers replies to transparent
	// server-side sockets locally (a "local" default route on lo).
	TransparentTable = 4599
	// TransparentMark marks packets that belong to a transparent
	// server-side socket (set by the nftables table, matched by a rule).
	TransparentMark uint32 = 0x465200FF
)

// Caps says whether this process manages the host's network.
type Caps struct {
	// Managed is true when Fulcrum applies plans to the host (package
	// hostnet, with CAP_NET_ADMIN).
	Managed bool
	// Reason says why not, when Managed is false, e.g. "Fulcrum runs
	// without CAP_NET_ADMIN".
	Reason string
}

// Plan is what one service configuration needs of the host under one
// Network: it is computed by Plan, applied by package hostnet and read by
// the data plane when it compiles the same configuration.
type Plan struct {
	// Managed and Reason are the Caps the plan was made with.
	Managed bool
	// Reason says why the host is not managed.
	Reason string
	// Network is the node's network settings the plan builds on; never
	// nil.
	Network *Network
	// VIPs are the service addresses Fulcrum adds to interfaces (and
	// announces) because they lie in an interface's subnet or VIP range
	// and are not the interface's own address; sorted, unique.
	VIPs []VIP
	// VIPServices holds, by address of VIPs, the IDs of the virtual
	// services using it, in order (for errors naming the field).
	VIPServices map[netip.Addr][]int
	// Gateways are the per-service default gateways, one routing table
	// and mark each, in order of their table.
	Gateways []Gateway
	// SNAT are the source-NAT rules of real servers' own outbound
	// connections (Options.SNAT); empty when SNAT is off.
	SNAT []SNATRule
	// Transparent is true when some service connects to its real servers
	// from its clients' addresses, so that replies must be intercepted.
	Transparent bool
	// Services holds, by virtual-service ID, what the data plane must do
	// for each service with a gateway or transparency, and the "not
	// applied" notes of each service.
	Services map[int]Service
}

// VIP is one address Fulcrum adds to an interface for services.
type VIP struct {
	// Addr is the address.
	Addr netip.Addr
	// Interface is the interface it goes on.
	Interface string
}

// Gateway is one per-service default gateway.
type Gateway struct {
	// Addr is the gateway's address.
	Addr netip.Addr
	// Interface is the interface whose subnet holds it ("" when the
	// network settings have no interfaces: the kernel finds it).
	Interface string
	// Table is the routing table holding the default route through Addr.
	Table int
	// Mark is the packet mark of the services' server-side sockets.
	Mark uint32
	// Sources are the VIPs of the services using this gateway: traffic
	// from them (replies to clients) is routed through it.
	Sources []netip.Addr
}

// SNATRule translates connections a real server opens through Fulcrum
// to a source address.
type SNATRule struct {
	// Server is the real server's address.
	Server netip.Addr
	// To is the address the connections leave from: the VIP of the first
	// service (by ID) using the server.
	To netip.Addr
}

// Service is what the data plane does for one virtual service.
type Service struct {
	// Mark is the SO_MARK of the service's server-side sockets; 0 none.
	Mark uint32
	// Transparent is true when server-side connections leave from the
	// client's address (IP_TRANSPARENT).
	Transparent bool
	// Notes are "not applied: …" sentences for the service's status.
	Notes []string
}

// Unmanaged returns the plan of a process that does not manage the host
// (tests, or Fulcrum without privileges) for cfg, or an error naming the
// field of a setting that contradicts the (empty) network settings.
func Unmanaged(cfg *config.Config, reason string) (*Plan, error) {
	return Make(nil, cfg, Caps{Reason: reason})
}

// Make works out what cfg needs of the host under n (nil means no
// network settings). Settings the host cannot do get a note in the
// service's Services entry; settings that cannot work at all are
// refused with config.Errors naming the field. n must have passed
// Validate.
func Make(n *Network, cfg *config.Config, caps Caps) (*Plan, error) {
	if n == nil {
		n = &Network{}
	}
	if caps.Reason == "" && !caps.Managed {
		caps.Reason = "Fulcrum does not manage this host's network"
	}
	p := &Plan{Managed: caps.Managed, Reason: caps.Reason, Network: n, Services: map[int]Service{}, VIPServices: map[netip.Addr][]int{}}
	var es config.Errors
	fail := func(vs *config.VirtualService, field, format string, args ...any) {
		es = append(es, config.FieldError{Path: fmt.Sprintf("virtualServices[id=%d].%s", vs.ID, field), Message: fmt.Sprintf(format, args...)})
	}
	note := func(vs *config.VirtualService, format string, args ...any) {
		s := p.Services[vs.ID]
		s.Notes = append(s.Notes, "not applied: "+fmt.Sprintf(format, args...))
		p.Services[vs.ID] = s
	}
	local := n.localAddrs()
	vips := map[netip.Addr]string{}
	gws := map[netip.Addr]int{} // → index in p.Gateways
	snat := map[netip.Addr]netip.Addr{}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if !config.IsTrue(vs.Enabled) {
			continue
		}
		vip, err := netip.ParseAddr(vs.Address)
		if err != nil {
			continue
		}
		vip = vip.Unmap()
		usable := !vip.IsUnspecified() && !vip.IsLoopback()
		var home *Interface // the VIP's interface
		if usable {
			home = n.InterfaceFor(vip)
			if home == nil {
				home = n.RangeInterface(vip)
			}
			switch {
			case home == nil && n.EnforceVIPRanges:
				fail(vs, "address", "%s lies in no interface's subnet or VIP range (%s; VIP ranges are enforced)", vip, n.subnetList())
			case home != nil && !local[vip]:
				vips[vip] = home.Name
				p.VIPServices[vip] = append(p.VIPServices[vip], vs.ID)
			}
		}
		if vs.DefaultGateway != "" {
			gw, err := netip.ParseAddr(vs.DefaultGateway)
			switch {
			case err != nil:
				// config.Validate reports it
			case len(n.Interfaces) > 0 && n.InterfaceFor(gw) == nil:
				fail(vs, "defaultGateway", "%s lies in no interface's subnet (%s)", gw, n.subnetList())
			case !p.Managed:
				note(vs, "default gateway %s: %s", gw, p.Reason)
			default:
				k, ok := gws[gw]
				if !ok {
					k = len(p.Gateways)
					gws[gw] = k
					g := Gateway{Addr: gw, Table: GatewayTableBase + k, Mark: GatewayMarkBase + uint32(k)}
					if f := n.InterfaceFor(gw); f != nil {
						g.Interface = f.Name
					}
					p.Gateways = append(p.Gateways, g)
				}
				g := &p.Gateways[k]
				if usable && vip.Is4() == gw.Is4() && !slices.Contains(g.Sources, vip) {
					g.Sources = append(g.Sources, vip)
				}
				s := p.Services[vs.ID]
				s.Mark = g.Mark
				p.Services[vs.ID] = s
			}
		}
		if cfg.Options.SNAT && usable {
			for _, rs := range vs.RealServers {
				a, err := netip.ParseAddr(rs.Address)
				if err != nil || a.IsLoopback() || a.Unmap().Is4() != vip.Is4() {
					continue
				}
				a = a.Unmap()
				if _, ok := snat[a]; !ok {
					snat[a] = vip
					p.SNAT = append(p.SNAT, SNATRule{Server: a, To: vip})
				}
			}
			if !p.Managed && len(vs.RealServers) > 0 {
				note(vs, "SNAT of the real servers' own connections: %s", p.Reason)
			}
		}
		if config.IsTrue(vs.Transparent) {
			p.transparent(n, vs, vip, home, local, fail, note)
		}
	}
	if !p.Managed {
		p.SNAT = nil
	}
	for a, f := range vips {
		p.VIPs = append(p.VIPs, VIP{Addr: a, Interface: f})
	}
	slices.SortFunc(p.VIPs, func(a, b VIP) int { return a.Addr.Compare(b.Addr) })
	if !p.Managed {
		p.VIPs = nil
		p.VIPServices = map[netip.Addr][]int{}
	}
	if len(es) > 0 {
		return nil, es
	}
	return p, nil
}

// transparent plans transparency for vs, whose VIP is vip on interface
// home (nil if none).
func (p *Plan) transparent(n *Network, vs *config.VirtualService, vip netip.Addr, home *Interface, local map[netip.Addr]bool,
	fail func(*config.VirtualService, string, string, ...any), note func(*config.VirtualService, string, ...any)) {
	for _, rs := range vs.RealServers {
		a, err := netip.ParseAddr(rs.Address)
		if err != nil {
			note(vs, "transparency: real server %q is a name: its address is known only when connecting; real servers see Fulcrum's address", rs.Address)
			return
		}
		a = a.Unmap()
		if a.IsLoopback() || local[a] {
			note(vs, "transparency: real server %s is an address of this host, so its replies cannot be told from the client's traffic; real servers see Fulcrum's address", a)
			return
		}
		if home != nil && n.InterfaceFor(a) == home {
			fail(vs, "transparent", "real server %s is on the virtual service's own subnet (%s): its replies to clients there would go straight to them, not back through Fulcrum; turn transparency off (subnet originating) or put the real servers on another interface", a, home.Name)
			return
		}
	}
	if !p.Managed {
		note(vs, "transparency: %s; real servers see Fulcrum's address", p.Reason)
		return
	}
	s := p.Services[vs.ID]
	s.Transparent = true
	p.Services[vs.ID] = s
	p.Transparent = true
}

// localAddrs are the interface addresses of n.
func (n *Network) localAddrs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for i := range n.Interfaces {
		for _, pf := range n.Interfaces[i].Prefixes() {
			m[pf.Addr().Unmap()] = true
		}
	}
	return m
}

// Service returns the plan of the virtual service with ID id (the zero
// Service when it needs nothing). A nil plan has none.
func (p *Plan) Service(id int) Service {
	if p == nil {
		return Service{}
	}
	return p.Services[id]
}
