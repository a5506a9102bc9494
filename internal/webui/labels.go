package webui

import (
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// labels names the configuration model's enumerated values as LoadMaster's
// WUI does. A value the model gains later shows under its own name until it
// gets a label here. The scheduling methods, persistence modes and values
// of "always check persist" are labelled where they are registered (see
// registered).
var labels = map[string]map[string]string{
	"protocol": {"tcp": "TCP", "udp": "UDP"},
	"type":     {"gen": "Generic (layer 4)", "http": "HTTP/HTTPS", "http2": "HTTP/2", "tls": "STARTTLS protocols"},
	"addVia": {
		"xff": "X-Forwarded-For (legacy)", "xff-via": "X-Forwarded-For and Via", "none": "None",
		"clientside-via": "X-ClientSide and Via", "clientside": "X-ClientSide", "xff-novia": "X-Forwarded-For without Via",
		"via": "Via only",
	},
	"profile": {"modern": "Modern (TLS 1.3 only)", "intermediate": "Intermediate (TLS 1.2 and 1.3)", "legacy": "Legacy (adds TLS 1.0 and 1.1)"},
	"check": {
		"icmp": "ICMP ping", "tcp": "TCP connection", "http": "HTTP", "https": "HTTPS", "smtp": "SMTP", "nntp": "NNTP",
		"ftp": "FTP", "telnet": "Telnet", "pop3": "POP3", "imap": "IMAP", "ldap": "LDAP", "bdata": "Binary data",
		"dns": "DNS", "none": "None",
	},
	"method":     {},
	"role":       {"admin": "Admin (everything)", "operator": "Operator (enable/disable real servers)", "read-only": "Read-only"},
	"tlsVersion": {"1.0": "TLS 1.0", "1.1": "TLS 1.1", "1.2": "TLS 1.2", "1.3": "TLS 1.3"},
	"severity": {
		"emerg": "emerg only", "alert": "alert and more severe", "crit": "crit and more severe", "err": "err and more severe",
		"warning": "warning and more severe", "notice": "notice and more severe", "info": "info and more severe", "debug": "debug (everything)",
	},
	"syslogProtocol":  {"udp": "UDP (RFC 5426)", "tcp": "TCP (RFC 6587)", "tls": "TLS (RFC 5425)"},
	"accessLogFormat": {"json": "JSON lines", "haproxy": "HAProxy HTTP log format"},
	"emailSecurity":   {"starttls": "STARTTLS (required)", "tls": "TLS (implicit, port 465)", "none": "None (no password sent)"},
}

// registered returns the labelled values of an enumeration whose values
// are registered with their labels (the scheduling methods in package
// balance, the persistence modes and the values of "always check persist"
// in package persist), in registry order; nil for the others.
func registered(kind string) []option {
	var out []option
	switch kind {
	case "schedule":
		for _, m := range balance.Registered() {
			out = append(out, option{Value: m.Name, Label: m.Label})
		}
	case "persist":
		for _, m := range persist.Registered() {
			out = append(out, option{Value: m.Name, Label: m.Label})
		}
	case "alwaysPersist":
		for _, a := range persist.AlwaysRegistered() {
			out = append(out, option{Value: a.Name, Label: a.Label})
		}
	}
	return out
}

// values are the model's allowed values of each enumeration.
func values(kind string) []string {
	switch kind {
	case "protocol":
		return config.Protocols
	case "type":
		return config.ServiceTypes
	case "addVia":
		return config.AddViaModes
	case "profile":
		return config.TLSProfiles
	case "check":
		return config.CheckTypes
	case "method":
		return config.CheckMethods
	case "role":
		return config.Roles
	case "tlsVersion":
		return config.TLSVersions
	case "severity":
		return config.Severities
	case "syslogProtocol":
		return config.SyslogProtocols
	case "accessLogFormat":
		return config.AccessLogFormats
	case "emailSecurity":
		return config.EmailSecurities
	}
	return nil
}

// choices returns the options of an enumeration, labelled.
func choices(kind string) []option {
	if opts := registered(kind); opts != nil {
		return opts
	}
	vs := values(kind)
	out := make([]option, 0, len(vs))
	for _, v := range vs {
		l, ok := labels[kind][v]
		if !ok {
			l = v
		}
		out = append(out, option{Value: v, Label: l})
	}
	return out
}

// label returns the label of one value.
func label(kind, v string) string {
	for _, o := range registered(kind) {
		if o.Value == v {
			return o.Label
		}
	}
	if l, ok := labels[kind][v]; ok {
		return l
	}
	return v
}
