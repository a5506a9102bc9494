package kempapi

import (
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// stats reports the data plane's counters in LoadMaster's stats layout:
// VStotals, one <Vs> per service, one <Rs> per real server, TPS (HTTP
// requests per second of the layer-7 services, and of those with TLS
// offload), Timestamp and ChangeTime. Fulcrum counts connections, bytes
// (header and body at layer 7) and requests; the appliance-wide sections
// of a LoadMaster (CPU, Memory, Network, DiskUsage, ClientLimits) and
// packet counts are not reported.
func (c *call) stats() result {
	snap := c.s.ctl.Current()
	var list []status.VS
	if c.s.rt != nil {
		list = c.s.rt.Status()
	}
	now := c.s.now()
	connRate, byteRate, reqRate := c.s.rates.sample(now, list)
	byID := map[int]status.VS{}
	var tConns, tBytes, tConnRate, tByteRate int64
	for _, st := range list {
		byID[st.ID] = st
		tConns += st.TotalConns
		tBytes += st.BytesIn + st.BytesOut
		tConnRate += connRate[st.ID]
		tByteRate += byteRate[st.ID]
	}
	out := []node{group("VStotals",
		num("ConnsPerSec", tConnRate),
		num("TotalConns", tConns),
		num("BitsPerSec", tByteRate*8),
		num("TotalBits", tBytes*8),
		num("BytesPerSec", tByteRate),
		num("TotalBytes", tBytes),
	)}
	var rss []node
	for i := range snap.Config.VirtualServices {
		v := &snap.Config.VirtualServices[i]
		st := byID[v.ID]
		out = append(out, node{name: "Vs", kind: kGroup, item: true, children: []node{
			str("VSAddress", v.Address),
			numStr("VSPort", v.Port),
			str("VSProt", v.Protocol),
			inum("Index", v.ID),
			str("Status", strings.ToLower(string(vsStatus(v, nil, byID)))),
			inum("ErrorCode", 0),
			inum("Enable", boolInt(enabled(v.Enabled))),
			num("TotalConns", st.TotalConns),
			num("TotalBytes", st.BytesIn+st.BytesOut),
			num("TotalBits", (st.BytesIn+st.BytesOut)*8),
			num("ActiveConns", st.ActiveConns),
			num("BytesRead", st.BytesIn),
			num("BytesWritten", st.BytesOut),
			num("ConnsPerSec", connRate[v.ID]),
			inum("WafEnable", 0),
		}})
		for j := range v.RealServers {
			rs := &v.RealServers[j]
			var rst status.RS
			for _, x := range st.RealServers {
				if x.ID == rs.ID {
					rst = x
				}
			}
			rss = append(rss, node{name: "Rs", kind: kGroup, item: true, children: []node{
				inum("VSIndex", v.ID),
				inum("RSIndex", rs.ID),
				str("Addr", rs.Address),
				inum("Port", rs.Port),
				str("Status", strings.ToLower(string(rsStatus(v, rs, byID)))),
				inum("Enable", boolInt(enabled(rs.Enabled))),
				num("ActivConns", rst.ActiveConns),
				num("TotalConns", rst.TotalConns),
				num("TotalBytes", rst.BytesIn+rst.BytesOut),
				num("BytesWritten", rst.BytesIn),
				num("BytesRead", rst.BytesOut),
				num("Failures", rst.Failures),
				inum("Weight", rs.Weight),
			}})
		}
	}
	out = append(out, rss...)
	var tps, sslTPS int64
	for i := range snap.Config.VirtualServices {
		v := &snap.Config.VirtualServices[i]
		tps += reqRate[v.ID]
		if v.TLS.Offload {
			sslTPS += reqRate[v.ID]
		}
	}
	out = append(out, group("TPS", num("Total", tps), num("SSL", sslTPS)))
	out = append(out,
		group("Timestamp", num("Sec", now.Unix()), num("Usec", int64(now.Nanosecond()/1000))),
		num("ChangeTime", changeTime(snap.Change.Time.Unix(), snap.Revision)),
	)
	return withData(out...)
}

func changeTime(unix int64, rev uint64) int64 {
	if rev == 0 {
		return 0
	}
	return unix
}

// vstotals counts services, SubVSs and real servers that are up, down and
// disabled.
func (c *call) vstotals() result {
	cfg := c.s.ctl.Current().Config
	st := c.s.status()
	type count struct{ total, up, down, disabled int }
	var vs, sub, rs count
	add := func(n *count, s lmStatus) {
		n.total++
		switch s {
		case lmUp:
			n.up++
		case lmDisabled:
			n.disabled++
		default:
			n.down++
		}
	}
	cfg.Walk(func(v, parent *config.VirtualService) {
		if parent == nil {
			add(&vs, vsStatus(v, nil, st))
		} else {
			add(&sub, vsStatus(v, parent, st))
		}
		for i := range v.RealServers {
			add(&rs, rsStatus(v, &v.RealServers[i], st))
		}
	})
	g := func(name string, n count) node {
		return group(name, inum("Total", n.total), inum("Up", n.up), inum("Down", n.down), inum("Disabled", n.disabled))
	}
	return withData(g("VS", vs), g("SubVS", sub), g("RS", rs))
}
