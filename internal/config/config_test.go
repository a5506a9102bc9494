package config

import (
	"crypto/ecdsa"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

const sample = `
virtualServices:
- address: 127.0.0.2
  port: 8080
  protocol: tcp
  type: http
  schedule: lc
  persistence: {mode: src, timeout: 1800}
  realServers:
  - {address: 127.0.0.3, port: 9001}
  - {address: fe1.example.com, port: 9002, weight: 2000}
`

func mustDecode(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := Decode([]byte(doc))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return c
}

func TestDecodeDefaults(t *testing.T) {
	c := mustDecode(t, sample)
	if err := c.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	v := c.VirtualServices[0]
	if !IsTrue(v.Enabled) || !IsTrue(v.SubnetOriginating) || IsTrue(v.Transparent) {
		t.Errorf("tcp defaults wrong: enabled=%v subnetOriginating=%v transparent=%v", v.Enabled, v.SubnetOriginating, v.Transparent)
	}
	if v.RealServers[0].Weight != DefaultWeight || v.RealServers[1].Weight != 2000 {
		t.Errorf("weights = %d, %d", v.RealServers[0].Weight, v.RealServers[1].Weight)
	}
	if c.Options.Health != DefaultHealthTimers() || c.Options.ConnTimeout != 660 {
		t.Errorf("option defaults wrong: %+v", c.Options)
	}
	u := mustDecode(t, `{"virtualServices":[{"address":"127.0.0.2","port":3478,"protocol":"udp"}]}`).VirtualServices[0]
	if !IsTrue(u.Transparent) || IsTrue(u.SubnetOriginating) {
		t.Errorf("udp defaults wrong: transparent=%v subnetOriginating=%v", *u.Transparent, *u.SubnetOriginating)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"unknown key", `{"virtualServices":[{"address":"127.0.0.1","port":80,"realServers":[{"address":"127.0.0.2","port":1,"wieght":3}]}]}`,
			[]string{"virtualServices[0].realServers[0].wieght: unknown field"}},
		{"case suggestion", `{"VirtualServices":[]}`, []string{`VirtualServices: unknown field (did you mean "virtualServices"?)`}},
		{"wrong types all reported", `{"options":{"snat":"yes","connTimeout":"10"},"virtualServices":{"a":1}}`,
			[]string{"options.connTimeout: must be a whole number", "options.snat: must be true or false", "virtualServices: must be a list"}},
		{"fraction", `{"virtualServices":[{"address":"127.0.0.1","port":80.5}]}`, []string{"virtualServices[0].port: must be a whole number in range, got 80.5"}},
		{"huge number", `{"virtualServices":[{"address":"127.0.0.1","port":1e30}]}`, []string{"virtualServices[0].port: must be a whole number in range"}},
		{"malformed json", `{"virtualServices":[`, []string{"malformed document"}},
		{"malformed yaml", "virtualServices:\n - address: [\n", []string{"malformed document"}},
		{"duplicate key", "options:\n  snat: true\n  snat: false\n", []string{"malformed document"}},
		{"not a mapping", `[1,2]`, []string{"document must be a mapping"}},
		{"empty", "  \n", []string{"empty document"}},
		{"yaml unknown nested", "options:\n  health:\n    intervall: 5\n", []string{"options.health.intervall: unknown field"}},
		// Issue 15, item 8: what YAML reads differently from what was meant.
		{"second yaml document", "options:\n  snat: true\n---\noptions:\n  snat: false\n", []string{"line 3: a second document"}},
		{"yaml 1.1 octal port", "virtualServices:\n- address: 127.0.0.1\n  port: 0755\n", []string{"line 3: 0755: a number written with a leading zero"}},
		{"hex port", "virtualServices:\n- address: 127.0.0.1\n  port: 0x50\n", []string{"line 3: 0x50"}},
		{"underscores", "options:\n  connTimeout: 6_600\n", []string{"6_600"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateErrors(t *testing.T) {
	base := func() *Config { return mustDecode(t, sample) }
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{"rs port", func(c *Config) { c.VirtualServices[0].RealServers[0].Port = 70000 },
			[]string{"virtualServices[0].realServers[0].port: must be 1-65535, got 70000"}},
		{"several at once", func(c *Config) {
			c.VirtualServices[0].Port = 0
			c.VirtualServices[0].Schedule = "fastest"
			c.VirtualServices[0].RealServers[1].Weight = 70000
		}, []string{"virtualServices[0].port: must be 1-65535, got 0", `virtualServices[0].schedule: must be one of rr,`,
			"virtualServices[0].realServers[1].weight: must be 1-65535, got 70000"}},
		{"bad address", func(c *Config) { c.VirtualServices[0].Address = "10.0.0.256" }, []string{`virtualServices[0].address: must be an IP address, got "10.0.0.256"`}},
		{"broadcast vip", func(c *Config) { c.VirtualServices[0].Address = "255.255.255.255" }, []string{`virtualServices[0].address: must be a unicast address`}},
		{"mapped broadcast vip", func(c *Config) { c.VirtualServices[0].Address = "::ffff:255.255.255.255" }, []string{`virtualServices[0].address: must be a unicast address`}},
		{"unspecified vip", func(c *Config) { c.VirtualServices[0].Address = "0.0.0.0" }, []string{`virtualServices[0].address: must be a unicast address`}},
		{"multicast rs", func(c *Config) { c.VirtualServices[0].RealServers[0].Address = "224.0.0.1" }, []string{`realServers[0].address: must be an IP address or DNS name`}},
		{"bidi override in nickname", func(c *Config) { c.VirtualServices[0].NickName = "web\u202egnp.exe" }, []string{`virtualServices[0].nickname: must be at most 64 printable characters`}},
		{"zero-width in nickname", func(c *Config) { c.VirtualServices[0].NickName = "we\u200bb" }, []string{`virtualServices[0].nickname`}},
		{"crlf in an unused check url", func(c *Config) {
			c.VirtualServices[0].HealthCheck = HealthCheck{Type: "tcp", URL: "/x\r\nHost: evil"}
		}, []string{`virtualServices[0].healthCheck.url: must have at most 126 characters and no spaces or control characters`}},
		{"rs bad name", func(c *Config) { c.VirtualServices[0].RealServers[0].Address = "10.0.0.256" },
			[]string{`virtualServices[0].realServers[0].address: must be an IP address or DNS name`}},
		{"rs bad dns", func(c *Config) { c.VirtualServices[0].RealServers[0].Address = "-bad-.example" },
			[]string{`realServers[0].address`}},
		{"duplicate vs", func(c *Config) { c.VirtualServices = append(c.VirtualServices, c.VirtualServices[0]) },
			[]string{"virtualServices[1]: duplicate service: tcp 127.0.0.2:8080 is also virtualServices[0]"}},
		{"same port other protocol ok", func(c *Config) {
			u := c.VirtualServices[0]
			u.Protocol, u.Type, u.Persistence = "udp", "gen", Persistence{Mode: "none"}
			c.VirtualServices = append(c.VirtualServices, u)
		}, nil},
		{"extra port overlaps", func(c *Config) {
			c.VirtualServices = append(c.VirtualServices, VirtualService{Address: "127.0.0.2", Port: 8443, ExtraPorts: "8070-8080"})
			c.SetDefaults()
		}, []string{"virtualServices[1]: duplicate service: tcp 127.0.0.2:8080"}},
		{"bad extra ports", func(c *Config) { c.VirtualServices[0].ExtraPorts = "90-80" }, []string{`virtualServices[0].extraPorts: "90-80" is not a port`}},
		{"duplicate rs", func(c *Config) {
			c.VirtualServices[0].RealServers[1] = c.VirtualServices[0].RealServers[0]
		}, []string{"virtualServices[0].realServers[1]: duplicate real server 127.0.0.3 port 9001"}},
		{"udp http", func(c *Config) { c.VirtualServices[0].Protocol = "udp" }, []string{`virtualServices[0].type: a udp service must be of type gen`}},
		{"cookie mode on gen", func(c *Config) {
			c.VirtualServices[0].Type = "gen"
			c.VirtualServices[0].Persistence = Persistence{Mode: "cookie", Cookie: "x", Timeout: 60}
		}, []string{"virtualServices[0].persistence.mode: cookie needs an http or http2 service"}},
		{"cookie name missing", func(c *Config) { c.VirtualServices[0].Persistence = Persistence{Mode: "cookie", Timeout: 60} },
			[]string{"virtualServices[0].persistence.cookie: required for mode cookie"}},
		{"mask range", func(c *Config) { c.VirtualServices[0].Persistence.Mask = 33 }, []string{"virtualServices[0].persistence.mask: must be 0-32, got 33"}},
		{"offload without cert", func(c *Config) { c.VirtualServices[0].TLS.Offload = true }, []string{"virtualServices[0].tls.certificates: required with offload"}},
		{"unknown cert", func(c *Config) {
			c.VirtualServices[0].TLS = TLS{Offload: true, Certificates: []string{"nope"}, Profile: "modern"}
		}, []string{`virtualServices[0].tls.certificates[0]: no certificate named "nope"`}},
		{"reencrypt alone", func(c *Config) { c.VirtualServices[0].TLS.Reencrypt = true }, []string{"virtualServices[0].tls.reencrypt: needs offload"}},
		{"check url", func(c *Config) {
			c.VirtualServices[0].HealthCheck = HealthCheck{Type: "http", URL: "no-slash", Method: "FETCH"}
		}, []string{"virtualServices[0].healthCheck.url: must start with /", "virtualServices[0].healthCheck.method: must be one of HEAD"}},
		{"check host needs 1.1", func(c *Config) {
			c.VirtualServices[0].HealthCheck = HealthCheck{Type: "http", URL: "/", Method: "HEAD", Host: "x"}
		}, []string{"virtualServices[0].healthCheck.host: needs http11"}},
		{"passive failures range", func(c *Config) { c.Options.Health.PassiveFailures = 101 }, []string{"options.health.passiveFailures: must be 0-100, got 101"}},
		{"check regex", func(c *Config) { c.VirtualServices[0].HealthCheck.Pattern = "(" }, []string{"virtualServices[0].healthCheck.pattern: not a valid regular expression"}},
		{"check header", func(c *Config) { c.VirtualServices[0].HealthCheck.Headers = map[string]string{"Bad Name": "v"} },
			[]string{"virtualServices[0].healthCheck.headers.Bad Name: not a valid header name"}},
		{"bdata", func(c *Config) { c.VirtualServices[0].HealthCheck = HealthCheck{Type: "bdata", Send: "zz"} },
			[]string{"virtualServices[0].healthCheck.send: required for bdata"}},
		{"follow unknown", func(c *Config) { c.AssignIDs(nil); c.VirtualServices[0].RealServers[0].Follow = 99 },
			[]string{"virtualServices[0].realServers[0].follow: must be the id of another real server"}},
		{"duplicate ids", func(c *Config) {
			c.VirtualServices[0].RealServers[0].ID = 4
			c.VirtualServices[0].RealServers[1].ID = 4
		}, []string{"virtualServices[0].realServers[1].id: duplicate id 4"}},
		{"options", func(c *Config) {
			c.Options.DrainTime = 5
			c.Options.Health.Interval = 5
			c.Options.AlwaysPersist = "sometimes"
		}, []string{"options.drainTime: must be 60-86400, got 5", "options.health.interval: must be 9-901, got 5", "options.alwaysPersist: must be one of"}},
		{"schema", func(c *Config) { c.SchemaVersion = 9 }, []string{"schemaVersion: must be 1, got 9"}},
		{"subvs with address", func(c *Config) {
			v := &c.VirtualServices[0]
			v.SubVSs = []VirtualService{{Address: "127.0.0.9", Port: 1, RealServers: v.RealServers}}
			v.RealServers = nil
			c.SetDefaults()
		}, []string{"virtualServices[0].subVSs[0].address: a SubVS has no address of its own"}},
		{"rs and subvs", func(c *Config) {
			v := &c.VirtualServices[0]
			v.SubVSs = []VirtualService{{}}
			c.SetDefaults()
		}, []string{"virtualServices[0].subVSs: a service has real servers or SubVSs, not both"}},
		{"subvs pre-rules", func(c *Config) {
			v := &c.VirtualServices[0]
			c.ContentRules = []ContentRule{{Name: "r", Type: "match", Pattern: "/a"}}
			v.SubVSs = []VirtualService{{RealServers: v.RealServers, HTTP: &HTTPSettings{PreRules: []string{"r"}}}}
			v.RealServers = nil
			c.SetDefaults()
		}, []string{"virtualServices[0].subVSs[0].http.preRules: pre-processing rules run before a SubVS is chosen"}},
		{"subvs gateway", func(c *Config) {
			v := &c.VirtualServices[0]
			v.SubVSs = []VirtualService{{RealServers: v.RealServers, DefaultGateway: "127.0.0.254"}}
			v.RealServers = nil
			c.SetDefaults()
		}, []string{"virtualServices[0].subVSs[0].defaultGateway: a SubVS's traffic follows its parent service's default gateway"}},
		{"gateway family", func(c *Config) { c.VirtualServices[0].DefaultGateway = "::1" }, []string{"virtualServices[0].defaultGateway: must be of the same address family"}},
		{"nickname control", func(c *Config) { c.VirtualServices[0].NickName = "a\nb" }, []string{"virtualServices[0].nickname"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			es, ok := IsErrors(err)
			if !ok {
				t.Fatalf("error is %T, not Errors", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(es.Error(), w) {
					t.Errorf("errors\n%v\ndo not contain %q", es, w)
				}
			}
			if len(es) < len(tt.want) {
				t.Errorf("got %d errors, want at least %d", len(es), len(tt.want))
			}
		})
	}
}

func testCert(t testing.TB) (certPEM, keyPEM string) {
	t.Helper()
	c := testkit.SelfSigned(t, testkit.Leaf{Names: []string{"meet.example.com"}})
	kd, err := x509.MarshalECPrivateKey(c.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return c.CertPEM(), testkit.PEM("EC PRIVATE KEY", kd)
}

func TestCertificates(t *testing.T) {
	cp, kp := testCert(t)
	cp2, kp2 := testCert(t)
	c := mustDecode(t, sample)
	c.Certificates = []Certificate{{Name: "meet", CertPEM: cp, KeyPEM: kp}, {Name: "ca", CertPEM: cp2, Intermediate: true}}
	c.VirtualServices[0].TLS = TLS{Offload: true, Reencrypt: true, Certificates: []string{"meet"}, Profile: "intermediate"}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid certificates refused: %v", err)
	}
	c.Certificates[0].KeyPEM = kp2
	c.Certificates = append(c.Certificates, Certificate{Name: "meet", CertPEM: "garbage", KeyPEM: kp})
	c.VirtualServices[0].TLS.Certificates = []string{"ca"}
	err := c.Validate()
	for _, w := range []string{"certificates[0].keyPem: does not match", `certificates[2].name: duplicate certificate name "meet"`,
		"certificates[2].certPem: must hold a PEM CERTIFICATE block", `tls.certificates[0]: "ca" is an intermediate`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not contain %q", err, w)
		}
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	c := mustDecode(t, sample)
	cp, kp := testCert(t)
	c.Certificates = []Certificate{{Name: "meet", CertPEM: cp, KeyPEM: kp}}
	c.AssignIDs(nil)
	y, err := EncodeYAML(c)
	if err != nil {
		t.Fatal(err)
	}
	back := mustDecode(t, string(y))
	if !Equal(c, back) {
		t.Fatalf("round trip changed the configuration:\n%s", FormatDiff(Diff(c, back)))
	}
	j, err := EncodeJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	if !Equal(c, mustDecode(t, string(j))) {
		t.Fatal("JSON round trip changed the configuration")
	}
	if d := c.Clone(); !Equal(c, d) {
		t.Fatal("clone differs")
	}
}

func TestAssignIDsKeepsIdentity(t *testing.T) {
	prev := mustDecode(t, sample)
	prev.VirtualServices = append(prev.VirtualServices, VirtualService{Address: "127.0.0.9", Port: 53, Protocol: "udp"})
	prev.SetDefaults()
	prev.AssignIDs(nil)
	if prev.VirtualServices[0].ID != 1 || prev.VirtualServices[1].ID != 2 || prev.VirtualServices[0].RealServers[1].ID != 2 {
		t.Fatalf("first assignment: %+v", prev.VirtualServices)
	}
	// The same services without IDs, reordered, one real server added.
	next := mustDecode(t, sample)
	next.VirtualServices = append([]VirtualService{{Address: "127.0.0.9", Port: 53, Protocol: "udp"}}, next.VirtualServices...)
	next.VirtualServices[1].RealServers = append([]RealServer{{Address: "127.0.0.4", Port: 9003}}, next.VirtualServices[1].RealServers...)
	next.SetDefaults()
	next.AssignIDs(prev)
	if next.VirtualServices[0].ID != 2 || next.VirtualServices[1].ID != 1 {
		t.Errorf("service ids = %d, %d; want 2, 1", next.VirtualServices[0].ID, next.VirtualServices[1].ID)
	}
	rs := next.VirtualServices[1].RealServers
	if rs[0].ID != 3 || rs[1].ID != 1 || rs[2].ID != 2 {
		t.Errorf("real server ids = %d, %d, %d; want 3, 1, 2", rs[0].ID, rs[1].ID, rs[2].ID)
	}
	if err := next.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDiff(t *testing.T) {
	a := mustDecode(t, sample)
	a.AssignIDs(nil)
	b := a.Clone()
	b.VirtualServices[0].RealServers[1].Weight = 5
	b.VirtualServices[0].RealServers = append(b.VirtualServices[0].RealServers, RealServer{ID: 9, Address: "127.0.0.5", Port: 1, Weight: 1000, Enabled: Bool(true)})
	b.Options.SNAT = true
	got := FormatDiff(Diff(a, b))
	for _, w := range []string{
		"~ options.snat: false -> true",
		"~ virtualServices[id=1].realServers[id=2].weight: 2000 -> 5",
		`+ virtualServices[id=1].realServers[id=9].address: "127.0.0.5"`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("diff\n%s\nlacks %q", got, w)
		}
	}
	if d := Diff(a, a.Clone()); len(d) != 0 {
		t.Errorf("diff of equal configs: %v", d)
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", 0, false}, {"80", 1, false}, {"80, 443,5060-5062", 5, false}, {"0", 0, true}, {"1-65536", 0, true},
		{"5-1", 0, true}, {"a", 0, true}, {"1-100", 0, true}, {"80,80", 0, true}, {",", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePorts(tt.in)
		if (err != nil) != tt.wantErr || len(got) != tt.want {
			t.Errorf("ParsePorts(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestUsers(t *testing.T) {
	if err := ValidateUser(User{Name: "bal", Role: RoleAdmin}); err != nil {
		t.Error(err)
	}
	if err := ValidateUser(User{Name: "Bad Name", Role: "god"}); err == nil || !strings.Contains(err.Error(), "name:") || !strings.Contains(err.Error(), "role:") {
		t.Errorf("bad user accepted or error unclear: %v", err)
	}
	if err := ValidatePassword("short", 12); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Errorf("short password: %v", err)
	}
}

func TestFollowAndAdaptive(t *testing.T) {
	c := mustDecode(t, sample+`
- {address: 127.0.0.2, port: 8443, followVsId: 1}
- {address: 127.0.0.2, port: 8444, followVsId: 9}
options: {adaptive: {url: nope, interval: 0}}
`)
	c.AssignIDs(nil)
	err := c.Validate()
	for _, w := range []string{"virtualServices[2].followVsId: must be the id of another top-level service, got 9", `options.adaptive.url: must start with /`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "virtualServices[1].followVsId") {
		t.Errorf("valid port following refused: %v", err)
	}
	if c.Options.Adaptive.Interval != 7 || c.Options.Adaptive.Port != 80 {
		t.Errorf("adaptive defaults %+v", c.Options.Adaptive)
	}
}

func TestSmokeChecks(t *testing.T) {
	c := mustDecode(t, sample)
	c.VirtualServices[0].Checks = []SmokeCheck{
		{Name: "Meeting Space URL", URL: "https://meet.example.com/"},
		{Name: "", URL: "ftp://x", Expect: []int{99}},
	}
	err := c.Validate()
	for _, w := range []string{"virtualServices[0].checks[1].name: required", `virtualServices[0].checks[1].url: must be an http or https URL`,
		"virtualServices[0].checks[1].expect[0]: must be 100-599, got 99"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "checks[0]") {
		t.Errorf("valid check refused: %v", err)
	}
}
