package kempapi

import (
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

// notifyGoldenScenario sets LoadMaster's syslog options and reads them
// back; the e-mail options change a setup made through the write path.
var notifyGoldenScenario = []netGoldenStep{
	{"set-syslogport-none", "set", [][2]string{{"param", "syslogport"}, {"value", "1514"}}, 422},
	{"set-syslogwarn", "set", [][2]string{{"param", "syslogwarn"}, {"value", "10.0.0.1,10.0.0.2"}}, 200},
	{"set-sysloginfo", "set", [][2]string{{"param", "sysloginfo"}, {"value", "10.0.0.3 10.0.0.2"}}, 200},
	{"set-syslogprot", "set", [][2]string{{"param", "syslogprot"}, {"value", "tls"}}, 200},
	{"set-syslogprot-error", "set", [][2]string{{"param", "syslogprot"}, {"value", "relp"}}, 422},
	{"set-syslogport", "set", [][2]string{{"param", "syslogport"}, {"value", "1514"}}, 200},
	{"set-syslogport-error", "set", [][2]string{{"param", "syslogport"}, {"value", "70000"}}, 422},
	{"set-syslogerror-error", "set", [][2]string{{"param", "syslogerror"}, {"value", "bad host!"}}, 422},
	{"get-syslogwarn", "get", [][2]string{{"param", "syslogwarn"}}, 200},
	{"get-sysloginfo", "get", [][2]string{{"param", "sysloginfo"}}, 200},
	{"get-syslogport", "get", [][2]string{{"param", "syslogport"}}, 200},
	{"get-syslogprot", "get", [][2]string{{"param", "syslogprot"}}, 200},
	{"set-emailinfo-none", "set", [][2]string{{"param", "emailinfo"}, {"value", "ops@example.com"}}, 422},
	{"set-emailserver", "set", [][2]string{{"param", "emailserver"}, {"value", "mail.example.com"}}, 200},
	{"set-emailinfo", "set", [][2]string{{"param", "emailinfo"}, {"value", "ops@example.com"}}, 200},
	{"set-emaildomain", "set", [][2]string{{"param", "emaildomain"}, {"value", "example.com"}}, 200},
	{"get-emailinfo", "get", [][2]string{{"param", "emailinfo"}}, 200},
}

func TestNotifyGolden(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		e := newEnv(t, envOpts{})
		for _, s := range notifyGoldenScenario {
			name := s.file + ".xml"
			if v2 {
				name = s.file + ".json"
			}
			a := e.scenarioCall(v2, s.cmd, s.params, nil, "value")
			if a.status != s.status {
				t.Fatalf("%s: %d, want %d: %s", name, a.status, s.status, a.body)
			}
			matchGolden(t, "notify", name, "NotifyGolden", a.body)
		}
		hosts := e.ctl.Current().Config.Options.Logging.Syslog
		want := []config.SyslogHost{
			{Address: "10.0.0.1", Port: 1514, Protocol: "tls", Severity: "warning"},
			{Address: "10.0.0.2", Port: 1514, Protocol: "tls", Severity: "info"},
			{Address: "10.0.0.3", Port: 1514, Protocol: "tls", Severity: "info"},
		}
		if len(hosts) != len(want) {
			t.Fatalf("hosts %+v", hosts)
		}
		// E-mail set up from scratch, one parameter per call.
		if m := e.ctl.Current().Config.Options.Alerts.Email; m.Server != "mail.example.com" || m.From != "fulcrum@example.com" ||
			len(m.To) != 1 || m.Severity != "info" {
			t.Errorf("e-mail from scratch: %+v", m)
		}
		for i := range want {
			if hosts[i] != want[i] {
				t.Errorf("host %d: %+v, want %+v", i, hosts[i], want[i])
			}
		}
	}
}

func TestEmailParams(t *testing.T) {
	e := newEnv(t, envOpts{})
	_, err := e.ctl.Apply(control.Change{Summary: "mail", Mutate: func(c *config.Config) error {
		c.Options.Alerts.Email = config.Email{Server: "mail.example.com", From: "lb@example.com", To: []string{"ops@example.com"}}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"emailport", "2525"}, {"emailuser", "alerts"}, {"emailpassword", "pw"}, {"emaildomain", "lb.example.org"},
		{"emailsslmode", "3"}, {"emailcritical", "a@example.com,%20b@example.com"}} {
		e.ok1("set", "param="+c[0]+"&value="+c[1])
	}
	m := e.ctl.Current().Config.Options.Alerts.Email
	if m.Port != 2525 || m.User != "alerts" || m.Password != "pw" || m.From != "lb@lb.example.org" || m.Security != "tls" ||
		m.Severity != "crit" || len(m.To) != 2 || m.To[1] != "b@example.com" {
		t.Errorf("email settings %+v", m)
	}
	all := e.ok1("getall", "").data()
	for k, want := range map[string]string{"emailenable": "yes", "emailserver": "mail.example.com", "emailport": "2525",
		"emailpassword": "********", "emaildomain": "lb.example.org", "emailsslmode": "3", "emailcritical": "a@example.com,b@example.com",
		"emailinfo": "", "syslogport": "514", "syslogprot": "udp"} {
		if got := all.val(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	mustErrXML(t, e.v1(auth{}, "set", "param=emailsslmode&value=7", nil), 422, "emailsslmode")
	mustErrXML(t, e.v1(auth{}, "set", "param=emailcritical&value=not-an-address", nil), 422, "email recipients: must be an e-mail address")
	e.ok1("set", "param=emailenable&value=no")
	if m := e.ctl.Current().Config.Options.Alerts.Email; m.Server != "" || len(m.To) != 0 {
		t.Errorf("after emailenable=no: %+v", m)
	}
}
