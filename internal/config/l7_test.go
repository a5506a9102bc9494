package config

import (
	"strings"
	"testing"
)

const l7Base = `
contentRules:
- {name: is-meet, match: host, pattern: meet.example.com, matchType: postfix, noCase: true}
- {name: api, match: url, pattern: /api/, matchType: prefix, setFlag: 3}
- {name: add-x, type: addHeader, header: X-Env, replacement: prod}
- {name: strip, type: deleteHeader, header: Server}
- {name: rw, type: modifyUrl, pattern: "^/old/(.*)", replacement: "/new/\\1"}
virtualServices:
- address: 127.0.0.2
  port: 443
  type: http
  http: {preRules: [api], requestRules: [add-x, rw], responseRules: [strip], trustedProxies: [10.0.0.0/8, 192.0.2.1]}
  subVSs:
  - {type: http, http: {selectRules: [is-meet]}, realServers: [{address: 127.0.0.3, port: 8080}]}
  - {type: http, realServers: [{address: 127.0.0.4, port: 8080}]}
`

func TestValidateL7Valid(t *testing.T) {
	c := mustDecode(t, l7Base)
	if err := c.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if c.ContentRules[2].Type != "addHeader" || c.ContentRules[0].Type != "match" || c.ContentRules[0].MatchType != "postfix" {
		t.Errorf("rule defaults wrong: %+v", c.ContentRules)
	}
	if c.ContentRules[1].MatchType != "prefix" || c.ContentRules[4].MatchType != "regex" {
		t.Errorf("matchType defaults wrong: %+v", c.ContentRules)
	}
}

// TestValidateL7Timeouts: the body minimum rate and the response timeout
// are accepted on a service at their bounds, and -1 turns the minimum
// rate off.
func TestValidateL7Timeouts(t *testing.T) {
	for _, tt := range []struct{ rate, resp int }{{-1, 1}, {1, 86400}, {1 << 30, 0}, {0, 30}} {
		c := mustDecode(t, l7Base)
		c.VirtualServices[0].HTTP.BodyMinRate = tt.rate
		c.VirtualServices[0].HTTP.ResponseTimeout = tt.resp
		if err := c.Validate(); err != nil {
			t.Errorf("bodyMinRate %d, responseTimeout %d: %v", tt.rate, tt.resp, err)
		}
	}
	c := mustDecode(t, strings.Replace(l7Base, "trustedProxies: [10.0.0.0/8, 192.0.2.1]}", "trustedProxies: [10.0.0.0/8, 192.0.2.1], bodyMinRate: -1, responseTimeout: 3600}", 1))
	if err := c.Validate(); err != nil || c.VirtualServices[0].HTTP.BodyMinRate != -1 || c.VirtualServices[0].HTTP.ResponseTimeout != 3600 {
		t.Fatalf("decoded %+v, %v", c.VirtualServices[0].HTTP, err)
	}
}

func TestValidateL7Errors(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"duplicate rule", func(c *Config) { c.ContentRules[1].Name = "is-meet" }, `contentRules[1].name: duplicate rule name "is-meet"`},
		{"bad regex", func(c *Config) { c.ContentRules[0].MatchType = "regex"; c.ContentRules[0].Pattern = "(" }, "contentRules[0].pattern: not a valid regular expression"},
		{"bad match", func(c *Config) { c.ContentRules[0].Match = "cookie" }, "contentRules[0].match: must be one of url, host, header, query, body"},
		{"header match without name", func(c *Config) { c.ContentRules[0].Match = "header" }, "contentRules[0].header: required for match header"},
		{"flag range", func(c *Config) { c.ContentRules[1].SetFlag = 10 }, "contentRules[1].setFlag: must be 0-9, got 10"},
		{"add without header", func(c *Config) { c.ContentRules[2].Header = "" }, "contentRules[2].header: required for addHeader"},
		{"framing header", func(c *Config) { c.ContentRules[3].Header = "Transfer-Encoding" }, "contentRules[3].header: Transfer-Encoding is a framing or hop-by-hop header"},
		{"control in replacement", func(c *Config) { c.ContentRules[2].Replacement = "a\r\nX-Evil: 1" }, "contentRules[2].replacement: must not contain control characters"},
		{"modify without pattern", func(c *Config) { c.ContentRules[4].Pattern = "" }, "contentRules[4].pattern: required for modifyUrl"},
		{"bad header name", func(c *Config) { c.ContentRules[2].Header = "X Env" }, `contentRules[2].header: must be a header name`},
		{"unknown rule ref", func(c *Config) { c.VirtualServices[0].HTTP.RequestRules = []string{"nope"} }, `virtualServices[0].http.requestRules[0]: no content rule named "nope"`},
		{"match rule as request rule", func(c *Config) { c.VirtualServices[0].HTTP.RequestRules = []string{"api"} }, `virtualServices[0].http.requestRules[0]: rule "api" is of type match`},
		{"select rule on top VS", func(c *Config) { c.VirtualServices[0].HTTP.SelectRules = []string{"api"} }, "virtualServices[0].http.selectRules: only SubVSs are selected by rules"},
		{"select with header rule", func(c *Config) { c.VirtualServices[0].SubVSs[0].HTTP.SelectRules = []string{"add-x"} }, `virtualServices[0].subVSs[0].http.selectRules[0]: rule "add-x" is of type addHeader`},
		{"bad cidr", func(c *Config) { c.VirtualServices[0].HTTP.TrustedProxies = []string{"10.0.0.0/33"} }, "virtualServices[0].http.trustedProxies[0]: must be a CIDR prefix"},
		{"error code range", func(c *Config) { c.VirtualServices[0].HTTP.ErrorCode = 200 }, "virtualServices[0].http.errorCode: must be 400-599, got 200"},
		{"error url", func(c *Config) { c.VirtualServices[0].HTTP.ErrorURL = "javascript:x" }, "virtualServices[0].http.errorUrl: must be an http(s):// URL"},
		{"error url and code", func(c *Config) {
			c.VirtualServices[0].HTTP.ErrorURL = "https://%h%s"
			c.VirtualServices[0].HTTP.ErrorCode = 404
		}, "virtualServices[0].http.errorUrl: set errorUrl or errorCode, not both"},
		{"error page size", func(c *Config) { c.VirtualServices[0].HTTP.ErrorPage = strings.Repeat("x", MaxErrorPage+1) }, "virtualServices[0].http.errorPage: at most 16384 bytes"},
		{"limits", func(c *Config) { c.VirtualServices[0].HTTP.MaxHeaderBytes = 100 }, "virtualServices[0].http.maxHeaderBytes: must be 1024-65536, got 100"},
		{"retries", func(c *Config) { n := 11; c.VirtualServices[0].HTTP.Retries = &n }, "virtualServices[0].http.retries: must be 0-10, got 11"},
		{"body min rate negative", func(c *Config) { c.VirtualServices[0].HTTP.BodyMinRate = -2 }, "virtualServices[0].http.bodyMinRate: must be -1 (no minimum) or 1-1073741824 bytes per second, got -2"},
		{"body min rate too high", func(c *Config) { c.VirtualServices[0].HTTP.BodyMinRate = 1<<30 + 1 }, "virtualServices[0].http.bodyMinRate: must be -1 (no minimum) or 1-1073741824"},
		{"body min rate on SubVS", func(c *Config) { c.VirtualServices[0].SubVSs[0].HTTP.BodyMinRate = 100 }, "virtualServices[0].subVSs[0].http.bodyMinRate: set it on the service"},
		{"response timeout range", func(c *Config) { c.VirtualServices[0].HTTP.ResponseTimeout = 86401 }, "virtualServices[0].http.responseTimeout: must be 1-86400, got 86401"},
		{"response timeout negative", func(c *Config) { c.VirtualServices[0].HTTP.ResponseTimeout = -1 }, "virtualServices[0].http.responseTimeout: must be 1-86400, got -1"},
		{"response timeout on SubVS", func(c *Config) { c.VirtualServices[0].SubVSs[0].HTTP.ResponseTimeout = 5 }, "virtualServices[0].subVSs[0].http.responseTimeout: set it on the service"},
		{"host rewrite", func(c *Config) { c.VirtualServices[0].HTTP.HostRewrite = "a b" }, "virtualServices[0].http.hostRewrite: must be a host[:port]"},
		{"http on gen", func(c *Config) {
			c.VirtualServices[0].Type = "gen"
			c.VirtualServices[0].SubVSs = nil
			c.VirtualServices[0].RealServers = []RealServer{{Address: "127.0.0.3", Port: 1, Weight: 1}}
		}, `virtualServices[0].http: needs an http or http2 service, got type "gen"`},
		{"tls version outside profile", func(c *Config) { c.VirtualServices[0].TLS.Versions = []string{"1.1"} }, `virtualServices[0].tls.versions[0]: TLS 1.1 is not allowed by profile "intermediate"`},
		{"tls version unknown", func(c *Config) { c.VirtualServices[0].TLS.Versions = []string{"3.0"} }, `virtualServices[0].tls.versions[0]: must be one of 1.0, 1.1, 1.2, 1.3`},
		{"pass sni without reencrypt", func(c *Config) { c.VirtualServices[0].TLS.PassSNI = true }, "virtualServices[0].tls.reencrypt: needed by passSni"},
		{"server name", func(c *Config) {
			c.VirtualServices[0].TLS.ServerName = "bad name"
		}, `virtualServices[0].tls.serverName: must be a DNS name, got "bad name"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustDecode(t, l7Base)
			tt.edit(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestProfileVersions(t *testing.T) {
	for _, tt := range []struct{ profile, want string }{
		{"modern", "1.3"}, {"intermediate", "1.2 1.3"}, {"legacy", "1.0 1.1 1.2 1.3"}, {"", "1.2 1.3"},
	} {
		if got := strings.Join(ProfileVersions(tt.profile), " "); got != tt.want {
			t.Errorf("ProfileVersions(%q) = %q, want %q", tt.profile, got, tt.want)
		}
	}
}
