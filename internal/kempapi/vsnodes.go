package kempapi

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// status returns the data plane's state of every top-level service by ID.
func (s *Server) status() map[int]status.VS {
	out := map[int]status.VS{}
	if s.rt == nil {
		return out
	}
	for _, st := range s.rt.Status() {
		out[st.ID] = st
	}
	return out
}

// lmStatus is a Status of a service or real server as LoadMaster reports
// it (showvs, showrs, stats, vstotals).
type lmStatus string

// LoadMaster's statuses.
const (
	lmUp       lmStatus = "Up"
	lmDown     lmStatus = "Down"
	lmDisabled lmStatus = "Disabled"
)

// vsStatus is LoadMaster's Status of a service.
func vsStatus(v, parent *config.VirtualService, st map[int]status.VS) lmStatus {
	if !enabled(v.Enabled) || (parent != nil && !enabled(parent.Enabled)) {
		return lmDisabled
	}
	if s, ok := st[v.ID]; ok {
		switch s.State {
		case status.Up:
			return lmUp
		case status.Disabled:
			return lmDisabled
		}
	}
	return lmDown
}

// rsStatus is LoadMaster's Status of a real server. Without health checks
// the data plane reports enabled real servers as in service (Up).
func rsStatus(v *config.VirtualService, rs *config.RealServer, st map[int]status.VS) lmStatus {
	if !enabled(rs.Enabled) {
		return lmDisabled
	}
	if s, ok := st[v.ID]; ok {
		for _, r := range s.RealServers {
			if r.ID != rs.ID {
				continue
			}
			switch r.State {
			case status.Enabled:
				return lmUp
			case status.Disabled:
				return lmDisabled
			}
			return lmDown
		}
	}
	return lmDown
}

func enabled(b *bool) bool { return b == nil || *b }

// The WAF option lists of a service without WAF, as a LoadMaster shows
// them.
var wafDefaultOpts = []string{"opnormal", "auditnone", "reqdatadisable", "resdatadisable"}

// layer is 7 for the service types Fulcrum proxies at layer 7.
func layer(v *config.VirtualService) int {
	switch v.Type {
	case "http", "http2", "tls":
		return 7
	}
	return 4
}

var addVias = []string{"xff", "xff-via", "none", "clientside-via", "clientside", "xff-novia", "via"}

var checkMethods = []string{"HEAD", "GET", "POST", "OPTIONS"}

// vsNodes is a service in LoadMaster's element order (showvs, addvs,
// modvs; a <VS> of listvs). Elements for settings a LoadMaster has and
// Fulcrum does not (WAF, ESP, caching, ...) are shown with the value that
// says "off", which is what they are. String settings that are empty are
// left out, as LoadMaster does.
func vsNodes(cfg *config.Config, v, parent *config.VirtualService, st map[int]status.VS) []node {
	hc := v.HealthCheck
	ns := make([]node, 0, 112+len(v.RealServers)+len(v.SubVSs))
	ns = append(ns,
		str("Status", string(vsStatus(v, parent, st))),
		inum("Index", v.ID),
		str("VSAddress", v.Address),
		numStr("VSPort", v.Port),
	)
	if v.ExtraPorts != "" {
		ns = append(ns, str("ExtraPorts", v.ExtraPorts))
	}
	ns = append(ns, inum("Layer", layer(v)))
	if v.NickName != "" {
		ns = append(ns, str("NickName", v.NickName))
	}
	ns = append(ns,
		yn("Enable", enabled(v.Enabled)),
		yn("SSLReverse", false),
		yn("SSLReencrypt", reencrypts(v, parent)),
	)
	if v.TLS.Offload {
		ns = append(ns, yn("SSLAcceleration", true))
	}
	if len(v.TLS.Certificates) > 0 {
		ns = append(ns, str("CertFile", strings.Join(v.TLS.Certificates, " ")))
	}
	ns = append(ns,
		inum("InterceptMode", 0),
		yn("Intercept", false),
		opts("InterceptOpts", wafDefaultOpts...),
		inum("AlertThreshold", 0),
		opts("OwaspOpts", wafDefaultOpts...),
		inum("BlockingParanoia", 0),
		yn("IPReputationBlocking", false),
		inum("ExecutingParanoia", 0),
		inum("AnomalyScoringThreshold", 0),
		inum("PCRELimit", 0),
		inum("JSONDLimit", 0),
		inum("BodyLimit", 0),
		inum("Transactionlimit", 0),
		yn("Transparent", config.IsTrue(v.Transparent)),
		yn("SubnetOriginating", config.IsTrue(v.SubnetOriginating)),
		inum("ServerInit", 0),
		inum("StartTLSMode", 0),
		inum("Idletime", v.Idletime),
		yn("Cache", false),
		yn("Compress", false),
		inum("Verify", 0),
		yn("UseforSnat", false),
		yn("ForceL4", layer(v) == 4),
		yn("ForceL7", layer(v) == 7),
		yn("MultiConnect", false),
		inum("ClientCert", 0),
		inum("SecurityHeaderOptions", 0),
		inum("SameSite", 0),
		yn("VerifyBearer", false),
		numStr("ErrorCode", 0),
		yn("CheckUse1.1", hc.HTTP11),
		inum("MatchLen", 0),
		inum("CheckUseGet", index(checkMethods, hc.Method)),
	)
	if v.DefaultGateway != "" {
		ns = append(ns, str("DefaultGW", v.DefaultGateway))
	}
	if v.SorryServer != nil {
		ns = append(ns, str("StandbyAddr", v.SorryServer.Address), inum("StandbyPort", v.SorryServer.Port))
	}
	ns = append(ns,
		numStr("SSLRewrite", 0),
		str("VStype", v.Type),
		inum("FollowVSID", v.FollowVSID),
		str("Protocol", v.Protocol),
		str("Schedule", scheduleOut(v.Schedule)),
	)
	if v.Persistence.Mode != "" && v.Persistence.Mode != persist.ModeNone {
		ns = append(ns, str("Persist", persistOut(v.Persistence.Mode)))
	}
	if v.Persistence.Cookie != "" {
		ns = append(ns, str("Cookie", v.Persistence.Cookie))
	}
	if v.Persistence.QueryTag != "" {
		ns = append(ns, str("QueryTag", v.Persistence.QueryTag))
	}
	ns = append(ns,
		str("CheckType", hc.Type),
		numStr("PersistTimeout", v.Persistence.Timeout),
		numStr("CheckPort", hc.Port),
	)
	if hc.Host != "" {
		ns = append(ns, str("CheckHost", hc.Host))
	}
	if hc.URL != "" {
		ns = append(ns, str("CheckUrl", hc.URL))
	}
	if len(hc.Codes) > 0 {
		codes := make([]string, len(hc.Codes))
		for i, c := range hc.Codes {
			codes[i] = strconv.Itoa(c)
		}
		ns = append(ns, str("CheckCodes", strings.Join(codes, " ")))
	}
	if hc.Pattern != "" {
		ns = append(ns, str("CheckPattern", hc.Pattern))
	}
	if len(hc.Headers) > 0 {
		ns = append(ns, str("CheckHeaders", formatHeaders(hc.Headers)))
	}
	if hc.PostData != "" {
		ns = append(ns, str("CheckPostData", hc.PostData))
	}
	master, masterID := 0, 0
	if len(v.SubVSs) > 0 {
		master = 1
	}
	if parent != nil {
		masterID = parent.ID
	}
	transparent := 0
	if config.IsTrue(v.Transparent) {
		transparent = 1
	}
	ns = append(ns,
		yn("HTTPReschedule", false),
		inum("NRules", 0),
		inum("NRequestRules", ruleCount(v, slotRequest)),
		inum("NResponseRules", ruleCount(v, slotResponse)),
		inum("NMatchBodyRules", 0),
		inum("NPreProcessRules", ruleCount(v, slotPre)),
		yn("EspEnabled", false),
		inum("InputAuthMode", 0),
		inum("OutputAuthMode", 0),
		inum("MasterVS", master),
		inum("MasterVSID", masterID),
		inum("IsTransparent", transparent),
		inum("AddVia", index(addVias, v.AddVia)),
		inum("QoS", 0),
		numStr("TlsType", tlsTypeOut(v.TLS)),
		yn("NeedHostName", v.TLS.NeedHostName),
		yn("OCSPVerify", false),
		yn("AllowHTTP2", false),
		yn("PassCipher", false),
		yn("PassSni", false),
		inum("ChkInterval", hc.Interval),
		inum("ChkTimeout", hc.Timeout),
		inum("ChkRetryCount", hc.RetryCount),
		inum("Bandwidth", v.Limits.Bandwidth),
		inum("ConnsPerSecLimit", v.Limits.ConnsPerSec),
		inum("RequestsPerSecLimit", v.Limits.RequestsPerSec),
		inum("MaxConnsLimit", v.Limits.MaxConns),
		yn("RefreshPersist", false),
		yn("ResponseStatusRemap", false),
		inum("ResponseRemapMsgFormat", 0),
		yn("EnhancedHealthChecks", hc.MinUp > 0),
		inum("RsMinimum", hc.MinUp),
		inum("NumberOfRSs", len(v.RealServers)),
	)
	for i := range v.SubVSs {
		sub := &v.SubVSs[i]
		ns = append(ns, node{name: "SubVS", kind: kGroup, item: true, children: []node{
			str("Status", string(vsStatus(sub, v, st))),
			inum("VSIndex", sub.ID),
			inum("RsIndex", sub.ID),
			str("Name", sub.NickName),
			str("Forward", "nat"),
			inum("Weight", config.DefaultWeight),
			inum("Limit", 0),
			yn("Critical", false),
			yn("Enable", enabled(sub.Enabled)),
		}})
	}
	for i := range v.RealServers {
		n := rsNode(v, &v.RealServers[i], st)
		ns = append(ns, n)
	}
	return ns
}

// rsNode is one real server as an <Rs> element.
func rsNode(v *config.VirtualService, rs *config.RealServer, st map[int]status.VS) node {
	addr, dns := rs.Address, ""
	if _, err := netip.ParseAddr(rs.Address); err != nil {
		dns = rs.Address
	}
	return node{name: "Rs", kind: kGroup, item: true, children: []node{
		str("Status", string(rsStatus(v, rs, st))),
		inum("VSIndex", v.ID),
		inum("RsIndex", rs.ID),
		str("Addr", addr),
		inum("Port", rs.Port),
		str("DnsName", dns),
		str("Forward", "nat"),
		inum("Weight", rs.Weight),
		inum("Limit", rs.Limit),
		inum("RateLimit", 0),
		inum("Follow", rs.Follow),
		yn("Enable", enabled(rs.Enabled)),
		yn("Critical", rs.Critical),
		inum("Nrules", 0),
	}}
}

func index(list []string, v string) int {
	for i, x := range list {
		if x == v {
			return i
		}
	}
	return 0
}

// formatHeaders writes check headers as LoadMaster's "Name:value|Name:value".
func formatHeaders(h map[string]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sortStrings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + h[k]
	}
	return strings.Join(parts, "|")
}

// --- commands ---

// reencrypts reports whether v's connections to its real servers use TLS:
// its own setting, or for a SubVS its parent's, which the layer-7 proxy
// applies to every SubVS.
func reencrypts(v, parent *config.VirtualService) bool {
	return v.TLS.Reencrypt || parent != nil && parent.TLS.Reencrypt
}
