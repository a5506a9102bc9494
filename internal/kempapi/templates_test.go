package kempapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// tmplAPI is one way of calling the API: v1 with parameter names as given
// (or lower-cased), v2 with numbers as numbers or as strings, with or
// without a Content-Type.
type tmplAPI struct {
	name      string
	v2        bool
	lowerV1   bool // v1: lower-case every parameter name
	numbers   bool // v2: numbers as JSON numbers
	jsonCType bool // v2: send Content-Type: application/json
}

var tmplAPIs = []tmplAPI{
	{name: "v1-mixed-case"},
	{name: "v1-lower-case", lowerV1: true},
	{name: "v2-numbers-ctype", v2: true, numbers: true, jsonCType: true},
	{name: "v2-strings-no-ctype", v2: true},
}

// tmplAnswer is an answer of either version: status, the error or success
// message, the data flattened ("template/name" → values) and a file.
type tmplAnswer struct {
	status int
	msg    string
	data   map[string][]string
	file   []byte
	raw    []byte
}

func (api tmplAPI) call(t *testing.T, e *env, cmd string, params [][2]string, body []byte) tmplAnswer {
	t.Helper()
	if !api.v2 {
		var parts []string
		for _, p := range params {
			k := p[0]
			if api.lowerV1 {
				k = strings.ToLower(k)
			}
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(p[1]))
		}
		a := e.v1(auth{}, cmd, strings.Join(parts, "&"), body)
		out := tmplAnswer{status: a.status, raw: a.body, data: map[string][]string{}}
		if !strings.HasPrefix(a.header.Get("Content-Type"), "text/xml") {
			out.file = a.body
			return out
		}
		x, err := parseXML(a.body)
		if err != nil {
			t.Fatalf("%s %s: %v: %s", api.name, cmd, err, a.body)
		}
		if x.attr("stat") != strconv.Itoa(a.status) {
			t.Fatalf("%s %s: stat %q with HTTP %d", api.name, cmd, x.attr("stat"), a.status)
		}
		if d := x.data(); d != nil {
			flattenXML(d, "", out.data)
		} else if a.status == http.StatusOK {
			out.msg = strings.TrimSpace(x.val("Success"))
		} else {
			out.msg = strings.TrimSpace(x.val("Error"))
		}
		return out
	}
	m := map[string]any{"cmd": cmd, "apiuser": "bal", "apipass": balPW}
	for _, p := range params {
		if n, err := strconv.Atoi(p[1]); err == nil && api.numbers && p[0] != "vs" {
			m[p[0]] = n
		} else {
			m[p[0]] = p[1]
		}
	}
	if body != nil {
		m["data"] = base64.StdEncoding.EncodeToString(body)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2", bytes.NewReader(b))
	if api.jsonCType {
		r.Header.Set("Content-Type", "application/json")
	}
	a := e.do(r)
	j, err := parseJSON(a.body)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", api.name, cmd, err, a.body)
	}
	if j.get("code").num() != int64(a.status) {
		t.Fatalf("%s %s: code %d with HTTP %d", api.name, cmd, j.get("code").num(), a.status)
	}
	out := tmplAnswer{status: a.status, raw: a.body, msg: j.get("message").s, data: map[string][]string{}}
	if d := j.get("data"); d.kind == 's' {
		out.file, err = base64.StdEncoding.DecodeString(d.s)
		if err != nil {
			t.Fatalf("%s %s: data: %v", api.name, cmd, err)
		}
		return out
	}
	flattenJSON(j, "", out.data)
	delete(out.data, "message")
	return out
}

func (a tmplAnswer) must(t *testing.T, what string, status int, contains string) tmplAnswer {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, a.status, status, a.raw)
	}
	if !strings.Contains(a.msg, contains) {
		t.Fatalf("%s: message %q does not contain %q", what, a.msg, contains)
	}
	return a
}

// myTemplate is an imported template whose one service listens on a port
// given as a parameter, in front of the servers given as a parameter.
const myTemplate = `format: fulcrum-template
version: 1
name: my-web
title: My web site
parameters:
- {name: vip, type: ip, required: true, description: the VIP}
- {name: listenPort, type: port, required: true, description: the port clients use}
- {name: servers, type: servers, default: [], description: the web servers}
virtualServices:
- nickname: My web
  address: ${vip}
  port: ${listenPort}
  type: http
  schedule: rr
  realServersFrom: {parameter: servers, port: 80}
`

// TestTemplateCommands drives every template command through each way of
// calling the API, and sends traffic through a service a template created.
func TestTemplateCommands(t *testing.T) {
	for i, api := range tmplAPIs {
		t.Run(api.name, func(t *testing.T) {
			e := newEnv(t, envOpts{dataPlane: true})
			net24 := "127.0." + strconv.Itoa(120+i)
			vip, rs1, rs2 := net24+".1", net24+".11", net24+".12"
			p1 := backend(t, rs1, testkit.FreePort(t, rs1), "web1", false)
			if p := backend(t, rs2, p1, "web2", false); p != p1 {
				t.Fatalf("servers on ports %d and %d", p1, p)
			}
			listen := testkit.FreePort(t, vip)
			s := strconv.Itoa

			// listtemplates: the built-in ones, certified, with parameters.
			l := api.call(t, e, "listtemplates", nil, nil).must(t, "listtemplates", 200, "")
			if !contains(l.data["template/name"], "lync2013-reverse-proxy") || !contains(l.data["template/parameter/name"], "certificate") {
				t.Fatalf("listtemplates: %v", l.data)
			}
			for _, c := range l.data["template/certified"] {
				if c != "Y" {
					t.Fatalf("a built-in template is not certified: %v", l.data)
				}
			}

			// uploadtemplate: imported, listed as not certified; a second
			// upload needs replace.
			api.call(t, e, "uploadtemplate", nil, []byte(myTemplate)).must(t, "uploadtemplate", 200, "Command completed ok")
			l = api.call(t, e, "listtemplates", nil, nil)
			if n := len(l.data["template/name"]); l.data["template/name"][n-1] != "my-web" || l.data["template/certified"][n-1] != "N" {
				t.Fatalf("listtemplates after upload: %v", l.data)
			}
			api.call(t, e, "uploadtemplate", nil, []byte(myTemplate)).must(t, "upload again", 422, "set replace=1")
			api.call(t, e, "uploadtemplate", [][2]string{{"Replace", "1"}}, []byte(myTemplate)).must(t, "upload replace", 200, "")

			// addvs … template=: the service answers real traffic.
			tp := "Template"
			if api.v2 {
				tp = "template"
			}
			a := api.call(t, e, "addvs", [][2]string{{"vs", vip}, {"port", s(listen)}, {"prot", "tcp"}, {tp, "my-web"},
				{"ListenPort", s(listen)}, {"Servers", rs1 + ":" + s(p1) + " " + rs2 + ":" + s(p1)}, {"NickName", "From template"}}, nil)
			a.must(t, "addvs template", 200, "")
			if a.data["VSPort"][0] != s(listen) || a.data["NickName"][0] != "From template" || len(a.data["Rs/Addr"]) != 2 {
				t.Fatalf("addvs template: %v", a.data)
			}
			got := answers(t, "http://"+vip+":"+s(listen)+"/", 6)
			only(t, "template service", got, "web1", "web2")
			if got["web1"] == 0 || got["web2"] == 0 {
				t.Fatalf("round robin over both servers: %v", got)
			}

			// exportvstmplt: a template file of the service, which imports.
			x := api.call(t, e, "exportvstmplt", [][2]string{{"vs", vip}, {"port", s(listen)}, {"prot", "tcp"}}, nil)
			if x.status != 200 || !bytes.Contains(x.file, []byte("format: fulcrum-template")) || !bytes.Contains(x.file, []byte("name: From-template")) {
				t.Fatalf("exportvstmplt: %d %s", x.status, x.raw)
			}
			if _, err := templates.Parse(x.file); err != nil {
				t.Fatalf("exported template does not parse: %v\n%s", err, x.file)
			}
			api.call(t, e, "uploadtemplate", nil, x.file).must(t, "upload the export", 200, "")

			// deltemplate.
			api.call(t, e, "deltemplate", [][2]string{{"Name", "From-template"}}, nil).must(t, "deltemplate", 200, "Command completed ok")
			api.call(t, e, "deltemplate", [][2]string{{"name", "From-template"}}, nil).must(t, "deltemplate again", 422, "Unknown template")
			api.call(t, e, "deltemplate", [][2]string{{"name", "https-web-farm"}}, nil).must(t, "delete a built-in", 422, "built-in")
			api.call(t, e, "deltemplate", nil, nil).must(t, "deltemplate without name", 400, "name: String Value missing")
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestTemplateRefusals: files Fulcrum cannot read, unknown templates,
// missing and bad parameters, ports the template does not have; none
// changes anything.
func TestTemplateRefusals(t *testing.T) {
	e := newEnv(t, envOpts{})
	gz := []byte{0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02}
	cases := []struct {
		name   string
		cmd    string
		params [][2]string
		body   []byte
		status int
		want   string
	}{
		{"lm tmpl binary", "uploadtemplate", nil, []byte("\x00\x01KEMP\xff\xfe binary template"), 422, "a LoadMaster .tmpl template"},
		{"lm tmpl encrypted", "uploadtemplate", nil, append([]byte("Salted__"), 1, 2, 3, 4, 5, 6, 7, 8), 422, "cannot be read by Fulcrum"},
		{"lm tmpl gzip", "uploadtemplate", nil, gz, 422, "a LoadMaster .tmpl template"},
		{"lm tmpl xml", "uploadtemplate", nil, []byte("<?xml version=\"1.0\"?><Template><VS/></Template>"), 422, "a LoadMaster .tmpl template"},
		{"other yaml", "uploadtemplate", nil, []byte("foo: [bar\n  baz: {"), 422, "not a Fulcrum template"},
		{"bad fulcrum template", "uploadtemplate", nil, []byte(strings.Replace(myTemplate, "type: http", "type: bogus", 1)), 422, "invalid template: virtualServices[0]"},
		{"empty upload", "uploadtemplate", nil, []byte(" "), 400, "data: String Value missing"},
		{"built-in name", "uploadtemplate", nil, []byte(strings.Replace(myTemplate, "name: my-web", "name: https-web-farm", 1)), 422, "built-in template"},
		{"unknown template", "addvs", [][2]string{{"vs", "192.0.2.1"}, {"port", "443"}, {"template", "nope"}}, nil, 422, "Unknown template"},
		{"empty template", "addvs", [][2]string{{"vs", "192.0.2.1"}, {"port", "443"}, {"template", ""}}, nil, 400, "template: String Value missing"},
		{"required parameter", "addvs", [][2]string{{"vs", "192.0.2.1"}, {"port", "443"}, {"template", "lync2013-reverse-proxy"}}, nil, 422, "certificate: required"},
		{"bad parameter", "addvs", [][2]string{{"vs", "192.0.2.1"}, {"template", "https-web-farm"}, {"certificate", "c"}, {"serverport", "70000"}}, nil, 422, "serverPort: must be a port"},
		{"no vs", "addvs", [][2]string{{"template", "https-web-farm"}}, nil, 400, "vs: String Value missing"},
		{"port not in template", "addvs", [][2]string{{"vs", "192.0.2.1"}, {"port", "8443"}, {"template", "https-web-farm"}, {"certificate", "c"}}, nil, 422, "creates no service on 8443/tcp (it creates 443/tcp, 80/tcp)"},
		{"service parameter without port", "addvs", [][2]string{{"vs", "192.0.2.1"}, {"template", "https-web-farm"}, {"certificate", "c"}, {"NickName", "x"}}, nil, 422, "NickName: template https-web-farm creates 2 services"},
		{"unknown certificate", "addvs", [][2]string{{"vs", "192.0.2.1"}, {"port", "443"}, {"template", "https-web-farm"}, {"certificate", "nocert"}}, nil, 422, "CertFile"},
		{"export unknown vs", "exportvstmplt", [][2]string{{"vs", "192.0.2.9"}, {"port", "80"}}, nil, 422, "Unknown VS"},
	}
	for _, api := range []tmplAPI{tmplAPIs[0], tmplAPIs[2]} {
		for _, tc := range cases {
			a := api.call(t, e, tc.cmd, tc.params, tc.body)
			a.must(t, api.name+" "+tc.name, tc.status, tc.want)
			if strings.Contains(strings.ToLower(a.msg), "yaml") {
				t.Fatalf("%s %s: a parser message: %s", api.name, tc.name, a.msg)
			}
		}
	}
	if n := len(e.ctl.Current().Config.VirtualServices); n != 0 {
		t.Fatalf("refused commands created %d services", n)
	}
	if list, _ := e.kemp.tpl.List(); len(list) != 8 {
		t.Fatalf("refused uploads changed the library: %v", list)
	}
}

// TestTemplateBuiltinApplied applies a built-in template with several
// services: port selects the one the service parameters apply to and
// that the answer shows; the others are created too.
func TestTemplateBuiltinApplied(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := newChain(t, "lync.example.com")
	e.mustXML(e.v1(auth{}, "addcert", "cert=lync", ch.leafPEM), 200, "addcert")
	j := e.ok2("addvs", map[string]any{"vs": "192.0.2.10", "port": 80, "template": "lync2013-reverse-proxy", "certificate": "lync",
		"frontends": "10.0.1.11 10.0.1.12", "Idletime": 900})
	if j.get("VSPort").s != "80" || j.get("Idletime").num() != 900 || len(j.get("Rs").arr) != 2 {
		t.Fatalf("addvs: %+v", j.keys)
	}
	cfg := e.ctl.Current().Config
	if len(cfg.VirtualServices) != 2 || cfg.VirtualServices[0].Port != 443 || cfg.VirtualServices[0].Idletime != 1800 ||
		cfg.VirtualServices[1].Idletime != 900 || cfg.VirtualServices[0].RealServers[1].Port != 4443 {
		t.Fatalf("services: %+v", cfg.VirtualServices)
	}
	// The Python SDK names the template with name=.
	e.ok1("addvs", "vs=192.0.2.11&port=443&prot=tcp&name=lync2013-reverse-proxy&certificate=lync")
	if n := len(e.ctl.Current().Config.VirtualServices); n != 4 {
		t.Fatalf("%d services after the second template", n)
	}
	// Used again at the same address: refused whole.
	mustErrXML(t, e.v1(auth{}, "addvs", "vs=192.0.2.11&template=lync2013-reverse-proxy&certificate=lync", nil), 422, "")
	if n := len(e.ctl.Current().Config.VirtualServices); n != 4 {
		t.Fatalf("%d services after a refused template", n)
	}
	// A SubVS is exported with its parent.
	parent := e.ctl.Current().Config.VirtualServices[2].ID // no real servers
	e.ok1("modvs", "vs="+strconv.Itoa(parent)+"&createsubvs=")
	sub := e.ctl.Current().Config.VirtualServices[2].SubVSs[0].ID
	mustErrXML(t, e.v1(auth{}, "exportvstmplt", "vs="+strconv.Itoa(sub), nil), 422, "a SubVS is exported with its parent")
}

// FuzzTemplateUpload: whatever the file, uploadtemplate's checks neither
// panic nor let a non-template reach the parser.
func FuzzTemplateUpload(f *testing.F) {
	f.Add([]byte(myTemplate))
	f.Add([]byte("Salted__\x00"))
	f.Add([]byte("format: fulcrum-template\n"))
	f.Add([]byte("<x/>"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if readableTemplate(doc) != nil {
			return
		}
		if !bytes.Contains(doc, []byte(templates.Format)) || lmBinary(doc) {
			t.Fatalf("accepted %q", doc)
		}
		_, _ = templates.Parse(doc)
	})
}

// TestTemplateExportWithRules exports a content-switched service (SubVSs
// chosen by a path rule, a request header added), imports the file and
// applies it at another address: the copy routes real traffic by path
// as the original does, with its own renamed rules.
func TestTemplateExportWithRules(t *testing.T) {
	e := newEnv(t, envOpts{dataPlane: true})
	vip1, vip2, a1, b1 := "127.0.126.1", "127.0.126.2", "127.0.126.11", "127.0.126.12"
	pa := backend(t, a1, testkit.FreePort(t, a1), "app-a", false)
	pb := backend(t, b1, testkit.FreePort(t, b1), "app-b", false)
	port := testkit.FreePort(t, vip1)
	if _, err := e.ctl.Apply(control.Change{Actor: control.Actor{User: "test", Source: control.SourceCLI}, Summary: "content switching",
		Mutate: func(c *config.Config) error {
			c.ContentRules = append(c.ContentRules,
				config.ContentRule{Name: "to-a", Type: "match", Match: "url", MatchType: "prefix", Pattern: "/a"},
				config.ContentRule{Name: "not-a", Type: "match", Match: "url", MatchType: "prefix", Pattern: "/a", Negate: true})
			c.VirtualServices = append(c.VirtualServices, config.VirtualService{Address: vip1, Port: port, Protocol: "tcp", Type: "http",
				NickName: "switched", SubVSs: []config.VirtualService{
					{NickName: "a", Type: "http", HTTP: &config.HTTPSettings{SelectRules: []string{"to-a"}}, RealServers: []config.RealServer{{Address: a1, Port: pa}}},
					{NickName: "b", Type: "http", HTTP: &config.HTTPSettings{SelectRules: []string{"not-a"}}, RealServers: []config.RealServer{{Address: b1, Port: pb}}},
				}})
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	only(t, "original /a", answers(t, "http://"+vip1+":"+strconv.Itoa(port)+"/a", 2), "app-a")

	api := tmplAPIs[3] // v2, strings, no Content-Type
	x := api.call(t, e, "exportvstmplt", [][2]string{{"vs", vip1}, {"port", strconv.Itoa(port)}, {"name", "switched-app"}}, nil)
	if x.status != 200 || !bytes.Contains(x.file, []byte("name: to-a-${vip}")) || !bytes.Contains(x.file, []byte("to-a-${vip}")) {
		t.Fatalf("exportvstmplt: %d %s", x.status, x.file)
	}
	api.call(t, e, "uploadtemplate", nil, x.file).must(t, "upload", 200, "")
	api.call(t, e, "addvs", [][2]string{{"vs", vip2}, {"port", strconv.Itoa(port)}, {"template", "switched-app"}}, nil).must(t, "apply", 200, "")
	cfg := e.ctl.Current().Config
	if len(cfg.ContentRules) != 4 || cfg.ContentRules[2].Name != "to-a-"+vip2 || cfg.VirtualServices[1].SubVSs[0].HTTP.SelectRules[0] != "to-a-"+vip2 {
		t.Fatalf("rules %+v", cfg.ContentRules)
	}
	base := "http://" + vip2 + ":" + strconv.Itoa(port)
	only(t, "copy /a", answers(t, base+"/a/x", 3), "app-a")
	only(t, "copy /", answers(t, base+"/other", 3), "app-b")
}

// TestTemplateLyncReverseProxyTraffic applies the built-in Lync reverse
// proxy template through /accessv2 only and sends real traffic through
// both of its services: HTTPS on 443 re-encrypted to the front ends' 4443,
// HTTP on 80 to their 8080.
func TestTemplateLyncReverseProxyTraffic(t *testing.T) {
	net24 := "127.0.127"
	vip, fe1, fe2 := net24+".1", net24+".11", net24+".12"
	if preferredPort(t, vip, 443) != 443 || preferredPort(t, vip, 80) != 80 {
		t.Skip("ports 443 and 80 cannot be bound here; the template's ports are fixed")
	}
	for _, fe := range []string{fe1, fe2} {
		if backend(t, fe, 4443, "tls-"+fe, true) != 4443 || backend(t, fe, 8080, "web-"+fe, false) != 8080 {
			t.Skip("ports 4443 and 8080 cannot be bound here")
		}
	}
	e := newEnv(t, envOpts{dataPlane: true})
	ch := newChain(t, "lync.example.com")
	e.ok2("addcert", map[string]any{"cert": "lync", "data": base64.StdEncoding.EncodeToString(ch.leafPEM)})
	j := e.ok2("addvs", map[string]any{"vs": vip, "port": 443, "prot": "tcp", "template": "lync2013-reverse-proxy",
		"certificate": "lync", "frontEnds": fe1 + " " + fe2})
	if j.get("VSPort").s != "443" || j.get("SSLAcceleration").b != true || len(j.get("Rs").arr) != 2 {
		t.Fatalf("addvs: %v", j.keys)
	}
	only(t, "443", answers(t, "https://"+vip+"/dialin/", 6), "tls-"+fe1, "tls-"+fe2)
	only(t, "80", answers(t, "http://"+vip+"/", 6), "web-"+fe1, "web-"+fe2)
}
