package kempapi

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
)

// rsKey reads the rs (and rsport) parameters: rs=!<RsIndex>, or an
// address or DNS name with an optional rsport.
func rsKey(p params) (id int, addr string, port int, f *failure) {
	rs := strings.TrimSpace(p.str("rs"))
	if rs == "" {
		return 0, "", 0, missing("rs")
	}
	if strings.HasPrefix(rs, "!") {
		n, err := strconv.Atoi(rs[1:])
		if err != nil || n <= 0 {
			return 0, "", 0, errUnknownRS
		}
		return n, "", 0, nil
	}
	if s, ok := p.get("rsport"); ok && strings.TrimSpace(s) != "" {
		n, good := parseInt(s)
		if !good {
			return 0, "", 0, invalid("rsport: Invalid integer value %q", short(s))
		}
		port = n
	}
	return 0, normAddr(rs), port, nil
}

// normAddr writes an IP address in its canonical form; names are kept.
func normAddr(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return s
}

func sameAddr(a, b string) bool { return strings.EqualFold(normAddr(a), normAddr(b)) }

// findRS finds the real server rs/rsport of v. Without rsport, the address
// must name exactly one real server.
func findRS(v *config.VirtualService, p params) (*config.RealServer, *failure) {
	id, addr, port, f := rsKey(p)
	if f != nil {
		return nil, f
	}
	var found *config.RealServer
	for i := range v.RealServers {
		rs := &v.RealServers[i]
		switch {
		case id > 0 && rs.ID == id:
			return rs, nil
		case id == 0 && sameAddr(rs.Address, addr) && (port == 0 || rs.Port == port):
			if found != nil {
				return nil, invalid("rsport: %s is a real server more than once; give rsport", short(addr))
			}
			found = rs
		}
	}
	if found == nil {
		return nil, errUnknownRS
	}
	return found, nil
}

// applyRSParams applies the real-server parameters present in p.
func applyRSParams(rs *config.RealServer, p params, adding bool) *failure {
	if !adding {
		if n, ok, f := intParam(p, "newport", "newport"); f != nil {
			return f
		} else if ok {
			rs.Port = n
		}
	}
	if n, ok, f := intParam(p, "weight", "weight"); f != nil {
		return f
	} else if ok {
		if n < 0 {
			return invalid("weight: must be 1-65535 (0: the default, %d), got %d", config.DefaultWeight, n)
		}
		if n == 0 {
			n = config.DefaultWeight // 0 means the default, as in the native API
		}
		rs.Weight = n
	}
	if n, ok, f := intParam(p, "limit", "limit"); f != nil {
		return f
	} else if ok {
		rs.Limit = n
	}
	if n, ok, f := intParam(p, "follow", "follow"); f != nil {
		return f
	} else if ok {
		rs.Follow = n
	}
	if b, ok, f := boolParam(p, "enable", "enable"); f != nil {
		return f
	} else if ok {
		rs.Enabled = config.Bool(b)
	}
	if b, ok, f := boolParam(p, "critical", "critical"); f != nil {
		return f
	} else if ok {
		rs.Critical = b
	}
	if s, ok := p.get("forward"); ok && !strings.EqualFold(strings.TrimSpace(s), "nat") && strings.TrimSpace(s) != "" {
		return invalid("forward: direct server return (route) is not available in Fulcrum (only nat is accepted)")
	}
	if s, ok := p.get("ratelimit"); ok && strings.TrimSpace(s) != "" && strings.TrimSpace(s) != "0" {
		return invalid("ratelimit: per real server request limits are not available in Fulcrum (only 0 is accepted)")
	}
	// non_local only lifts a LoadMaster restriction Fulcrum does not have.
	return nil
}

// rsPerm is what modrs needs: enabling or disabling a real server is an
// operator's job; any other change needs the write permission.
func rsPerm(p params) admin.Permission {
	for name := range p {
		switch name {
		case "vs", "port", "prot", "rs", "rsport", "enable":
		default:
			return admin.PermWrite
		}
	}
	return admin.PermOperate
}

// rsResult answers with the given real servers of v.
func (c *call) rsResult(cfg *config.Config, vsID int, rsIDs ...int) result {
	v := cfg.VirtualServiceByID(vsID)
	if v == nil {
		return completed()
	}
	st := c.s.status()
	var out []node
	for i := range v.RealServers {
		rs := &v.RealServers[i]
		want := len(rsIDs) == 0
		for _, id := range rsIDs {
			want = want || id == rs.ID
		}
		if want {
			out = append(out, rsNode(v, rs, st))
		}
	}
	if out == nil {
		out = []node{}
	}
	return withData(out...)
}

func (c *call) addrs() result {
	rs := strings.TrimSpace(c.p.str("rs"))
	if rs == "" {
		return missing("rs").result()
	}
	if strings.HasPrefix(rs, "!") {
		return invalid("rs: give the real server's address to add it").result()
	}
	ps := strings.TrimSpace(c.p.str("rsport"))
	if ps == "" {
		return missing("rsport").result()
	}
	port, good := parseInt(ps)
	if !good {
		return invalid("rsport: Invalid integer value %q", short(ps)).result()
	}
	toAll, _, f := boolParam(c.p, "addtoallsubvs", "addtoallsubvs")
	if f != nil {
		return f.result()
	}
	cfg := c.s.ctl.Current().Config
	v, parent, f := findVS(cfg, c.p)
	if f != nil {
		return f.result()
	}
	vsID := v.ID
	list := []*config.VirtualService{v}
	if toAll {
		if parent == nil {
			return invalid("addtoallsubvs: give the index of one of the SubVSs as vs").result()
		}
		list = nil
		for i := range parent.SubVSs {
			list = append(list, &parent.SubVSs[i])
		}
	}
	if len(v.SubVSs) > 0 {
		return invalid("Couldn't create RS: this Virtual Service has SubVSs; add real servers to them").result()
	}
	var adds edit.All
	for _, x := range list {
		for _, old := range x.RealServers {
			if sameAddr(old.Address, rs) && old.Port == port {
				return invalid("Real Server already exists").result()
			}
		}
		n := config.RealServer{Address: normAddr(rs), Port: port}
		if f := applyRSParams(&n, c.p, true); f != nil {
			return f.result()
		}
		adds = append(adds, edit.AddRealServer{VS: x.ID, RS: n})
	}
	snap, f := c.edit(adds)
	if f != nil {
		return f.result()
	}
	v = snap.Config.VirtualServiceByID(vsID)
	if v == nil || len(v.RealServers) == 0 {
		return completed()
	}
	for _, x := range v.RealServers {
		if sameAddr(x.Address, rs) && x.Port == port {
			return c.rsResult(snap.Config, vsID, x.ID)
		}
	}
	return completed()
}

// rsIDs finds the service and real server the parameters name, in the
// current configuration.
func (c *call) rsIDs() (vsID, rsID int, f *failure) {
	v, _, f := findVS(c.s.ctl.Current().Config, c.p)
	if f != nil {
		return 0, 0, f
	}
	rs, f := findRS(v, c.p)
	if f != nil {
		return 0, 0, f
	}
	return v.ID, rs.ID, nil
}

func (c *call) modrs() result {
	vsID, rsID, f := c.rsIDs()
	if f != nil {
		return f.result()
	}
	_, f = c.edit(edit.ModifyRealServer{VS: vsID, RS: rsID, Update: func(rs *config.RealServer) error {
		return nilIfNone(applyRSParams(rs, c.p, false))
	}})
	if f != nil {
		return f.result()
	}
	return completed()
}

func (c *call) delrs() result {
	vsID, rsID, f := c.rsIDs()
	if f != nil {
		return f.result()
	}
	if _, f = c.edit(edit.DeleteRealServer{VS: vsID, RS: rsID}); f != nil {
		return f.result()
	}
	return completed()
}

func (c *call) showrs() result {
	snap := c.s.ctl.Current()
	v, _, f := findVS(snap.Config, c.p)
	if f != nil {
		return f.result()
	}
	if !c.p.has("rs") {
		return c.rsResult(snap.Config, v.ID)
	}
	rs, f := findRS(v, c.p)
	if f != nil {
		return f.result()
	}
	return c.rsResult(snap.Config, v.ID, rs.ID)
}

// setRSEverywhere enables or disables a real server, by address (and
// optionally port), in every service and SubVS.
func (c *call) setRSEverywhere(on bool) result {
	addr := strings.TrimSpace(c.p.str("rs"))
	if addr == "" {
		return missing("rs").result()
	}
	port := 0
	if s := strings.TrimSpace(c.p.str("rsport")); s != "" {
		n, good := parseInt(s)
		if !good {
			return invalid("rsport: Invalid integer value %q", short(s)).result()
		}
		port = n
	}
	var set edit.All
	c.s.ctl.Current().Config.Walk(func(v, _ *config.VirtualService) {
		for _, rs := range v.RealServers {
			if sameAddr(rs.Address, addr) && (port == 0 || rs.Port == port) {
				set = append(set, edit.SetRealServerEnabled{VS: v.ID, RS: rs.ID, Enabled: on})
			}
		}
	})
	if len(set) == 0 {
		return errUnknownRS.result()
	}
	if _, f := c.edit(set); f != nil {
		return f.result()
	}
	return completed()
}

// nilIfNone turns a nil *failure into a nil error (a typed nil pointer in
// an error interface is not nil).
func nilIfNone(f *failure) error {
	if f == nil {
		return nil
	}
	return f
}
