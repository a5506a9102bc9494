package setupui

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// HostInterface is one of the host's interfaces as the quick setup lists
// it (the standard library's view: enough to choose one).
type HostInterface struct {
	// Name is the interface's name.
	Name string
	// MAC is its hardware address, "" if none.
	MAC string
	// Up is true when the link is administratively up.
	Up bool
	// Addresses are its current addresses in CIDR form.
	Addresses []string
}

// String describes the interface on one line, for the list to choose from.
func (h HostInterface) String() string {
	state := "down"
	if h.Up {
		state = "up"
	}
	s := fmt.Sprintf("%-15s %-4s", h.Name, state)
	if h.MAC != "" {
		s += " " + h.MAC
	}
	if len(h.Addresses) > 0 {
		s += "  " + strings.Join(h.Addresses, " ")
	}
	return s
}

// hostInterfaces lists the host's interfaces but the loopback ones.
func hostInterfaces() ([]HostInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list the host's interfaces: %w", err)
	}
	var out []HostInterface
	for _, f := range ifs {
		if f.Flags&net.FlagLoopback != 0 {
			continue
		}
		h := HostInterface{Name: f.Name, MAC: f.HardwareAddr.String(), Up: f.Flags&net.FlagUp != 0}
		addrs, err := f.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", f.Name, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				h.Addresses = append(h.Addresses, n.String())
			}
		}
		out = append(out, h)
	}
	return out, nil
}

// localAddrs returns every address of the host, loopback included.
func localAddrs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out[ip.Unmap()] = true
			}
		}
	}
	return out
}

// primaryAddress returns the address of h a setup proposes: its first
// global IPv4 address, else its first global IPv6 address, else "".
func (h HostInterface) primaryAddress() string {
	var v6 string
	for _, a := range h.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil || !p.Addr().IsGlobalUnicast() {
			continue
		}
		if p.Addr().Is4() {
			return a
		}
		if v6 == "" {
			v6 = a
		}
	}
	return v6
}
