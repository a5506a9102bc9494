package config

import (
	"net/url"
	"strings"
)

// MaxSmokeChecks is the most smoke checks one service may carry.
const MaxSmokeChecks = 32

// SmokeCheck is one request that deployment verification sends through a
// virtual service, as a client would: to the service's address and port,
// with the URL's host as Host header and TLS server name.
type SmokeCheck struct {
	// Name says what is checked, e.g. "Meeting Space URL"; at most 128
	// printable characters. Required.
	Name string `json:"name"`
	// URL is the http or https URL a client would open. Required.
	URL string `json:"url"`
	// Expect are the status codes that pass, 100-599; none means any 2xx or
	// 3xx answer, or 401 (an authentication prompt proves the service is
	// there). Default: none.
	Expect []int `json:"expect,omitempty"`
}

// validateChecks checks a service's smoke checks.
func validateChecks(e *errs, v *VirtualService, p string) {
	if len(v.Checks) > MaxSmokeChecks {
		e.add(join(p, "checks"), "at most %d checks, got %d", MaxSmokeChecks, len(v.Checks))
	}
	for i, c := range v.Checks {
		cp := index(join(p, "checks"), i)
		if c.Name == "" || len(c.Name) > 128 || strings.ContainsFunc(c.Name, isControlOrFormat) {
			e.add(join(cp, "name"), "required: at most 128 printable characters (no control, bidi-override or zero-width characters)")
		}
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			e.add(join(cp, "url"), "must be an http or https URL with a host, got %q", c.URL)
		}
		for j, code := range c.Expect {
			e.rng(index(join(cp, "expect"), j), code, 100, 599)
		}
	}
}
