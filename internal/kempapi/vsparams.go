package kempapi

import (
	"net/netip"
	"sort"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// vsCtx is the service a modvs or addvs edits, inside the candidate
// configuration of the write path.
type vsCtx struct {
	cfg    *config.Config
	v      *config.VirtualService
	parent *config.VirtualService
	p      params
	// forceL7 is set when the request says ForceL7=Y (see checkLayer).
	forceL7 bool
}

// vsParam maps one LoadMaster service parameter onto the model.
type vsParam struct {
	name    string // lower-case, as looked up
	display string // as LoadMaster spells it, for errors
	set     func(c *vsCtx, val string) *failure
}

// vsParams are applied in this order; order matters only where one
// parameter depends on another (EnhancedHealthChecks before RsMinimum,
// SSLAcceleration before TLSType, VStype before ForceL7).
var vsParams []vsParam

func init() {
	b := func(get func(c *vsCtx) **bool) func(c *vsCtx, display, val string) *failure {
		return func(c *vsCtx, display, val string) *failure {
			x, good := parseBool(val)
			if !good {
				return invalid("%s: Invalid boolean value %q (use Y/N, y/n, 1/0)", display, short(val))
			}
			*get(c) = config.Bool(x)
			return nil
		}
	}
	flag := func(get func(c *vsCtx) *bool) func(c *vsCtx, display, val string) *failure {
		return func(c *vsCtx, display, val string) *failure {
			x, good := parseBool(val)
			if !good {
				return invalid("%s: Invalid boolean value %q (use Y/N, y/n, 1/0)", display, short(val))
			}
			*get(c) = x
			return nil
		}
	}
	integer := func(get func(c *vsCtx) *int) func(c *vsCtx, display, val string) *failure {
		return func(c *vsCtx, display, val string) *failure {
			n, good := parseInt(val)
			if !good {
				return invalid("%s: Invalid integer value %q", display, short(val))
			}
			*get(c) = n
			return nil
		}
	}
	text := func(get func(c *vsCtx) *string) func(c *vsCtx, display, val string) *failure {
		return func(c *vsCtx, _, val string) *failure {
			*get(c) = val
			return nil
		}
	}
	lower := func(get func(c *vsCtx) *string) func(c *vsCtx, display, val string) *failure {
		return func(c *vsCtx, _, val string) *failure {
			*get(c) = strings.ToLower(strings.TrimSpace(val))
			return nil
		}
	}
	add := func(display string, f func(c *vsCtx, display, val string) *failure) {
		vsParams = append(vsParams, vsParam{name: strings.ToLower(display), display: display,
			set: func(c *vsCtx, val string) *failure { return f(c, display, val) }})
	}

	add("VSAddress", func(c *vsCtx, display, val string) *failure {
		a, err := netip.ParseAddr(strings.TrimSpace(val))
		if err != nil || a.Zone() != "" {
			return invalid("%s: Invalid address %q", display, short(val))
		}
		c.v.Address = a.Unmap().String()
		return nil
	})
	add("VSPort", func(c *vsCtx, _, val string) *failure {
		port, f := parsePort(val)
		if f != nil {
			return f
		}
		c.v.Port = port
		return nil
	})
	add("ExtraPorts", text(func(c *vsCtx) *string { return &c.v.ExtraPorts }))
	add("NickName", text(func(c *vsCtx) *string { return &c.v.NickName }))
	add("Enable", b(func(c *vsCtx) **bool { return &c.v.Enabled }))
	add("VStype", func(c *vsCtx, display, val string) *failure {
		t := strings.ToLower(strings.TrimSpace(val))
		switch t {
		case "ts", "log":
			return invalid("%s: %s services are not available in Fulcrum (gen, http, http2, tls)", display, t)
		}
		c.v.Type = t
		return nil
	})
	add("Schedule", func(c *vsCtx, _, val string) *failure { c.v.Schedule = scheduleIn(val); return nil })
	add("Persist", func(c *vsCtx, _, val string) *failure { c.v.Persistence.Mode = persistIn(val); return nil })
	add("PersistTimeout", func(c *vsCtx, display, val string) *failure {
		n, good := parseInt(val)
		if !good {
			return invalid("%s: Invalid integer value %q", display, short(val))
		}
		// LoadMaster keeps whole minutes, and less than a minute turns
		// persistence off; in Fulcrum's model a timeout of 0 means the
		// default (1800 s), so "off" is said with the mode.
		switch {
		case n < 0:
			c.v.Persistence.Timeout = n // refused by validation
		case n < 60:
			c.v.Persistence.Mode, c.v.Persistence.Timeout = persist.ModeNone, 0
		default:
			c.v.Persistence.Timeout = n - n%60
		}
		return nil
	})
	add("Cookie", text(func(c *vsCtx) *string { return &c.v.Persistence.Cookie }))
	add("QueryTag", text(func(c *vsCtx) *string { return &c.v.Persistence.QueryTag }))
	add("Idletime", integer(func(c *vsCtx) *int { return &c.v.Idletime }))
	add("Transparent", b(func(c *vsCtx) **bool { return &c.v.Transparent }))
	add("SubnetOriginating", b(func(c *vsCtx) **bool { return &c.v.SubnetOriginating }))
	add("FollowVSID", followVSID)
	add("DefaultGW", func(c *vsCtx, _, val string) *failure {
		c.v.DefaultGateway = strings.TrimSpace(val)
		return nil
	})
	add("StandbyAddr", func(c *vsCtx, _, val string) *failure {
		val = strings.TrimSpace(val)
		if val == "" {
			c.v.SorryServer = nil
			return nil
		}
		if c.v.SorryServer == nil {
			c.v.SorryServer = &config.Endpoint{}
		}
		c.v.SorryServer.Address = val
		return nil
	})
	add("StandbyPort", func(c *vsCtx, display, val string) *failure {
		n, good := parseInt(val)
		if !good {
			return invalid("%s: Invalid integer value %q", display, short(val))
		}
		if c.v.SorryServer == nil {
			if n == 0 {
				return nil
			}
			return invalid("%s: set StandbyAddr first", display)
		}
		c.v.SorryServer.Port = n
		return nil
	})
	add("MaxConnsLimit", integer(func(c *vsCtx) *int { return &c.v.Limits.MaxConns }))
	add("ConnsPerSecLimit", integer(func(c *vsCtx) *int { return &c.v.Limits.ConnsPerSec }))
	add("RequestsPerSecLimit", integer(func(c *vsCtx) *int { return &c.v.Limits.RequestsPerSec }))
	add("Bandwidth", integer(func(c *vsCtx) *int { return &c.v.Limits.Bandwidth }))
	add("AddVia", func(c *vsCtx, display, val string) *failure {
		n, good := parseInt(val)
		if !good || n < 0 || n >= len(addVias) {
			return invalid("%s: must be 0-6, got %q", display, short(val))
		}
		c.v.AddVia = addVias[n]
		return nil
	})
	add("CheckType", lower(func(c *vsCtx) *string { return &c.v.HealthCheck.Type }))
	add("CheckPort", integer(func(c *vsCtx) *int { return &c.v.HealthCheck.Port }))
	add("CheckUrl", text(func(c *vsCtx) *string { return &c.v.HealthCheck.URL }))
	add("CheckUseGet", func(c *vsCtx, display, val string) *failure {
		n, good := parseInt(val)
		if !good || n < 0 || n >= len(checkMethods) {
			return invalid("%s: must be 0 (HEAD), 1 (GET), 2 (POST) or 3 (OPTIONS), got %q", display, short(val))
		}
		c.v.HealthCheck.Method = checkMethods[n]
		return nil
	})
	add("CheckUse1.1", flag(func(c *vsCtx) *bool { return &c.v.HealthCheck.HTTP11 }))
	add("CheckUse1_1", flag(func(c *vsCtx) *bool { return &c.v.HealthCheck.HTTP11 }))
	add("CheckHost", text(func(c *vsCtx) *string { return &c.v.HealthCheck.Host }))
	add("CheckHeaders", func(c *vsCtx, display, val string) *failure {
		h, f := parseHeaders(display, val)
		if f != nil {
			return f
		}
		c.v.HealthCheck.Headers = h
		return nil
	})
	add("CheckPostData", text(func(c *vsCtx) *string { return &c.v.HealthCheck.PostData }))
	add("CheckCodes", func(c *vsCtx, display, val string) *failure {
		var codes []int
		for _, s := range strings.FieldsFunc(val, func(r rune) bool { return r == ' ' || r == ',' }) {
			n, good := parseInt(s)
			if !good {
				return invalid("%s: Invalid status code %q", display, short(s))
			}
			codes = append(codes, n)
		}
		c.v.HealthCheck.Codes = codes
		return nil
	})
	add("CheckPattern", text(func(c *vsCtx) *string { return &c.v.HealthCheck.Pattern }))
	add("ChkInterval", integer(func(c *vsCtx) *int { return &c.v.HealthCheck.Interval }))
	add("ChkTimeout", integer(func(c *vsCtx) *int { return &c.v.HealthCheck.Timeout }))
	add("ChkRetryCount", integer(func(c *vsCtx) *int { return &c.v.HealthCheck.RetryCount }))
	add("EnhancedHealthChecks", func(c *vsCtx, display, val string) *failure {
		x, good := parseBool(val)
		if !good {
			return invalid("%s: Invalid boolean value %q (use Y/N, y/n, 1/0)", display, short(val))
		}
		switch {
		case !x:
			c.v.HealthCheck.MinUp = 0
		case c.v.HealthCheck.MinUp == 0:
			c.v.HealthCheck.MinUp = 1
		}
		return nil
	})
	add("RsMinimum", func(c *vsCtx, display, val string) *failure {
		n, good := parseInt(val)
		if !good {
			return invalid("%s: Invalid integer value %q", display, short(val))
		}
		if c.v.HealthCheck.MinUp == 0 {
			if n == 0 {
				return nil // what showvs shows without EnhancedHealthChecks
			}
			return invalid("%s: can only be set when EnhancedHealthChecks is enabled", display)
		}
		if n < 1 {
			return invalid("%s: must be at least 1, got %d", display, n)
		}
		c.v.HealthCheck.MinUp = n
		return nil
	})
	add("SSLAcceleration", flag(func(c *vsCtx) *bool { return &c.v.TLS.Offload }))
	add("SSLReencrypt", func(c *vsCtx, display, val string) *failure {
		if c.parent == nil {
			return flag(func(c *vsCtx) *bool { return &c.v.TLS.Reencrypt })(c, display, val)
		}
		// A SubVS re-encrypts exactly when its parent does (showvs shows
		// the parent's value): an echo is accepted, a change refused.
		x, good := parseBool(val)
		if !good {
			return invalid("%s: Invalid boolean value %q (use Y/N, y/n, 1/0)", display, short(val))
		}
		if x != reencrypts(c.v, c.parent) {
			return invalid("%s: a SubVS re-encrypts as its parent service does: set it on the parent", display)
		}
		return nil
	})
	add("CertFile", func(c *vsCtx, _, val string) *failure {
		names := strings.FieldsFunc(val, func(r rune) bool { return r == ' ' || r == ',' })
		c.v.TLS.Certificates = names
		return nil
	})
	add("NeedHostName", flag(func(c *vsCtx) *bool { return &c.v.TLS.NeedHostName }))
	add("TLSType", setTLSType)
	add("CipherSet", func(c *vsCtx, display, val string) *failure {
		val = strings.TrimSpace(val)
		if val == "" || (strings.EqualFold(val, "BestPractices") && c.v.TLS.Profile != "legacy") {
			return nil
		}
		return invalid("%s: Fulcrum chooses ciphers by TLS version set (TLSType); its TLS 1.2-1.3 and 1.3-only sets are the BestPractices ciphers, got %q",
			display, short(val))
	})
	add("IntermediateCerts", func(c *vsCtx, display, val string) *failure {
		for _, name := range strings.FieldsFunc(val, func(r rune) bool { return r == '+' || r == ' ' }) {
			found := false
			for _, ct := range c.cfg.Certificates {
				found = found || (ct.Intermediate && ct.Name == name)
			}
			if !found {
				return invalid("%s: no intermediate certificate named %q", display, short(name))
			}
		}
		// Intermediates are chained behind the certificates they issued.
		return nil
	})
	add("ForceL7", func(c *vsCtx, display, val string) *failure { return checkLayer(c, display, val, 7) })
	add("ForceL4", func(c *vsCtx, display, val string) *failure { return checkLayer(c, display, val, 4) })
	add("NonLocalSorryServer", func(*vsCtx, string, string) *failure { return nil })
	add("non_local", func(*vsCtx, string, string) *failure { return nil })

	// Settings of features Fulcrum does not have: the value that means
	// "off" is accepted (it is what the service does), anything else is
	// refused rather than silently ignored.
	for _, f := range []struct{ display, feature string }{
		{"SSLReverse", "SSL reverse (plain client, TLS server)"}, {"Intercept", "the web application firewall"},
		{"IPReputationBlocking", "IP reputation blocking"}, {"Cache", "caching"}, {"Compress", "compression"},
		{"UseforSnat", "using a VIP as server NAT address"}, {"MultiConnect", "connection multiplexing"},
		{"VerifyBearer", "bearer token verification"}, {"HTTPReschedule", "HTTP rescheduling"},
		{"EspEnabled", "the edge security pack"}, {"OCSPVerify", "OCSP client certificate checks"},
		{"AllowHTTP2", "HTTP/2 towards clients"}, {"PassCipher", "passing cipher details to real servers"},
		{"PassSNI", "passing SNI to real servers"}, {"RefreshPersist", "refreshing persistence of long connections"},
		{"ResponseStatusRemap", "response status remapping"},
	} {
		f := f
		add(f.display, func(_ *vsCtx, display, val string) *failure {
			x, good := parseBool(val)
			if good && !x {
				return nil
			}
			return invalid("%s: %s is not available in Fulcrum (only 0 is accepted)", display, f.feature)
		})
	}
	for _, f := range []struct{ display, feature string }{
		{"InterceptMode", "the web application firewall"}, {"AlertThreshold", "the web application firewall"},
		{"BlockingParanoia", "the web application firewall"}, {"ExecutingParanoia", "the web application firewall"},
		{"AnomalyScoringThreshold", "the web application firewall"}, {"PCRELimit", "the web application firewall"},
		{"JSONDLimit", "the web application firewall"}, {"BodyLimit", "the web application firewall"},
		{"Transactionlimit", "the web application firewall"}, {"ServerInit", "server-initiated protocols"},
		{"StartTLSMode", "STARTTLS handling"}, {"Verify", "intrusion detection"},
		{"ClientCert", "client certificates"}, {"SecurityHeaderOptions", "HSTS headers"}, {"SameSite", "the edge security pack"},
		{"MatchLen", "binary health-check match lengths"}, {"PortFollow", "port following (use FollowVSID)"},
		{"InputAuthMode", "the edge security pack"}, {"OutputAuthMode", "the edge security pack"}, {"QoS", "IP ToS marking"},
		{"CachePercent", "caching"}, {"ResponseRemapMsgFormat", "response status remapping"},
		{"ErrorCode", "fixed error answers"}, {"SSLRewrite", "redirect rewriting"},
	} {
		f := f
		add(f.display, func(_ *vsCtx, display, val string) *failure {
			if v := strings.TrimSpace(val); v == "" || v == "0" {
				return nil
			}
			return invalid("%s: %s is not available in Fulcrum (only 0 is accepted)", display, f.feature)
		})
	}
	for _, f := range []struct{ display, feature string }{
		{"ErrorUrl", "fixed error redirects"}, {"InterceptOpts", "the web application firewall"},
		{"OwaspOpts", "the web application firewall"}, {"LocalBindAddrs", "alternate source addresses"},
		{"AltAddress", "alternate addresses"}, {"ExtraHdrKey", "extra request headers"},
		{"ExtraHdrValue", "extra request headers"}, {"CopyHdrFrom", "header copying"}, {"CopyHdrTo", "header copying"},
		{"Ciphers", "custom cipher lists"}, {"Tls13CipherSet", "TLS 1.3 cipher selection"},
		{"ReverseSNIHostname", "a re-encryption SNI host name"}, {"LdapEndpoint", "LDAP health checks"},
	} {
		f := f
		add(f.display, func(_ *vsCtx, display, val string) *failure {
			if strings.TrimSpace(val) == "" {
				return nil
			}
			return invalid("%s: %s is not available in Fulcrum (only an empty value is accepted)", display, f.feature)
		})
	}
}

// applyVSParams applies every known service parameter present in p to v.
// Unknown parameters are ignored, as on a LoadMaster.
func applyVSParams(cfg *config.Config, v, parent *config.VirtualService, p params) *failure {
	c := &vsCtx{cfg: cfg, v: v, parent: parent, p: p}
	// VStype may be given after ForceL7 in the request; the table order
	// settles it.
	if v.Type == "" {
		v.Type = "gen"
	}
	for _, vp := range vsParams {
		val, ok := p.get(vp.name)
		if !ok {
			continue
		}
		if parent != nil && (vp.name == "vsaddress" || vp.name == "vsport" || vp.name == "extraports") {
			// showvs of a SubVS says VSAddress "" and VSPort 0: an echo
			// of them is accepted.
			if v := strings.TrimSpace(val); v == "" || (vp.name == "vsport" && v == "0") {
				continue
			}
			return invalid("%s: a SubVS has no address or port of its own", vp.display)
		}
		if f := vp.set(c, val); f != nil {
			return f
		}
	}
	offloadDefault(v)
	return nil
}

// parseHeaders reads LoadMaster's "Name:value|Name:value".
func parseHeaders(display, s string) (map[string]string, *failure) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, pair := range strings.Split(s, "|") {
		k, v, ok := strings.Cut(pair, ":")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, invalid("%s: expected Name:value pairs separated by |, got %q", display, short(pair))
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

func sortStrings(s []string) { sort.Strings(s) }
