package webui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// rev is the current configuration revision as a form value.
func (ts *testServer) rev() string { return strconv.FormatUint(ts.ctl.Current().Revision, 10) }

// opts are the current options.
func (ts *testServer) opts() config.Options { return ts.ctl.Current().Config.Options }

// mustSave posts a form that must be committed as a new revision whose
// summary contains summary.
func (ts *testServer) mustSave(t *testing.T, path string, form url.Values, summary string) {
	t.Helper()
	before := ts.ctl.Current().Revision
	w := ts.post("bal", path, form)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/system/logging" {
		t.Fatalf("POST %s: %d %q: %.600s", path, w.Code, w.Header().Get("Location"), w.Body)
	}
	snap := ts.ctl.Current()
	if snap.Revision != before+1 {
		t.Fatalf("POST %s: revision %d, want %d", path, snap.Revision, before+1)
	}
	if !strings.Contains(snap.Change.Summary, summary) || snap.Change.Source != "wui" || snap.Change.User != "bal" {
		t.Errorf("POST %s: change %+v, want a summary with %q by bal from wui", path, snap.Change, summary)
	}
}

// caPEM is a CA certificate in PEM.
func caPEM(t *testing.T) string {
	t.Helper()
	return testkit.NewCA(t, "Fulcrum Test Syslog CA").CertPEM()
}

// TestLoggingSettingsSave saves every form of the Logging & alerts page
// and checks the configuration, the summaries, and that secrets are kept
// when their field is left empty and never written into a page.
func TestLoggingSettingsSave(t *testing.T) {
	ts := newTestServer(t)
	ca := caPEM(t)

	// Access log, certificate expiry, metrics names.
	ts.mustSave(t, "/system/logging", url.Values{"rev": {ts.rev()}, "logging.accessLog.file": {"/var/log/fulcrum/access.log"},
		"logging.accessLog.format": {"haproxy"}, "alerts.certExpiryDays": {"14"}, "metrics.haproxyNames": {"on"}},
		"logging: access log /var/log/fulcrum/access.log (haproxy), certificate expiry warning 14 days, HAProxy metric names on")
	o := ts.opts()
	if o.Logging.AccessLog != (config.AccessLog{File: "/var/log/fulcrum/access.log", Format: "haproxy"}) || o.Alerts.CertExpiryDays != 14 || !o.Metrics.HAProxyNames {
		t.Errorf("after the main form: %+v %+v %+v", o.Logging.AccessLog, o.Alerts.CertExpiryDays, o.Metrics)
	}

	// Syslog: add two, change one, remove one.
	ts.mustSave(t, "/system/logging/syslog", url.Values{"address": {"192.0.2.9"}, "protocol": {"tls"}, "severity": {"warning"},
		"serverName": {"logs.example.com"}, "caCert": {ca}, "accessLogs": {"on"}}, "add syslog host tls://192.0.2.9:6514")
	ts.mustSave(t, "/system/logging/syslog", url.Values{"address": {"192.0.2.10"}, "port": {"1514"}, "protocol": {"udp"}, "severity": {"info"}},
		"add syslog host udp://192.0.2.10:1514")
	hosts := ts.opts().Logging.Syslog
	want0 := config.SyslogHost{Address: "192.0.2.9", Port: 6514, Protocol: "tls", Severity: "warning", AccessLogs: true, ServerName: "logs.example.com", CACert: strings.TrimSpace(ca)}
	if len(hosts) != 2 || hosts[0] != want0 || hosts[1].Port != 1514 {
		t.Fatalf("syslog hosts %+v", hosts)
	}
	ts.mustSave(t, "/system/logging/syslog/1", url.Values{"rev": {ts.rev()}, "address": {"192.0.2.10"}, "port": {"1514"}, "protocol": {"tcp"},
		"severity": {"err"}}, "change syslog host tcp://192.0.2.10:1514")
	if h := ts.opts().Logging.Syslog[1]; h.Protocol != "tcp" || h.Severity != "err" {
		t.Errorf("changed host %+v", h)
	}
	// Removing asks first, then removes.
	if w := ts.post("bal", "/system/logging/syslog/0/delete", url.Values{"rev": {ts.rev()}}); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Stop sending events to syslog host tls://192.0.2.9:6514?") {
		t.Fatalf("remove without confirmation: %d %.300s", w.Code, w.Body)
	}
	ts.mustSave(t, "/system/logging/syslog/0/delete", url.Values{"rev": {ts.rev()}, "confirmed": {"yes"}}, "remove syslog host tls://192.0.2.9:6514")
	if hosts := ts.opts().Logging.Syslog; len(hosts) != 1 || hosts[0].Address != "192.0.2.10" {
		t.Errorf("after removal: %+v", hosts)
	}
	if w := ts.post("bal", "/system/logging/syslog/5", url.Values{"address": {"192.0.2.11"}}); w.Code != http.StatusNotFound {
		t.Errorf("change of a missing host: %d", w.Code)
	}

	// E-mail: the password is stored, never shown, kept when left empty,
	// removed on request.
	const password = "s3cret-mail-Password"
	mail := url.Values{"server": {"smtp.example.com"}, "security": {"starttls"}, "serverName": {"mx.example.com"}, "caCert": {ca},
		"user": {"fulcrum"}, "password": {password}, "from": {"lb@example.com"}, "to": {"ops@example.com\nnoc@example.com"}, "severity": {"warning"}}
	mail.Set("rev", ts.rev())
	ts.mustSave(t, "/system/logging/email", mail, "e-mail alerts: ops@example.com, noc@example.com via smtp.example.com (starttls), severity warning and more severe, password changed")
	m := ts.opts().Alerts.Email
	if m.Password != password || m.Port != 587 || len(m.To) != 2 || m.User != "fulcrum" || m.ServerName != "mx.example.com" {
		t.Errorf("e-mail after save: %+v", m)
	}
	if strings.Contains(ts.ctl.Current().Change.Summary, password) {
		t.Error("the revision's summary holds the password")
	}
	page := ts.get("bal", "/system/logging").Body.String()
	if strings.Contains(page, password) {
		t.Error("the page shows the mail password")
	}
	if !strings.Contains(page, "one is stored") {
		t.Error("the page does not say that a password is stored")
	}
	mail.Set("password", "")
	mail.Set("severity", "err")
	mail.Set("rev", ts.rev())
	ts.mustSave(t, "/system/logging/email", mail, "severity err")
	if m := ts.opts().Alerts.Email; m.Password != password || m.Severity != "err" {
		t.Errorf("an empty password field did not keep the password: %+v", m)
	}
	mail.Set("clearPassword", "on")
	mail.Set("rev", ts.rev())
	ts.mustSave(t, "/system/logging/email", mail, "password removed")
	if m := ts.opts().Alerts.Email; m.Password != "" {
		t.Error("the password was not removed")
	}

	// Webhooks: the secret likewise.
	const secret = "hook-Secret-42"
	ts.mustSave(t, "/system/logging/webhooks", url.Values{"url": {"https://hooks.example.com/fulcrum?token=abc"}, "severity": {"err"},
		"secret": {secret}, "caCert": {ca}}, "add webhook https://hooks.example.com/fulcrum (signed)")
	if strings.Contains(ts.ctl.Current().Change.Summary, "token=abc") {
		t.Error("the summary holds the webhook URL's query")
	}
	page = ts.get("bal", "/system/logging").Body.String()
	if strings.Contains(page, secret) {
		t.Error("the page shows the webhook secret")
	}
	ts.mustSave(t, "/system/logging/webhooks/0", url.Values{"rev": {ts.rev()}, "url": {"https://hooks.example.com/v2"}, "severity": {"warning"}},
		"change webhook https://hooks.example.com/v2")
	if wh := ts.opts().Alerts.Webhooks[0]; wh.Secret != secret || wh.URL != "https://hooks.example.com/v2" || wh.Severity != "warning" || wh.CACert != "" {
		t.Errorf("webhook after a change without secret: %+v", wh)
	}
	ts.mustSave(t, "/system/logging/webhooks/0/delete", url.Values{"rev": {ts.rev()}, "confirmed": {"yes"}}, "remove webhook https://hooks.example.com/v2")
	if len(ts.opts().Alerts.Webhooks) != 0 {
		t.Error("webhook not removed")
	}
}

// TestLoggingSettingsErrors: every error of a form is shown at once
// beside its field, nothing is stored, what was typed is kept — except
// secrets.
func TestLoggingSettingsErrors(t *testing.T) {
	ts := newTestServer(t)
	rev := ts.ctl.Current().Revision
	for _, tc := range []struct {
		path string
		form url.Values
		id   string            // the form's id prefix
		errs map[string]string // field → part of its message
		kept map[string]string // field → value shown again
	}{
		{"/system/logging/email", url.Values{"server": {"bad host!"}, "port": {"abc"}, "security": {"ssl3"}, "serverName": {"also bad!"},
			"caCert": {"not a pem"}, "user": {"u"}, "password": {"typed-Secret-9"}, "from": {"nobody"}, "to": {"ops@example.com\nbroken"}, "severity": {"loud"}},
			"email", map[string]string{"server": "must be an IP address or host name", "port": "must be a whole number", "security": "must be one of",
				"serverName": "must be a host name or IP address", "caCert": "at least one PEM CERTIFICATE", "from": "must be an e-mail address",
				"to": "must be an e-mail address, got &#34;broken&#34;", "severity": "must be one of"},
			map[string]string{"server": "bad host!", "from": "nobody"}},
		{"/system/logging/syslog", url.Values{"address": {"-x-"}, "port": {"70000"}, "protocol": {"quic"}, "severity": {"none"},
			"serverName": {"logs.example.com"}, "caCert": {"junk"}},
			"syslog-new", map[string]string{"address": "must be an IP address or host name", "port": "must be 1-65535", "protocol": "must be one of",
				"severity": "must be one of", "caCert": "at least one PEM CERTIFICATE"},
			map[string]string{"address": "-x-", "port": "70000"}},
		{"/system/logging", url.Values{"logging.accessLog.file": {"relative/access.log"}, "logging.accessLog.format": {"xml"}, "alerts.certExpiryDays": {"400"}},
			"main", map[string]string{"logging-accessLog-file": "must be a clean absolute path", "logging-accessLog-format": "must be one of",
				"alerts-certExpiryDays": "must be 1-365"},
			map[string]string{"logging.accessLog.file": "relative/access.log"}},
		{"/system/logging/webhooks", url.Values{"url": {"ftp://x"}, "severity": {"meh"}, "secret": {"typed-Secret-9"}, "caCert": {"junk"}},
			"webhook-new", map[string]string{"url": "must be an http or https URL", "severity": "must be one of", "caCert": "at least one PEM CERTIFICATE"},
			map[string]string{"url": "ftp://x"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := ts.post("bal", tc.path, tc.form)
			if w.Code != http.StatusUnprocessableEntity {
				t.Fatalf("status %d: %.500s", w.Code, w.Body)
			}
			body := w.Body.String()
			for field, msg := range tc.errs {
				if got := fieldErr(body, "f-"+tc.id+"-"+field); !strings.Contains(got, msg) {
					t.Errorf("%s: error %q, want %q", field, got, msg)
				}
			}
			for field, v := range tc.kept {
				if !regexp.MustCompile(`name="` + regexp.QuoteMeta(field) + `" type="text" value="` + regexp.QuoteMeta(v) + `"`).MatchString(body) {
					t.Errorf("typed %s %q not kept", field, v)
				}
			}
			if strings.Contains(body, "typed-Secret-9") {
				t.Error("a refused form sends the typed secret back")
			}
			if ts.ctl.Current().Revision != rev {
				t.Fatal("an invalid form changed the configuration")
			}
		})
	}
	// The SMTP rule between fields: a user without TLS.
	w := ts.post("bal", "/system/logging/email", url.Values{"server": {"smtp.example.com"}, "security": {"none"}, "user": {"u"},
		"from": {"a@example.com"}, "to": {"b@example.com"}, "severity": {"warning"}})
	if got := fieldErr(w.Body.String(), "f-email-user"); w.Code != http.StatusUnprocessableEntity || !strings.Contains(got, "only over TLS") {
		t.Errorf("user without TLS: %d %q", w.Code, got)
	}
}

// TestLoggingSettingsCSRF: every form of the page is refused without the
// session's token or from another origin, and by a user whose role may
// not change the configuration.
func TestLoggingSettingsCSRF(t *testing.T) {
	ts := newTestServer(t)
	ts.mustSave(t, "/system/logging/syslog", url.Values{"address": {"192.0.2.9"}}, "add syslog host")
	ts.mustSave(t, "/system/logging/webhooks", url.Values{"url": {"http://192.0.2.20/hook"}}, "add webhook")
	rev := ts.ctl.Current().Revision
	seq := len(ts.bus.List(events.Filter{MaxSeverity: -1}, 0))
	paths := []string{"/system/logging", "/system/logging/email", "/system/logging/syslog", "/system/logging/syslog/0",
		"/system/logging/syslog/0/delete", "/system/logging/webhooks", "/system/logging/webhooks/0", "/system/logging/webhooks/0/delete",
		"/system/logging/test"}
	form := url.Values{"address": {"192.0.2.99"}, "url": {"http://192.0.2.99/"}, "confirmed": {"yes"}, "server": {""}}
	for _, path := range paths {
		for _, tc := range []struct {
			name, tok, origin, site string
		}{
			{"no token", "", "http://example.com", "same-origin"},
			{"wrong token", "x" + ts.csrf["bal"], "http://example.com", "same-origin"},
			{"cross-site", ts.csrf["bal"], "https://evil.example", "cross-site"},
		} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf", tc.tok)
			r := httptest.NewRequest("POST", path, strings.NewReader(f.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Origin", tc.origin)
			r.Header.Set("Sec-Fetch-Site", tc.site)
			r.AddCookie(ts.cookies["bal"])
			w := httptest.NewRecorder()
			ts.h.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden {
				t.Errorf("%s %s: %d, want 403", tc.name, path, w.Code)
			}
		}
		if path != "/system/logging/test" {
			if w := ts.post("operator", path, form); w.Code != http.StatusForbidden {
				t.Errorf("operator POST %s: %d, want 403", path, w.Code)
			}
		}
		if w := ts.post("readonly", path, form); w.Code != http.StatusForbidden {
			t.Errorf("read-only POST %s: %d, want 403", path, w.Code)
		}
	}
	if ts.ctl.Current().Revision != rev {
		t.Error("a refused post changed the configuration")
	}
	if n := len(ts.bus.List(events.Filter{MaxSeverity: -1}, 0)); n != seq {
		t.Errorf("a refused post published %d events", n-seq)
	}
}

// TestTestEvent: the button publishes a system event of the chosen
// severity (notice by default) and the audit log records who sent it.
func TestTestEvent(t *testing.T) {
	ts := newTestServer(t)
	for _, tc := range []struct {
		user, severity string
		want           events.Severity
	}{{"operator", "", events.Notice}, {"bal", "err", events.Err}} {
		w := ts.post(tc.user, "/system/logging/test", url.Values{"severity": {tc.severity}})
		if w.Code != http.StatusSeeOther {
			t.Fatalf("%s: %d %.300s", tc.user, w.Code, w.Body)
		}
		list := ts.bus.List(events.Filter{MaxSeverity: -1, Kind: events.KindSystem}, 1)
		if len(list) != 1 || list[0].Severity != tc.want || list[0].Fields["user"] != tc.user || !strings.Contains(list[0].Message, "Test event sent by "+tc.user) {
			t.Errorf("%s: events %+v", tc.user, list)
		}
		audit, err := ts.st.Audit(0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(audit) != 1 || audit[0].Action != "events.test" || audit[0].User != tc.user || !audit[0].Success ||
			!strings.Contains(audit[0].Detail, "severity "+tc.want.String()) {
			t.Errorf("%s: audit %+v", tc.user, audit)
		}
	}
	w := ts.post("bal", "/system/logging/test", url.Values{"severity": {"loud"}})
	if got := fieldErr(w.Body.String(), "f-test-severity"); w.Code != http.StatusUnprocessableEntity || !strings.Contains(got, "must be one of") {
		t.Errorf("bad severity: %d %q", w.Code, got)
	}
}

// TestLogsPage: the event log newest first, filtered by severity, kind and
// text, paged, and a bad filter named beside its field.
func TestLogsPage(t *testing.T) {
	ts := newTestServer(t)
	for i := 1; i <= 150; i++ {
		ts.bus.Publish(events.Event{Severity: events.Info, Kind: events.KindConfigChange, Message: fmt.Sprintf("revision %d committed", i),
			Fields: map[string]string{"revision": strconv.Itoa(i), "user": "alice"}})
	}
	ts.bus.Publish(events.Event{Severity: events.Err, Kind: events.KindRSDown, Message: "real server 10.0.0.5:80 of web is Down",
		Fields: map[string]string{"vs": "web", "rs": "10.0.0.5:80", "reason": "connection refused"}})
	ts.bus.Publish(events.Event{Severity: events.Warning, Kind: events.KindLoginFailed, Message: "login failed for mallory",
		Fields: map[string]string{"user": "mallory", "remote": "198.51.100.7"}})
	seqRE := regexp.MustCompile(`<tr data-seq="(\d+)" data-severity="([a-z]+)" data-kind="([a-z.-]+)">`)
	rows := func(path string) ([][]string, string) {
		t.Helper()
		w := ts.get("readonly", path)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %.300s", path, w.Code, w.Body)
		}
		return seqRE.FindAllStringSubmatch(w.Body.String(), -1), w.Body.String()
	}
	got, body := rows("/logs")
	if len(got) != logsPageSize || got[0][1] != "152" || got[1][1] != "151" || got[99][1] != "53" {
		t.Fatalf("first page: %d rows from %v", len(got), got[:min(2, len(got))])
	}
	if !strings.Contains(body, `href="/logs?before=53"`) {
		t.Error("no link to the older page")
	}
	if !strings.Contains(body, `<span class="badge st-down">err</span>`) || !strings.Contains(body, `<span class="tag">reason=connection refused</span>`) {
		t.Error("the err row lacks its badge or fields")
	}
	got, body = rows("/logs?before=53")
	if len(got) != 52 || got[0][1] != "52" || got[51][1] != "1" || strings.Contains(body, "logs-older") || !strings.Contains(body, `id="logs-newest"`) {
		t.Errorf("second page: %d rows", len(got))
	}
	got, _ = rows("/logs?severity=warning")
	if len(got) != 2 || got[0][2] != "warning" || got[1][2] != "err" {
		t.Errorf("severity warning: %v", got)
	}
	got, _ = rows("/logs?kind=rs.")
	if len(got) != 1 || got[0][3] != "rs.down" {
		t.Errorf("kind rs.: %v", got)
	}
	got, _ = rows("/logs?q=MALLORY")
	if len(got) != 1 || got[0][3] != "admin.login-failed" {
		t.Errorf("text mallory: %v", got)
	}
	got, _ = rows("/logs?q=198.51.100.7&kind=admin.")
	if len(got) != 1 {
		t.Errorf("text in a field: %v", got)
	}
	got, body = rows("/logs?q=revision+15+committed&severity=info")
	if len(got) != 1 || got[0][1] != "15" {
		t.Errorf("text revision 15: %v", got)
	}
	if !strings.Contains(body, `value="revision 15 committed"`) {
		t.Error("the filter does not show the text searched for")
	}
	for param, want := range map[string]string{"severity=loud": "f-severity", "kind=foo": "f-kind"} {
		w := ts.get("readonly", "/logs?"+param)
		if got := fieldErr(w.Body.String(), want); w.Code != http.StatusBadRequest || !strings.Contains(got, "must be") {
			t.Errorf("%s: %d %q", param, w.Code, got)
		}
	}
	if w := ts.get("readonly", "/logs?before=x"); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "query parameter before") {
		t.Errorf("before=x: %d", w.Code)
	}
}

// TestAccessLogSwitch: the service form's access log switch sets
// accessLog; a SubVS has no such switch.
func TestAccessLogSwitch(t *testing.T) {
	ts := newTestServer(t)
	id := ts.addVS(t, "192.0.2.70")
	w := ts.post("bal", "/vs/"+itoa(id)+"/section/advanced", url.Values{"rev": {ts.rev()}, "addVia": {"xff-via"}, "accessLog": {"on"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("save: %d %.300s", w.Code, w.Body)
	}
	if !ts.ctl.Current().Config.VirtualServiceByID(id).AccessLog {
		t.Fatal("accessLog not set")
	}
	if !strings.Contains(ts.get("bal", "/vs/"+itoa(id)).Body.String(), `name="accessLog" type="checkbox" checked`) {
		t.Error("the switch does not show on")
	}
	w = ts.post("bal", "/vs/"+itoa(id)+"/section/advanced", url.Values{"rev": {ts.rev()}, "addVia": {"xff-via"}})
	if w.Code != http.StatusSeeOther || ts.ctl.Current().Config.VirtualServiceByID(id).AccessLog {
		t.Errorf("switch off: %d", w.Code)
	}
	// A service with SubVSs (it has no real servers of its own).
	w = ts.post("bal", "/vs/new", url.Values{"address": {"192.0.2.71"}, "port": {"8080"}, "protocol": {"tcp"}, "type": {"http"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("add service: %d", w.Code)
	}
	vs := ts.ctl.Current().Config.VirtualServices
	parentID := vs[len(vs)-1].ID
	w = ts.post("bal", "/vs/"+itoa(parentID)+"/subvs", url.Values{"nickname": {"api"}, "type": {"http"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("add SubVS: %d %s", w.Code, regexp.MustCompile(`(?s)class="errors".*?</div>`).FindString(w.Body.String()))
	}
	sub := ts.ctl.Current().Config.VirtualServiceByID(parentID).SubVSs[0].ID
	if strings.Contains(ts.get("bal", "/vs/"+itoa(sub)).Body.String(), `name="accessLog"`) {
		t.Error("a SubVS's page offers the access log switch")
	}
	// A SubVS's form that posts the switch anyway is not refused for it.
	w = ts.post("bal", "/vs/"+itoa(sub)+"/section/advanced", url.Values{"rev": {ts.rev()}, "addVia": {"xff-via"}, "accessLog": {"on"}})
	if w.Code != http.StatusSeeOther {
		t.Errorf("SubVS advanced save: %d %.300s", w.Code, w.Body)
	}
}
