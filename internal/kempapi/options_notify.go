package kempapi

import (
	"net/mail"
	"os"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// LoadMaster's syslog and e-mail options (get/set), mapped onto
// options.logging.syslog and options.alerts.email. What does not map is
// listed in docs/kemp-api.md.

// severityList is one of LoadMaster's per-severity lists: the hosts (or
// recipients) of the list get the events of sev and above. covers are the
// Fulcrum severities shown in the list (Fulcrum also has alert and debug,
// which LoadMaster's lists do not).
type severityList struct {
	suffix string // after "syslog" or "email"
	sev    string
	covers []string
}

var severityLists = []severityList{
	{"emergency", "emerg", []string{"emerg", "alert"}},
	{"critical", "crit", []string{"crit"}},
	{"error", "err", []string{"err"}},
	{"warn", "warning", []string{"warning"}},
	{"notice", "notice", []string{"notice"}},
	{"info", "info", []string{"info", "debug"}},
}

func (l severityList) has(sev string) bool {
	for _, s := range l.covers {
		if s == sev {
			return true
		}
	}
	return false
}

// splitSeverityList reads a LoadMaster list: entries separated by commas and/or
// spaces, duplicates dropped.
func splitSeverityList(val string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

var errNoEmail = invalid("Command Failed: set emailserver first: recipients need an e-mail server")

var errNoSyslogHost = invalid("Command Failed: there is no syslog host to apply it to; Fulcrum keeps the port and protocol with each host: set syslogemergency … sysloginfo first")

func defaultSyslogPort(proto string) int {
	if proto == "tls" {
		return 6514
	}
	return 514
}

func init() {
	for _, l := range severityLists {
		name := "syslog" + l.suffix
		globalParams = append(globalParams, globalParam{name: name,
			get: func(_ *Server, o *config.Options) node {
				var hosts []string
				for _, h := range o.Logging.Syslog {
					if l.has(h.Severity) {
						hosts = append(hosts, h.Address)
					}
				}
				return str(name, strings.Join(hosts, ","))
			},
			set: func(o *config.Options, val string) *failure {
				setSyslogList(&o.Logging, l, splitSeverityList(val))
				return nil
			}})
	}
	globalParams = append(globalParams,
		globalParam{name: "syslogport",
			get: func(_ *Server, o *config.Options) node {
				if len(o.Logging.Syslog) == 0 {
					return inum("syslogport", 514)
				}
				return inum("syslogport", o.Logging.Syslog[0].Port)
			},
			set: func(o *config.Options, val string) *failure {
				n, ok := parseInt(val)
				if !ok {
					return invalid("Invalid value %q for syslogport (a whole number)", short(val))
				}
				if len(o.Logging.Syslog) == 0 {
					return errNoSyslogHost
				}
				for i := range o.Logging.Syslog {
					o.Logging.Syslog[i].Port = n
				}
				return nil
			}},
		globalParam{name: "syslogprot",
			get: func(_ *Server, o *config.Options) node {
				if len(o.Logging.Syslog) == 0 {
					return str("syslogprot", "udp")
				}
				return str("syslogprot", o.Logging.Syslog[0].Protocol)
			},
			set: func(o *config.Options, val string) *failure {
				p := strings.ToLower(strings.TrimSpace(val))
				if p != "udp" && p != "tcp" && p != "tls" {
					return invalid("Invalid value %q for syslogprot (udp, tcp or tls)", short(val))
				}
				if len(o.Logging.Syslog) == 0 {
					return errNoSyslogHost
				}
				for i := range o.Logging.Syslog {
					h := &o.Logging.Syslog[i]
					if h.Port == defaultSyslogPort(h.Protocol) {
						h.Port = defaultSyslogPort(p)
					}
					if p != "tls" {
						h.ServerName, h.CACert = "", ""
					}
					h.Protocol = p
				}
				return nil
			}},
	)

	email := func(name string, get func(m *config.Email) node, set func(m *config.Email, val string) *failure) globalParam {
		return globalParam{name: name,
			get: func(_ *Server, o *config.Options) node { return get(&o.Alerts.Email) },
			set: func(o *config.Options, val string) *failure { return set(&o.Alerts.Email, val) }}
	}
	globalParams = append(globalParams,
		email("emailenable",
			func(m *config.Email) node { return yesno("emailenable", m.Server != "") },
			func(m *config.Email, val string) *failure {
				b, ok := parseBool(val)
				if !ok {
					return invalid("Invalid value %q for emailenable (yes or no)", short(val))
				}
				if b && m.Server == "" {
					return invalid("Command Failed: set emailserver (and the recipients) to turn e-mail on")
				}
				if !b {
					*m = config.Email{} // Fulcrum mails when a server is set: off clears the settings
				}
				return nil
			}),
		email("emailserver",
			func(m *config.Email) node { return str("emailserver", m.Server) },
			func(m *config.Email, val string) *failure {
				m.Server = strings.TrimSpace(val)
				if m.Server == "" {
					*m = config.Email{}
				}
				return nil // without recipients yet, no mail is sent (the web UI says so)
			}),
		email("emailport",
			func(m *config.Email) node { return inum("emailport", m.Port) },
			func(m *config.Email, val string) *failure {
				n, ok := parseInt(val)
				if !ok {
					return invalid("Invalid value %q for emailport (a whole number)", short(val))
				}
				m.Port = n
				return nil
			}),
		email("emailuser",
			func(m *config.Email) node { return str("emailuser", m.User) },
			func(m *config.Email, val string) *failure { m.User = val; return nil }),
		email("emailpassword",
			func(m *config.Email) node {
				if m.Password == "" {
					return str("emailpassword", "")
				}
				return str("emailpassword", "********")
			},
			func(m *config.Email, val string) *failure { m.Password = val; return nil }),
		email("emaildomain",
			func(m *config.Email) node {
				_, domain := fromParts(m.From)
				return str("emaildomain", domain)
			},
			func(m *config.Email, val string) *failure {
				local, _ := fromParts(m.From)
				if local == "" {
					local = "fulcrum"
				}
				d := strings.TrimSpace(val)
				if d == "" || strings.ContainsAny(d, "@ <>\r\n") {
					return invalid("Invalid value %q for emaildomain (a domain name)", short(val))
				}
				m.From = local + "@" + d
				return nil
			}),
		email("emailsslmode",
			func(m *config.Email) node {
				switch m.Security {
				case "none":
					return inum("emailsslmode", 0)
				case "tls":
					return inum("emailsslmode", 3)
				}
				return inum("emailsslmode", 2)
			},
			func(m *config.Email, val string) *failure {
				n, ok := parseInt(val)
				switch {
				case !ok || n < 0 || n > 3:
					return invalid("Invalid value %q for emailsslmode (0 none, 1 or 2 STARTTLS, 3 SSL/TLS)", short(val))
				case n == 0:
					m.Security = "none"
				case n == 3:
					m.Security = "tls"
				default:
					m.Security = "starttls" // 1 (STARTTLS when offered) is required STARTTLS in Fulcrum
				}
				if m.Port == 587 || m.Port == 465 || m.Port == 25 {
					m.Port = 0 // the new security's default port
				}
				return nil
			}),
	)
	for _, l := range severityLists {
		name := "email" + l.suffix
		globalParams = append(globalParams, email(name,
			func(m *config.Email) node {
				if !l.has(m.Severity) {
					return str(name, "")
				}
				return str(name, strings.Join(m.To, ","))
			},
			func(m *config.Email, val string) *failure {
				to := splitSeverityList(val)
				if m.Server == "" {
					return errNoEmail
				}
				switch {
				case len(to) > 0:
					m.To, m.Severity = to, l.sev
					if m.From == "" {
						m.From = defaultFrom() // LoadMaster's sender is its own name at emaildomain
					}
				case l.has(m.Severity):
					m.To = nil
				}
				return nil
			}))
	}
}

// setSyslogList makes addrs the hosts of list l: hosts of l not named are
// removed, named hosts get l's severity (a host in another list moves to
// this one: Fulcrum has one entry per host), new hosts take the port and
// protocol of the others (else udp, 514).
func setSyslogList(lg *config.Logging, l severityList, addrs []string) {
	proto, port := "udp", 514
	if len(lg.Syslog) > 0 {
		proto, port = lg.Syslog[0].Protocol, lg.Syslog[0].Port
	}
	named := map[string]bool{}
	for _, a := range addrs {
		named[a] = true
	}
	var out []config.SyslogHost
	have := map[string]bool{}
	for _, h := range lg.Syslog {
		switch {
		case named[h.Address]:
			h.Severity = l.sev
			have[h.Address] = true
		case l.has(h.Severity):
			continue
		}
		out = append(out, h)
	}
	for _, a := range addrs {
		if !have[a] {
			out = append(out, config.SyslogHost{Address: a, Port: port, Protocol: proto, Severity: l.sev})
		}
	}
	lg.Syslog = out
}

// fromParts returns the local part and domain of a sender address.
func fromParts(from string) (local, domain string) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", ""
	}
	i := strings.LastIndexByte(a.Address, '@')
	if i < 0 {
		return a.Address, ""
	}
	return a.Address[:i], a.Address[i+1:]
}

// defaultFrom is the sender of mails set up through this API before
// emaildomain: fulcrum@ the host's name.
func defaultFrom() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, "@ <>\r\n") {
		h = "localhost"
	}
	return "fulcrum@" + h
}
