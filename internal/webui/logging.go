package webui

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// The Logging & alerts page (System Configuration > Logging & alerts):
// remote syslog hosts, the access log file, e-mail and webhook alerts,
// the certificate expiry warning and the metrics' HAProxy names, each
// form saved as one change through the controller; and a button that
// publishes a test event. Secrets (the mail password, webhook secrets)
// are never written into the page: an empty field keeps the stored one.

// Field names of the forms, relative to their object.
var (
	// loggingFields are relative to the options.
	loggingFields = []string{"logging.accessLog.file", "logging.accessLog.format", "alerts.certExpiryDays", "metrics.haproxyNames"}
	// emailFields are relative to options.alerts.email.
	emailFields = []string{"server", "port", "security", "serverName", "caCert", "user", "password", "clearPassword", "from", "to", "severity"}
	// syslogFields are relative to one options.logging.syslog entry.
	syslogFields = []string{"address", "port", "protocol", "severity", "accessLogs", "serverName", "caCert"}
	// webhookFields are relative to one options.alerts.webhooks entry.
	webhookFields = []string{"url", "severity", "secret", "clearSecret", "caCert"}
)

// syslogRow is one syslog host with its form.
type syslogRow struct {
	Index int
	Host  config.SyslogHost
	Form  *form
}

// webhookRow is one webhook with its form.
type webhookRow struct {
	Index int
	Hook  config.Webhook
	// HasSecret says a secret is stored (never its value).
	HasSecret bool
	Form      *form
}

// loggingData is the Logging & alerts page's data.
type loggingData struct {
	Main  *form
	Email *form
	// HasPassword says a mail password is stored (never its value).
	HasPassword bool
	// NoRecipients says a mail server is set without recipients: no
	// mail is sent.
	NoRecipients bool
	Syslog       []syslogRow
	AddSyslog    *form
	Webhooks     []webhookRow
	AddWebhook   *form
	Test         *form
	// MaxSyslog and MaxWebhooks are the list bounds.
	MaxSyslog, MaxWebhooks int
	// Open is the id of the form with errors, to scroll to.
	Open string
	// NoBus is true when the appliance has no event log (no test events).
	NoBus bool
}

func fillLogging(f *form, o *config.Options) {
	f.set("logging.accessLog.file", o.Logging.AccessLog.File)
	f.set("logging.accessLog.format", o.Logging.AccessLog.Format)
	f.set("alerts.certExpiryDays", o.Alerts.CertExpiryDays)
	f.set("metrics.haproxyNames", o.Metrics.HAProxyNames)
}

// fillEmail fills the e-mail form; the password is never filled.
func fillEmail(f *form, m *config.Email) {
	f.set("server", m.Server)
	if m.Port != 0 {
		f.set("port", m.Port)
	}
	f.set("security", m.Security)
	f.set("serverName", m.ServerName)
	f.set("caCert", m.CACert)
	f.set("user", m.User)
	f.set("from", m.From)
	f.set("to", strings.Join(m.To, "\n"))
	f.set("severity", m.Severity)
}

func fillSyslog(f *form, h *config.SyslogHost) {
	f.set("address", h.Address)
	f.set("port", h.Port)
	f.set("protocol", h.Protocol)
	f.set("severity", h.Severity)
	f.set("accessLogs", h.AccessLogs)
	f.set("serverName", h.ServerName)
	f.set("caCert", h.CACert)
}

// fillWebhook fills a webhook's form; the secret is never filled.
func fillWebhook(f *form, w *config.Webhook) {
	f.set("url", w.URL)
	f.set("severity", w.Severity)
	f.set("caCert", w.CACert)
}

// keepPosted is f with the posted values, secrets left out, so that a
// refused form does not send a typed password back either.
func keepPosted(f *form, r *http.Request, secrets ...string) *form {
	f.keep(r.PostForm)
	for _, s := range secrets {
		f.values.Del(s)
	}
	return f
}

// loggingView builds the page's data; failed replaces the fresh form of
// that id ("main", "email", "syslog-new", "syslog-N", "webhook-new",
// "webhook-N", "test").
func (s *Server) loggingView(failed map[string]*form) loggingData {
	o := s.ctl.Current().Config.Options
	d := loggingData{MaxSyslog: config.MaxSyslogHosts, MaxWebhooks: config.MaxWebhooks, NoBus: s.events == nil,
		HasPassword: o.Alerts.Email.Password != "", NoRecipients: o.Alerts.Email.Server != "" && len(o.Alerts.Email.To) == 0}
	pick := func(id string, fresh func() *form) *form {
		if f, ok := failed[id]; ok {
			d.Open = id
			return f.withID(id)
		}
		return fresh().withID(id)
	}
	d.Main = pick("main", func() *form { f := newForm(loggingFields...); fillLogging(f, &o); return f })
	d.Email = pick("email", func() *form { f := newForm(emailFields...); fillEmail(f, &o.Alerts.Email); return f })
	for i := range o.Logging.Syslog {
		h := o.Logging.Syslog[i]
		d.Syslog = append(d.Syslog, syslogRow{Index: i, Host: h, Form: pick("syslog-"+strconv.Itoa(i), func() *form {
			f := newForm(syslogFields...)
			fillSyslog(f, &h)
			return f
		})})
	}
	d.AddSyslog = pick("syslog-new", func() *form {
		f := newForm(syslogFields...)
		f.set("protocol", "udp")
		f.set("severity", "info")
		return f
	})
	for i := range o.Alerts.Webhooks {
		wh := o.Alerts.Webhooks[i]
		d.Webhooks = append(d.Webhooks, webhookRow{Index: i, Hook: wh, HasSecret: wh.Secret != "", Form: pick("webhook-"+strconv.Itoa(i), func() *form {
			f := newForm(webhookFields...)
			fillWebhook(f, &wh)
			return f
		})})
	}
	d.AddWebhook = pick("webhook-new", func() *form {
		f := newForm(webhookFields...)
		f.set("severity", "warning")
		return f
	})
	d.Test = pick("test", func() *form { f := newForm("severity"); f.set("severity", "notice"); return f })
	return d
}

func (s *Server) loggingPage(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	s.renderLogging(w, r, p, http.StatusOK, nil)
}

func (s *Server) renderLogging(w http.ResponseWriter, r *http.Request, p admin.Principal, status int, failed map[string]*form) {
	s.render(w, r, p, status, "logging", view{Title: "Logging & alerts", Nav: "logging", Data: s.loggingView(failed)})
}

// loggingDone ends a post of the page: on success back to the page with
// the message, on error the page again with f (form id) showing the
// errors beside their fields.
func (s *Server) loggingDone(w http.ResponseWriter, r *http.Request, p admin.Principal, res control.Result, err error,
	id string, f *form, prefix, what string) {
	if err == nil {
		s.redirect(w, r, p, "/system/logging", committedMsg(res, what))
		return
	}
	status := explain(f, err, prefix)
	if status == 0 {
		s.fail(w, r, p, err)
		return
	}
	s.renderLogging(w, r, p, status, map[string]*form{id: f})
}

// loggingUpdate saves the access log file and format, the certificate
// expiry warning and the metrics' HAProxy names.
func (s *Server) loggingUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := keepPosted(newForm(loggingFields...), r)
	ps := &parser{v: r.PostForm, prefix: "options"}
	days := ps.int("alerts.certExpiryDays")
	file, format, haproxy := ps.str("logging.accessLog.file"), ps.str("logging.accessLog.format"), ps.bool("metrics.haproxyNames")
	dest := "no file"
	if file != "" {
		dest = file + " (" + format + ")"
	}
	onOff := map[bool]string{true: "on", false: "off"}
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "The logging settings", parsed: ps.errs,
		summary: fmt.Sprintf("logging: access log %s, certificate expiry warning %d days, HAProxy metric names %s", dest, days, onOff[haproxy]),
		object: func(c *config.Config) any {
			return []any{c.Options.Logging.AccessLog, c.Options.Alerts.CertExpiryDays, c.Options.Metrics}
		},
		mutate: func(c *config.Config) error {
			c.Options.Logging.AccessLog = config.AccessLog{File: file, Format: format}
			c.Options.Alerts.CertExpiryDays = days
			c.Options.Metrics.HAProxyNames = haproxy
			return nil
		}})
	s.loggingDone(w, r, p, res, err, "main", f, "options", "Logging settings")
}

// recipients splits a list of e-mail addresses typed one per line or
// separated by commas, semicolons or spaces.
func recipients(s string) []string { return words(s) }

// emailUpdate saves the e-mail alerts. An empty password keeps the
// stored one; clearPassword removes it.
func (s *Server) emailUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := keepPosted(newForm(emailFields...), r, "password")
	prefix := "options.alerts.email"
	ps := &parser{v: r.PostForm, prefix: prefix}
	m := config.Email{Server: ps.str("server"), Port: ps.int("port"), Security: ps.str("security"), ServerName: ps.str("serverName"),
		CACert: strings.TrimSpace(ps.v.Get("caCert")), User: ps.str("user"), From: ps.str("from"), To: recipients(ps.v.Get("to")),
		Severity: ps.str("severity")}
	newPassword, clear := ps.v.Get("password"), ps.bool("clearPassword")
	summary := "e-mail alerts off"
	if m.Server != "" {
		summary = fmt.Sprintf("e-mail alerts: %s via %s (%s), severity %s and more severe", strings.Join(m.To, ", "), m.Server, m.Security, m.Severity)
	}
	switch {
	case clear:
		summary += ", password removed"
	case newPassword != "":
		summary += ", password changed"
	}
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "The e-mail settings", parsed: ps.errs, summary: clip(summary, 300),
		object: func(c *config.Config) any { return c.Options.Alerts.Email },
		mutate: func(c *config.Config) error {
			old := c.Options.Alerts.Email.Password
			c.Options.Alerts.Email = m
			switch {
			case clear:
				c.Options.Alerts.Email.Password = ""
			case newPassword != "":
				c.Options.Alerts.Email.Password = newPassword
			default:
				c.Options.Alerts.Email.Password = old
			}
			return nil
		}})
	s.loggingDone(w, r, p, res, err, "email", f, prefix, "E-mail alerts")
}

// parseSyslog reads a syslog host's form.
func parseSyslog(ps *parser) config.SyslogHost {
	return config.SyslogHost{Address: ps.str("address"), Port: ps.int("port"), Protocol: ps.str("protocol"), Severity: ps.str("severity"),
		AccessLogs: ps.bool("accessLogs"), ServerName: ps.str("serverName"), CACert: strings.TrimSpace(ps.v.Get("caCert"))}
}

// syslogName names a host for summaries: "tls://10.0.0.9:6514".
func syslogName(h config.SyslogHost) string {
	port := h.Port
	if port == 0 {
		port = 514
		if h.Protocol == "tls" {
			port = 6514
		}
	}
	proto := h.Protocol
	if proto == "" {
		proto = "udp"
	}
	return proto + "://" + net.JoinHostPort(h.Address, strconv.Itoa(port))
}

// listIndex reads the {i} path value: an index into a list of n.
func listIndex(r *http.Request, n int) (int, bool) {
	i, err := strconv.Atoi(r.PathValue("i"))
	return i, err == nil && i >= 0 && i < n
}

// syslogAdd adds a remote syslog host.
func (s *Server) syslogAdd(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	n := len(s.ctl.Current().Config.Options.Logging.Syslog)
	prefix := fmt.Sprintf("options.logging.syslog[%d]", n)
	f := keepPosted(newForm(syslogFields...), r)
	ps := &parser{v: r.PostForm, prefix: prefix}
	h := parseSyslog(ps)
	res, err := s.run(r, p, formEdit{parsed: ps.errs, summary: "add syslog host " + syslogName(h),
		mutate: func(c *config.Config) error {
			c.Options.Logging.Syslog = append(c.Options.Logging.Syslog, h)
			return nil
		}})
	s.loggingDone(w, r, p, res, err, "syslog-new", f, prefix, "Syslog host "+syslogName(h)+" added")
}

// syslogUpdate changes remote syslog host {i}.
func (s *Server) syslogUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	i, ok := listIndex(r, len(s.ctl.Current().Config.Options.Logging.Syslog))
	if !ok {
		s.errorPage(w, r, p, http.StatusNotFound, "There is no such syslog host (it may have been removed): reload the page.")
		return
	}
	prefix := fmt.Sprintf("options.logging.syslog[%d]", i)
	f := keepPosted(newForm(syslogFields...), r)
	ps := &parser{v: r.PostForm, prefix: prefix}
	h := parseSyslog(ps)
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "The syslog hosts", parsed: ps.errs, summary: "change syslog host " + syslogName(h),
		object: func(c *config.Config) any { return c.Options.Logging.Syslog },
		mutate: func(c *config.Config) error {
			if i >= len(c.Options.Logging.Syslog) {
				return fmt.Errorf("syslog host %d: %w", i, control.ErrNotFound)
			}
			c.Options.Logging.Syslog[i] = h
			return nil
		}})
	s.loggingDone(w, r, p, res, err, "syslog-"+strconv.Itoa(i), f, prefix, "Syslog host "+syslogName(h))
}

// syslogDelete removes remote syslog host {i}.
func (s *Server) syslogDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	list := s.ctl.Current().Config.Options.Logging.Syslog
	i, ok := listIndex(r, len(list))
	if !ok {
		s.errorPage(w, r, p, http.StatusNotFound, "There is no such syslog host (it may have been removed): reload the page.")
		return
	}
	name := syslogName(list[i])
	if !s.confirmed(w, r, p, "Stop sending events to syslog host "+name+"?", "Remove", "/system/logging") {
		return
	}
	f := newForm()
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "The syslog hosts", summary: "remove syslog host " + name,
		object: func(c *config.Config) any { return c.Options.Logging.Syslog },
		mutate: func(c *config.Config) error {
			if i >= len(c.Options.Logging.Syslog) {
				return fmt.Errorf("syslog host %d: %w", i, control.ErrNotFound)
			}
			c.Options.Logging.Syslog = slices.Delete(c.Options.Logging.Syslog, i, i+1)
			return nil
		}})
	s.loggingDone(w, r, p, res, err, "main", f, "options", "Syslog host "+name+" removed")
}

// parseWebhook reads a webhook's form, without its secret.
func parseWebhook(ps *parser) config.Webhook {
	return config.Webhook{URL: ps.str("url"), Severity: ps.str("severity"), CACert: strings.TrimSpace(ps.v.Get("caCert"))}
}

// hookName names a webhook for summaries: its URL without query.
func hookName(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return clip(u, 120)
}

// webhookAdd adds a webhook.
func (s *Server) webhookAdd(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	n := len(s.ctl.Current().Config.Options.Alerts.Webhooks)
	prefix := fmt.Sprintf("options.alerts.webhooks[%d]", n)
	f := keepPosted(newForm(webhookFields...), r, "secret")
	ps := &parser{v: r.PostForm, prefix: prefix}
	wh := parseWebhook(ps)
	wh.Secret = ps.v.Get("secret")
	summary := "add webhook " + hookName(wh.URL)
	if wh.Secret != "" {
		summary += " (signed)"
	}
	res, err := s.run(r, p, formEdit{parsed: ps.errs, summary: summary,
		mutate: func(c *config.Config) error {
			c.Options.Alerts.Webhooks = append(c.Options.Alerts.Webhooks, wh)
			return nil
		}})
	s.loggingDone(w, r, p, res, err, "webhook-new", f, prefix, "Webhook "+hookName(wh.URL)+" added")
}

// webhookUpdate changes webhook {i}. An empty secret keeps the stored
// one; clearSecret removes it.
func (s *Server) webhookUpdate(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	i, ok := listIndex(r, len(s.ctl.Current().Config.Options.Alerts.Webhooks))
	if !ok {
		s.errorPage(w, r, p, http.StatusNotFound, "There is no such webhook (it may have been removed): reload the page.")
		return
	}
	prefix := fmt.Sprintf("options.alerts.webhooks[%d]", i)
	f := keepPosted(newForm(webhookFields...), r, "secret")
	ps := &parser{v: r.PostForm, prefix: prefix}
	wh := parseWebhook(ps)
	secret, clear := ps.v.Get("secret"), ps.bool("clearSecret")
	summary := "change webhook " + hookName(wh.URL)
	switch {
	case clear:
		summary += ", secret removed"
	case secret != "":
		summary += ", secret changed"
	}
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "The webhooks", parsed: ps.errs, summary: summary,
		object: func(c *config.Config) any { return c.Options.Alerts.Webhooks },
		mutate: func(c *config.Config) error {
			if i >= len(c.Options.Alerts.Webhooks) {
				return fmt.Errorf("webhook %d: %w", i, control.ErrNotFound)
			}
			old := c.Options.Alerts.Webhooks[i].Secret
			wh.Secret = old
			if clear {
				wh.Secret = ""
			} else if secret != "" {
				wh.Secret = secret
			}
			c.Options.Alerts.Webhooks[i] = wh
			return nil
		}})
	s.loggingDone(w, r, p, res, err, "webhook-"+strconv.Itoa(i), f, prefix, "Webhook "+hookName(wh.URL))
}

// webhookDelete removes webhook {i}.
func (s *Server) webhookDelete(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	list := s.ctl.Current().Config.Options.Alerts.Webhooks
	i, ok := listIndex(r, len(list))
	if !ok {
		s.errorPage(w, r, p, http.StatusNotFound, "There is no such webhook (it may have been removed): reload the page.")
		return
	}
	name := hookName(list[i].URL)
	if !s.confirmed(w, r, p, "Stop sending events to webhook "+name+"?", "Remove", "/system/logging") {
		return
	}
	res, err := s.run(r, p, formEdit{base: formRevision(r), what: "The webhooks", summary: "remove webhook " + name,
		object: func(c *config.Config) any { return c.Options.Alerts.Webhooks },
		mutate: func(c *config.Config) error {
			if i >= len(c.Options.Alerts.Webhooks) {
				return fmt.Errorf("webhook %d: %w", i, control.ErrNotFound)
			}
			c.Options.Alerts.Webhooks = slices.Delete(c.Options.Alerts.Webhooks, i, i+1)
			return nil
		}})
	s.loggingDone(w, r, p, res, err, "main", newForm(), "options", "Webhook "+name+" removed")
}

// testEvent publishes a system event of the chosen severity (notice by
// default) so that the administrator can see it arrive at the syslog
// hosts, mailbox and webhooks; it is audited.
func (s *Server) testEvent(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	f := keepPosted(newForm("severity"), r)
	name := strings.TrimSpace(r.PostFormValue("severity"))
	if name == "" {
		name = "notice"
	}
	sev, ok := events.ParseSeverity(name)
	if !ok {
		f.errs["severity"] = []string{"must be one of " + strings.Join(config.Severities, ", ") + ", got " + strconv.Quote(clip(name, 40))}
		s.renderLogging(w, r, p, http.StatusUnprocessableEntity, map[string]*form{"test": f})
		return
	}
	if s.events == nil {
		s.auth.Audit(p, r.RemoteAddr, "events.test", "test event not sent: no event log", false)
		s.setFlash(p, "error", "This appliance keeps no event log: no test event was sent.")
		http.Redirect(w, r, "/system/logging", http.StatusSeeOther)
		return
	}
	remote := admin.RemoteHost(r.RemoteAddr)
	s.events.Publish(events.Event{Severity: sev, Kind: events.KindSystem,
		Message: "Test event sent by " + p.User + " from the web UI",
		Fields:  map[string]string{"user": p.User, "remote": remote, "test": "true"}})
	s.auth.Audit(p, r.RemoteAddr, "events.test", "sent a test event (severity "+sev.String()+")", true)
	s.redirect(w, r, p, "/system/logging", "Test event ("+sev.String()+") published: it goes to every syslog host, e-mail and webhook whose severity includes it, and to the Logs page.")
}
