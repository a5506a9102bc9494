package kempapi

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
)

// iface is one interface as the LoadMaster API numbers it: the kernel's
// link (nil when the interface is only configured, such as a VLAN child
// not created yet) merged with its network settings (nil when Fulcrum
// does not configure it).
type iface struct {
	// id is LoadMaster's interface number (0 for eth0 on a LoadMaster).
	id   int
	name string
	link *netcfg.Link
	cfg  *netcfg.Interface
}

// vlanChild reports whether the interface is a VLAN child.
func (f *iface) vlanChild() bool {
	return (f.cfg != nil && f.cfg.Parent != "") || (f.link != nil && f.link.Kind == "vlan")
}

// parent and vlanID are a VLAN child's parent interface and VLAN ID.
func (f *iface) parent() string {
	if f.cfg != nil && f.cfg.Parent != "" {
		return f.cfg.Parent
	}
	if f.link != nil {
		return f.link.Parent
	}
	return ""
}

func (f *iface) vlanID() int {
	if f.cfg != nil && f.cfg.VLAN != 0 {
		return f.cfg.VLAN
	}
	if f.link != nil {
		return f.link.VLAN
	}
	return 0
}

// addresses are the interface's addresses in CIDR form: the configured
// ones, or the kernel's for an interface Fulcrum does not configure.
func (f *iface) addresses() []string {
	if f.cfg != nil {
		return f.cfg.Addresses
	}
	if f.link != nil {
		return f.link.Addresses
	}
	return nil
}

// listIfaces merges the kernel's links (the loopback left out) with the
// configured interfaces and numbers them: interfaces that are not VLAN
// children first, by name in natural order (eth2 before eth10), then VLAN
// children by parent and VLAN ID; so eth0 is 0 and eth1 is 1 as on a
// LoadMaster, and adding a VLAN never renumbers a port.
func listIfaces(links []netcfg.Link, n *netcfg.Network) []*iface {
	byName := map[string]*iface{}
	var out []*iface
	get := func(name string) *iface {
		if f, ok := byName[name]; ok {
			return f
		}
		f := &iface{name: name}
		byName[name] = f
		out = append(out, f)
		return f
	}
	for i := range links {
		if links[i].Name == "lo" || links[i].Kind == "loopback" {
			continue
		}
		get(links[i].Name).link = &links[i]
	}
	if n != nil {
		for i := range n.Interfaces {
			get(n.Interfaces[i].Name).cfg = &n.Interfaces[i]
		}
	}
	slices.SortFunc(out, func(a, b *iface) int {
		av, bv := a.vlanChild(), b.vlanChild()
		switch {
		case av != bv:
			if av {
				return 1
			}
			return -1
		case av:
			if c := naturalCmp(a.parent(), b.parent()); c != 0 {
				return c
			}
			if c := cmp.Compare(a.vlanID(), b.vlanID()); c != 0 {
				return c
			}
		}
		return naturalCmp(a.name, b.name)
	})
	for i, f := range out {
		f.id = i
	}
	return out
}

// naturalCmp orders names with their digit runs compared as numbers.
func naturalCmp(a, b string) int {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da > 0 && db > 0 {
			na, _ := strconv.ParseUint(a[:min(da, 18)], 10, 64)
			nb, _ := strconv.ParseUint(b[:min(db, 18)], 10, 64)
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitPrefix(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// findIface finds an interface by LoadMaster number or, as Fulcrum also
// accepts, by name.
func findIface(list []*iface, key string) *iface {
	key = strings.TrimSpace(key)
	if n, err := strconv.Atoi(key); err == nil {
		if n >= 0 && n < len(list) {
			return list[n]
		}
		return nil
	}
	for _, f := range list {
		if f.name == key {
			return f
		}
	}
	return nil
}
