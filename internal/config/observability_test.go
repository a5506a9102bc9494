package config

import (
	"errors"
	"strings"
	"testing"
)

func TestObservabilityValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(o *Options)
		path string // "" = valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"udp syslog host", func(o *Options) { o.Logging.Syslog = []SyslogHost{{Address: "192.0.2.9"}} }, ""},
		{"tls syslog host", func(o *Options) {
			o.Logging.Syslog = []SyslogHost{{Address: "logs.example", Protocol: "tls", Severity: "err", AccessLogs: true}}
		}, ""},
		{"bad syslog address", func(o *Options) { o.Logging.Syslog = []SyslogHost{{Address: "no such host!"}} }, "options.logging.syslog[0].address"},
		{"bad syslog protocol", func(o *Options) { o.Logging.Syslog = []SyslogHost{{Address: "192.0.2.9", Protocol: "relp"}} }, "options.logging.syslog[0].protocol"},
		{"LoadMaster severity word", func(o *Options) { o.Logging.Syslog = []SyslogHost{{Address: "192.0.2.9", Severity: "warn"}} }, "options.logging.syslog[0].severity"},
		{"duplicate host", func(o *Options) {
			o.Logging.Syslog = []SyslogHost{{Address: "192.0.2.9"}, {Address: "192.0.2.9", Port: 514}}
		}, "options.logging.syslog[1].address"},
		{"server name without tls", func(o *Options) { o.Logging.Syslog = []SyslogHost{{Address: "192.0.2.9", ServerName: "x.example"}} }, "options.logging.syslog[0].serverName"},
		{"bad CA", func(o *Options) {
			o.Logging.Syslog = []SyslogHost{{Address: "192.0.2.9", Protocol: "tls", CACert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}
		}, "options.logging.syslog[0].caCert"},
		{"relative access log", func(o *Options) { o.Logging.AccessLog.File = "access.log" }, "options.logging.accessLog.file"},
		{"access log format", func(o *Options) { o.Logging.AccessLog.Format = "clf" }, "options.logging.accessLog.format"},
		{"mail", func(o *Options) {
			o.Alerts.Email = Email{Server: "mail.example", From: "lb@example.com", To: []string{"ops@example.com"}, User: "lb", Password: "pw"}
		}, ""},
		{"mail server alone (setup in progress)", func(o *Options) { o.Alerts.Email = Email{Server: "mail.example"} }, ""},
		{"recipients without sender", func(o *Options) { o.Alerts.Email = Email{Server: "mail.example", To: []string{"ops@example.com"}} }, "options.alerts.email.from"},
		{"mail header injection", func(o *Options) {
			o.Alerts.Email = Email{Server: "mail.example", From: "lb@example.com", To: []string{"a@example.com\r\nBcc: x@example.com"}}
		}, "options.alerts.email.to[0]"},
		{"password in clear", func(o *Options) {
			o.Alerts.Email = Email{Server: "mail.example", Security: "none", From: "lb@example.com", To: []string{"ops@example.com"}, User: "lb"}
		}, "options.alerts.email.user"},
		{"recipients without server", func(o *Options) { o.Alerts.Email.To = []string{"ops@example.com"} }, "options.alerts.email.server"},
		{"webhook", func(o *Options) { o.Alerts.Webhooks = []Webhook{{URL: "https://hooks.example/x"}} }, ""},
		{"webhook scheme", func(o *Options) { o.Alerts.Webhooks = []Webhook{{URL: "ftp://hooks.example/x"}} }, "options.alerts.webhooks[0].url"},
		{"webhook user info", func(o *Options) { o.Alerts.Webhooks = []Webhook{{URL: "https://u:p@hooks.example/x"}} }, "options.alerts.webhooks[0].url"},
		{"expiry days", func(o *Options) { o.Alerts.CertExpiryDays = 400 }, "options.alerts.certExpiryDays"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c.Options)
			c.SetDefaults()
			err := c.Validate()
			if tc.path == "" {
				if err != nil {
					t.Fatalf("valid settings refused: %v", err)
				}
				return
			}
			var fe Errors
			if !errors.As(err, &fe) {
				t.Fatalf("want an error at %s, got %v", tc.path, err)
			}
			for _, f := range fe {
				if f.Path == tc.path {
					return
				}
			}
			t.Errorf("no error at %s: %v", tc.path, err)
		})
	}
}

func TestObservabilityDefaults(t *testing.T) {
	c := Default()
	c.Options.Logging.Syslog = []SyslogHost{{Address: "192.0.2.1", Protocol: "tls"}, {Address: "192.0.2.2"}}
	c.Options.Alerts.Email = Email{Server: "mail.example", Security: "tls"}
	c.SetDefaults()
	h := c.Options.Logging.Syslog
	if h[0].Port != 6514 || h[1].Port != 514 || h[1].Protocol != "udp" || h[0].Severity != "info" {
		t.Errorf("syslog defaults %+v", h)
	}
	if c.Options.Alerts.Email.Port != 465 || c.Options.Alerts.Email.Severity != "warning" || c.Options.Alerts.CertExpiryDays != 30 {
		t.Errorf("alert defaults %+v", c.Options.Alerts)
	}
	if n, ok := SeverityLevel("warning"); !ok || n != 4 {
		t.Errorf("SeverityLevel(warning) = %d %v", n, ok)
	}
}

func TestSubVSAccessLogRefused(t *testing.T) {
	c := Default()
	c.VirtualServices = []VirtualService{{Address: "192.0.2.10", Port: 80, Type: "http", AccessLog: true,
		SubVSs: []VirtualService{{AccessLog: true, RealServers: []RealServer{{Address: "192.0.2.20", Port: 80}}}}}}
	c.SetDefaults()
	c.AssignIDs(nil)
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "subVSs[0].accessLog") {
		t.Errorf("SubVS accessLog: %v", err)
	}
}
