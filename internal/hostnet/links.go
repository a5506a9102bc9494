package hostnet

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/vishvananda/netlink"
)

// links lists the kernel's interfaces; Managed marks those of n.
func links(h *netlink.Handle, n *netcfg.Network) ([]netcfg.Link, error) {
	ls, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	names := map[int]string{}
	for _, l := range ls {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	out := make([]netcfg.Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		k := netcfg.Link{
			Name:    a.Name,
			Index:   a.Index,
			MTU:     a.MTU,
			Up:      a.Flags&net.FlagUp != 0,
			Carrier: a.OperState == netlink.OperUp || (a.OperState == netlink.OperUnknown && a.Flags&net.FlagRunning != 0),
			Kind:    l.Type(),
			Managed: n != nil && n.Interface(a.Name) != nil,
		}
		if len(a.HardwareAddr) > 0 {
			k.MAC = a.HardwareAddr.String()
		}
		if v, ok := l.(*netlink.Vlan); ok {
			k.VLAN = v.VlanId
			k.Parent = names[a.ParentIndex]
		}
		addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("listing addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok {
				continue
			}
			ones, _ := ad.Mask.Size()
			k.Addresses = append(k.Addresses, netip.PrefixFrom(ip.Unmap(), ones).String())
		}
		out = append(out, k)
	}
	return out, nil
}
