package kempapi

import (
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
)

// netParam is one get/set parameter of the node's network settings
// (LoadMaster's Host & DNS Configuration and Default Gateway). Setting
// one is a network change (see applyNet).
type netParam struct {
	name string
	// path is the configuration path (without indexes) the parameter
	// sets, for errors.
	path string
	get  func(n *netcfg.Network) string
	set  func(n *netcfg.Network, val string)
}

// netParams in getall order. LoadMaster's REST API names hostname,
// nameserver (all name servers, space-separated), searchlist, dfltgw and
// dfltgwv6; older scripts use dns1..dns3 (one name server each),
// dnssearch, defaultgateway and defaultgatewayv6: both are answered.
var netParams []netParam

// netAliases are other names LoadMaster accepts for a parameter.
var netAliases = map[string]string{"namserver": "nameserver"}

func init() {
	gateway := func(name string, v6 bool) netParam {
		path := "network.gateway"
		if v6 {
			path = "network.gateway6"
		}
		return netParam{name: name, path: path,
			get: func(n *netcfg.Network) string {
				if v6 {
					return n.Gateway6
				}
				return n.Gateway
			},
			set: func(n *netcfg.Network, val string) {
				if v6 {
					n.Gateway6 = strings.TrimSpace(val)
				} else {
					n.Gateway = strings.TrimSpace(val)
				}
			}}
	}
	server := func(slot int) netParam {
		return netParam{name: "dns" + string(rune('1'+slot)), path: "network.dns.servers",
			get: func(n *netcfg.Network) string {
				if slot < len(n.DNS.Servers) {
					return n.DNS.Servers[slot]
				}
				return ""
			},
			set: func(n *netcfg.Network, val string) {
				s := make([]string, max(len(n.DNS.Servers), slot+1))
				copy(s, n.DNS.Servers)
				s[slot] = strings.TrimSpace(val)
				n.DNS.Servers = compact(s)
			}}
	}
	list := func(name, path string, field func(n *netcfg.Network) *[]string) netParam {
		return netParam{name: name, path: path,
			get: func(n *netcfg.Network) string { return strings.Join(*field(n), " ") },
			set: func(n *netcfg.Network, val string) { *field(n) = splitList(val) }}
	}
	servers := func(n *netcfg.Network) *[]string { return &n.DNS.Servers }
	search := func(n *netcfg.Network) *[]string { return &n.DNS.Search }
	netParams = []netParam{
		{name: "hostname", path: "network.hostname",
			get: func(n *netcfg.Network) string { return n.Hostname },
			set: func(n *netcfg.Network, val string) { n.Hostname = strings.TrimSpace(val) }},
		list("nameserver", "network.dns.servers", servers),
		list("searchlist", "network.dns.search", search),
		gateway("dfltgw", false),
		gateway("dfltgwv6", true),
		server(0), server(1), server(2),
		list("dnssearch", "network.dns.search", search),
		gateway("defaultgateway", false),
		gateway("defaultgatewayv6", true),
	}
}

// compact drops empty values.
func compact(s []string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// splitList reads a list separated by spaces or commas.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == ';' })
}

func lookupNetParam(name string) (netParam, bool) {
	name = strings.ToLower(strings.TrimSpace(name))
	if a, ok := netAliases[name]; ok {
		name = a
	}
	for _, p := range netParams {
		if p.name == name {
			return p, true
		}
	}
	return netParam{}, false
}

func (c *call) getNet(p netParam) result {
	n := c.s.ctl.Network().Network
	if n == nil {
		n = &netcfg.Network{}
	}
	return withData(str(p.name, p.get(n)))
}

func (c *call) netNodes() []node {
	n := c.s.ctl.Network().Network
	if n == nil {
		n = &netcfg.Network{}
	}
	out := make([]node, 0, len(netParams))
	for _, p := range netParams {
		out = append(out, str(p.name, p.get(n)))
	}
	return out
}

func (c *call) setNet(p netParam, val string) result {
	return c.applyNet(func(n *netcfg.Network) (string, *failure) {
		p.set(n, val)
		return "set " + p.name + " " + orNone(strings.TrimSpace(val)), nil
	}, map[string]string{p.path: p.name})
}
