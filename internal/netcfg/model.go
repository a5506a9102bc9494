// Package netcfg is the model of the appliance's own network: interfaces
// and their addresses, VLAN children, the default gateways, static
// routes, VIP ranges, DNS, the host name and the admin listener's
// address, with its defaults and Validate; and Plan, which works out what
// a service configuration needs of the host on top of it (VIP addresses,
// per-service gateways as policy routes, SNAT, transparency).
//
// These settings are node-local: they live apart from the shared service
// configuration (package config), in their own revisions, so that a
// cluster never copies one node's addresses to another. The package is
// pure, like config: no I/O. Package hostnet applies a Plan to the host.
package netcfg

// DefaultConfirmSeconds is the confirm window of a network change when
// Network.ConfirmSeconds is 0.
const DefaultConfirmSeconds = 60

// Network is one generation of the node's network settings. The zero
// value manages nothing: Fulcrum then leaves the host's interfaces,
// routes, DNS and host name alone.
type Network struct {
	// Hostname is the node's host name (LoadMaster `hostname`); empty
	// leaves the host's name alone. Default: "".
	Hostname string `json:"hostname,omitempty"`
	// DNS are the resolver settings written to the resolver file; empty
	// leaves it alone. Default: none.
	DNS DNS `json:"dns"`
	// Interfaces are the interfaces Fulcrum configures: physical ones by
	// name, and VLAN children it creates. An interface not listed is left
	// alone. Default: none.
	Interfaces []Interface `json:"interfaces,omitempty"`
	// Gateway is the IPv4 default gateway (LoadMaster `defaultgateway`);
	// it must lie in the subnet of one of Interfaces. Default: "" (none
	// set by Fulcrum).
	Gateway string `json:"gateway,omitempty"`
	// Gateway6 is the IPv6 default gateway, like Gateway. Default: "".
	Gateway6 string `json:"gateway6,omitempty"`
	// Routes are static routes (LoadMaster `addroute`). Default: none.
	Routes []Route `json:"routes,omitempty"`
	// EnforceVIPRanges refuses a virtual service whose address lies in no
	// interface's subnet and no VIP range (with it off, such an address
	// is used as it is: it must then be local already). Default: false.
	EnforceVIPRanges bool `json:"enforceVipRanges"`
	// KeepOnStop leaves the interface settings (addresses, VLANs, MTU,
	// link state, gateways, routes, DNS, host name) in place when Fulcrum
	// stops; what services need (VIP addresses, policy routes, the
	// nftables table) is always removed. Default: false: stopping leaves
	// the host's network as Fulcrum found it.
	KeepOnStop bool `json:"keepOnStop"`
	// ConfirmSeconds is the confirm window of a network change: a change
	// not confirmed within it is rolled back to the previous settings, so
	// that a change that cuts the admin off undoes itself; 5-3600, 0
	// means DefaultConfirmSeconds. Default: 60.
	ConfirmSeconds int `json:"confirmSeconds,omitempty"`
	// AdminAddress is the admin listener's address (host:port) used when
	// `fulcrum serve` is not given --admin-addr; set by `fulcrum setup`.
	// Default: "" (serve's own default).
	AdminAddress string `json:"adminAddress,omitempty"`
}

// DNS are the resolver settings.
type DNS struct {
	// Servers are up to three name servers (LoadMaster `dns1`..`dns3`),
	// IP addresses. Default: none.
	Servers []string `json:"servers,omitempty"`
	// Search are up to six search domains (LoadMaster `dnssearch`).
	// Default: none.
	Search []string `json:"search,omitempty"`
}

// Interface is one interface Fulcrum configures.
type Interface struct {
	// Name is the interface's name: an existing (physical) interface such
	// as "eth0", or the name of the VLAN child Fulcrum creates, such as
	// "eth1.10". 1-15 characters. Required.
	Name string `json:"name"`
	// Parent makes this a VLAN child of the named interface, which
	// Fulcrum creates and removes (LoadMaster `addvlan`); requires VLAN.
	// Default: "" (an existing interface).
	Parent string `json:"parent,omitempty"`
	// VLAN is the 802.1Q VLAN ID of a VLAN child, 1-4094. Default: 0.
	VLAN int `json:"vlan,omitempty"`
	// Addresses are the interface's addresses with prefix length in CIDR
	// form, e.g. "10.0.0.5/24" (LoadMaster `modiface` `addr`), IPv4 or
	// IPv6. Subnets of different interfaces must not overlap. Default:
	// none.
	Addresses []string `json:"addresses,omitempty"`
	// MTU is the interface's MTU, 576-9216; 0 leaves it as it is.
	// Default: 0.
	MTU int `json:"mtu,omitempty"`
	// Down sets the link down; Fulcrum otherwise sets it up. Default:
	// false.
	Down bool `json:"down,omitempty"`
	// VIPRanges are further ranges of virtual-service addresses reached
	// through this interface (LoadMaster "additional addresses",
	// `addadditional`): a prefix ("10.0.1.0/28") or a range
	// ("10.0.1.10-10.0.1.20"). A VIP in one is added to this interface
	// and announced while a service uses it. Default: none.
	VIPRanges []string `json:"vipRanges,omitempty"`
}

// Route is one static route.
type Route struct {
	// Destination is the destination prefix, e.g. "10.20.0.0/16".
	// Required.
	Destination string `json:"destination"`
	// Gateway is the next hop; it must lie in the subnet of one of the
	// interfaces. Required.
	Gateway string `json:"gateway"`
}

// Confirm is the confirm window of n in seconds.
func (n *Network) Confirm() int {
	if n == nil || n.ConfirmSeconds == 0 {
		return DefaultConfirmSeconds
	}
	return n.ConfirmSeconds
}

// Clone returns a deep copy of n.
func (n *Network) Clone() *Network {
	if n == nil {
		return &Network{}
	}
	c := *n
	c.DNS.Servers = append([]string(nil), n.DNS.Servers...)
	c.DNS.Search = append([]string(nil), n.DNS.Search...)
	c.Routes = append([]Route(nil), n.Routes...)
	c.Interfaces = make([]Interface, len(n.Interfaces))
	for i, f := range n.Interfaces {
		f.Addresses = append([]string(nil), f.Addresses...)
		f.VIPRanges = append([]string(nil), f.VIPRanges...)
		c.Interfaces[i] = f
	}
	if len(n.Interfaces) == 0 {
		c.Interfaces = nil
	}
	return &c
}

// Interface returns the interface named name, or nil.
func (n *Network) Interface(name string) *Interface {
	for i := range n.Interfaces {
		if n.Interfaces[i].Name == name {
			return &n.Interfaces[i]
		}
	}
	return nil
}

// Empty reports whether n manages nothing of the host.
func (n *Network) Empty() bool {
	return n == nil || (n.Hostname == "" && len(n.DNS.Servers) == 0 && len(n.DNS.Search) == 0 &&
		len(n.Interfaces) == 0 && n.Gateway == "" && n.Gateway6 == "" && len(n.Routes) == 0)
}

// Link is one interface as the kernel has it (for `showiface`, the web
// UI's interface list and `fulcrum setup`).
type Link struct {
	// Name is the interface's name.
	Name string `json:"name"`
	// Index is the kernel's interface index.
	Index int `json:"index"`
	// MAC is the hardware address, "" if none.
	MAC string `json:"mac,omitempty"`
	// MTU is the current MTU.
	MTU int `json:"mtu"`
	// Up is true when the link is administratively up.
	Up bool `json:"up"`
	// Carrier is true when the link has carrier (operational state up).
	Carrier bool `json:"carrier"`
	// Kind is the link type: "device", "veth", "vlan", "bridge", ….
	Kind string `json:"kind"`
	// Parent is a VLAN child's parent interface.
	Parent string `json:"parent,omitempty"`
	// VLAN is a VLAN child's ID.
	VLAN int `json:"vlan,omitempty"`
	// Addresses are the interface's addresses in CIDR form.
	Addresses []string `json:"addresses,omitempty"`
	// Managed is true when Fulcrum configures the interface.
	Managed bool `json:"managed"`
}
