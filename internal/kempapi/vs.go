package kempapi

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
)

// findVS finds the service the vs (and port and prot) parameters address:
// vs=<index> names a service or SubVS by its ID, vs=<address>&port=<port>
// [&prot=tcp|udp] a top-level service. parent is the service holding a
// SubVS, nil for a top-level one.
func findVS(cfg *config.Config, p params) (v, parent *config.VirtualService, f *failure) {
	id, addr, port, prot, f := vsKey(p)
	if f != nil {
		return nil, nil, f
	}
	if id > 0 {
		cfg.Walk(func(x, par *config.VirtualService) {
			if x.ID == id && v == nil {
				v, parent = x, par
			}
		})
		if v == nil {
			return nil, nil, errUnknownVS
		}
		return v, parent, nil
	}
	for i := range cfg.VirtualServices {
		x := &cfg.VirtualServices[i]
		if x.Port != port || x.Protocol != prot {
			continue
		}
		if a, err := netip.ParseAddr(x.Address); err == nil && a.Unmap() == addr {
			return x, nil, nil
		}
	}
	return nil, nil, errUnknownVS
}

// vsKey reads the addressing parameters: an index, or an address, port and
// protocol.
func vsKey(p params) (id int, addr netip.Addr, port int, prot string, f *failure) {
	vs, ok := p.get("vs")
	vs = strings.TrimSpace(vs)
	if !ok || vs == "" {
		return 0, addr, 0, "", missing("vs")
	}
	if n, err := strconv.Atoi(vs); err == nil {
		if n <= 0 {
			return 0, addr, 0, "", errUnknownVS
		}
		return n, addr, 0, "", nil
	}
	a, err := netip.ParseAddr(vs)
	if err != nil || a.Zone() != "" {
		return 0, addr, 0, "", invalid("Invalid VS address %q", short(vs))
	}
	ps, ok := p.get("port")
	if !ok || strings.TrimSpace(ps) == "" {
		return 0, addr, 0, "", missing("port")
	}
	port, perr := parsePort(ps)
	if perr != nil {
		return 0, addr, 0, "", perr
	}
	prot, f = protocol(p)
	return 0, a.Unmap(), port, prot, f
}

// parsePort reads a service port; LoadMaster's wildcard port "*" is not
// available in Fulcrum.
func parsePort(s string) (int, *failure) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return 0, invalid("port: the wildcard port * is not available in Fulcrum")
	}
	n, ok := parseInt(s)
	if !ok {
		return 0, invalid("port: Invalid integer value %q", short(s))
	}
	return n, nil
}

// protocol reads prot (default tcp).
func protocol(p params) (string, *failure) {
	prot := strings.ToLower(strings.TrimSpace(p.str("prot")))
	switch prot {
	case "":
		return "tcp", nil
	case "tcp", "udp":
		return prot, nil
	}
	return "", invalid("prot: Invalid protocol %q (tcp or udp)", short(prot))
}

func (c *call) listvs() result {
	snap := c.s.ctl.Current()
	st := c.s.status()
	out := make([]node, 0, len(snap.Config.VirtualServices))
	for i := range snap.Config.VirtualServices {
		v := &snap.Config.VirtualServices[i]
		out = append(out, node{name: "VS", kind: kGroup, item: true, children: vsNodes(snap.Config, v, nil, st)})
		for j := range v.SubVSs {
			out = append(out, node{name: "VS", kind: kGroup, item: true, children: vsNodes(snap.Config, &v.SubVSs[j], v, st)})
		}
	}
	return withData(out...)
}

func (c *call) showvs() result {
	snap := c.s.ctl.Current()
	v, parent, f := findVS(snap.Config, c.p)
	if f != nil {
		return f.result()
	}
	return withData(vsNodes(snap.Config, v, parent, c.s.status())...)
}

// showAfter answers a change with the service's settings after it.
func (c *call) showAfter(cfg *config.Config, id int) result {
	var v, parent *config.VirtualService
	cfg.Walk(func(x, par *config.VirtualService) {
		if x.ID == id && v == nil {
			v, parent = x, par
		}
	})
	if v == nil {
		return completed()
	}
	return withData(vsNodes(cfg, v, parent, c.s.status())...)
}

func (c *call) addvs() result {
	if name, ok := templateParam(c.p); ok {
		return c.addvsTemplate(name)
	}
	vs := strings.TrimSpace(c.p.str("vs"))
	if vs == "" {
		return missing("vs").result()
	}
	a, err := netip.ParseAddr(vs)
	if err != nil || a.Zone() != "" {
		return invalid("Invalid VS address %q", short(vs)).result()
	}
	ps := c.p.str("port")
	if strings.TrimSpace(ps) == "" {
		return missing("port").result()
	}
	port, f := parsePort(ps)
	if f != nil {
		return f.result()
	}
	prot, f := protocol(c.p)
	if f != nil {
		return f.result()
	}
	cfg := c.s.ctl.Current().Config
	for i := range cfg.VirtualServices {
		x := &cfg.VirtualServices[i]
		if x.Port == port && x.Protocol == prot {
			if xa, err := netip.ParseAddr(x.Address); err == nil && xa.Unmap() == a.Unmap() {
				return invalid("Virtual Service already exists").result()
			}
		}
	}
	v := config.VirtualService{Address: a.Unmap().String(), Port: port, Protocol: prot}
	if f := applyVSParams(cfg, &v, nil, c.p); f != nil {
		return f.result()
	}
	var add control.Edit = edit.AddVirtualService{VS: v}
	if slices.Contains(v.TLS.Certificates, certs.SelfSignedName) && !hasCert(cfg, certs.SelfSignedName) {
		add = edit.All{add, selfSignedCert{}}
	}
	snap, f := c.edit(add)
	if f != nil {
		return f.result()
	}
	last := &snap.Config.VirtualServices[len(snap.Config.VirtualServices)-1]
	return withData(vsNodes(snap.Config, last, nil, c.s.status())...)
}

func (c *call) modvs() result {
	v, _, f := findVS(c.s.ctl.Current().Config, c.p)
	if f != nil {
		return f.result()
	}
	id := v.ID
	snap, f := c.edit(edit.ModifyVirtualService{ID: id, Update: func(cfg *config.Config, v, parent *config.VirtualService) error {
		if f := applyVSParams(cfg, v, parent, c.p); f != nil {
			return f
		}
		if c.p.has("createsubvs") {
			if f := createSubVS(v, parent); f != nil {
				return f
			}
		}
		_, err := selfSignedCert{}.Apply(cfg)
		return err
	}})
	if f != nil {
		return f.result()
	}
	return c.showAfter(snap.Config, id)
}

// createSubVS adds a SubVS to v, as modvs createsubvs does. Like a
// LoadMaster, it turns a gen service into a layer-7 parent (type http),
// and the SubVS is of its parent's type.
func createSubVS(v, parent *config.VirtualService) *failure {
	if parent != nil {
		return invalid("createsubvs: a SubVS cannot have SubVSs of its own")
	}
	if v.Type == "gen" {
		if v.Protocol == "udp" {
			return invalid("createsubvs: SubVSs are chosen by HTTP content, which a udp service does not carry")
		}
		v.Type = "http"
	}
	v.SubVSs = append(v.SubVSs, config.VirtualService{Type: v.Type})
	return nil
}

// hasCert reports whether cfg has a certificate (or intermediate) named
// name.
func hasCert(cfg *config.Config, name string) bool {
	return slices.ContainsFunc(cfg.Certificates, func(ct config.Certificate) bool { return ct.Name == name })
}

func (c *call) delvs() result {
	v, _, f := findVS(c.s.ctl.Current().Config, c.p)
	if f != nil {
		return f.result()
	}
	if _, f = c.edit(edit.DeleteVirtualService{ID: v.ID}); f != nil {
		return f.result()
	}
	return completed()
}

// dupvs copies a service (or SubVS) with its real servers and SubVSs under
// new IDs. A top-level copy needs another address or port: newvs, newport
// and newprot set them.
func (c *call) dupvs() result {
	parentID := 0 // the parent of a copied SubVS; 0 for a top-level copy
	v, parent, f := findVS(c.s.ctl.Current().Config, c.p)
	if f != nil {
		return f.result()
	}
	cp := cloneVS(*v)
	var add control.Edit
	if parent != nil {
		parentID = parent.ID
		add = edit.AddSubVS{Parent: parent.ID, VS: cp}
	} else {
		if s := strings.TrimSpace(c.p.str("newvs")); s != "" {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return invalid("newvs: Invalid address %q", short(s)).result()
			}
			cp.Address = a.Unmap().String()
		}
		if s := c.p.str("newport"); s != "" {
			port, f := parsePort(s)
			if f != nil {
				return f.result()
			}
			cp.Port = port
		}
		if s := c.p.str("newprot"); s != "" {
			prot, f := protocol(params{"prot": s})
			if f != nil {
				return f.result()
			}
			cp.Protocol = prot
		}
		add = edit.AddVirtualService{VS: cp}
	}
	snap, f := c.edit(add)
	if f != nil {
		return f.result()
	}
	list := snap.Config.VirtualServices
	if p := snap.Config.VirtualServiceByID(parentID); parentID != 0 && p != nil {
		list = p.SubVSs
	}
	if len(list) == 0 {
		return completed()
	}
	return c.showAfter(snap.Config, list[len(list)-1].ID)
}

// cloneVS copies a service with every ID cleared, so that the write path
// assigns new ones.
func cloneVS(v config.VirtualService) config.VirtualService {
	one := config.Config{VirtualServices: []config.VirtualService{v}}
	cp := one.Clone().VirtualServices[0]
	cp.ID = 0
	for i := range cp.RealServers {
		cp.RealServers[i].ID = 0
		cp.RealServers[i].Follow = 0
	}
	for i := range cp.SubVSs {
		cp.SubVSs[i].ID = 0
		for j := range cp.SubVSs[i].RealServers {
			cp.SubVSs[i].RealServers[j].ID = 0
			cp.SubVSs[i].RealServers[j].Follow = 0
		}
	}
	return cp
}
