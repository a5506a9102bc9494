package webui

import (
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// labels names the configuration model's enumerated values as LoadMaster's
// WUI does. A value the model gains later shows under its own name until it
// gets a label here.
var labels = map[string]map[string]string{
	"schedule": {
		"rr": "Round robin", "wrr": "Weighted round robin", "lc": "Least connection", "wlc": "Weighted least connection",
		"fixed": "Fixed weighting", "sh": "Source IP hash", "uhash": "URL hash", "dl": "Weighted response time",
		"adaptive": "Resource based (adaptive)",
	},
	"persist": {
		"none": "None", "src": "Source IP address", "super": "Super HTTP", "super-src": "Super HTTP and source IP address",
		"cookie": "Server cookie", "cookie-src": "Server cookie or source IP", "active-cookie": "Active cookie",
		"active-cook-src": "Active cookie or source IP", "cookie-hash": "Hash of all cookies",
		"cookie-hash-src": "Hash of all cookies or source IP", "url": "URL hash", "query-hash": "Query hash",
		"host": "HTTP host header", "header": "Selected header", "ssl": "SSL session ID", "udpsip": "UDP SIP",
	},
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
	"method":        {},
	"alwaysPersist": {"no": "No (first request only)", "yes": "Yes (every request)", "accept-changes": "Yes, accept changes"},
	"role":          {"admin": "Admin (everything)", "operator": "Operator (enable/disable real servers)", "read-only": "Read-only"},
	"tlsVersion":    {"1.0": "TLS 1.0", "1.1": "TLS 1.1", "1.2": "TLS 1.2", "1.3": "TLS 1.3"},
}

// values are the model's allowed values of each enumeration.
func values(kind string) []string {
	switch kind {
	case "schedule":
		return config.Schedules
	case "persist":
		return config.PersistModes
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
	case "alwaysPersist":
		return config.AlwaysPersistModes
	case "role":
		return config.Roles
	case "tlsVersion":
		return config.TLSVersions
	}
	return nil
}

// choices returns the options of an enumeration, labelled.
func choices(kind string) []option {
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
	if l, ok := labels[kind][v]; ok {
		return l
	}
	return v
}
