package kempapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// The network commands of LoadMaster's Interfaces, Host & DNS and Route
// Management sections (showiface, modiface, addadditional,
// deladditional, addvlan, delvlan, addroute, delroute, showroute) and
// Fulcrum's confirmnetwork. They change the node's network settings
// through control.Controller.ApplyNetwork. A change is confirmed at once
// when it cannot cut the caller off (see confirmedFor); otherwise it is
// applied with the confirm window and rolled back unless confirmed.

// ifaceKey returns the interface parameter: "interface" as LoadMaster
// documents it, or "iface" as its firmware also accepts.
func ifaceKey(p params) (string, bool) {
	if v, ok := p.get("interface"); ok {
		return v, true
	}
	return p.get("iface")
}

// ifaces lists the interfaces as the API numbers them. Without the
// kernel's view (Fulcrum does not manage this host's network) the
// configured interfaces are listed alone.
func (c *call) ifaces(n *netcfg.Network) []*iface {
	return listIfaces(c.kernelLinks(), n)
}

// kernelLinks reads the kernel's interfaces once per call: before a change
// (the controller's lock is held while it runs the change's Mutate).
func (c *call) kernelLinks() []netcfg.Link {
	if c.links == nil {
		links, err := c.s.ctl.Links()
		if err != nil {
			c.s.log.Debug("kemp api: interface list without the kernel's links", "err", err)
			links = nil
		}
		c.links = &links
	}
	return *c.links
}

// theIface finds the interface the request names.
func (c *call) theIface(n *netcfg.Network) (*iface, *failure) {
	key, ok := ifaceKey(c.p)
	if !ok || strings.TrimSpace(key) == "" {
		return nil, missing("interface")
	}
	f := findIface(c.ifaces(n), key)
	if f == nil {
		return nil, invalid("interface: no interface %q (showiface lists them)", short(key))
	}
	return f, nil
}

// theIfaceOrNew is theIface, or a new interface when the request names
// one by a name Fulcrum neither configures nor sees (its settings are
// checked when they are applied).
func (c *call) theIfaceOrNew(n *netcfg.Network) (*iface, *failure) {
	f, fl := c.theIface(n)
	if fl == nil {
		return f, nil
	}
	key, _ := ifaceKey(c.p)
	key = strings.TrimSpace(key)
	if _, err := strconv.Atoi(key); err != nil && key != "" {
		return &iface{id: -1, name: key}, nil
	}
	return nil, fl
}

func ifaceType(f *iface) string {
	switch {
	case f.vlanChild():
		return "VLAN"
	case f.link == nil:
		return "Port"
	}
	switch f.link.Kind {
	case "bond":
		return "Bond"
	case "vxlan":
		return "VXLAN"
	case "bridge":
		return "Bridge"
	}
	return "Port"
}

// ifaceNode is one <Interface>: LoadMaster's elements (Id, IPAddress, Mtu,
// AdditionalAddresses, InterfaceType, GeoTrafficEnable, DefaultInterface),
// then Fulcrum's own (Name, VlanId and Parent of a VLAN child,
// MacAddress, Link, Managed, Addresses).
func ifaceNode(f *iface, n *netcfg.Network) node {
	addrs := f.addresses()
	first := ""
	if len(addrs) > 0 {
		first = addrs[0]
	}
	mtu := 0
	switch {
	case f.link != nil:
		mtu = f.link.MTU
	case f.cfg != nil:
		mtu = f.cfg.MTU
	}
	isDefault := false
	if gw, err := netip.ParseAddr(n.Gateway); err == nil && f.cfg != nil {
		for _, s := range f.cfg.Subnets() {
			isDefault = isDefault || s.Contains(gw)
		}
	}
	ch := []node{inum("Id", f.id), str("IPAddress", first), numStr("Mtu", mtu)}
	if f.cfg != nil && len(f.cfg.VIPRanges) > 0 {
		ch = append(ch, opts("AdditionalAddresses", f.cfg.VIPRanges...))
	}
	ch = append(ch, str("InterfaceType", ifaceType(f)), yesno("GeoTrafficEnable", false), yesno("DefaultInterface", isDefault),
		str("Name", f.name))
	if f.vlanChild() {
		ch = append(ch, inum("VlanId", f.vlanID()), str("Parent", f.parent()))
	}
	link := "absent"
	if f.link != nil {
		if f.link.MAC != "" {
			ch = append(ch, str("MacAddress", f.link.MAC))
		}
		link = "down"
		if f.link.Up {
			link = "up"
		}
	}
	ch = append(ch, str("Link", link), yesno("Managed", f.cfg != nil || (f.link != nil && f.link.Managed)))
	if len(addrs) > 0 {
		ch = append(ch, opts("Addresses", addrs...))
	}
	g := group("Interface", ch...)
	g.item = true
	return g
}

// showiface lists every interface, or the one named by interface (or
// iface).
func (c *call) showiface() result {
	n := c.s.ctl.Network().Network
	if n == nil {
		n = &netcfg.Network{}
	}
	if key, ok := ifaceKey(c.p); ok && strings.TrimSpace(key) != "" {
		f, fl := c.theIface(n)
		if fl != nil {
			return fl.result()
		}
		return withData(ifaceNode(f, n))
	}
	list := c.ifaces(n)
	out := make([]node, 0, len(list))
	for _, f := range list {
		out = append(out, ifaceNode(f, n))
	}
	if len(out) == 0 {
		return withData(str("Interfaces", ""))
	}
	return withData(out...)
}

// configured returns the settings of f in n, adding them when Fulcrum did
// not configure f yet.
func configured(n *netcfg.Network, f *iface) *netcfg.Interface {
	if i := n.Interface(f.name); i != nil {
		return i
	}
	n.Interfaces = append(n.Interfaces, netcfg.Interface{Name: f.name})
	return &n.Interfaces[len(n.Interfaces)-1]
}

// modifaceRefused are LoadMaster's other modiface parameters, refused
// with the reason.
var modifaceRefused = []struct{ name, why string }{
	{"hacheck", "Fulcrum has no HA pair yet"},
	{"clupdate", "Fulcrum has no cluster yet"},
	{"bondmode", "Fulcrum does not create bonds"},
	{"partner", "Fulcrum has no HA pair yet"},
	{"shared", "Fulcrum has no HA pair yet"},
	{"geotraffic", "Fulcrum has no GEO service"},
	{"adminwuienable", "the admin listener's address is set by fulcrum serve --admin-addr or fulcrum setup"},
	{"gwiface", "the default gateway's interface is the one whose subnet holds it (set dfltgw)"},
}

// modiface sets an interface's address (addr, CIDR; empty removes it)
// and MTU (mtu).
func (c *call) modiface() result {
	for _, r := range modifaceRefused {
		if c.p.has(r.name) {
			return invalid("Command not available: %s: %s", r.name, r.why).result()
		}
	}
	addr, hasAddr := c.p.get("addr")
	mtu, hasMTU, f := intParam(c.p, "mtu", "mtu")
	if f != nil {
		return f.result()
	}
	if !hasAddr && !hasMTU {
		return missing("addr").result()
	}
	return c.netCommand(true, func(n *netcfg.Network, fi *iface) (string, *failure) {
		cf := configured(n, fi)
		var what []string
		if hasAddr {
			addr = strings.TrimSpace(addr)
			switch {
			case addr == "" && len(cf.Addresses) > 0:
				cf.Addresses = cf.Addresses[1:]
			case addr == "":
			case len(cf.Addresses) == 0:
				cf.Addresses = []string{addr}
			default:
				cf.Addresses[0] = addr
			}
			what = append(what, "address "+orNone(addr))
		}
		if hasMTU {
			cf.MTU = mtu
			what = append(what, "MTU "+strconv.Itoa(mtu))
		}
		return fmt.Sprintf("interface %s: %s", fi.name, strings.Join(what, ", ")), nil
	})
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// sameRange reports whether two VIP ranges are the same addresses.
func sameRange(a, b string) bool {
	ra, err1 := netcfg.ParseRange(a)
	rb, err2 := netcfg.ParseRange(b)
	if err1 != nil || err2 != nil {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	return ra == rb
}

// additional adds (or deletes) a VIP range, LoadMaster's "additional
// address", of an interface.
func (c *call) additional(add bool) result {
	addr, ok := c.p.get("addr")
	if !ok || strings.TrimSpace(addr) == "" {
		return missing("addr").result()
	}
	addr = strings.TrimSpace(addr)
	return c.netCommand(add, func(n *netcfg.Network, fi *iface) (string, *failure) {
		cf := configured(n, fi)
		i := slices.IndexFunc(cf.VIPRanges, func(r string) bool { return sameRange(r, addr) })
		if add {
			if i >= 0 {
				return "", invalid("addr: %s is already an additional address of %s", addr, fi.name)
			}
			cf.VIPRanges = append(cf.VIPRanges, addr)
			return fmt.Sprintf("interface %s: add additional address %s", fi.name, addr), nil
		}
		if i < 0 {
			return "", invalid("addr: %s is not an additional address of %s", short(addr), fi.name)
		}
		cf.VIPRanges = slices.Delete(cf.VIPRanges, i, i+1)
		return fmt.Sprintf("interface %s: delete additional address %s", fi.name, addr), nil
	})
}

// vlanName is the name of VLAN id's child of parent: "eth1.10", or
// "vlan10" where that would be too long for an interface name.
func vlanName(parent string, id int) string {
	if name := parent + "." + strconv.Itoa(id); len(name) <= 15 {
		return name
	}
	return "vlan" + strconv.Itoa(id)
}

// addvlan adds a VLAN child (vlanid) to an interface.
func (c *call) addvlan() result {
	s, ok := c.p.get("vlanid")
	if !ok || strings.TrimSpace(s) == "" {
		return missing("vlanid").result()
	}
	id, good := parseInt(s)
	if !good {
		return invalid("vlanid: Invalid integer value %q", short(s)).result()
	}
	return c.netCommand(false, func(n *netcfg.Network, fi *iface) (string, *failure) {
		if fi.vlanChild() {
			return "", invalid("interface: %s is itself a VLAN interface", fi.name)
		}
		n.Interfaces = append(n.Interfaces, netcfg.Interface{Name: vlanName(fi.name, id), Parent: fi.name, VLAN: id})
		return fmt.Sprintf("add VLAN %d on %s", id, fi.name), nil
	})
}

// delvlan deletes a VLAN child Fulcrum created: interface names the
// child itself, or its parent with vlanid.
func (c *call) delvlan() result {
	s, hasID := c.p.get("vlanid")
	id := 0
	if hasID && strings.TrimSpace(s) != "" {
		var good bool
		if id, good = parseInt(s); !good {
			return invalid("vlanid: Invalid integer value %q", short(s)).result()
		}
	}
	return c.netCommand(false, func(n *netcfg.Network, fi *iface) (string, *failure) {
		idx := -1
		for i, f := range n.Interfaces {
			switch {
			case f.Parent == "":
			case f.Name == fi.name && (id == 0 || f.VLAN == id):
				idx = i
			case f.Parent == fi.name && id != 0 && f.VLAN == id:
				idx = i
			}
		}
		if idx < 0 {
			if id == 0 {
				return "", missing("vlanid")
			}
			return "", invalid("vlanid: Fulcrum created no VLAN %d on %s", id, fi.name)
		}
		gone := n.Interfaces[idx]
		n.Interfaces = slices.Delete(n.Interfaces, idx, idx+1)
		return fmt.Sprintf("delete VLAN %d on %s (%s)", gone.VLAN, gone.Parent, gone.Name), nil
	})
}

// routeIndex returns the index of the route to dest in n, or -1.
func routeIndex(n *netcfg.Network, dest string) int {
	want, err := netip.ParsePrefix(strings.TrimSpace(dest))
	return slices.IndexFunc(n.Routes, func(r netcfg.Route) bool {
		if err != nil {
			return r.Destination == strings.TrimSpace(dest)
		}
		have, err := netip.ParsePrefix(r.Destination)
		return err == nil && have.Masked() == want.Masked()
	})
}

// addroute adds a static route to dest through gateway.
func (c *call) addroute() result {
	dest, gw := strings.TrimSpace(c.p.str("dest")), strings.TrimSpace(c.p.str("gateway"))
	if dest == "" {
		return missing("dest").result()
	}
	if gw == "" {
		return missing("gateway").result()
	}
	return c.applyNet(func(n *netcfg.Network) (string, *failure) {
		if routeIndex(n, dest) >= 0 {
			return "", invalid("dest: a route to %s exists already (delroute it first)", dest)
		}
		n.Routes = append(n.Routes, netcfg.Route{Destination: dest, Gateway: gw})
		return fmt.Sprintf("add route %s via %s", dest, gw), nil
	}, nil)
}

// delroute deletes the static route to dest.
func (c *call) delroute() result {
	dest := strings.TrimSpace(c.p.str("dest"))
	if dest == "" {
		return missing("dest").result()
	}
	return c.applyNet(func(n *netcfg.Network) (string, *failure) {
		i := routeIndex(n, dest)
		if i < 0 {
			return "", invalid("dest: there is no route to %s", short(dest))
		}
		n.Routes = slices.Delete(n.Routes, i, i+1)
		return "delete route " + dest, nil
	}, nil)
}

// showroute lists the static routes.
func (c *call) showroute() result {
	n := c.s.ctl.Network().Network
	if n == nil || len(n.Routes) == 0 {
		return withData(str("Routes", ""))
	}
	out := make([]node, 0, len(n.Routes))
	for _, r := range n.Routes {
		g := group("Route", str("Destination", r.Destination), str("Gateway", r.Gateway))
		g.item = true
		out = append(out, g)
	}
	return withData(out...)
}

// confirmnetwork (Fulcrum's) confirms the pending network change:
// revision, or the one pending.
func (c *call) confirmnetwork() result {
	snap := c.s.ctl.Network()
	rev := snap.Revision
	if s, ok := c.p.get("revision"); ok && strings.TrimSpace(s) != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return invalid("revision: Invalid integer value %q", short(s)).result()
		}
		rev = n
	} else if snap.Deadline.IsZero() {
		return invalid("Command Failed: no network change is waiting for confirmation").result()
	}
	if err := c.s.ctl.ConfirmNetwork(rev, c.actor()); err != nil {
		if errors.Is(err, control.ErrNotFound) {
			return invalid("revision: network revision %d is not waiting for confirmation (%v)", rev, err).result()
		}
		return c.netFailure(err, nil).result()
	}
	return completed()
}

// netCommand runs a change of the interface the request names (with
// create, also one named that does not exist yet).
func (c *call) netCommand(create bool, mutate func(n *netcfg.Network, f *iface) (string, *failure)) result {
	return c.applyNet(func(n *netcfg.Network) (string, *failure) {
		find := c.theIface
		if create {
			find = c.theIfaceOrNew
		}
		f, fl := find(n)
		if fl != nil {
			return "", fl
		}
		return mutate(n, f)
	}, nil)
}

// applyNet applies a change of the network settings made by mutate, which
// returns the change's summary. names map configuration paths to the
// parameter that set them, for errors. The change is confirmed at once
// when it cannot cut the caller off; otherwise the answer says when it
// will be rolled back unless confirmed (confirmnetwork).
func (c *call) applyNet(mutate func(n *netcfg.Network) (string, *failure), names map[string]string) result {
	snap := c.s.ctl.Network()
	cur := snap.Network
	if cur == nil {
		cur = &netcfg.Network{}
	}
	cand := cur.Clone()
	c.kernelLinks()
	summary, f := mutate(cand)
	if f != nil {
		return f.result()
	}
	confirmed := confirmedFor(localAddr(c.r), c.s.adminAddr, cand)
	res, err := c.s.ctl.ApplyNetwork(control.NetChange{Base: snap.Revision, CheckBase: true, Actor: c.actor(),
		Summary: summary, Confirmed: confirmed,
		Mutate: func(n *netcfg.Network) error {
			_, f := mutate(n)
			return nilIfNone(f)
		}})
	if err != nil {
		return c.netFailure(err, names).result()
	}
	if !res.Committed || res.Deadline.IsZero() {
		return completed()
	}
	secs := int(time.Until(res.Deadline).Round(time.Second) / time.Second)
	return withData(
		num("NetworkRevision", int64(res.Revision)),
		yn("Confirmed", false),
		inum("RollbackIn", max(secs, 0)),
		str("RollbackAt", res.Deadline.UTC().Format(time.RFC3339)),
		str("Confirm", fmt.Sprintf("confirmnetwork?revision=%d", res.Revision)),
	)
}

// localAddr is the address the request arrived on.
func localAddr(r *http.Request) netip.Addr {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// confirmedFor decides whether a network change made by a request that
// arrived on local, to an admin listener bound to listener (host:port, ""
// if unknown), is confirmed at once: when the listener is on a loopback
// or wildcard address (or, the listener unknown, the request came over
// loopback), or when local is still one of the interface addresses of
// the new settings n. Otherwise the change could cut the caller off, and
// it waits for confirmation.
func confirmedFor(local netip.Addr, listener string, n *netcfg.Network) bool {
	local = local.Unmap()
	if host, _, err := net.SplitHostPort(listener); err == nil {
		if host == "" {
			return true
		}
		if a, err := netip.ParseAddr(host); err == nil && (a.IsLoopback() || a.IsUnspecified()) {
			return true
		}
	} else if local.IsLoopback() {
		return true
	}
	if !local.IsValid() {
		return false
	}
	for i := range n.Interfaces {
		for _, p := range n.Interfaces[i].Prefixes() {
			if p.Addr().Unmap() == local {
				return true
			}
		}
	}
	return false
}

// netFailure maps an error of a network change to an answer; names map
// configuration paths (without indexes) to the parameter to name.
func (c *call) netFailure(err error, names map[string]string) *failure {
	var f *failure
	var conflict *store.ConflictError
	switch {
	case errors.As(err, &f):
		return f
	case errors.As(err, &conflict):
		return invalid("Command Failed: the network settings were changed meanwhile (now revision %d); try again", conflict.Current)
	case errors.Is(err, store.ErrNoSpace), errors.Is(err, store.ErrDamaged):
		return c.s.failure(err)
	}
	var host *control.HostError
	if errors.As(err, &host) && len(host.Fields()) > 0 {
		var es config.Errors
		for _, fe := range host.Fields() {
			es = append(es, config.FieldError{Path: fe.Path, Message: "the host's network refused it: " + fe.Message})
		}
		err = es
	}
	if es, ok := config.IsErrors(err); ok {
		parts := make([]string, 0, len(es))
		for _, e := range es {
			name := names[indexRE.ReplaceAllString(e.Path, "")]
			if name == "" {
				name = lmName(e.Path)
			}
			if name != "" {
				parts = append(parts, name+": "+e.Message)
			} else {
				parts = append(parts, e.Message)
			}
		}
		return invalid("%s", strings.Join(slices.Compact(parts), "; "))
	}
	c.s.log.Warn("kemp api: network change failed", "err", err)
	return invalid("Command Failed: %s", err.Error())
}
