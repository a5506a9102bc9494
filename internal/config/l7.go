package config

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// ContentRule is a named layer-7 rule (LoadMaster content rule): a match
// rule that selects a SubVS or sets a flag, or a rule that adds, deletes or
// replaces a header or modifies the URL of a request or response. Services
// refer to rules by name.
type ContentRule struct {
	// Name identifies the rule; letters, digits, '.', '-' and '_', at most
	// 64 characters. Required.
	Name string `json:"name"`
	// Type is what the rule does (LoadMaster rule types 0-4): "match" tests
	// the request, "addHeader", "deleteHeader" and "replaceHeader" change a
	// header, "modifyUrl" rewrites the request path (or, on a response, the
	// Location header). Default: "match".
	Type string `json:"type"`
	// MatchType says how Pattern is tested (LoadMaster `matchtype`):
	// "regex" a regular expression (RE2 syntax) found anywhere, "prefix"
	// the value starts with Pattern, "postfix" it ends with Pattern.
	// Default: "regex".
	MatchType string `json:"matchType,omitempty"`
	// Match is what a match rule tests: "url" the path (see IncHost and
	// IncQuery), "host" the Host (or :authority) without port, "header" the
	// header named by Header, "query" the query string, "body" the first
	// 16 KiB of a Content-Length request body. Default: "url".
	Match string `json:"match,omitempty"`
	// Header is the header name a "header" match rule tests, or the header
	// an addHeader, deleteHeader or replaceHeader rule changes. Default: "".
	Header string `json:"header,omitempty"`
	// Pattern is the value tested (match, replaceHeader, modifyUrl), at most
	// 1024 characters. Default: "".
	Pattern string `json:"pattern,omitempty"`
	// Replacement is the new value: the value added by addHeader, or the
	// replacement of replaceHeader and modifyUrl, where \1-\9 stand for the
	// pattern's groups (LoadMaster `replacement`). Default: "".
	Replacement string `json:"replacement,omitempty"`
	// NoCase compares without regard to letter case (LoadMaster `nocase`).
	// Default: false.
	NoCase bool `json:"noCase,omitempty"`
	// Negate inverts the result of a match rule (LoadMaster `negate`).
	// Default: false.
	Negate bool `json:"negate,omitempty"`
	// IncHost prefixes the host to the URL a "url" rule tests, as in
	// "www.example.com/path" (LoadMaster `inchost`). Default: false.
	IncHost bool `json:"incHost,omitempty"`
	// IncQuery includes the query string in the URL a "url" rule tests
	// (LoadMaster `incquery`). Default: false.
	IncQuery bool `json:"incQuery,omitempty"`
	// SetFlag is a flag 1-9 that a match rule sets for the rest of the
	// request when it matches; 0 sets none (LoadMaster `setonmatch`).
	// Default: 0.
	SetFlag int `json:"setFlag,omitempty"`
	// OnlyOnFlag makes the rule apply only when this flag 1-9 is set; 0
	// means always (LoadMaster `onlyonflag`). Default: 0.
	OnlyOnFlag int `json:"onlyOnFlag,omitempty"`
	// OnlyOnNoFlag makes the rule apply only when this flag 1-9 is not set;
	// 0 means always (LoadMaster `onlyonnoflag`). Default: 0.
	OnlyOnNoFlag int `json:"onlyOnNoFlag,omitempty"`
}

// HTTPSettings are the layer-7 settings of an http or http2 service or
// SubVS. Zero fields take the defaults shown, applied by the data plane, so
// that services which change nothing carry no http section.
type HTTPSettings struct {
	// SelectRules names the match rules that choose this SubVS (LoadMaster
	// `addrsrule` on a SubVS): a request goes to the first SubVS, in order,
	// one of whose rules matches; SubVSs without rules take the requests no
	// rule matched. Only on SubVSs. Default: none.
	SelectRules []string `json:"selectRules,omitempty"`
	// PreRules names match rules evaluated first, in order, only to set
	// flags (LoadMaster `addprerule`). Only on top-level services: they
	// run before a SubVS is chosen. Default: none.
	PreRules []string `json:"preRules,omitempty"`
	// RequestRules names the header and URL rules applied, in order, to
	// requests before they are sent on (LoadMaster `addrequestrule`).
	// Default: none.
	RequestRules []string `json:"requestRules,omitempty"`
	// ResponseRules names the header and URL rules applied, in order, to
	// responses before they are sent to the client (LoadMaster
	// `addresponserule`). Default: none.
	ResponseRules []string `json:"responseRules,omitempty"`
	// HostRewrite replaces the Host header sent to the real servers; ""
	// keeps the client's. Default: "".
	HostRewrite string `json:"hostRewrite,omitempty"`
	// TrustedProxies are CIDR prefixes of clients (proxies) whose
	// X-Forwarded-For is kept and appended to; from any other client every
	// X-Forwarded-*, Forwarded, X-Real-IP and X-ClientSide header is
	// removed before Fulcrum adds its own. Default: none.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// ErrorCode answers every request with this status (400-599) when no
	// real server is available and there is no sorry server; with no real
	// servers at all this makes a fixed error service (LoadMaster
	// `ErrorCode`). 0 means 503. Default: 0.
	ErrorCode int `json:"errorCode,omitempty"`
	// ErrorURL redirects (302) every request to this URL when no real server
	// is available and there is no sorry server; with no real servers it
	// makes a fixed redirect service such as "https://%h%s" (LoadMaster
	// `ErrorUrl`), where %h is the request's host and %s its path and query.
	// Default: "".
	ErrorURL string `json:"errorUrl,omitempty"`
	// ErrorPage is the HTML body of the 503 (or ErrorCode) page, at most
	// 16384 bytes (LoadMaster `uploadvserrfile`); "" is a short plain page.
	// Default: "".
	ErrorPage string `json:"errorPage,omitempty"`
	// MaxHeaderBytes is the largest request head (request line and headers)
	// accepted, 1024-65536; larger gets 431. 0 means 16384. Default: 0.
	MaxHeaderBytes int `json:"maxHeaderBytes,omitempty"`
	// MaxHeaders is the largest number of request header fields, 8-1000;
	// more gets 431. 0 means 100. Default: 0.
	MaxHeaders int `json:"maxHeaders,omitempty"`
	// MaxURI is the longest request target, 256-65536; longer gets 414. 0
	// means 8192. Default: 0.
	MaxURI int `json:"maxUri,omitempty"`
	// HeaderTimeout is how long in seconds a client has to send a complete
	// request head once it started one (against slowloris), 1-300; past it
	// the connection gets 408 and is closed. 0 means 10. Default: 0.
	HeaderTimeout int `json:"headerTimeout,omitempty"`
	// BodyTimeout is how long in seconds a request or response body may
	// stay without progress, 1-3600, whichever side stalls: a client that
	// sends or reads nothing, or a real server that takes or sends nothing,
	// ends both connections. 0 means 60. Default: 0.
	BodyTimeout int `json:"bodyTimeout,omitempty"`
	// BodyMinRate is the lowest average rate, in bytes per second, at which
	// a client must send a request body and read a response body once
	// BodyTimeout has passed (against slow POST and slow reading): Fulcrum
	// waits for the client at most BodyTimeout plus one second per
	// BodyMinRate bytes moved so far (Apache mod_reqtimeout's MinRate),
	// counting only the time spent waiting for the client, never for a
	// real server. 1-1073741824; 0 means 500; -1 turns the minimum off,
	// for clients that keep a body open for long without moving much, such
	// as Outlook Anywhere (RPC over HTTP). Only on services (SubVSs share
	// their service's). Default: 0.
	BodyMinRate int `json:"bodyMinRate,omitempty"`
	// ResponseTimeout is how long in seconds a real server may take, once a
	// request was sent to it, to send the response head, 1-86400. When it
	// passes before anything of the response reached the client, a GET,
	// HEAD, OPTIONS or TRACE request without body is retried on another real
	// server (within Retries and RetryTimeout) and any other request gets
	// 504; the failure is counted on the real server. 0 means the service's
	// idle timeout, which long-polling applications need: Exchange
	// ActiveSync holds requests for up to 59 minutes, Lync/Skype UCWA event
	// channels for minutes. Only on services (SubVSs share their
	// service's). Default: 0.
	ResponseTimeout int `json:"responseTimeout,omitempty"`
	// MaxStreams is the number of concurrent HTTP/2 streams a client
	// connection may open, 1-1000. 0 means 100. Default: 0.
	MaxStreams int `json:"maxStreams,omitempty"`
	// Retries is how many other real servers a request is tried on after a
	// failed connect or TLS handshake, or after a failure before any
	// response byte for a GET, HEAD, OPTIONS or TRACE request without body,
	// 0-10; absent means 2. Default: absent (2).
	Retries *int `json:"retries,omitempty"`
	// RetryTimeout bounds in seconds the time spent on one request's
	// connects and retries, 1-300. 0 means 10. Default: 0.
	RetryTimeout int `json:"retryTimeout,omitempty"`
}

// The allowed values of the content-rule fields.
var (
	// RuleTypes are the values of ContentRule.Type.
	RuleTypes = []string{"match", "addHeader", "deleteHeader", "replaceHeader", "modifyUrl"}
	// RuleMatchTypes are the values of ContentRule.MatchType.
	RuleMatchTypes = []string{"regex", "prefix", "postfix"}
	// RuleMatches are the values of ContentRule.Match.
	RuleMatches = []string{"url", "host", "header", "query", "body"}
	// TLSVersions are the values of TLS.Versions.
	TLSVersions = []string{"1.0", "1.1", "1.2", "1.3"}
)

// ProfileVersions returns the TLS versions a profile allows, oldest first.
func ProfileVersions(profile string) []string {
	switch profile {
	case "modern":
		return []string{"1.3"}
	case "legacy":
		return []string{"1.0", "1.1", "1.2", "1.3"}
	}
	return []string{"1.2", "1.3"}
}

// Limits of the layer-7 settings.
const (
	MaxContentRules = 1024
	MaxRulePattern  = 1024
	MaxErrorPage    = 16384
	// MaxBodyMinRate bounds HTTPSettings.BodyMinRate (1 GiB/s).
	MaxBodyMinRate = 1 << 30
)

func (r *ContentRule) setDefaults() {
	if r.Type == "" {
		r.Type = "match"
	}
	if r.Type == "match" || r.Type == "replaceHeader" || r.Type == "modifyUrl" {
		if r.MatchType == "" {
			r.MatchType = "regex"
		}
	}
	if r.Type == "match" && r.Match == "" {
		r.Match = "url"
	}
}

// validateL7 checks the content rules and every service's http settings;
// it is called by Validate.
func (c *Config) validateL7(e *errs) {
	if len(c.ContentRules) > MaxContentRules {
		e.add("contentRules", "at most %d rules, got %d", MaxContentRules, len(c.ContentRules))
	}
	rules := map[string]string{} // name → type
	for i := range c.ContentRules {
		r := &c.ContentRules[i]
		p := index("contentRules", i)
		if _, dup := rules[r.Name]; dup {
			e.add(join(p, "name"), "duplicate rule name %q", r.Name)
		}
		rules[r.Name] = r.Type
		r.validate(e, p)
	}
	for i := range c.VirtualServices {
		v := &c.VirtualServices[i]
		p := index("virtualServices", i)
		validateHTTP(e, v, p, rules, false)
		for j := range v.SubVSs {
			validateHTTP(e, &v.SubVSs[j], index(join(p, "subVSs"), j), rules, true)
		}
	}
}

func (r *ContentRule) validate(e *errs, p string) {
	if !nameRE.MatchString(r.Name) {
		e.add(join(p, "name"), "must be 1-64 letters, digits, '.', '-' or '_' starting with a letter or digit, got %q", r.Name)
	}
	e.oneOf(join(p, "type"), r.Type, RuleTypes)
	if r.MatchType != "" {
		e.oneOf(join(p, "matchType"), r.MatchType, RuleMatchTypes)
	}
	if len(r.Pattern) > MaxRulePattern || len(r.Replacement) > MaxRulePattern {
		e.add(join(p, "pattern"), "pattern and replacement may have at most %d characters", MaxRulePattern)
	}
	e.rng(join(p, "setFlag"), r.SetFlag, 0, 9)
	e.rng(join(p, "onlyOnFlag"), r.OnlyOnFlag, 0, 9)
	e.rng(join(p, "onlyOnNoFlag"), r.OnlyOnNoFlag, 0, 9)
	if r.MatchType == "regex" || r.Type == "replaceHeader" || r.Type == "modifyUrl" {
		if _, err := regexp.Compile(r.Pattern); err != nil {
			e.add(join(p, "pattern"), "not a valid regular expression: %v", err)
		}
	}
	if strings.ContainsFunc(r.Replacement, isControl) {
		e.add(join(p, "replacement"), "must not contain control characters")
	}
	switch r.Type {
	case "match":
		e.oneOf(join(p, "match"), r.Match, RuleMatches)
		if r.Match == "header" && r.Header == "" {
			e.add(join(p, "header"), "required for match header: the header name")
		}
		if r.Replacement != "" {
			e.add(join(p, "replacement"), "a match rule has no replacement")
		}
	case "addHeader", "deleteHeader", "replaceHeader":
		if r.Header == "" {
			e.add(join(p, "header"), "required for %s: the header name", r.Type)
		}
		if r.SetFlag != 0 {
			e.add(join(p, "setFlag"), "only match rules set flags")
		}
	case "modifyUrl":
		if r.Pattern == "" {
			e.add(join(p, "pattern"), "required for modifyUrl: the regular expression to replace")
		}
		if r.SetFlag != 0 {
			e.add(join(p, "setFlag"), "only match rules set flags")
		}
	}
	if r.Header != "" && !headerRE.MatchString(r.Header) {
		e.add(join(p, "header"), "must be a header name (letters, digits and !#$%%&'*+.^_`|~-), got %q", r.Header)
	}
	switch strings.ToLower(r.Header) {
	case "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive", "proxy-connection":
		if r.Type != "match" {
			e.add(join(p, "header"), "%s is a framing or hop-by-hop header that rules may not change", r.Header)
		}
	}
}

func validateHTTP(e *errs, v *VirtualService, p string, rules map[string]string, sub bool) {
	h := v.HTTP
	tp := join(p, "tls")
	for i, ver := range v.TLS.Versions {
		vp := index(join(tp, "versions"), i)
		e.oneOf(vp, ver, TLSVersions)
		if slices.Contains(TLSVersions, ver) && !slices.Contains(ProfileVersions(v.TLS.Profile), ver) {
			e.add(vp, "TLS %s is not allowed by profile %q (use profile legacy for TLS 1.0 and 1.1)", ver, v.TLS.Profile)
		}
	}
	if v.TLS.ServerName != "" && !validHost(v.TLS.ServerName) {
		e.add(join(tp, "serverName"), "must be a DNS name, got %q", v.TLS.ServerName)
	}
	if (v.TLS.PassSNI || v.TLS.ServerName != "" || v.TLS.CABundle != "") && !v.TLS.Reencrypt {
		e.add(join(tp, "reencrypt"), "needed by passSni, serverName and caBundle")
	}
	if v.TLS.PassSNI && v.TLS.ServerName != "" {
		e.add(join(tp, "serverName"), "set either passSni or serverName, not both")
	}
	if v.TLS.CABundle != "" && !strings.Contains(v.TLS.CABundle, "-----BEGIN CERTIFICATE-----") {
		e.add(join(tp, "caBundle"), "must hold PEM CERTIFICATE blocks")
	}
	if h == nil {
		return
	}
	hp := join(p, "http")
	if h.ErrorPage != "" || h.ErrorURL != "" || h.ErrorCode != 0 || len(h.RequestRules)+len(h.ResponseRules)+len(h.PreRules)+len(h.SelectRules) > 0 {
		if v.Type != "http" && v.Type != "http2" {
			e.add(hp, "needs an http or http2 service, got type %q", v.Type)
		}
	}
	if len(h.SelectRules) > 0 && !sub {
		e.add(join(hp, "selectRules"), "only SubVSs are selected by rules")
	}
	ref := func(field string, names []string, want func(string) bool, what string) {
		for i, n := range names {
			t, ok := rules[n]
			switch {
			case !ok:
				e.add(index(join(hp, field), i), "no content rule named %q", n)
			case !want(t):
				e.add(index(join(hp, field), i), "rule %q is of type %s; %s", n, t, what)
			}
		}
	}
	isMatch := func(t string) bool { return t == "match" }
	isMod := func(t string) bool { return t != "match" }
	ref("selectRules", h.SelectRules, isMatch, "SubVS selection needs match rules")
	ref("preRules", h.PreRules, isMatch, "pre-processing needs match rules")
	ref("requestRules", h.RequestRules, isMod, "request rules change headers or the URL")
	ref("responseRules", h.ResponseRules, isMod, "response rules change headers or the URL")
	if h.HostRewrite != "" && (strings.ContainsFunc(h.HostRewrite, isSpaceOrControl) || strings.ContainsAny(h.HostRewrite, "/?#@")) {
		e.add(join(hp, "hostRewrite"), "must be a host[:port] without spaces or control characters, got %q", h.HostRewrite)
	}
	for i, c := range h.TrustedProxies {
		if _, err := netip.ParsePrefix(c); err != nil {
			if _, err2 := netip.ParseAddr(c); err2 != nil {
				e.add(index(join(hp, "trustedProxies"), i), "must be a CIDR prefix or IP address, got %q", c)
			}
		}
	}
	if h.ErrorCode != 0 {
		e.rng(join(hp, "errorCode"), h.ErrorCode, 400, 599)
	}
	if h.ErrorURL != "" {
		if !(strings.HasPrefix(h.ErrorURL, "http://") || strings.HasPrefix(h.ErrorURL, "https://") || strings.HasPrefix(h.ErrorURL, "/")) ||
			strings.ContainsFunc(h.ErrorURL, isSpaceOrControl) || len(h.ErrorURL) > 2048 {
			e.add(join(hp, "errorUrl"), "must be an http(s):// URL or a path of at most 2048 characters without spaces, got %q", h.ErrorURL)
		}
		if h.ErrorCode != 0 {
			e.add(join(hp, "errorUrl"), "set errorUrl or errorCode, not both")
		}
	}
	if len(h.ErrorPage) > MaxErrorPage {
		e.add(join(hp, "errorPage"), "at most %d bytes, got %d", MaxErrorPage, len(h.ErrorPage))
	}
	opt := func(field string, v, lo, hi int) {
		if v != 0 {
			e.rng(join(hp, field), v, lo, hi)
		}
	}
	opt("maxHeaderBytes", h.MaxHeaderBytes, 1024, 65536)
	opt("maxHeaders", h.MaxHeaders, 8, 1000)
	opt("maxUri", h.MaxURI, 256, 65536)
	opt("headerTimeout", h.HeaderTimeout, 1, 300)
	opt("bodyTimeout", h.BodyTimeout, 1, 3600)
	if h.BodyMinRate != 0 && h.BodyMinRate != -1 && (h.BodyMinRate < 1 || h.BodyMinRate > MaxBodyMinRate) {
		e.add(join(hp, "bodyMinRate"), "must be -1 (no minimum) or 1-%d bytes per second, got %d", MaxBodyMinRate, h.BodyMinRate)
	}
	opt("responseTimeout", h.ResponseTimeout, 1, 86400)
	if sub {
		// The data plane takes these from the service (one setting for
		// every request of a client connection): refuse them on a SubVS
		// rather than ignore them.
		if h.BodyMinRate != 0 {
			e.add(join(hp, "bodyMinRate"), "set it on the service: its SubVSs share it")
		}
		if h.ResponseTimeout != 0 {
			e.add(join(hp, "responseTimeout"), "set it on the service: its SubVSs share it")
		}
	}
	opt("maxStreams", h.MaxStreams, 1, 1000)
	opt("retryTimeout", h.RetryTimeout, 1, 300)
	if h.Retries != nil {
		e.rng(join(hp, "retries"), *h.Retries, 0, 10)
	}
}
