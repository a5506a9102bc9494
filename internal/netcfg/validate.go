package netcfg

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Limits of the model.
const (
	MinMTU     = 576
	MaxMTU     = 9216
	MaxVLAN    = 4094
	maxDNS     = 3
	maxSearch  = 6
	maxIfName  = 15
	maxRoutes  = 1024
	maxAddrs   = 256
	maxRanges  = 256
	maxIfaces  = 256
	maxConfirm = 3600
	minConfirm = 5
)

// Validate checks n and returns every problem as config.Errors, with
// paths under "network." (e.g. "network.interfaces[1].vlan"), or nil.
func (n *Network) Validate() error {
	var es config.Errors
	add := func(path, format string, args ...any) {
		es = append(es, config.FieldError{Path: "network." + path, Message: fmt.Sprintf(format, args...)})
	}
	if n.Hostname != "" && !validHostname(n.Hostname) {
		add("hostname", "must be a host name of letters, digits, '-' and '.', at most 253 characters, got %q", n.Hostname)
	}
	if len(n.DNS.Servers) > maxDNS {
		add("dns.servers", "at most %d name servers, got %d", maxDNS, len(n.DNS.Servers))
	}
	for i, s := range n.DNS.Servers {
		if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
			add(fmt.Sprintf("dns.servers[%d]", i), "must be an IP address, got %q", s)
		}
	}
	if len(n.DNS.Search) > maxSearch {
		add("dns.search", "at most %d search domains, got %d", maxSearch, len(n.DNS.Search))
	}
	for i, s := range n.DNS.Search {
		if !validHostname(s) {
			add(fmt.Sprintf("dns.search[%d]", i), "must be a domain name, got %q", s)
		}
	}
	if n.ConfirmSeconds != 0 && (n.ConfirmSeconds < minConfirm || n.ConfirmSeconds > maxConfirm) {
		add("confirmSeconds", "must be %d-%d (or 0 for %d), got %d", minConfirm, maxConfirm, DefaultConfirmSeconds, n.ConfirmSeconds)
	}
	if n.AdminAddress != "" {
		if _, err := netip.ParseAddrPort(n.AdminAddress); err != nil {
			add("adminAddress", "must be an IP address and port such as 10.0.0.5:8443, got %q", n.AdminAddress)
		}
	}
	if len(n.Interfaces) > maxIfaces {
		add("interfaces", "at most %d interfaces, got %d", maxIfaces, len(n.Interfaces))
	}
	type owned struct {
		prefix netip.Prefix
		path   string
	}
	var subnets []owned
	names := map[string]int{}
	vlans := map[string]string{}
	for i, f := range n.Interfaces {
		p := fmt.Sprintf("interfaces[%d]", i)
		switch {
		case f.Name == "":
			add(p+".name", "is required")
		case len(f.Name) > maxIfName || strings.ContainsAny(f.Name, " /:") || f.Name == "." || f.Name == "..":
			add(p+".name", "must be an interface name of at most %d characters without spaces, '/' or ':', got %q", maxIfName, f.Name)
		case f.Name == "lo":
			add(p+".name", "the loopback interface is not configured by Fulcrum")
		}
		if j, dup := names[f.Name]; dup && f.Name != "" {
			add(p+".name", "%q is also interfaces[%d]", f.Name, j)
		}
		names[f.Name] = i
		switch {
		case f.Parent == "" && f.VLAN != 0:
			add(p+".vlan", "a VLAN ID needs a parent interface")
		case f.Parent != "" && (f.VLAN < 1 || f.VLAN > MaxVLAN):
			add(p+".vlan", "must be 1-%d, got %d", MaxVLAN, f.VLAN)
		case f.Parent != "":
			if f.Parent == f.Name {
				add(p+".parent", "an interface cannot be its own parent")
			}
			k := fmt.Sprintf("%s/%d", f.Parent, f.VLAN)
			if other, dup := vlans[k]; dup {
				add(p+".vlan", "VLAN %d on %s is also %s", f.VLAN, f.Parent, other)
			}
			vlans[k] = f.Name
		}
		if f.MTU != 0 && (f.MTU < MinMTU || f.MTU > MaxMTU) {
			add(p+".mtu", "must be %d-%d (or 0 to leave it), got %d", MinMTU, MaxMTU, f.MTU)
		}
		if len(f.Addresses) > maxAddrs {
			add(p+".addresses", "at most %d addresses, got %d", maxAddrs, len(f.Addresses))
		}
		for j, a := range f.Addresses {
			ap := fmt.Sprintf("%s.addresses[%d]", p, j)
			pf, err := netip.ParsePrefix(a)
			if err != nil || pf.Addr().Zone() != "" {
				add(ap, "must be an address with prefix length such as 10.0.0.5/24, got %q", a)
				continue
			}
			if bad := unusable(pf.Addr()); bad != "" {
				add(ap, "%s cannot be an interface address (%s)", a, bad)
				continue
			}
			sub := pf.Masked()
			for _, o := range subnets {
				if o.prefix.Overlaps(sub) && !strings.HasPrefix(o.path, p+".") {
					add(ap, "subnet %s overlaps %s of %s", sub, o.prefix, o.path)
				}
			}
			subnets = append(subnets, owned{sub, ap})
		}
		if len(f.VIPRanges) > maxRanges {
			add(p+".vipRanges", "at most %d ranges, got %d", maxRanges, len(f.VIPRanges))
		}
		for j, r := range f.VIPRanges {
			if _, err := ParseRange(r); err != nil {
				add(fmt.Sprintf("%s.vipRanges[%d]", p, j), "%v", err)
			}
		}
	}
	for i, f := range n.Interfaces {
		if f.Parent != "" {
			if par := n.Interface(f.Parent); par != nil && par.Parent != "" {
				add(fmt.Sprintf("interfaces[%d].parent", i), "%q is itself a VLAN child", f.Parent)
			}
		}
	}
	gw := func(path, s string, v6 bool) {
		a, err := netip.ParseAddr(s)
		switch {
		case err != nil || a.Zone() != "":
			add(path, "must be an IP address, got %q", s)
		case a.Is6() != v6 || a.Is4In6():
			fam := "IPv4"
			if v6 {
				fam = "IPv6"
			}
			add(path, "must be an %s address, got %s", fam, s)
		case n.InterfaceFor(a) == nil:
			add(path, "%s lies in no interface's subnet (%s)", s, n.subnetList())
		}
	}
	if n.Gateway != "" {
		gw("gateway", n.Gateway, false)
	}
	if n.Gateway6 != "" {
		gw("gateway6", n.Gateway6, true)
	}
	if len(n.Routes) > maxRoutes {
		add("routes", "at most %d routes, got %d", maxRoutes, len(n.Routes))
	}
	for i, r := range n.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		d, err := netip.ParsePrefix(r.Destination)
		if err != nil {
			add(p+".destination", "must be a prefix such as 10.20.0.0/16, got %q", r.Destination)
		} else if d.Bits() == 0 {
			add(p+".destination", "a default route is set by gateway or gateway6, not as a static route")
		}
		g, err := netip.ParseAddr(r.Gateway)
		switch {
		case err != nil:
			add(p+".gateway", "must be an IP address, got %q", r.Gateway)
		case d.IsValid() && g.Is4() != d.Addr().Is4():
			add(p+".gateway", "%s is not of the family of %s", g, d)
		case n.InterfaceFor(g) == nil:
			add(p+".gateway", "%s lies in no interface's subnet (%s)", g, n.subnetList())
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// unusable says why a is no interface address, or "".
func unusable(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsMulticast():
		return "multicast"
	}
	return ""
}

func validHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// Subnets returns the interface's subnets (its addresses masked), in
// order; unparsable addresses are left out.
func (f *Interface) Subnets() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range f.Addresses {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Prefixes returns the interface's addresses with their prefix lengths;
// unparsable ones are left out.
func (f *Interface) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, a := range f.Addresses {
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// InterfaceFor returns the interface whose subnet holds a, or nil.
func (n *Network) InterfaceFor(a netip.Addr) *Interface {
	a = a.Unmap()
	for i := range n.Interfaces {
		for _, s := range n.Interfaces[i].Subnets() {
			if s.Contains(a) {
				return &n.Interfaces[i]
			}
		}
	}
	return nil
}

// RangeInterface returns the interface one of whose VIP ranges holds a,
// or nil.
func (n *Network) RangeInterface(a netip.Addr) *Interface {
	a = a.Unmap()
	for i := range n.Interfaces {
		for _, s := range n.Interfaces[i].VIPRanges {
			if r, err := ParseRange(s); err == nil && r.Contains(a) {
				return &n.Interfaces[i]
			}
		}
	}
	return nil
}

func (n *Network) subnetList() string {
	var s []string
	for i := range n.Interfaces {
		for _, p := range n.Interfaces[i].Subnets() {
			s = append(s, p.String()+" on "+n.Interfaces[i].Name)
		}
	}
	if len(s) == 0 {
		return "no interface has an address"
	}
	return strings.Join(s, ", ")
}

// Range is an inclusive range of addresses of one family.
type Range struct {
	// From and To are the first and last address.
	From, To netip.Addr
}

// Contains reports whether a lies in r.
func (r Range) Contains(a netip.Addr) bool {
	return a.BitLen() == r.From.BitLen() && a.Compare(r.From) >= 0 && a.Compare(r.To) <= 0
}

// ParseRange reads a VIP range: a prefix ("10.0.1.0/28") or two addresses
// of one family joined by '-' ("10.0.1.10-10.0.1.20"), or one address.
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		p = p.Masked()
		last := p.Addr()
		bits := p.Addr().BitLen() - p.Bits()
		b := last.AsSlice()
		for i := len(b) - 1; i >= 0 && bits > 0; i-- {
			n := min(bits, 8)
			b[i] |= byte(1<<n - 1)
			bits -= n
		}
		last, _ = netip.AddrFromSlice(b)
		return Range{From: p.Addr(), To: last}, nil
	}
	from, to, ok := strings.Cut(s, "-")
	a, err1 := netip.ParseAddr(strings.TrimSpace(from))
	b := a
	var err2 error
	if ok {
		b, err2 = netip.ParseAddr(strings.TrimSpace(to))
	}
	switch {
	case err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "":
		return Range{}, fmt.Errorf("must be a prefix (10.0.1.0/28) or a range (10.0.1.10-10.0.1.20), got %q", s)
	case a.Is4() != b.Is4():
		return Range{}, fmt.Errorf("the ends of %q are of different families", s)
	case a.Compare(b) > 0:
		return Range{}, fmt.Errorf("%q ends before it starts", s)
	}
	return Range{From: a, To: b}, nil
}
