package persist

import "slices"

// ModeInfo is one persistence mode as the configuration, the web UI and
// the LoadMaster-compatible API name it. Every mode is registered once, in
// modes; the configuration's allowed values, the web UI's choices and the
// LoadMaster mapping are derived from it.
type ModeInfo struct {
	// Name is the mode's configuration value (Persistence.Mode), one of
	// the Mode constants.
	Name string
	// Label is how the web UI names the mode, as LoadMaster's WUI does.
	Label string
	// LoadMaster is the mode's value of the LoadMaster API's Persist
	// parameter; "" for a mode LoadMaster does not have.
	LoadMaster string
	// spec is how the mode keys its entries.
	spec spec
}

// modes lists every persistence mode once, in the order the web UI offers
// them and validation names them.
var modes = []ModeInfo{
	{Name: ModeNone, Label: "None", LoadMaster: "none"},
	{Name: ModeSrc, Label: "Source IP address", LoadMaster: "src", spec: spec{src: true}},
	{Name: ModeSuper, Label: "Super HTTP", LoadMaster: "super", spec: spec{kind: kindStored, needsHTTP: true}},
	{Name: ModeSuperSrc, Label: "Super HTTP and source IP address", LoadMaster: "super-src", spec: spec{kind: kindStored, needsHTTP: true}},
	{Name: ModeCookie, Label: "Server cookie", LoadMaster: "cookie", spec: spec{kind: kindLearned, needsHTTP: true}},
	{Name: ModeCookieSrc, Label: "Server cookie or source IP", LoadMaster: "cookie-src", spec: spec{kind: kindLearned, src: true, needsHTTP: true}},
	{Name: ModeActiveCookie, Label: "Active cookie", LoadMaster: "active-cookie", spec: spec{kind: kindToken, needsHTTP: true}},
	{Name: ModeActiveCookieSrc, Label: "Active cookie or source IP", LoadMaster: "active-cook-src", spec: spec{kind: kindToken, src: true, needsHTTP: true}},
	{Name: ModeCookieHash, Label: "Hash of all cookies", LoadMaster: "cookie-hash", spec: spec{kind: kindStored, needsHTTP: true}},
	{Name: ModeCookieHashSrc, Label: "Hash of all cookies or source IP", LoadMaster: "cookie-hash-src", spec: spec{kind: kindStored, src: true, needsHTTP: true}},
	{Name: ModeURL, Label: "URL hash", LoadMaster: "url", spec: spec{kind: kindStored, needsHTTP: true}},
	{Name: ModeQueryHash, Label: "Query hash", LoadMaster: "query-hash", spec: spec{kind: kindStored, needsHTTP: true}},
	{Name: ModeHost, Label: "HTTP host header", LoadMaster: "host", spec: spec{kind: kindStored, needsHTTP: true}},
	{Name: ModeHeader, Label: "Selected header", LoadMaster: "header", spec: spec{kind: kindStored, needsHTTP: true}},
	{Name: ModeSSL, Label: "SSL session ID", LoadMaster: "ssl", spec: spec{kind: kindLearned}},
	{Name: ModeUDPSIP, Label: "UDP SIP", LoadMaster: "udpsip", spec: spec{kind: kindStored}},
}

// specs maps each mode's name to how it keys its entries.
var specs = func() map[string]spec {
	m := make(map[string]spec, len(modes))
	for _, r := range modes {
		m[r.Name] = r.spec
	}
	return m
}()

// Registered returns every persistence mode, in registry order.
func Registered() []ModeInfo { return slices.Clone(modes) }

// Names returns the configuration names of the persistence modes, in
// registry order.
func Names() []string {
	out := make([]string, len(modes))
	for i, r := range modes {
		out[i] = r.Name
	}
	return out
}

// FromLoadMaster returns the persistence mode whose LoadMaster Persist
// value is lm.
func FromLoadMaster(lm string) (ModeInfo, bool) {
	i := slices.IndexFunc(modes, func(r ModeInfo) bool { return r.LoadMaster != "" && r.LoadMaster == lm })
	if i < 0 {
		return ModeInfo{}, false
	}
	return modes[i], true
}

// Lookup returns the persistence mode with the configuration name.
func Lookup(name string) (ModeInfo, bool) {
	i := slices.IndexFunc(modes, func(r ModeInfo) bool { return r.Name == name })
	if i < 0 {
		return ModeInfo{}, false
	}
	return modes[i], true
}
