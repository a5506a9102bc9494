package kempapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// mixedCase sends every parameter name with its first letter upper-case
// (Pattern, MatchType, ...), as PowerShell scripts write them.
type mixedCase struct{ d lyncDriver }

func (m mixedCase) run(t *testing.T, cmd string, params [][2]string, body []byte) map[string][]string {
	t.Helper()
	out := make([][2]string, len(params))
	for i, p := range params {
		r := []rune(p[0])
		r[0] = unicode.ToUpper(r[0])
		out[i] = [2]string{string(r), p[1]}
	}
	return m.d.run(t, cmd, out, body)
}

// v2Strings posts v2 commands with a Content-Type and every value as a
// JSON string, as a shell script with curl -H ... -d '{...}' does.
type v2Strings struct{ e *env }

func (d v2Strings) run(t *testing.T, cmd string, params [][2]string, _ []byte) map[string][]string {
	t.Helper()
	m := map[string]any{"cmd": cmd, "apiuser": "bal", "apipass": balPW}
	for _, p := range params {
		m[p[0]] = p[1]
	}
	b, _ := json.Marshal(m)
	r, _ := http.NewRequest(http.MethodPost, d.e.srv.URL+"/accessv2", bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/json")
	a := d.e.do(r)
	j, err := parseJSON(a.body)
	if err != nil || a.status != http.StatusOK || j.get("status").s != "ok" {
		t.Fatalf("v2 %s %v: %d %s", cmd, params, a.status, a.body)
	}
	out := map[string][]string{}
	flattenJSON(j, "", out)
	return out
}

// echoBackend answers "<name> <path> <X-Added>" so a test sees where a
// request went, with what URL and headers.
func echoBackend(t *testing.T, addr string, port int, name string) {
	t.Helper()
	ln := testkit.ListenAt(t, net.JoinHostPort(addr, strconv.Itoa(port)))
	testkit.ServeHTTP(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		_, _ = fmt.Fprintf(w, "%s %s %s", name, r.URL.RequestURI(), r.Header.Get("X-Added"))
	}), nil)
}

func TestContentRulesTraffic(t *testing.T) {
	cases := []struct {
		name  string
		net24 string
		drv   func(e *env) lyncDriver
	}{
		{"v1", "127.0.91", func(e *env) lyncDriver { return v1Driver{e} }},
		{"v1-mixed-case", "127.0.92", func(e *env) lyncDriver { return mixedCase{v1Driver{e}} }},
		{"v2-numbers", "127.0.93", func(e *env) lyncDriver { return v2Driver{e} }},
		{"v2-strings-content-type", "127.0.94", func(e *env) lyncDriver { return v2Strings{e} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{dataPlane: true})
			rulesTraffic(t, e, tc.drv(e), tc.net24)
		})
	}
}

func rulesTraffic(t *testing.T, e *env, api lyncDriver, net24 string) {
	vip, appAddr, apiAddr := net24+".1", net24+".11", net24+".12"
	port := testkit.FreePort(t, vip)
	bport := testkit.FreePort(t, appAddr)
	echoBackend(t, appAddr, bport, "app")
	echoBackend(t, apiAddr, bport, "api")
	s := strconv.Itoa

	if got := api.run(t, "showrule", nil, nil); len(got["MatchContentRule/name"]) != 0 {
		t.Fatalf("showrule without rules: %v", got)
	}
	vs := api.run(t, "addvs", [][2]string{{"vs", vip}, {"port", s(port)}, {"prot", "tcp"}, {"VStype", "http"}}, nil)
	parent := vs["Index"][0]
	api.run(t, "modvs", [][2]string{{"vs", parent}, {"createsubvs", ""}}, nil)
	vs = api.run(t, "modvs", [][2]string{{"vs", parent}, {"createsubvs", ""}}, nil)
	subs := vs["SubVS/VSIndex"]
	if len(subs) != 2 {
		t.Fatalf("two SubVSs: %v", vs)
	}
	for _, sub := range subs {
		api.run(t, "modvs", [][2]string{{"vs", sub}, {"VStype", "http"}}, nil)
	}
	api.run(t, "addrs", [][2]string{{"vs", subs[0]}, {"rs", apiAddr}, {"rsport", s(bport)}}, nil)
	api.run(t, "addrs", [][2]string{{"vs", subs[1]}, {"rs", appAddr}, {"rsport", s(bport)}}, nil)

	// A content rule choosing the first SubVS by path.
	r := api.run(t, "addrule", [][2]string{{"name", "toapi"}, {"type", "0"}, {"pattern", "/api"}, {"matchtype", "prefix"},
		{"nocase", "1"}, {"negate", "0"}, {"incquery", "0"}, {"inchost", "0"}, {"setonmatch", "3"}, {"mustfail", "0"}}, nil)
	want := map[string]string{"MatchContentRule/name": "toapi", "MatchContentRule/matchtype": "prefix", "MatchContentRule/pattern": "/api",
		"MatchContentRule/CaseIndependent": "Y", "MatchContentRule/negate": "N", "MatchContentRule/SetFlagOnMatch": "3", "MatchContentRule/mustfail": "N"}
	for k, v := range want {
		if len(r[k]) != 1 || r[k][0] != v {
			t.Fatalf("addrule: %s = %v, want %q (all: %v)", k, r[k], v, r)
		}
	}
	api.run(t, "addrsrule", [][2]string{{"vs", parent}, {"rs", "!" + subs[0]}, {"rule", "toapi"}}, nil)
	// A header added and a URL rewritten on requests.
	api.run(t, "addrule", [][2]string{{"name", "addhdr"}, {"type", "1"}, {"header", "X-Added"}, {"replacement", "yes"}}, nil)
	r = api.run(t, "addrule", [][2]string{{"name", "rewrite"}, {"type", "4"}, {"pattern", "^/old/(.*)"}, {"replacement", `/new/\1`}}, nil)
	if r["ModifyURLRule/pattern"][0] != "^/old/(.*)" || r["ModifyURLRule/replacement"][0] != `/new/\1` {
		t.Fatalf("addrule type 4: %v", r)
	}
	for _, sub := range subs {
		api.run(t, "addrequestrule", [][2]string{{"vs", sub}, {"rule", "addhdr"}}, nil)
		api.run(t, "addrequestrule", [][2]string{{"vs", sub}, {"rule", "rewrite"}}, nil)
	}
	// A header deleted from responses.
	api.run(t, "addrule", [][2]string{{"name", "hidebackend"}, {"type", "2"}, {"pattern", "X-Backend"}}, nil)
	api.run(t, "addresponserule", [][2]string{{"vs", subs[1]}, {"rule", "hidebackend"}}, nil)
	base := "http://" + net.JoinHostPort(vip, s(port))
	only(t, "/api/x", answers(t, base+"/api/x", 3), "api /api/x yes")
	only(t, "/API/y (nocase)", answers(t, base+"/API/y", 2), "api /API/y yes")
	only(t, "/other", answers(t, base+"/other", 3), "app /other yes")
	only(t, "/old/z", answers(t, base+"/old/z", 2), "app /new/z yes")
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	for path, want := range map[string]string{"/api/h": "api", "/h": ""} {
		res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if got := res.Header.Get("X-Backend"); got != want {
			t.Fatalf("%s: X-Backend %q, want %q (the response rule deletes it on the second SubVS only)", path, got, want)
		}
	}

	all := api.run(t, "showrule", nil, nil)
	if fmt.Sprint(all["MatchContentRule/name"], all["AddHeaderRule/name"], all["ModifyURLRule/name"], all["AddHeaderRule/HeaderValue"]) !=
		"[toapi] [addhdr] [rewrite] [yes]" {
		t.Fatalf("showrule: %v", all)
	}

	// modrule changes the pattern; traffic follows.
	r = api.run(t, "modrule", [][2]string{{"name", "toapi"}, {"pattern", "/v2"}}, nil)
	if r["MatchContentRule/pattern"][0] != "/v2" || r["MatchContentRule/matchtype"][0] != "prefix" {
		t.Fatalf("modrule: %v", r)
	}
	only(t, "/v2/a", answers(t, base+"/v2/a", 2), "api /v2/a yes")
	only(t, "/api/x after modrule", answers(t, base+"/api/x", 2), "app /api/x yes")

	// Unassigning: the header is no longer added; the rule can then go.
	for _, sub := range subs {
		api.run(t, "delrequestrule", [][2]string{{"vs", sub}, {"rule", "addhdr"}}, nil)
	}
	only(t, "/other without header", answers(t, base+"/other", 2), "app /other ")
	api.run(t, "delrule", [][2]string{{"name", "addhdr"}}, nil)
	api.run(t, "delrsrule", [][2]string{{"vs", parent}, {"rs", "!" + subs[0]}, {"rule", "toapi"}}, nil)
	api.run(t, "delrule", [][2]string{{"name", "toapi"}}, nil)
	if got := api.run(t, "showrule", nil, nil); len(got["MatchContentRule/name"]) != 0 || len(got["ModifyURLRule/name"]) != 1 {
		t.Fatalf("showrule after delrule: %v", got)
	}
}

// TestRuleAssignmentCommands drives pre-, response- and response-body
// rule commands over both APIs.
func TestRuleAssignmentCommands(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.ok1("addvs", "vs=127.0.95.1&port=80&prot=tcp&VStype=http")
	for _, d := range []lyncDriver{v1Driver{e}, mixedCase{v1Driver{e}}, v2Driver{e}, v2Strings{e}} {
		d.run(t, "addrule", [][2]string{{"name", "flag"}, {"type", "0"}, {"header", "X-Debug"}, {"pattern", "1"}, {"setonmatch", "2"}}, nil)
		d.run(t, "addrule", [][2]string{{"name", "hide"}, {"type", "2"}, {"pattern", "Server"}, {"onlyonnoflag", "2"}}, nil)
		d.run(t, "addrule", [][2]string{{"name", "fixloc"}, {"type", "3"}, {"header", "Location"}, {"pattern", "^http:"}, {"replacement", "https:"}}, nil)
		d.run(t, "addprerule", [][2]string{{"vs", "1"}, {"rule", "flag"}}, nil)
		d.run(t, "addresponserule", [][2]string{{"vs", "1"}, {"rule", "hide"}}, nil)
		d.run(t, "addresponserule", [][2]string{{"vs", "1"}, {"rule", "fixloc"}}, nil)
		h := e.ctl.Current().Config.VirtualServices[0].HTTP
		if h == nil || fmt.Sprint(h.PreRules, h.ResponseRules) != "[flag] [hide fixloc]" {
			t.Fatalf("assigned: %+v", h)
		}
		if vs := d.run(t, "showvs", [][2]string{{"vs", "1"}}, nil); fmt.Sprint(vs["NPreProcessRules"], vs["NResponseRules"], vs["NRequestRules"]) != "[1] [2] [0]" {
			t.Fatalf("showvs rule counts: %v %v %v", vs["NPreProcessRules"], vs["NResponseRules"], vs["NRequestRules"])
		}
		got := d.run(t, "showrule", [][2]string{{"name", "hide"}}, nil)
		if got["DeleteHeaderRule/pattern"][0] != "Server" || got["DeleteHeaderRule/onlyonnoflag"][0] != "2" {
			t.Fatalf("showrule hide: %v", got)
		}
		d.run(t, "delprerule", [][2]string{{"vs", "1"}, {"rule", "flag"}}, nil)
		d.run(t, "delresponserule", [][2]string{{"vs", "1"}, {"rule", "hide"}}, nil)
		d.run(t, "delresponserule", [][2]string{{"vs", "1"}, {"rule", "fixloc"}}, nil)
		for _, n := range []string{"flag", "hide", "fixloc"} {
			d.run(t, "delrule", [][2]string{{"name", n}}, nil)
		}
		if n := len(e.ctl.Current().Config.ContentRules); n != 0 {
			t.Fatalf("%d rules left", n)
		}
	}
}

// TestRuleErrors checks the refusals: each names the parameter, and
// nothing is changed.
func TestRuleErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.ok1("addvs", "vs=127.0.96.1&port=80&prot=tcp&VStype=http")
	e.ok1("modvs", "vs=1&createsubvs=")
	e.ok1("modvs", "vs=2&VStype=http") // a new SubVS is gen (issue 18 item 3 changes that)
	e.ok1("addvs", "vs=127.0.96.1&port=81&prot=tcp&VStype=http")
	e.ok1("addrs", "vs=127.0.96.1&port=81&rs=127.0.96.9&rsport=80")
	e.ok1("addrule", "name=m&pattern=/a")
	e.ok1("addrule", "name=h&type=1&header=X-A&replacement=b")
	before := len(e.ctl.Current().Config.ContentRules)
	cases := []struct {
		cmd, query string
		status     int
		contains   string
	}{
		{"addrule", "type=0&pattern=x", 400, "name: String Value missing"},
		{"addrule", "name=m&pattern=x", 422, "Rule already exists"},
		{"addrule", "name=b&type=5&pattern=a&replacement=b", 422, "type: 5 (replace string in response body) is not available"},
		{"addrule", "name=b&type=9", 422, "type: must be 0-5"},
		{"addrule", "name=b&type=0&pattern=x&mustfail=1", 422, "mustfail:"},
		{"addrule", "name=b&type=0&pattern=x&header=src-ip", 422, "header: matching the client address"},
		{"addrule", "name=b&type=0&pattern=x&matchtype=glob", 422, "matchtype: must be regex, prefix or postfix"},
		{"addrule", "name=b&type=0&pattern=(x", 422, "pattern: not a valid regular expression"},
		{"addrule", "name=b&type=0&pattern=x&header=X-A&inchost=1", 422, "inchost, incquery: only for a rule that matches the URL"},
		{"addrule", "name=b&type=1&header=X-A&negate=1", 422, "negate: not used by a rule of type 1"},
		{"addrule", "name=b&type=2&pattern=X-.*", 422, "pattern: Fulcrum deletes a header by its name"},
		{"addrule", "name=b&type=1&header=X-A&setonmatch=3", 422, "setonmatch: not used by a rule of type 1"},
		{"addrule", "name=b&type=0&pattern=x&setonmatch=12", 422, "setonmatch: must be"},
		{"addrule", "name=b&type=1&header=Content-Length&replacement=1", 422, "header: Content-Length is a framing"},
		{"addrule", "name=a%20b&pattern=x", 422, "name: must be"},
		{"addrule", "name=default&pattern=x", 422, "name: a rule may not be named default"},
		{"modrule", "name=nope&pattern=x", 422, "Unknown rule"},
		{"modrule", "name=m&type=1", 422, "type: a rule's type cannot be changed"},
		{"showrule", "name=nope", 422, "Unknown rule"},
		{"delrule", "name=nope", 422, "Unknown rule"},
		{"addrsrule", "vs=1&rs=!2&rule=h", 422, "rule: h is not a content matching rule"},
		{"addrsrule", "vs=1&rs=!2", 400, "rule: String Value missing"},
		{"addrsrule", "vs=1&rs=!77&rule=m", 422, "Unknown Real Server"},
		{"addrsrule", "vs=127.0.96.1&port=81&rs=127.0.96.9&rule=m", 422, "vs: content switching needs a service with SubVSs"},
		{"addrequestrule", "vs=1&rule=m", 422, "rule: m is a content matching rule"},
		{"addprerule", "vs=1&rule=h", 422, "rule: h is not a content matching rule"},
		{"addrequestrule", "vs=99&rule=h", 422, "Unknown VS"},
		{"delrequestrule", "vs=1&rule=h", 422, "rule: h is not assigned here"},
		{"addprerule", "vs=2&rule=m", 422, "vs: pre-processing rules run before a SubVS is chosen"},
		{"addresponsebodyrule", "vs=1&rule=h", 422, "Fulcrum's content rules do not change response bodies"},
		{"delresponsebodyrule", "vs=1&rule=nope", 422, "Unknown rule"},
	}
	for _, c := range cases {
		t.Run(c.cmd+"?"+c.query, func(t *testing.T) {
			mustErrXML(t, e.v1(auth{}, c.cmd, c.query, nil), c.status, c.contains)
			params := map[string]any{"cmd": c.cmd, "apiuser": "bal", "apipass": balPW}
			for _, kv := range strings.Split(c.query, "&") {
				k, v, _ := strings.Cut(kv, "=")
				params[k] = strings.ReplaceAll(v, "%20", " ")
			}
			a, j := e.v2(params)
			mustErrJSON(t, a, j, c.status, c.contains)
		})
	}
	if n := len(e.ctl.Current().Config.ContentRules); n != before {
		t.Fatalf("refusals changed the rules: %d, want %d", n, before)
	}
	// A SubVS given its first rule keeps what it used of its parent's
	// http settings (set here through the native path: ErrorCode is not
	// a LoadMaster parameter Fulcrum takes).
	if _, err := e.ctl.Apply(control.Change{Actor: control.Actor{User: "test", Source: control.SourceCLI},
		Mutate: func(cfg *config.Config) error {
			cfg.VirtualServices[0].HTTP = &config.HTTPSettings{HostRewrite: "inner.example", ErrorCode: 404}
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	// A rule in use cannot be deleted.
	e.ok1("addrsrule", "vs=1&rs=!2&rule=m")
	mustErrXML(t, e.v1(auth{}, "addrsrule", "vs=1&rs=!2&rule=m", nil), 422, "rule: m is already assigned here")
	mustErrXML(t, e.v1(auth{}, "delrule", "name=m", nil), 422, "Rule in use: m is assigned to virtual service 2")
	if h := e.ctl.Current().Config.VirtualServices[0].SubVSs[0].HTTP; h == nil || h.HostRewrite != "inner.example" || h.ErrorCode != 404 ||
		fmt.Sprint(h.SelectRules) != "[m]" {
		t.Fatalf("SubVS http settings after addrsrule: %+v", h)
	}
	// A real server of a service with SubVSs is not a rule target.
	sub := e.ctl.Current().Config.VirtualServices[0].SubVSs[0].ID
	e.ok1("addrs", "vs="+strconv.Itoa(sub)+"&rs=127.0.96.10&rsport=80")
	mustErrXML(t, e.v1(auth{}, "addrsrule", "vs=1&rs=127.0.96.10&rule=m", nil), 422, "Unknown Real Server")
}

// TestShowruleEmpty: with no rules, showrule answers 200 with every list,
// empty.
func TestShowruleEmpty(t *testing.T) {
	e := newEnv(t, envOpts{})
	x := e.ok1("showrule", "")
	for _, l := range ruleLists {
		if n := x.data().at(l); n == nil || len(n.kids) != 0 {
			t.Fatalf("v1: %s missing or not empty: %s", l, e.v1(auth{}, "showrule", "", nil).body)
		}
	}
	j := e.ok2("showrule", nil)
	for _, l := range ruleLists {
		if v := j.get(l); v.kind != 'a' || len(v.arr) != 0 {
			t.Fatalf("v2: %s = %+v, want []", l, v)
		}
	}
	// Fields are typed as LoadMaster writes them: flags numbers, switches
	// booleans.
	e.ok1("addrule", "name=m&pattern=/a&onlyonflag=1&inchost=1")
	j = e.ok2("showrule", map[string]any{"name": "m"})
	m := j.get("MatchContentRule")
	if m.kind != 'a' || len(m.arr) != 1 {
		t.Fatalf("showrule m: %+v", j)
	}
	r := m.arr[0]
	if r.get("onlyonflag").kind != 'n' || r.get("addhost").kind != 'b' || !r.get("addhost").b || r.get("matchtype").s != "Regex" {
		t.Fatalf("showrule m types: %s", mustJSON(t, e, "showrule"))
	}
}

func mustJSON(t *testing.T, e *env, cmd string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"cmd": cmd, "apiuser": "bal", "apipass": balPW})
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2", bytes.NewReader(b))
	res, err := e.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return string(out)
}
