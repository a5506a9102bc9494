package hostnet

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"golang.org/x/sys/unix"
)

// kind is the kind of one thing Fulcrum creates or changes.
type kind string

// The kinds, in the order Prepare applies them (removal is the reverse).
const (
	kindVLAN      kind = "vlan"
	kindMTU       kind = "mtu"
	kindLinkState kind = "linkState"
	kindAddr      kind = "address"
	kindRoute     kind = "route"
	kindVIP       kind = "vip"
	kindRule      kind = "rule"
	kindChain     kind = "nftChain"
	kindSysctl    kind = "sysctl"
	kindResolv    kind = "resolvConf"
	kindHostname  kind = "hostname"
)

var kindOrder = []kind{kindVLAN, kindMTU, kindLinkState, kindAddr, kindRoute, kindVIP, kindRule, kindChain, kindSysctl, kindResolv, kindHostname}

func rank(k kind) int { return slices.Index(kindOrder, k) }

// routeSpec is one route: added (Fulcrum's, with RouteProtocol) or
// replaced (the host's, to be put back).
type routeSpec struct {
	Table int    `json:"table"`
	Dst   string `json:"dst"`
	Gw    string `json:"gw,omitempty"`
	Dev   string `json:"dev,omitempty"`
	Local bool   `json:"local,omitempty"`
	Proto int    `json:"proto,omitempty"`
	Scope int    `json:"scope,omitempty"`
	Src   string `json:"src,omitempty"`
}

// ruleSpec is one policy-routing rule.
type ruleSpec struct {
	Priority int    `json:"priority"`
	Family   int    `json:"family"`
	Src      string `json:"src,omitempty"`
	Mark     uint32 `json:"mark,omitempty"`
	Table    int    `json:"table"`
	Suppress bool   `json:"suppress,omitempty"`
}

// chainSpec is one base chain of the table inet fulcrum.
type chainSpec struct {
	// Transparent: the prerouting chain marking packets of transparent
	// sockets.
	Transparent bool `json:"transparent,omitempty"`
	// SNAT: the postrouting chain's rules.
	SNAT []snatSpec `json:"snat,omitempty"`
}

type snatSpec struct {
	Server string `json:"server"`
	To     string `json:"to"`
}

// item is one thing Fulcrum wants, created or changed; the state file
// lists the latter.
type item struct {
	Kind kind `json:"kind"`
	// Setting marks the interface settings (the Network), kept on stop
	// with KeepOnStop.
	Setting bool `json:"setting,omitempty"`
	// Link is the interface (VLAN child, MTU, link state, addresses).
	Link string `json:"link,omitempty"`
	// Parent and VLAN of a VLAN child; MTU of its creation.
	Parent string `json:"parent,omitempty"`
	VLAN   int    `json:"vlanId,omitempty"`
	MTU    int    `json:"mtu,omitempty"`
	// Addr is an address with prefix length.
	Addr      string     `json:"addr,omitempty"`
	Route     *routeSpec `json:"route,omitempty"`
	PrevRoute *routeSpec `json:"prevRoute,omitempty"`
	Rule      *ruleSpec  `json:"rule,omitempty"`
	Chain     *chainSpec `json:"chain,omitempty"`
	// Name is the sysctl's name, the chain's name or the resolver file.
	Name string `json:"name,omitempty"`
	// Value is the wanted value of a setting.
	Value string `json:"value,omitempty"`
	// Prev is the value before Fulcrum changed it.
	Prev string `json:"prev,omitempty"`
	// PrevAbsent: the resolver file did not exist; PrevLink: it was a
	// symbolic link to PrevLink.
	PrevAbsent bool   `json:"prevAbsent,omitempty"`
	PrevLink   string `json:"prevLink,omitempty"`

	field     string // the setting's path, for errors
	optional6 bool   // an IPv6 part skipped where the kernel has no IPv6
	nameField string // the path of the interface's name, for a missing interface
}

// key identifies the thing, whatever its value.
func (it *item) key() string {
	switch it.Kind {
	case kindVLAN, kindMTU, kindLinkState:
		return string(it.Kind) + " " + it.Link
	case kindAddr, kindVIP:
		return string(it.Kind) + " " + it.Link + " " + it.Addr
	case kindRoute:
		return fmt.Sprintf("route table %d %s", it.Route.Table, it.Route.Dst)
	case kindRule:
		r := it.Rule
		return fmt.Sprintf("rule %d family %d from %s fwmark %#x lookup %d suppress %v", r.Priority, r.Family, r.Src, r.Mark, r.Table, r.Suppress)
	case kindHostname:
		return "hostname"
	}
	return string(it.Kind) + " " + it.Name
}

// wanted lists what p needs of the host, in order of application.
func (m *Manager) wanted(p *netcfg.Plan) ([]*item, error) {
	n := p.Network
	var out []*item
	add := func(it *item) { out = append(out, it) }
	for i, f := range n.Interfaces {
		fld := fmt.Sprintf("network.interfaces[%d]", i)
		base := item{Setting: true, Link: f.Name, nameField: fld + ".name"}
		if f.Parent != "" {
			it := base
			it.Kind, it.Parent, it.VLAN, it.MTU, it.field = kindVLAN, f.Parent, f.VLAN, f.MTU, fld+".vlan"
			it.nameField = fld + ".parent"
			add(&it)
		}
		if f.MTU != 0 {
			it := base
			it.Kind, it.Value, it.field = kindMTU, fmt.Sprint(f.MTU), fld+".mtu"
			add(&it)
		}
		it := base
		it.Kind, it.Value, it.field = kindLinkState, "up", fld+".down"
		if f.Down {
			it.Value = "down"
		}
		add(&it)
		for j, a := range f.Prefixes() {
			it := base
			it.Kind, it.Addr, it.field = kindAddr, a.String(), fmt.Sprintf("%s.addresses[%d]", fld, j)
			add(&it)
		}
	}
	defRoute := func(gw, field string) {
		a, err := netip.ParseAddr(gw)
		if err != nil {
			return
		}
		r := &routeSpec{Table: unix.RT_TABLE_MAIN, Dst: netip.PrefixFrom(a, 0).Masked().String(), Gw: a.String()}
		if f := n.InterfaceFor(a); f != nil {
			r.Dev = f.Name
		}
		add(&item{Kind: kindRoute, Setting: true, Route: r, field: field})
	}
	if n.Gateway != "" {
		defRoute(n.Gateway, "network.gateway")
	}
	if n.Gateway6 != "" {
		defRoute(n.Gateway6, "network.gateway6")
	}
	for i, r := range n.Routes {
		d, err1 := netip.ParsePrefix(r.Destination)
		g, err2 := netip.ParseAddr(r.Gateway)
		if err1 != nil || err2 != nil {
			return nil, &Error{Field: fmt.Sprintf("network.routes[%d]", i), Err: fmt.Errorf("not a valid route: %s via %s", r.Destination, r.Gateway)}
		}
		rs := &routeSpec{Table: unix.RT_TABLE_MAIN, Dst: d.Masked().String(), Gw: g.String()}
		if f := n.InterfaceFor(g); f != nil {
			rs.Dev = f.Name
		}
		add(&item{Kind: kindRoute, Setting: true, Route: rs, field: fmt.Sprintf("network.routes[%d]", i)})
	}
	for _, v := range p.VIPs {
		fld := "network.interfaces"
		if ids := p.VIPServices[v.Addr]; len(ids) > 0 {
			fld = fmt.Sprintf("virtualServices[id=%d].address", ids[0])
		}
		add(&item{Kind: kindVIP, Link: v.Interface, Addr: netip.PrefixFrom(v.Addr, v.Addr.BitLen()).String(), field: fld})
	}
	for _, g := range p.Gateways {
		fld := fmt.Sprintf("virtualServices[id=%d].defaultGateway", firstService(p, func(s netcfg.Service) bool { return s.Mark == g.Mark }))
		fam := family(g.Addr)
		add(&item{Kind: kindRoute, Route: &routeSpec{Table: g.Table, Dst: netip.PrefixFrom(g.Addr, 0).Masked().String(), Gw: g.Addr.String(), Dev: g.Interface}, field: fld})
		for _, s := range g.Sources {
			src := netip.PrefixFrom(s, s.BitLen()).String()
			add(&item{Kind: kindRule, Rule: &ruleSpec{Priority: PrioSuppress, Family: family(s), Src: src, Table: unix.RT_TABLE_MAIN, Suppress: true}, field: fld})
			add(&item{Kind: kindRule, Rule: &ruleSpec{Priority: PrioGateway, Family: family(s), Src: src, Table: g.Table}, field: fld})
		}
		add(&item{Kind: kindRule, Rule: &ruleSpec{Priority: PrioSuppress, Family: fam, Mark: g.Mark, Table: unix.RT_TABLE_MAIN, Suppress: true}, field: fld})
		add(&item{Kind: kindRule, Rule: &ruleSpec{Priority: PrioGateway, Family: fam, Mark: g.Mark, Table: g.Table}, field: fld})
	}
	if p.Transparent {
		fld := fmt.Sprintf("virtualServices[id=%d].transparent", firstService(p, func(s netcfg.Service) bool { return s.Transparent }))
		for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
			dst := "0.0.0.0/0"
			if fam == unix.AF_INET6 {
				dst = "::/0"
			}
			v6 := fam == unix.AF_INET6
			add(&item{Kind: kindRoute, Route: &routeSpec{Table: netcfg.TransparentTable, Dst: dst, Dev: "lo", Local: true}, field: fld, optional6: v6})
			add(&item{Kind: kindRule, Rule: &ruleSpec{Priority: PrioTransparent, Family: fam, Mark: netcfg.TransparentMark, Table: netcfg.TransparentTable}, field: fld, optional6: v6})
		}
		add(&item{Kind: kindChain, Name: "prerouting", Chain: &chainSpec{Transparent: true}, field: fld})
	}
	if len(p.SNAT) > 0 {
		c := &chainSpec{}
		v4, v6 := false, false
		for _, r := range p.SNAT {
			c.SNAT = append(c.SNAT, snatSpec{Server: r.Server.String(), To: r.To.String()})
			v4 = v4 || r.Server.Is4()
			v6 = v6 || !r.Server.Is4()
		}
		add(&item{Kind: kindChain, Name: "postrouting", Chain: c, field: "options.snat"})
		if v4 {
			add(&item{Kind: kindSysctl, Name: "net.ipv4.ip_forward", Value: "1", field: "options.snat"})
		}
		if v6 {
			add(&item{Kind: kindSysctl, Name: "net.ipv6.conf.all.forwarding", Value: "1", field: "options.snat"})
		}
	}
	if len(n.DNS.Servers) > 0 || len(n.DNS.Search) > 0 {
		add(&item{Kind: kindResolv, Setting: true, Name: m.o.ResolvConf, Value: resolvContent(n.DNS), field: "network.dns"})
	}
	if n.Hostname != "" {
		add(&item{Kind: kindHostname, Setting: true, Value: n.Hostname, field: "network.hostname"})
	}
	return out, nil
}

// firstService returns the lowest ID of a service of p matching ok.
func firstService(p *netcfg.Plan, ok func(netcfg.Service) bool) int {
	var ids []int
	for id, s := range p.Services {
		if ok(s) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0
	}
	sort.Ints(ids)
	return ids[0]
}

func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// resolvContent is the resolver file for d.
func resolvContent(d netcfg.DNS) string {
	var b strings.Builder
	b.WriteString("# Written by Fulcrum (network.dns); restored when Fulcrum stops.\n")
	for _, s := range d.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(d.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(d.Search, " "))
	}
	return b.String()
}
