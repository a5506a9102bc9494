package hostnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// noLinkError says an interface does not exist.
type noLinkError struct{ name string }

func (e *noLinkError) Error() string { return fmt.Sprintf("no interface %q on this host", e.name) }

// errNoLink matches every noLinkError with errors.Is.
var errNoLink = &noLinkError{}

func (e *noLinkError) Is(target error) bool { _, ok := target.(*noLinkError); return ok }

// errNoVLAN is the error of a kernel without 802.1Q support.
var errNoVLAN = errors.New("this kernel has no 802.1Q VLAN support (module 8021q)")

func (m *Manager) link(name string) (netlink.Link, error) {
	l, err := m.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, &noLinkError{name}
		}
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	return l, nil
}

// vlanLink is the VLAN child Fulcrum asks the kernel for.
func vlanLink(name string, id, mtu, parentIndex int) *netlink.Vlan {
	a := netlink.NewLinkAttrs()
	a.Name = name
	a.ParentIndex = parentIndex
	a.MTU = mtu
	a.Alias = Alias
	return &netlink.Vlan{LinkAttrs: a, VlanId: id, VlanProtocol: netlink.VLAN_PROTOCOL_8021Q}
}

// unsupported reports whether err says the kernel lacks a link type.
func unsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || strings.Contains(strings.ToLower(err.Error()), "unknown device type")
}

// gone reports whether err says the thing to remove is not there.
func gone(err error) bool {
	return errors.Is(err, errNoLink) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENODEV)
}

// ensure makes the kernel have w. old is the owned item of the same key,
// or nil. It returns the item owned afterwards (nil when the host's own
// object already matched), and the undo of its change (nil if none).
func (m *Manager) ensure(w, old *item) (*item, func() error, error) {
	switch w.Kind {
	case kindVLAN:
		return m.ensureVLAN(w, old)
	case kindMTU, kindLinkState:
		return m.ensureLinkSetting(w, old)
	case kindAddr, kindVIP:
		return m.ensureAddr(w, old)
	case kindRoute:
		return m.ensureRoute(w, old)
	case kindRule:
		return m.ensureRule(w, old)
	case kindChain:
		return m.ensureChain(w, old)
	case kindSysctl:
		return m.ensureSysctl(w, old)
	case kindResolv:
		return m.ensureResolv(w, old)
	case kindHostname:
		return m.ensureHostname(w, old)
	}
	return nil, nil, fmt.Errorf("hostnet: unknown item kind %q", w.Kind)
}

// remove undoes an owned item: deletes what Fulcrum created, puts back
// what it changed. A thing already gone is no error.
func (m *Manager) remove(it *item) error {
	if m.h == nil && it.Kind != kindResolv && it.Kind != kindHostname && it.Kind != kindSysctl {
		return errors.New("netlink is not available")
	}
	var err error
	switch it.Kind {
	case kindVLAN:
		err = m.delLink(it.Link)
	case kindMTU, kindLinkState:
		err = m.setLink(it.Kind, it.Link, it.Prev)
	case kindAddr, kindVIP:
		err = m.delAddr(it.Link, it.Addr)
	case kindRoute:
		if it.PrevRoute != nil {
			var r *netlink.Route
			if r, err = m.nlRoute(it.PrevRoute); err == nil {
				err = m.h.RouteReplace(r)
			}
		} else {
			err = m.delRoute(it.Route)
		}
	case kindRule:
		err = m.h.RuleDel(nlRule(it.Rule))
	case kindChain:
		err = m.delChain(it.Name)
	case kindSysctl:
		err = m.writeSysctl(it.Name, it.Prev)
	case kindResolv:
		err = restoreFile(it.Name, it.Prev, it.PrevAbsent, it.PrevLink)
	case kindHostname:
		err = unix.Sethostname([]byte(it.Prev))
	}
	if err != nil && gone(err) {
		return nil
	}
	return err
}

func (m *Manager) ensureVLAN(w, old *item) (*item, func() error, error) {
	l, err := m.link(w.Link)
	if err == nil {
		v, ok := l.(*netlink.Vlan)
		par, perr := m.link(w.Parent)
		if !ok || v.VlanId != w.VLAN || perr != nil || v.Attrs().ParentIndex != par.Attrs().Index {
			return nil, nil, fmt.Errorf("interface %q exists and is not VLAN %d of %s", w.Link, w.VLAN, w.Parent)
		}
		return old, nil, nil
	}
	if !errors.Is(err, errNoLink) {
		return nil, nil, err
	}
	par, err := m.link(w.Parent)
	if err != nil {
		return nil, nil, err
	}
	if err := m.h.LinkAdd(vlanLink(w.Link, w.VLAN, w.MTU, par.Attrs().Index)); err != nil {
		if unsupported(err) {
			return nil, nil, fmt.Errorf("%w: %w", errNoVLAN, err)
		}
		return nil, nil, fmt.Errorf("creating VLAN %d on %s: %w", w.VLAN, w.Parent, err)
	}
	m.log.Info("created VLAN child", "link", w.Link, "parent", w.Parent, "vlan", w.VLAN)
	return w, func() error { return m.delLink(w.Link) }, nil
}

func (m *Manager) delLink(name string) error {
	l, err := m.link(name)
	if err != nil {
		return err
	}
	return m.h.LinkDel(l)
}

// linkSetting reads an interface's MTU or link state ("up"/"down").
func linkSetting(k kind, l netlink.Link) string {
	if k == kindMTU {
		return strconv.Itoa(l.Attrs().MTU)
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		return "up"
	}
	return "down"
}

func (m *Manager) setLink(k kind, name, v string) error {
	l, err := m.link(name)
	if err != nil {
		return err
	}
	if k == kindMTU {
		mtu, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("MTU %q: %w", v, err)
		}
		return m.h.LinkSetMTU(l, mtu)
	}
	if v == "down" {
		return m.h.LinkSetDown(l)
	}
	return m.h.LinkSetUp(l)
}

func (m *Manager) ensureLinkSetting(w, old *item) (*item, func() error, error) {
	l, err := m.link(w.Link)
	if err != nil {
		return nil, nil, err
	}
	cur := linkSetting(w.Kind, l)
	if cur == w.Value {
		return old, nil, nil
	}
	if err := m.setLink(w.Kind, w.Link, w.Value); err != nil {
		return nil, nil, fmt.Errorf("setting %s %s: %w", w.Kind, w.Value, err)
	}
	rec := *w
	rec.Prev = cur
	if old != nil {
		rec.Prev = old.Prev
	}
	return &rec, func() error { return m.setLink(w.Kind, w.Link, cur) }, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (m *Manager) ensureAddr(w, old *item) (*item, func() error, error) {
	pf, err := netip.ParsePrefix(w.Addr)
	if err != nil {
		return nil, nil, err
	}
	l, err := m.link(w.Link)
	if err != nil {
		return nil, nil, err
	}
	var scope netlink.Link // where to look: the interface, or every one for a VIP
	if w.Kind == kindAddr {
		scope = l
	}
	have, err := m.h.AddrList(scope, family(pf.Addr()))
	if err != nil {
		return nil, nil, fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range have {
		ap, _ := netip.AddrFromSlice(a.IP)
		ones, _ := a.Mask.Size()
		if ap.Unmap() != pf.Addr() || (w.Kind == kindAddr && ones != pf.Bits()) {
			continue
		}
		if w.Kind == kindVIP && a.LinkIndex != l.Attrs().Index {
			// on another interface: the host's own, or Fulcrum's VIP moving
			// to this one (the old one goes when the plan is committed)
			if other, err := m.h.LinkByIndex(a.LinkIndex); err == nil &&
				m.find((&item{Kind: kindVIP, Link: other.Attrs().Name, Addr: w.Addr}).key()) != nil {
				continue
			}
		}
		return old, nil, nil
	}
	a := &netlink.Addr{IPNet: ipNet(pf)}
	if w.Kind == kindVIP && pf.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := m.h.AddrAdd(l, a); err != nil {
		return nil, nil, fmt.Errorf("adding %s to %s: %w", w.Addr, w.Link, err)
	}
	m.log.Info("added address", "link", w.Link, "addr", w.Addr, "vip", w.Kind == kindVIP)
	return w, func() error { return m.delAddr(w.Link, w.Addr) }, nil
}

func (m *Manager) delAddr(link, addr string) error {
	pf, err := netip.ParsePrefix(addr)
	if err != nil {
		return err
	}
	l, err := m.link(link)
	if err != nil {
		return err
	}
	return m.h.AddrDel(l, &netlink.Addr{IPNet: ipNet(pf)})
}

// nlRoute is the netlink route of s.
func (m *Manager) nlRoute(s *routeSpec) (*netlink.Route, error) {
	dst, err := netip.ParsePrefix(s.Dst)
	if err != nil {
		return nil, err
	}
	r := &netlink.Route{Table: s.Table, Dst: ipNet(dst), Family: family(dst.Addr()), Protocol: netlink.RouteProtocol(s.Proto), Scope: netlink.Scope(s.Scope)}
	if s.Proto == 0 {
		r.Protocol = RouteProtocol
	}
	if s.Gw != "" {
		r.Gw = net.ParseIP(s.Gw)
	}
	if s.Src != "" {
		r.Src = net.ParseIP(s.Src)
	}
	if s.Local {
		r.Type = unix.RTN_LOCAL
		r.Scope = netlink.SCOPE_HOST
	}
	if s.Dev != "" {
		l, err := m.link(s.Dev)
		if err != nil {
			return nil, err
		}
		r.LinkIndex = l.Attrs().Index
	}
	return r, nil
}

// findRoute returns the route of metric 0 to s.Dst in s.Table, or nil.
func (m *Manager) findRoute(s *routeSpec) (*netlink.Route, error) {
	dst, err := netip.ParsePrefix(s.Dst)
	if err != nil {
		return nil, err
	}
	rs, err := m.h.RouteListFiltered(family(dst.Addr()), &netlink.Route{Table: s.Table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("listing routes of table %d: %w", s.Table, err)
	}
	for i := range rs {
		r := &rs[i]
		d := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if dst.Addr().Is4() {
			d = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		if r.Dst != nil {
			a, _ := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			d = netip.PrefixFrom(a.Unmap(), ones)
		}
		if d == dst && r.Priority == 0 {
			return r, nil
		}
	}
	return nil, nil
}

// specOf describes a kernel route, to put it back later.
func (m *Manager) specOf(r *netlink.Route, table int, dst string) *routeSpec {
	s := &routeSpec{Table: table, Dst: dst, Proto: int(r.Protocol), Scope: int(r.Scope), Local: r.Type == unix.RTN_LOCAL}
	if r.Gw != nil {
		s.Gw = r.Gw.String()
	}
	if r.Src != nil {
		s.Src = r.Src.String()
	}
	if r.LinkIndex > 0 {
		if l, err := m.h.LinkByIndex(r.LinkIndex); err == nil {
			s.Dev = l.Attrs().Name
		}
	}
	return s
}

func (m *Manager) ensureRoute(w, old *item) (*item, func() error, error) {
	want, err := m.nlRoute(w.Route)
	if err != nil {
		return nil, nil, err
	}
	cur, err := m.findRoute(w.Route)
	if err != nil {
		return nil, nil, err
	}
	rec := *w
	if old != nil {
		rec.PrevRoute = old.PrevRoute
	}
	if cur != nil {
		same := (cur.Type == unix.RTN_LOCAL) == w.Route.Local && cur.Gw.Equal(want.Gw) &&
			(want.LinkIndex == 0 || cur.LinkIndex == want.LinkIndex)
		if same {
			return old, nil, nil
		}
		before := m.specOf(cur, w.Route.Table, w.Route.Dst)
		if old == nil {
			rec.PrevRoute = before
		}
		if err := m.h.RouteReplace(want); err != nil {
			return nil, nil, fmt.Errorf("replacing the route to %s in table %d: %w", w.Route.Dst, w.Route.Table, err)
		}
		m.log.Info("replaced route", "table", w.Route.Table, "dst", w.Route.Dst, "via", w.Route.Gw, "was", before.Gw)
		return &rec, func() error {
			r, err := m.nlRoute(before)
			if err != nil {
				return err
			}
			return m.h.RouteReplace(r)
		}, nil
	}
	if err := m.h.RouteAdd(want); err != nil {
		return nil, nil, fmt.Errorf("adding the route to %s via %s in table %d: %w", w.Route.Dst, w.Route.Gw, w.Route.Table, err)
	}
	m.log.Info("added route", "table", w.Route.Table, "dst", w.Route.Dst, "via", w.Route.Gw, "dev", w.Route.Dev)
	spec := *w.Route
	return &rec, func() error { return m.delRoute(&spec) }, nil
}

func (m *Manager) delRoute(s *routeSpec) error {
	r, err := m.nlRoute(s)
	if err != nil {
		return err
	}
	return m.h.RouteDel(r)
}

func nlRule(s *ruleSpec) *netlink.Rule {
	r := netlink.NewRule()
	r.Priority = s.Priority
	r.Family = s.Family
	r.Table = s.Table
	r.Protocol = RouteProtocol
	if s.Src != "" {
		if p, err := netip.ParsePrefix(s.Src); err == nil {
			r.Src = ipNet(p)
		}
	}
	if s.Mark != 0 {
		r.Mark = s.Mark
	}
	if s.Suppress {
		r.SuppressPrefixlen = 0
	}
	return r
}

func (m *Manager) ensureRule(w, old *item) (*item, func() error, error) {
	s := w.Rule
	have, err := m.h.RuleList(s.Family)
	if err != nil {
		return nil, nil, fmt.Errorf("listing rules: %w", err)
	}
	for _, r := range have {
		src := ""
		if r.Src != nil {
			src = r.Src.String()
		}
		if r.Priority == s.Priority && r.Table == s.Table && r.Mark == s.Mark && src == s.Src &&
			(r.SuppressPrefixlen == 0) == s.Suppress {
			return old, nil, nil
		}
	}
	if err := m.h.RuleAdd(nlRule(s)); err != nil {
		return nil, nil, fmt.Errorf("adding rule %s: %w", w.key(), err)
	}
	m.log.Info("added rule", "rule", w.key())
	return w, func() error { return m.h.RuleDel(nlRule(s)) }, nil
}
