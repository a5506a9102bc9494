package webui

import (
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// section is one form of a virtual service's page (LoadMaster's
// collapsible sections of View/Modify Services): its fields, how to fill
// them from the configuration, and how to apply a posted form to it.
type section struct {
	// Title is the section's heading.
	Title string
	// Fields are the form's field names: paths relative to the service.
	Fields []string
	// fill sets the form's values from the service.
	fill func(f *form, v *config.VirtualService)
	// apply changes the service from the posted form.
	apply func(p *parser, v *config.VirtualService, sub bool)
}

// sectionOrder is the order of the sections on the page.
var sectionOrder = []string{"basic", "standard", "ssl", "health", "advanced", "limits"}

var sections = map[string]section{
	"basic": {
		Title:  "Basic properties",
		Fields: []string{"nickname", "address", "port", "extraPorts", "protocol", "type", "enabled"},
		fill: func(f *form, v *config.VirtualService) {
			f.set("nickname", v.NickName)
			f.set("address", v.Address)
			f.set("port", v.Port)
			f.set("extraPorts", v.ExtraPorts)
			f.set("protocol", v.Protocol)
			f.set("type", v.Type)
			f.set("enabled", v.Enabled == nil || *v.Enabled)
		},
		apply: func(p *parser, v *config.VirtualService, sub bool) {
			v.NickName = p.str("nickname")
			if !sub {
				v.Address = p.str("address")
				v.Port = p.int("port")
				v.ExtraPorts = p.str("extraPorts")
				v.Protocol = p.str("protocol")
			}
			v.Type = p.str("type")
			v.Enabled = config.Bool(p.bool("enabled"))
		},
	},
	"standard": {
		Title: "Standard options",
		Fields: []string{"persistence.mode", "persistence.timeout", "persistence.cookie", "persistence.queryTag",
			"persistence.mask", "schedule", "idleTimeout", "transparent", "subnetOriginating"},
		fill: func(f *form, v *config.VirtualService) {
			f.set("persistence.mode", v.Persistence.Mode)
			f.set("persistence.timeout", v.Persistence.Timeout)
			f.set("persistence.cookie", v.Persistence.Cookie)
			f.set("persistence.queryTag", v.Persistence.QueryTag)
			f.set("persistence.mask", v.Persistence.Mask)
			f.set("schedule", v.Schedule)
			f.set("idleTimeout", v.Idletime)
			f.set("transparent", config.IsTrue(v.Transparent))
			f.set("subnetOriginating", config.IsTrue(v.SubnetOriginating))
		},
		apply: func(p *parser, v *config.VirtualService, sub bool) {
			v.Persistence.Mode = p.str("persistence.mode")
			v.Persistence.Timeout = p.int("persistence.timeout")
			v.Persistence.Cookie = p.str("persistence.cookie")
			v.Persistence.QueryTag = p.str("persistence.queryTag")
			v.Persistence.Mask = p.int("persistence.mask")
			v.Schedule = p.str("schedule")
			v.Idletime = p.int("idleTimeout")
			v.Transparent = config.Bool(p.bool("transparent"))
			v.SubnetOriginating = config.Bool(p.bool("subnetOriginating"))
		},
	},
	"ssl": {
		Title: "SSL properties",
		Fields: []string{"tls.offload", "tls.reencrypt", "tls.certificates", "tls.profile", "tls.versions",
			"tls.needHostName", "tls.verifyServer", "tls.passSni", "tls.serverName", "tls.caBundle"},
		fill: func(f *form, v *config.VirtualService) {
			t := v.TLS
			f.set("tls.offload", t.Offload)
			f.set("tls.reencrypt", t.Reencrypt)
			f.set("tls.certificates", t.Certificates)
			f.set("tls.profile", t.Profile)
			f.set("tls.versions", t.Versions)
			f.set("tls.needHostName", t.NeedHostName)
			f.set("tls.verifyServer", t.VerifyServer)
			f.set("tls.passSni", t.PassSNI)
			f.set("tls.serverName", t.ServerName)
			f.set("tls.caBundle", t.CABundle)
		},
		apply: func(p *parser, v *config.VirtualService, sub bool) {
			t := &v.TLS
			t.Offload = p.bool("tls.offload")
			t.Reencrypt = p.bool("tls.reencrypt")
			t.Certificates = p.list("tls.certificates")
			t.Profile = p.str("tls.profile")
			t.Versions = p.list("tls.versions")
			t.NeedHostName = p.bool("tls.needHostName")
			t.VerifyServer = p.bool("tls.verifyServer")
			t.PassSNI = p.bool("tls.passSni")
			t.ServerName = p.str("tls.serverName")
			t.CABundle = p.v.Get("tls.caBundle")
		},
	},
	"health": {
		Title: "Real server check",
		Fields: []string{"healthCheck.type", "healthCheck.port", "healthCheck.url", "healthCheck.method",
			"healthCheck.http11", "healthCheck.host", "healthCheck.headers", "healthCheck.postData",
			"healthCheck.codes", "healthCheck.pattern", "healthCheck.send", "healthCheck.interval",
			"healthCheck.timeout", "healthCheck.retryCount", "healthCheck.minUp", "healthCheck.verifyTls"},
		fill: func(f *form, v *config.VirtualService) {
			h := v.HealthCheck
			f.set("healthCheck.type", h.Type)
			f.set("healthCheck.port", h.Port)
			f.set("healthCheck.url", h.URL)
			f.set("healthCheck.method", h.Method)
			f.set("healthCheck.http11", h.HTTP11)
			f.set("healthCheck.host", h.Host)
			f.set("healthCheck.headers", formatHeaders(h.Headers))
			f.set("healthCheck.postData", h.PostData)
			f.set("healthCheck.codes", formatInts(h.Codes))
			f.set("healthCheck.pattern", h.Pattern)
			f.set("healthCheck.send", h.Send)
			f.set("healthCheck.interval", h.Interval)
			f.set("healthCheck.timeout", h.Timeout)
			f.set("healthCheck.retryCount", h.RetryCount)
			f.set("healthCheck.minUp", h.MinUp)
			f.set("healthCheck.verifyTls", h.VerifyTLS)
		},
		apply: func(p *parser, v *config.VirtualService, sub bool) {
			h := &v.HealthCheck
			h.Type = p.str("healthCheck.type")
			h.Port = p.int("healthCheck.port")
			h.URL = p.str("healthCheck.url")
			h.Method = p.str("healthCheck.method")
			h.HTTP11 = p.bool("healthCheck.http11")
			h.Host = p.str("healthCheck.host")
			h.Headers = p.headers("healthCheck.headers")
			h.PostData = p.v.Get("healthCheck.postData")
			h.Codes = p.ints("healthCheck.codes")
			h.Pattern = p.str("healthCheck.pattern")
			h.Send = p.str("healthCheck.send")
			h.Interval = p.int("healthCheck.interval")
			h.Timeout = p.int("healthCheck.timeout")
			h.RetryCount = p.int("healthCheck.retryCount")
			h.MinUp = p.int("healthCheck.minUp")
			h.VerifyTLS = p.bool("healthCheck.verifyTls")
		},
	},
	"advanced": {
		Title:  "Advanced properties",
		Fields: []string{"defaultGateway", "sorryServer.address", "sorryServer.port", "addVia", "accessLog"},
		fill: func(f *form, v *config.VirtualService) {
			f.set("defaultGateway", v.DefaultGateway)
			if v.SorryServer != nil {
				f.set("sorryServer.address", v.SorryServer.Address)
				f.set("sorryServer.port", v.SorryServer.Port)
			}
			f.set("addVia", v.AddVia)
			f.set("accessLog", v.AccessLog)
		},
		apply: func(p *parser, v *config.VirtualService, sub bool) {
			v.DefaultGateway = p.str("defaultGateway")
			addr, port := p.str("sorryServer.address"), p.int("sorryServer.port")
			if addr == "" && port == 0 {
				v.SorryServer = nil
			} else {
				v.SorryServer = &config.Endpoint{Address: addr, Port: port}
			}
			v.AddVia = p.str("addVia")
			if !sub {
				// A SubVS's requests are logged by its parent's switch.
				v.AccessLog = p.bool("accessLog")
			}
		},
	},
	"limits": {
		Title:  "Limits",
		Fields: []string{"limits.maxConns", "limits.connsPerSec", "limits.requestsPerSec", "limits.bandwidth"},
		fill: func(f *form, v *config.VirtualService) {
			f.set("limits.maxConns", v.Limits.MaxConns)
			f.set("limits.connsPerSec", v.Limits.ConnsPerSec)
			f.set("limits.requestsPerSec", v.Limits.RequestsPerSec)
			f.set("limits.bandwidth", v.Limits.Bandwidth)
		},
		apply: func(p *parser, v *config.VirtualService, sub bool) {
			v.Limits.MaxConns = p.int("limits.maxConns")
			v.Limits.ConnsPerSec = p.int("limits.connsPerSec")
			v.Limits.RequestsPerSec = p.int("limits.requestsPerSec")
			v.Limits.Bandwidth = p.int("limits.bandwidth")
		},
	},
}

// rsFields are the fields of the real-server form.
var rsFields = []string{"address", "port", "weight", "limit", "critical", "enabled", "follow", "checkAddress"}

func fillRS(f *form, rs *config.RealServer) {
	f.set("address", rs.Address)
	f.set("port", rs.Port)
	f.set("weight", rs.Weight)
	f.set("limit", rs.Limit)
	f.set("critical", rs.Critical)
	f.set("enabled", rs.Enabled == nil || *rs.Enabled)
	f.set("follow", rs.Follow)
	f.set("checkAddress", rs.CheckAddress)
}

func applyRS(p *parser, rs *config.RealServer) {
	rs.Address = p.str("address")
	rs.Port = p.int("port")
	rs.Weight = p.int("weight")
	rs.Limit = p.int("limit")
	rs.Critical = p.bool("critical")
	rs.Enabled = config.Bool(p.bool("enabled"))
	rs.Follow = p.int("follow")
	rs.CheckAddress = p.str("checkAddress")
}
