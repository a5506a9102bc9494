package config

import (
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// The allowed values of the enumerated fields.
var (
	// Protocols are the values of VirtualService.Protocol.
	Protocols = []string{"tcp", "udp"}
	// ServiceTypes are the values of VirtualService.Type.
	ServiceTypes = []string{"gen", "http", "http2", "tls"}
	// Schedules are the values of VirtualService.Schedule: the scheduling
	// methods registered in package balance.
	Schedules = balance.Names()
	// PersistModes are the values of Persistence.Mode: the persistence
	// modes registered in package persist.
	PersistModes = persist.Names()
	// AddViaModes are the values of VirtualService.AddVia.
	AddViaModes = []string{"xff", "xff-via", "none", "clientside-via", "clientside", "xff-novia", "via"}
	// TLSProfiles are the values of TLS.Profile.
	TLSProfiles = []string{"modern", "intermediate", "legacy"}
	// CheckTypes are the values of HealthCheck.Type.
	CheckTypes = []string{"icmp", "tcp", "http", "https", "smtp", "nntp", "ftp", "telnet", "pop3", "imap",
		"ldap", "bdata", "dns", "none"}
	// CheckMethods are the values of HealthCheck.Method.
	CheckMethods = []string{"HEAD", "GET", "POST", "OPTIONS"}
	// AlwaysPersistModes are the values of Options.AlwaysPersist, as
	// registered in package persist.
	AlwaysPersistModes = persist.AlwaysNames()
)

// Limits of list and string sizes.
const (
	MaxVirtualServices = 10000
	MaxRealServers     = 1000
	MaxSubVSs          = 256
	MaxExtraPorts      = 64
	MaxNickName        = 64
)

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	hostnameRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$`)
	headerRE   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// Validate checks a configuration whose defaults have been set and returns
// nil or an Errors value holding every problem found, each with its path.
func (c *Config) Validate() error {
	var e errs
	if c.SchemaVersion != SchemaVersion {
		e.add("schemaVersion", "must be %d, got %d", SchemaVersion, c.SchemaVersion)
	}
	c.Options.validate(&e, "options")
	certs := map[string]bool{}
	for i, ct := range c.Certificates {
		p := index("certificates", i)
		if _, dup := certs[ct.Name]; dup {
			e.add(join(p, "name"), "duplicate certificate name %q", ct.Name)
		}
		certs[ct.Name] = ct.Intermediate
		ct.validate(&e, p)
	}
	if len(c.VirtualServices) > MaxVirtualServices {
		e.add("virtualServices", "at most %d services, got %d", MaxVirtualServices, len(c.VirtualServices))
	}
	w := walker{e: &e, certs: certs, listen: map[string]string{}, vsIDs: map[int]string{}, rsIDs: map[int]itemRef{}}
	for i := range c.VirtualServices {
		w.vs(&c.VirtualServices[i], index("virtualServices", i), false)
	}
	c.validateFollow(&e)
	c.validateL7(&e)
	return e.err()
}

func (o *Options) validate(e *errs, p string) {
	if o.DrainTime != 0 {
		e.rng(join(p, "drainTime"), o.DrainTime, 60, 86400)
	}
	e.rng(join(p, "connTimeout"), o.ConnTimeout, 1, 86400)
	e.oneOf(join(p, "alwaysPersist"), o.AlwaysPersist, AlwaysPersistModes)
	e.rng(join(p, "slowStart"), o.SlowStart, 0, 600)
	e.rng(join(p, "throughputLimit"), o.ThroughputLimit, 0, 1000000)
	h := join(p, "health")
	e.rng(join(h, "interval"), o.Health.Interval, 9, 901)
	e.rng(join(h, "timeout"), o.Health.Timeout, 4, 60)
	e.rng(join(h, "retryCount"), o.Health.RetryCount, 2, 15)
	e.rng(join(h, "riseCount"), o.Health.RiseCount, 1, 15)
	e.rng(join(h, "passiveFailures"), o.Health.PassiveFailures, 0, 100)
	if o.Health.Timeout >= o.Health.Interval {
		e.add(join(h, "timeout"), "must be less than interval (%d s), got %d", o.Health.Interval, o.Health.Timeout)
	}
	l := join(p, "adminLockout")
	e.rng(join(l, "attempts"), o.AdminLockout.Attempts, 1, 100)
	e.rng(join(l, "coolDown"), o.AdminLockout.CoolDown, 1, 86400)
	e.rng(join(l, "sessionIdle"), o.AdminLockout.SessionIdle, 60, 86400)
	e.rng(join(l, "sessionMax"), o.AdminLockout.SessionMax, 300, 604800)
	e.rng(join(l, "minPassword"), o.AdminLockout.MinPassword, 8, 64)
	a := join(p, "adaptive")
	if !strings.HasPrefix(o.Adaptive.URL, "/") || len(o.Adaptive.URL) > 126 || strings.ContainsFunc(o.Adaptive.URL, isSpaceOrControl) {
		e.add(join(a, "url"), "must start with / and have at most 126 characters and no spaces, got %q", o.Adaptive.URL)
	}
	e.rng(join(a, "port"), o.Adaptive.Port, 1, 65535)
	e.rng(join(a, "interval"), o.Adaptive.Interval, 1, 600)
	e.rng(join(a, "minPercent"), o.Adaptive.MinPercent, 0, 50)
	e.rng(join(p, "apiRateLimit"), o.APIRateLimit, 0, 10000)
	o.Logging.validate(e, join(p, "logging"))
	o.Alerts.validate(e, join(p, "alerts"))
}

func (ct *Certificate) validate(e *errs, p string) {
	if !nameRE.MatchString(ct.Name) {
		e.add(join(p, "name"), "must be 1-64 letters, digits, '.', '-' or '_' starting with a letter or digit, got %q", ct.Name)
	}
	block, _ := pem.Decode([]byte(ct.CertPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		e.add(join(p, "certPem"), "must hold a PEM CERTIFICATE block")
		return
	}
	if ct.Intermediate {
		if ct.KeyPEM != "" {
			e.add(join(p, "keyPem"), "an intermediate certificate has no private key")
		}
		return
	}
	if ct.KeyPEM == "" {
		e.add(join(p, "keyPem"), "required: the certificate's private key")
		return
	}
	if _, err := tls.X509KeyPair([]byte(ct.CertPEM), []byte(ct.KeyPEM)); err != nil {
		e.add(join(p, "keyPem"), "does not match the certificate or cannot be read: %v", err)
	}
}

// walker validates services and tracks what must be unique across them.
type walker struct {
	e      *errs
	certs  map[string]bool   // name → intermediate
	listen map[string]string // "tcp/127.0.0.1:80" → path of its owner
	vsIDs  map[int]string
	rsIDs  map[int]itemRef
	// Scratch sets of realServers: the addresses and the IDs of one
	// service's real servers.
	rsSeen map[addrPort]int
	rsOwn  map[int]bool
}

func (w *walker) vs(v *VirtualService, p string, sub bool) {
	e := w.e
	if v.ID < 0 {
		e.add(join(p, "id"), "must not be negative, got %d", v.ID)
	} else if v.ID > 0 {
		if other, dup := w.vsIDs[v.ID]; dup {
			e.add(join(p, "id"), "duplicate id %d (also %s)", v.ID, other)
		}
		w.vsIDs[v.ID] = p
	}
	if len(v.NickName) > MaxNickName || strings.ContainsFunc(v.NickName, isControlOrFormat) {
		e.add(join(p, "nickname"), "must be at most %d printable characters (no control, bidi-override or zero-width characters)", MaxNickName)
	}
	e.oneOf(join(p, "protocol"), v.Protocol, Protocols)
	e.oneOf(join(p, "type"), v.Type, ServiceTypes)
	if v.Protocol == "udp" && v.Type != "gen" {
		e.add(join(p, "type"), "a udp service must be of type gen, got %q", v.Type)
	}
	if sub {
		w.subVS(v, p)
	} else {
		w.address(v, p)
	}
	e.oneOf(join(p, "schedule"), v.Schedule, Schedules)
	w.persistence(v, join(p, "persistence"))
	e.rng(join(p, "idleTimeout"), v.Idletime, 0, 86400)
	if v.AccessLog && sub {
		e.add(join(p, "accessLog"), "a SubVS's requests are logged by its parent service's accessLog: set it there")
	}
	if v.DefaultGateway != "" {
		gw, err := netip.ParseAddr(v.DefaultGateway)
		if sub {
			e.add(join(p, "defaultGateway"), "a SubVS's traffic follows its parent service's default gateway: set it there")
		} else if err != nil {
			e.add(join(p, "defaultGateway"), "must be an IP address, got %q", v.DefaultGateway)
		} else if a, err := netip.ParseAddr(v.Address); err == nil && a.Is4() != gw.Is4() {
			e.add(join(p, "defaultGateway"), "must be of the same address family as address %s", v.Address)
		}
	}
	if v.SorryServer != nil {
		sp := join(p, "sorryServer")
		if !validHost(v.SorryServer.Address) {
			e.add(join(sp, "address"), "must be an IP address or DNS name, got %q", v.SorryServer.Address)
		}
		e.rng(join(sp, "port"), v.SorryServer.Port, 1, 65535)
	}
	lp := join(p, "limits")
	e.rng(join(lp, "maxConns"), v.Limits.MaxConns, 0, 1000000)
	e.rng(join(lp, "connsPerSec"), v.Limits.ConnsPerSec, 0, 1000000)
	e.rng(join(lp, "requestsPerSec"), v.Limits.RequestsPerSec, 0, 1000000)
	e.rng(join(lp, "bandwidth"), v.Limits.Bandwidth, 0, 100000000)
	if v.Limits.RequestsPerSec != 0 && v.Type == "gen" {
		e.add(join(lp, "requestsPerSec"), "needs an http, http2 or tls service type, got %q", v.Type)
	}
	w.tls(v, join(p, "tls"))
	e.oneOf(join(p, "addVia"), v.AddVia, AddViaModes)
	w.health(v, join(p, "healthCheck"))
	w.realServers(v, p)
	validateChecks(w.e, v, p)
	if len(v.SubVSs) > 0 {
		if sub {
			e.add(join(p, "subVSs"), "a SubVS cannot have SubVSs of its own")
		}
		if len(v.RealServers) > 0 {
			e.add(join(p, "subVSs"), "a service has real servers or SubVSs, not both")
		}
		if len(v.SubVSs) > MaxSubVSs {
			e.add(join(p, "subVSs"), "at most %d SubVSs, got %d", MaxSubVSs, len(v.SubVSs))
		}
		if v.Type == "gen" || v.Protocol == "udp" {
			e.add(join(p, "subVSs"), "SubVSs need an http or http2 service, got type %q", v.Type)
		}
		for i := range v.SubVSs {
			if !sub {
				w.vs(&v.SubVSs[i], index(join(p, "subVSs"), i), true)
			}
		}
	}
}

func (w *walker) subVS(v *VirtualService, p string) {
	if v.Address != "" {
		w.e.add(join(p, "address"), "a SubVS has no address of its own, got %q", v.Address)
	}
	if v.Port != 0 {
		w.e.add(join(p, "port"), "a SubVS has no port of its own, got %d", v.Port)
	}
	if v.ExtraPorts != "" {
		w.e.add(join(p, "extraPorts"), "a SubVS has no ports of its own")
	}
	if v.HTTP != nil && len(v.HTTP.PreRules) > 0 {
		w.e.add(join(p, "http.preRules"), "pre-processing rules run before a SubVS is chosen: set them on the parent service")
	}
}

func (w *walker) address(v *VirtualService, p string) {
	e := w.e
	addr, err := netip.ParseAddr(v.Address)
	switch {
	case v.Address == "":
		e.add(join(p, "address"), "required: the virtual IP address")
	case err != nil || addr.Zone() != "":
		e.add(join(p, "address"), "must be an IP address, got %q", v.Address)
	case !unicast(addr):
		e.add(join(p, "address"), "must be a unicast address (not unspecified, broadcast or multicast), got %s", v.Address)
	}
	e.rng(join(p, "port"), v.Port, 1, 65535)
	ports := []int{v.Port}
	extra, err := ParsePorts(v.ExtraPorts)
	if err != nil {
		e.add(join(p, "extraPorts"), "%v", err)
	}
	ports = append(ports, extra...)
	if err != nil || v.Port < 1 || v.Port > 65535 || v.Address == "" {
		return
	}
	for _, port := range ports {
		key := v.Protocol + "/" + netip.AddrPortFrom(addr, uint16(port)).String()
		if other, dup := w.listen[key]; dup {
			e.add(p, "duplicate service: %s %s is also %s", v.Protocol, netip.AddrPortFrom(addr, uint16(port)), other)
			continue
		}
		w.listen[key] = p
	}
}

// ParsePorts parses an ExtraPorts list such as "8443,9000-9010" into its
// ports. An empty string gives no ports.
func ParsePorts(s string) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ports []int
	seen := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
			return nil, fmt.Errorf("%q is not a port 1-65535 or a range lo-hi", part)
		}
		if b-a+1+len(ports) > MaxExtraPorts {
			return nil, fmt.Errorf("at most %d extra ports", MaxExtraPorts)
		}
		for port := a; port <= b; port++ {
			if seen[port] {
				return nil, fmt.Errorf("port %d listed twice", port)
			}
			seen[port] = true
			ports = append(ports, port)
		}
	}
	return ports, nil
}

func (w *walker) persistence(v *VirtualService, p string) {
	e, ps := w.e, v.Persistence
	e.oneOf(join(p, "mode"), ps.Mode, PersistModes)
	e.rng(join(p, "timeout"), ps.Timeout, 0, 2419200)
	l7 := v.Type == "http" || v.Type == "http2"
	switch ps.Mode {
	case persist.ModeNone, persist.ModeSrc:
	case persist.ModeUDPSIP:
		if v.Protocol != "udp" && v.Type != "gen" {
			e.add(join(p, "mode"), "udpsip needs a udp or generic tcp (SIP) service")
		}
	case persist.ModeSSL:
		if v.Protocol != "tcp" {
			e.add(join(p, "mode"), "ssl needs a tcp service")
		}
	default:
		if !l7 {
			e.add(join(p, "mode"), "%s needs an http or http2 service, got type %q", ps.Mode, v.Type)
		}
	}
	switch ps.Mode {
	case persist.ModeCookie, persist.ModeCookieSrc, persist.ModeHeader:
		if ps.Cookie == "" {
			e.add(join(p, "cookie"), "required for mode %s: the cookie or header name", ps.Mode)
		}
	case persist.ModeQueryHash:
		if ps.QueryTag == "" {
			e.add(join(p, "queryTag"), "required for mode query-hash: the query item name")
		}
	}
	if ps.Cookie != "" && !headerRE.MatchString(ps.Cookie) {
		e.add(join(p, "cookie"), "must be a token (letters, digits and !#$%%&'*+.^_`|~-), got %q", ps.Cookie)
	}
	if ps.Mask != 0 {
		if !strings.HasSuffix(ps.Mode, "src") {
			e.add(join(p, "mask"), "only applies to the source-IP modes, not %s", ps.Mode)
		}
		e.rng(join(p, "mask"), ps.Mask, 0, 32)
	}
	if ps.Mask6 != 0 {
		if !strings.HasSuffix(ps.Mode, "src") {
			e.add(join(p, "mask6"), "only applies to the source-IP modes, not %s", ps.Mode)
		}
		e.rng(join(p, "mask6"), ps.Mask6, 0, 128)
	}
}

func (w *walker) tls(v *VirtualService, p string) {
	e, t := w.e, v.TLS
	e.oneOf(join(p, "profile"), t.Profile, TLSProfiles)
	if v.Protocol == "udp" && (t.Offload || t.Reencrypt) {
		e.add(join(p, "offload"), "TLS is not available on udp services")
	}
	if t.Reencrypt && !t.Offload {
		e.add(join(p, "reencrypt"), "needs offload")
	}
	if t.Offload && len(t.Certificates) == 0 {
		e.add(join(p, "certificates"), "required with offload: at least one certificate name")
	}
	for i, name := range t.Certificates {
		inter, ok := w.certs[name]
		switch {
		case !ok:
			e.add(index(join(p, "certificates"), i), "no certificate named %q", name)
		case inter:
			e.add(index(join(p, "certificates"), i), "%q is an intermediate certificate, not one with a key", name)
		}
	}
}

func (w *walker) health(v *VirtualService, p string) {
	e, h := w.e, v.HealthCheck
	e.oneOf(join(p, "type"), h.Type, CheckTypes)
	e.rng(join(p, "port"), h.Port, 0, 65535)
	if h.Interval != 0 {
		e.rng(join(p, "interval"), h.Interval, 9, 901)
	}
	if h.Timeout != 0 {
		e.rng(join(p, "timeout"), h.Timeout, 4, 60)
	}
	if h.RetryCount != 0 {
		e.rng(join(p, "retryCount"), h.RetryCount, 2, 15)
	}
	e.rng(join(p, "minUp"), h.MinUp, 0, MaxRealServers)
	if h.Type == "http" || h.Type == "https" {
		if !strings.HasPrefix(h.URL, "/") || len(h.URL) > 126 || strings.ContainsFunc(h.URL, isSpaceOrControl) {
			e.add(join(p, "url"), "must start with / and have at most 126 characters and no spaces, got %q", h.URL)
		}
		e.oneOf(join(p, "method"), h.Method, CheckMethods)
	} else if len(h.URL) > 126 || strings.ContainsFunc(h.URL, isSpaceOrControl) {
		// Unused by this check type, but kept (a later switch to http
		// uses it): it must be as clean as if it were used.
		e.add(join(p, "url"), "must have at most 126 characters and no spaces or control characters, got %q", h.URL)
	}
	if h.Host != "" && !h.HTTP11 && (h.Type == "http" || h.Type == "https") {
		e.add(join(p, "host"), "needs http11: HTTP/1.0 checks send no Host header")
	}
	if h.Host != "" && strings.ContainsFunc(h.Host, isSpaceOrControl) {
		e.add(join(p, "host"), "must not contain spaces or control characters")
	}
	if len(h.Headers) > 4 {
		e.add(join(p, "headers"), "at most 4 headers, got %d", len(h.Headers))
	}
	for k, val := range h.Headers {
		if !headerRE.MatchString(k) {
			e.add(join(join(p, "headers"), k), "not a valid header name")
		}
		if strings.ContainsFunc(val, isControl) {
			e.add(join(join(p, "headers"), k), "value must not contain control characters")
		}
	}
	if len(h.PostData) > 2047 {
		e.add(join(p, "postData"), "at most 2047 characters, got %d", len(h.PostData))
	}
	for i, c := range h.Codes {
		e.rng(index(join(p, "codes"), i), c, 300, 599)
	}
	if h.Type == "bdata" {
		if _, err := hex.DecodeString(h.Send); err != nil || h.Send == "" {
			e.add(join(p, "send"), "required for bdata: hex-encoded bytes to send")
		}
		if _, err := hex.DecodeString(h.Pattern); err != nil {
			e.add(join(p, "pattern"), "must be hex-encoded bytes for bdata")
		}
	} else if h.Pattern != "" {
		if _, err := regexp.Compile(h.Pattern); err != nil {
			e.add(join(p, "pattern"), "not a valid regular expression: %v", err)
		}
	}
}

func (w *walker) realServers(v *VirtualService, p string) {
	e := w.e
	if len(v.RealServers) > MaxRealServers {
		e.add(join(p, "realServers"), "at most %d real servers, got %d", MaxRealServers, len(v.RealServers))
	}
	// The two sets are the walker's, emptied for each service: 1,000
	// services do not allocate 2,000 maps.
	if w.rsSeen == nil {
		w.rsSeen, w.rsOwn = map[addrPort]int{}, map[int]bool{}
	}
	seen, ids := w.rsSeen, w.rsOwn
	clear(seen)
	clear(ids)
	for i := range v.RealServers {
		if id := v.RealServers[i].ID; id > 0 {
			ids[id] = true
		}
	}
	list := join(p, "realServers")
	for i := range v.RealServers {
		rs := &v.RealServers[i]
		// Paths are made only for a real server with a problem: a
		// configuration of 10,000 real servers validates without making
		// 50,000 strings.
		if rs.ID > 0 {
			if other, dup := w.rsIDs[rs.ID]; dup {
				e.add(join(index(list, i), "id"), "duplicate id %d (also %s)", rs.ID, other)
			}
			w.rsIDs[rs.ID] = itemRef{list: list, i: i}
		}
		key := addrPort{strings.ToLower(rs.Address), rs.Port}
		j, dup := seen[key]
		seen[key] = i
		if !dup && rs.ID >= 0 && validHost(rs.Address) && inRange(rs.Port, 1, 65535) && inRange(rs.Weight, 1, 65535) &&
			inRange(rs.Limit, 0, 100000) && (rs.Follow == 0 || (rs.Follow != rs.ID && ids[rs.Follow])) &&
			(rs.CheckAddress == "" || validHost(rs.CheckAddress)) {
			continue
		}
		rp := index(list, i)
		if rs.ID < 0 {
			e.add(join(rp, "id"), "must not be negative, got %d", rs.ID)
		}
		if !validHost(rs.Address) {
			e.add(join(rp, "address"), "must be an IP address or DNS name, got %q", rs.Address)
		}
		e.rng(join(rp, "port"), rs.Port, 1, 65535)
		e.rng(join(rp, "weight"), rs.Weight, 1, 65535)
		e.rng(join(rp, "limit"), rs.Limit, 0, 100000)
		if dup {
			e.add(rp, "duplicate real server %s port %d (also realServers[%d])", rs.Address, rs.Port, j)
		}
		if rs.Follow != 0 && (rs.Follow == rs.ID || !ids[rs.Follow]) {
			e.add(join(rp, "follow"), "must be the id of another real server of this service, got %d", rs.Follow)
		}
		if rs.CheckAddress != "" && !validHost(rs.CheckAddress) {
			e.add(join(rp, "checkAddress"), "must be an IP address or DNS name, got %q", rs.CheckAddress)
		}
	}
}

// addrPort is a real server's address (lower case) and port.
type addrPort struct {
	addr string
	port int
}

// itemRef names a list item by its list's path and index; its String is
// the item's path, made only when a message needs it.
type itemRef struct {
	list string
	i    int
}

// String returns the item's path, e.g. "virtualServices[3].realServers[1]".
func (r itemRef) String() string { return index(r.list, r.i) }

// inRange reports whether lo <= v <= hi.
func inRange(v, lo, hi int) bool { return v >= lo && v <= hi }

// limitedBroadcast is 255.255.255.255.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// unicast reports whether a (IPv4-mapped forms included) is neither
// unspecified, the limited broadcast address, nor multicast.
func unicast(a netip.Addr) bool {
	a = a.Unmap()
	return !a.IsUnspecified() && !a.IsMulticast() && a != limitedBroadcast
}

func validHost(s string) bool {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Zone() == "" && unicast(a)
	}
	return len(s) <= 253 && hostnameRE.MatchString(s) && strings.ContainsFunc(s, func(r rune) bool {
		return r < '0' || r > '9'
	}) && !strings.HasSuffix(strings.TrimSuffix(s, "."), ".") && !looksNumeric(s)
}

// looksNumeric rejects names made only of digits and dots (a mistyped IPv4
// address such as 10.0.0.256), which DNS would never resolve.
func looksNumeric(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// isControlOrFormat reports control characters and invisible format
// characters (Unicode category Cf: bidi overrides and isolates such as
// U+202E, zero-width spaces and joiners, the BOM), which let a name read
// differently from what it is.
func isControlOrFormat(r rune) bool {
	return isControl(r) || (r >= 0x80 && r <= 0x9f) || unicode.Is(unicode.Cf, r)
}

func isSpaceOrControl(r rune) bool { return r <= 0x20 || r == 0x7f }

// validateFollow checks port following: FollowVSID names another
// top-level service.
func (c *Config) validateFollow(e *errs) {
	for i, v := range c.VirtualServices {
		if v.FollowVSID == 0 {
			continue
		}
		found := false
		for _, o := range c.VirtualServices {
			found = found || (o.ID == v.FollowVSID && o.ID != v.ID)
		}
		if !found {
			e.add(join(index("virtualServices", i), "followVsId"), "must be the id of another top-level service, got %d", v.FollowVSID)
		}
	}
}
