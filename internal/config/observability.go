package config

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// Severities are the values of the severity fields (SyslogHost.Severity,
// Email.Severity, Webhook.Severity): RFC 5424's keywords, most severe
// first. A destination receives the events of its severity and every more
// severe one.
var Severities = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// SyslogProtocols are the values of SyslogHost.Protocol.
var SyslogProtocols = []string{"udp", "tcp", "tls"}

// AccessLogFormats are the values of AccessLog.Format.
var AccessLogFormats = []string{"json", "haproxy"}

// EmailSecurities are the values of Email.Security.
var EmailSecurities = []string{"starttls", "tls", "none"}

// Limits of the observability lists.
const (
	MaxSyslogHosts = 10
	MaxWebhooks    = 10
	MaxEmailTo     = 20
)

// Metrics are the settings of the Prometheus exposition (GET /metrics).
type Metrics struct {
	// HAProxyNames adds, beside Fulcrum's own `fulcrum_…` families, the
	// families of HAProxy's built-in exporter (`haproxy_frontend_…`,
	// `haproxy_backend_…`, `haproxy_server_…` with the labels `proxy` and
	// `server`), so that dashboards made for HAProxy work unchanged.
	// Default: false.
	HAProxyNames bool `json:"haproxyNames,omitempty"`
}

// Logging says where events and access logs go.
type Logging struct {
	// Syslog are the remote syslog hosts (RFC 5424); at most 10. Each gets
	// the events of its severity and above. Default: none.
	Syslog []SyslogHost `json:"syslog,omitempty"`
	// AccessLog is where the access logs of services with accessLog go
	// besides syslog hosts with accessLogs. Default: no file.
	AccessLog AccessLog `json:"accessLog"`
}

// SyslogHost is one remote syslog receiver.
type SyslogHost struct {
	// Address is the receiver's IP address or host name. Required.
	Address string `json:"address"`
	// Port is the receiver's port; 0 means 514 (udp, tcp) or 6514 (tls).
	// Default: 514 or 6514.
	Port int `json:"port,omitempty"`
	// Protocol is "udp" (RFC 5426), "tcp" (RFC 6587 octet counting) or
	// "tls" (RFC 5425). Default: "udp".
	Protocol string `json:"protocol"`
	// Severity is the least severe level sent (see Severities), as
	// LoadMaster's per-severity host lists. Default: "info".
	Severity string `json:"severity"`
	// AccessLogs also sends the access log lines of services with
	// accessLog to this host (severity info, facility local1).
	// Default: false.
	AccessLogs bool `json:"accessLogs,omitempty"`
	// ServerName is the name the receiver's TLS certificate must hold;
	// "" means Address. Only for "tls". Default: "".
	ServerName string `json:"serverName,omitempty"`
	// CACert is the PEM certificate(s) the receiver's TLS certificate must
	// chain to; "" means the system's roots. Only for "tls". Default: "".
	CACert string `json:"caCert,omitempty"`
}

// AccessLog is the access log file.
type AccessLog struct {
	// File is the absolute path of the access log file; "" writes no file.
	// The file is reopened on SIGHUP (logrotate's postrotate). Default: "".
	File string `json:"file,omitempty"`
	// Format is "json" (one JSON object per line) or "haproxy" (HAProxy's
	// HTTP log format). Default: "json".
	Format string `json:"format"`
}

// Alerts are the e-mail and webhook alerts sent on events.
type Alerts struct {
	// Email sends events by e-mail when Server is set. Default: off.
	Email Email `json:"email"`
	// Webhooks receive events as JSON POSTs; at most 10. Default: none.
	Webhooks []Webhook `json:"webhooks,omitempty"`
	// CertExpiryDays raises a warning event for every certificate that
	// expires within this many days (checked at start and every hour); 0
	// means 30. 1-365. Default: 30.
	CertExpiryDays int `json:"certExpiryDays"`
}

// Email is the SMTP relay that alert mails go through.
type Email struct {
	// Server is the SMTP relay's host name or address; "" sends no mail.
	// Default: "".
	Server string `json:"server,omitempty"`
	// Port is the relay's port; 0 means 587 (starttls), 465 (tls) or 25
	// (none). Default: by Security.
	Port int `json:"port,omitempty"`
	// Security is "starttls" (required: a relay that does not offer it
	// gets no mail), "tls" (implicit TLS) or "none". Default: "starttls".
	Security string `json:"security"`
	// ServerName is the name the relay's certificate must hold; "" means
	// Server. Default: "".
	ServerName string `json:"serverName,omitempty"`
	// CACert is the PEM certificate(s) the relay's certificate must chain
	// to; "" means the system's roots. Default: "".
	CACert string `json:"caCert,omitempty"`
	// User and Password authenticate to the relay (SMTP AUTH PLAIN, only
	// over TLS); "" sends no AUTH. Default: "".
	User string `json:"user,omitempty"`
	// Password is User's password. Default: "".
	Password string `json:"password,omitempty"`
	// From is the sender address. Required with To.
	From string `json:"from,omitempty"`
	// To are the recipients; at most 20. A Server without recipients
	// sends no mail (a setup in progress, as LoadMaster's API sets one
	// parameter per call): the Logging & alerts page says so.
	// Default: none.
	To []string `json:"to,omitempty"`
	// Severity is the least severe level mailed. Default: "warning".
	Severity string `json:"severity"`
}

// Webhook is an HTTP(S) endpoint that receives events as JSON.
type Webhook struct {
	// URL is the http or https URL events are POSTed to. Required.
	URL string `json:"url"`
	// Severity is the least severe level sent. Default: "warning".
	Severity string `json:"severity"`
	// Secret, when set, signs each body: the header
	// X-Fulcrum-Signature carries "sha256=" and the hex HMAC-SHA256 of the
	// body with this key. Default: "".
	Secret string `json:"secret,omitempty"`
	// CACert is the PEM certificate(s) an https endpoint's certificate must
	// chain to; "" means the system's roots. Default: "".
	CACert string `json:"caCert,omitempty"`
}

// SeverityLevel returns the RFC 5424 numeric level of a severity keyword
// (0 emerg … 7 debug) and false for an unknown one.
func SeverityLevel(s string) (int, bool) {
	for i, v := range Severities {
		if v == s {
			return i, true
		}
	}
	return 0, false
}

// DefaultCertExpiryDays is Alerts.CertExpiryDays's default.
const DefaultCertExpiryDays = 30

func (l *Logging) setDefaults() {
	for i := range l.Syslog {
		h := &l.Syslog[i]
		if h.Protocol == "" {
			h.Protocol = "udp"
		}
		if h.Port == 0 {
			h.Port = 514
			if h.Protocol == "tls" {
				h.Port = 6514
			}
		}
		if h.Severity == "" {
			h.Severity = "info"
		}
	}
	if l.AccessLog.Format == "" {
		l.AccessLog.Format = "json"
	}
}

func (a *Alerts) setDefaults() {
	setInt(&a.CertExpiryDays, DefaultCertExpiryDays)
	m := &a.Email
	if m.Security == "" {
		m.Security = "starttls"
	}
	if m.Severity == "" {
		m.Severity = "warning"
	}
	if m.Port == 0 && m.Server != "" {
		switch m.Security {
		case "tls":
			m.Port = 465
		case "none":
			m.Port = 25
		default:
			m.Port = 587
		}
	}
	for i := range a.Webhooks {
		if a.Webhooks[i].Severity == "" {
			a.Webhooks[i].Severity = "warning"
		}
	}
}

// validCAs checks an optional PEM bundle of CA certificates.
func validCAs(e *errs, p, pemText string) {
	if pemText == "" {
		return
	}
	rest := []byte(pemText)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			e.add(p, "must hold only PEM CERTIFICATE blocks, found %q", b.Type)
			return
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			e.add(p, "certificate %d does not parse: %v", n+1, err)
			return
		}
		n++
	}
	if n == 0 {
		e.add(p, "must hold at least one PEM CERTIFICATE block")
	}
}

func (l *Logging) validate(e *errs, p string) {
	if len(l.Syslog) > MaxSyslogHosts {
		e.add(join(p, "syslog"), "at most %d hosts, got %d", MaxSyslogHosts, len(l.Syslog))
	}
	seen := map[string]bool{}
	for i := range l.Syslog {
		h := &l.Syslog[i]
		hp := index(join(p, "syslog"), i)
		if !validHost(h.Address) {
			e.add(join(hp, "address"), "must be an IP address or host name, got %q", h.Address)
		}
		e.rng(join(hp, "port"), h.Port, 1, 65535)
		e.oneOf(join(hp, "protocol"), h.Protocol, SyslogProtocols)
		e.oneOf(join(hp, "severity"), h.Severity, Severities)
		key := h.Protocol + "://" + net.JoinHostPort(h.Address, strconv.Itoa(h.Port))
		if seen[key] {
			e.add(join(hp, "address"), "duplicate syslog host %s", key)
		}
		seen[key] = true
		if h.Protocol != "tls" {
			if h.ServerName != "" {
				e.add(join(hp, "serverName"), "only for protocol tls")
			}
			if h.CACert != "" {
				e.add(join(hp, "caCert"), "only for protocol tls")
			}
		}
		if h.ServerName != "" && !validHost(h.ServerName) {
			e.add(join(hp, "serverName"), "must be a host name or IP address, got %q", h.ServerName)
		}
		validCAs(e, join(hp, "caCert"), h.CACert)
	}
	a := join(p, "accessLog")
	if f := l.AccessLog.File; f != "" {
		if !filepath.IsAbs(f) || filepath.Clean(f) != f || strings.ContainsFunc(f, isSpaceOrControl) || len(f) > 1024 {
			e.add(join(a, "file"), "must be a clean absolute path without spaces or control characters, got %q", f)
		}
	}
	e.oneOf(join(a, "format"), l.AccessLog.Format, AccessLogFormats)
}

func (a *Alerts) validate(e *errs, p string) {
	e.rng(join(p, "certExpiryDays"), a.CertExpiryDays, 1, 365)
	m := &a.Email
	mp := join(p, "email")
	e.oneOf(join(mp, "security"), m.Security, EmailSecurities)
	e.oneOf(join(mp, "severity"), m.Severity, Severities)
	if m.Server != "" {
		if !validHost(m.Server) {
			e.add(join(mp, "server"), "must be an IP address or host name, got %q", m.Server)
		}
		e.rng(join(mp, "port"), m.Port, 1, 65535)
		if _, err := mail.ParseAddress(m.From); (err != nil && (m.From != "" || len(m.To) > 0)) || strings.ContainsAny(m.From, "\r\n") {
			e.add(join(mp, "from"), "must be an e-mail address, got %q", m.From)
		}
		if len(m.To) > MaxEmailTo {
			e.add(join(mp, "to"), "at most %d recipients, got %d", MaxEmailTo, len(m.To))
		}
		for i, to := range m.To {
			if _, err := mail.ParseAddress(to); err != nil || strings.ContainsAny(to, "\r\n") {
				e.add(index(join(mp, "to"), i), "must be an e-mail address, got %q", to)
			}
		}
		if m.User != "" && m.Security == "none" {
			e.add(join(mp, "user"), "a password is sent only over TLS: set security to starttls or tls")
		}
	} else if m.User != "" || m.Password != "" || len(m.To) > 0 || m.From != "" {
		e.add(join(mp, "server"), "required when from, to, user or password is set")
	}
	if m.ServerName != "" && !validHost(m.ServerName) {
		e.add(join(mp, "serverName"), "must be a host name or IP address, got %q", m.ServerName)
	}
	validCAs(e, join(mp, "caCert"), m.CACert)
	if len(a.Webhooks) > MaxWebhooks {
		e.add(join(p, "webhooks"), "at most %d webhooks, got %d", MaxWebhooks, len(a.Webhooks))
	}
	for i := range a.Webhooks {
		w := &a.Webhooks[i]
		wp := index(join(p, "webhooks"), i)
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(w.URL) > 2048 {
			e.add(join(wp, "url"), "must be an http or https URL without user info, got %q", w.URL)
		}
		e.oneOf(join(wp, "severity"), w.Severity, Severities)
		validCAs(e, join(wp, "caCert"), w.CACert)
	}
}

// Redacted is what a secret (a private key, the e-mail password, a webhook
// secret) reads as for a caller who may not read secrets. A document that
// gives it back for the e-mail password or a webhook secret keeps the
// stored value (see KeepSecrets).
const Redacted = "(redacted)"

// RedactSecrets replaces the e-mail password and the webhook secrets of o
// with Redacted; o's lists are copied, so the caller's configuration is
// untouched.
func (o *Options) RedactSecrets() {
	if o.Alerts.Email.Password != "" {
		o.Alerts.Email.Password = Redacted
	}
	o.Alerts.Webhooks = append([]Webhook(nil), o.Alerts.Webhooks...)
	for i := range o.Alerts.Webhooks {
		if o.Alerts.Webhooks[i].Secret != "" {
			o.Alerts.Webhooks[i].Secret = Redacted
		}
	}
}

// KeepSecrets puts back, where o holds Redacted, the secret that cur holds:
// the e-mail password, and the secret of the webhook with the same URL. A
// Redacted webhook secret without such a webhook in cur is an error naming
// the field.
func (o *Options) KeepSecrets(cur *Options) error {
	var e errs
	if o.Alerts.Email.Password == Redacted {
		o.Alerts.Email.Password = cur.Alerts.Email.Password
	}
	for i := range o.Alerts.Webhooks {
		w := &o.Alerts.Webhooks[i]
		if w.Secret != Redacted {
			continue
		}
		w.Secret = ""
		found := false
		for _, c := range cur.Alerts.Webhooks {
			if c.URL == w.URL {
				w.Secret, found = c.Secret, true
				break
			}
		}
		if !found {
			e.add(join(index("options.alerts.webhooks", i), "secret"), "%s stands for a stored secret, but no stored webhook has URL %q: give the secret", Redacted, w.URL)
		}
	}
	return e.err()
}
