package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const pw = "correct horse battery"

// env is a complete API stack over a real store in a temporary directory.
// The data plane is left out (control accepts none); the appliance and e2e
// tests run the whole thing.
type env struct {
	t    *testing.T
	srv  *httptest.Server
	st   *store.Store
	ctl  *control.Controller
	auth *admin.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvIn(t, t.TempDir())
}

// newEnvIn is newEnv with the store in dir.
func newEnvIn(t *testing.T, dir string) *env {
	t.Helper()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := control.New(st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	auth := admin.New(st, admin.Options{BcryptCost: bcrypt.MinCost})
	ctl.SetAuditor(auth)
	if _, err := auth.Bootstrap(pw); err != nil {
		t.Fatal(err)
	}
	lib, err := templates.NewLibrary(st)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Control: ctl, Auth: auth, History: st, Templates: lib})
	e := &env{t: t, srv: httptest.NewServer(s.Handler()), st: st, ctl: ctl, auth: auth}
	t.Cleanup(func() {
		e.srv.Close()
		_ = st.Close()
	})
	return e
}

// req describes one request.
type req struct {
	method, path, body string
	user, pass         string // basic auth; user "" with pass "" means bal
	noAuth             bool
	header             map[string]string
	contentType        string
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (e *env) do(q req) resp {
	e.t.Helper()
	var body io.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	}
	r, err := http.NewRequest(q.method, e.srv.URL+q.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if q.body != "" {
		ct := q.contentType
		if ct == "" {
			ct = "application/json"
		}
		r.Header.Set("Content-Type", ct)
	}
	if !q.noAuth {
		u, p := q.user, q.pass
		if u == "" {
			u, p = "bal", pw
		}
		r.SetBasicAuth(u, p)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) must(q req, status int) resp {
	e.t.Helper()
	r := e.do(q)
	if r.status != status {
		e.t.Fatalf("%s %s: status %d, want %d: %s", q.method, q.path, r.status, status, r.body)
	}
	return r
}

const lyncVS = `{"address":"127.0.0.2","port":8080,"protocol":"tcp","type":"http","schedule":"lc",
 "persistence":{"mode":"src","timeout":1800},"realServers":[{"address":"127.0.0.3","port":9001}]}`

func TestUnauthenticated(t *testing.T) {
	e := newEnv(t)
	for _, q := range []req{
		{method: "GET", path: "/api/v1/virtual-services", noAuth: true},
		{method: "POST", path: "/api/v1/virtual-services", body: lyncVS, noAuth: true},
		{method: "GET", path: "/api/v1/status", user: "bal", pass: "wrong"},
		{method: "GET", path: "/api/v1/config", header: map[string]string{"Authorization": "Bearer fk_nope_nope"}, noAuth: true},
	} {
		r := e.do(q)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s %s: status %d, want 401", q.method, q.path, r.status)
		}
	}
	if e.ctl.Current().Revision != 0 {
		t.Error("an unauthenticated request changed the configuration")
	}
}

func TestLockoutAudited(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 3; i++ {
		e.must(req{method: "GET", path: "/api/v1/status", user: "bal", pass: "guess"}, http.StatusUnauthorized)
	}
	r := e.must(req{method: "GET", path: "/api/v1/status"}, http.StatusTooManyRequests)
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After on a locked account")
	}
	entries, err := e.st.Audit(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var fails, locks int
	for _, a := range entries {
		if a.Action == "login" && !a.Success {
			fails++
		}
		if a.Action == "lockout" {
			locks++
		}
	}
	if fails < 3 || locks < 1 {
		t.Errorf("audit has %d failed logins and %d lockouts, want ≥3 and ≥1:\n%+v", fails, locks, entries)
	}
}

func TestVirtualServiceLifecycle(t *testing.T) {
	e := newEnv(t)
	r := e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, http.StatusCreated)
	var vs struct {
		ID          int    `json:"id"`
		Schedule    string `json:"schedule"`
		RealServers []struct {
			ID     int `json:"id"`
			Weight int `json:"weight"`
		} `json:"realServers"`
	}
	r.json(t, &vs)
	if vs.ID != 1 || vs.Schedule != "lc" || len(vs.RealServers) != 1 || vs.RealServers[0].Weight != 1000 {
		t.Fatalf("created %s", r.body)
	}
	if r.header.Get("Location") != "/api/v1/virtual-services/1" || r.header.Get("ETag") != `"1"` {
		t.Errorf("Location %q ETag %q", r.header.Get("Location"), r.header.Get("ETag"))
	}
	e.must(req{method: "POST", path: "/api/v1/virtual-services/1/real-servers", body: `{"address":"127.0.0.4","port":9001,"weight":2000}`}, http.StatusCreated)
	e.must(req{method: "PATCH", path: "/api/v1/virtual-services/1/real-servers/1", body: `{"weight":500}`}, http.StatusOK)
	e.must(req{method: "PATCH", path: "/api/v1/virtual-services/1", body: `{"idleTimeout":1800,"nickname":"Lync RP"}`}, http.StatusOK)
	got := e.must(req{method: "GET", path: "/api/v1/virtual-services/1"}, http.StatusOK)
	for _, want := range []string{`"idleTimeout": 1800`, `"weight": 500`, `"weight": 2000`, `"nickname": "Lync RP"`, `"mode": "src"`} {
		if !bytes.Contains(got.body, []byte(want)) {
			t.Errorf("service lacks %s:\n%s", want, got.body)
		}
	}
	e.must(req{method: "DELETE", path: "/api/v1/virtual-services/1/real-servers/2"}, http.StatusOK)
	e.must(req{method: "DELETE", path: "/api/v1/virtual-services/1"}, http.StatusOK)
	e.must(req{method: "GET", path: "/api/v1/virtual-services/1"}, http.StatusNotFound)

	var hist revisionList
	e.must(req{method: "GET", path: "/api/v1/revisions"}, http.StatusOK).json(t, &hist)
	if hist.Current != 6 || len(hist.Revisions) != 6 {
		t.Fatalf("history: current %d, %d revisions, want 6", hist.Current, len(hist.Revisions))
	}
	for _, c := range hist.Revisions {
		if c.User != "bal" || c.Source != "api" || c.Summary == "" || c.RemoteAddr != "127.0.0.1" {
			t.Errorf("revision %d recorded as %+v", c.Revision, c)
		}
	}
	// Roll back to revision 4 (two real servers, weight 500 and 2000).
	e.must(req{method: "POST", path: "/api/v1/revisions/4/rollback"}, http.StatusOK)
	r4, err := e.st.Revision(4)
	if err != nil {
		t.Fatal(err)
	}
	cur := e.ctl.Current()
	if cur.Revision != 7 || len(cur.Config.VirtualServices) != 1 || len(cur.Config.VirtualServices[0].RealServers) != 2 {
		t.Fatalf("after rollback: revision %d %+v", cur.Revision, cur.Config.VirtualServices)
	}
	var d diffBody
	e.must(req{method: "GET", path: "/api/v1/revisions/7/diff?from=4"}, http.StatusOK).json(t, &d)
	if len(d.Diff) != 0 {
		t.Errorf("revision 7 differs from revision 4: %v (r4 %+v)", d.Diff, r4.Change)
	}
	e.must(req{method: "GET", path: "/api/v1/revisions/99"}, http.StatusNotFound)
}

func TestStaleIfMatch(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, http.StatusCreated)
	r := e.must(req{method: "PATCH", path: "/api/v1/virtual-services/1", body: `{"port":8081}`, header: map[string]string{"If-Match": `"1"`}}, http.StatusOK)
	if r.header.Get("ETag") != `"2"` {
		t.Errorf("ETag %q", r.header.Get("ETag"))
	}
	r = e.must(req{method: "PATCH", path: "/api/v1/virtual-services/1", body: `{"port":8082}`, header: map[string]string{"If-Match": `"1"`}}, http.StatusPreconditionFailed)
	var eb errorBody
	r.json(t, &eb)
	if eb.Revision != 2 || !strings.Contains(eb.Error, "current is 2") {
		t.Errorf("conflict answer %s", r.body)
	}
	e.must(req{method: "PATCH", path: "/api/v1/virtual-services/1", body: `{"port":8082}`, header: map[string]string{"If-Match": "banana"}}, http.StatusBadRequest)
	if p := e.ctl.Current().Config.VirtualServices[0].Port; p != 8081 {
		t.Errorf("port %d after refused changes", p)
	}
}

func TestInvalidInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, http.StatusCreated)
	before := e.ctl.Current()
	huge := `{"nickname":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		name   string
		q      req
		status int
		want   string
	}{
		{"bad rs port", req{method: "POST", path: "/api/v1/virtual-services/1/real-servers", body: `{"address":"127.0.0.9","port":70000}`},
			400, "virtualServices[0].realServers[1].port: must be 1-65535, got 70000"},
		{"bad address", req{method: "POST", path: "/api/v1/virtual-services", body: `{"address":"300.1.1.1","port":80}`},
			400, `virtualServices[1].address: must be an IP address, got "300.1.1.1"`},
		{"unknown method", req{method: "PATCH", path: "/api/v1/virtual-services/1", body: `{"schedule":"fastest"}`},
			400, "virtualServices[0].schedule: must be one of"},
		{"duplicate", req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, 400, "duplicate service: tcp 127.0.0.2:8080"},
		{"malformed json", req{method: "POST", path: "/api/v1/virtual-services", body: `{"address":`}, 400, "malformed document"},
		{"unknown key", req{method: "POST", path: "/api/v1/virtual-services", body: `{"address":"127.0.0.5","port":80,"sheduel":"rr"}`},
			400, "sheduel: unknown field"},
		{"wrong type", req{method: "PATCH", path: "/api/v1/virtual-services/1", body: `{"port":"eighty"}`}, 400, `port: must be a whole number, got string`},
		{"id given", req{method: "POST", path: "/api/v1/virtual-services", body: `{"id":7,"address":"127.0.0.5","port":80}`}, 400, "id: is assigned by Fulcrum"},
		{"oversized", req{method: "PATCH", path: "/api/v1/virtual-services/1", body: huge}, 413, "request body too large"},
		{"form post", req{method: "POST", path: "/api/v1/virtual-services", body: "address=1", contentType: "application/x-www-form-urlencoded"}, 415, "Content-Type must be application/json"},
		{"yaml with unknown key", req{method: "PUT", path: "/api/v1/config", body: "virtualServices:\n- address: 127.0.0.1\n  port: 80\n  colour: red\n", contentType: "application/yaml"},
			400, "virtualServices[0].colour: unknown field"},
		{"no such vs", req{method: "PATCH", path: "/api/v1/virtual-services/42", body: `{"port":1}`}, 404, "virtual service 42"},
		{"bad options", req{method: "PATCH", path: "/api/v1/options", body: `{"connTimeout":-5,"health":{"interval":1}}`}, 400, "options.connTimeout: must be 1-86400"},
		{"unknown route", req{method: "GET", path: "/api/v1/nope"}, 404, "no such API resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.must(tt.q, tt.status)
			var eb errorBody
			r.json(t, &eb)
			if eb.Status != tt.status || eb.Error == "" {
				t.Errorf("error body %s", r.body)
			}
			text := eb.Error + "\n" + config.Errors(eb.Fields).Error()
			if !strings.Contains(text, tt.want) {
				t.Errorf("answer %s lacks %q", text, tt.want)
			}
		})
	}
	if after := e.ctl.Current(); after.Revision != before.Revision {
		t.Errorf("revision moved from %d to %d", before.Revision, after.Revision)
	}
}

func TestRolesAndOperator(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, http.StatusCreated)
	e.must(req{method: "POST", path: "/api/v1/users", body: `{"name":"ops","role":"operator","password":"operator password 1"}`}, http.StatusCreated)
	e.must(req{method: "POST", path: "/api/v1/users", body: `{"name":"viewer","role":"read-only","password":"viewer password 12"}`}, http.StatusCreated)
	op := func(q req) req { q.user, q.pass = "ops", "operator password 1"; return q }
	ro := func(q req) req { q.user, q.pass = "viewer", "viewer password 12"; return q }
	e.must(op(req{method: "PATCH", path: "/api/v1/virtual-services/1/real-servers/1", body: `{"enabled":false}`}), http.StatusOK)
	e.must(op(req{method: "PATCH", path: "/api/v1/virtual-services/1/real-servers/1", body: `{"weight":1}`}), http.StatusForbidden)
	e.must(op(req{method: "POST", path: "/api/v1/virtual-services", body: `{"address":"127.0.0.9","port":1}`}), http.StatusForbidden)
	e.must(ro(req{method: "GET", path: "/api/v1/virtual-services"}), http.StatusOK)
	e.must(ro(req{method: "PATCH", path: "/api/v1/virtual-services/1/real-servers/1", body: `{"enabled":true}`}), http.StatusForbidden)
	e.must(ro(req{method: "GET", path: "/api/v1/audit"}), http.StatusForbidden)
	e.must(ro(req{method: "GET", path: "/api/v1/backup"}), http.StatusForbidden)
	var users userList
	e.must(ro(req{method: "GET", path: "/api/v1/users"}), http.StatusOK).json(t, &users)
	if len(users.Users) != 1 || users.Users[0].Name != "viewer" {
		t.Errorf("read-only user sees %+v", users.Users)
	}
	if rs := e.ctl.Current().Config.VirtualServices[0].RealServers[0]; rs.Enabled == nil || *rs.Enabled {
		t.Error("operator could not disable the real server")
	}
	if c := e.ctl.Current().Change; c.User != "ops" {
		t.Errorf("last change by %q", c.User)
	}
}

func TestSessionAndCSRF(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/login", body: `{"user":"bal","password":"nope"}`, noAuth: true}, http.StatusUnauthorized)
	e.must(req{method: "POST", path: "/api/v1/login", body: `user=bal&password=x`, contentType: "application/x-www-form-urlencoded", noAuth: true}, http.StatusUnsupportedMediaType)
	r := e.must(req{method: "POST", path: "/api/v1/login", body: `{"user":"bal","password":"` + pw + `"}`, noAuth: true}, http.StatusOK)
	var si sessionInfo
	r.json(t, &si)
	var cookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(c, admin.SessionCookie+"=") {
			cookie = strings.SplitN(c, ";", 2)[0]
			for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Strict"} {
				if !strings.Contains(c, attr) {
					t.Errorf("session cookie lacks %s: %s", attr, c)
				}
			}
		}
	}
	if cookie == "" || si.CSRFToken == "" || si.User != "bal" {
		t.Fatalf("login answer %s, cookie %q", r.body, cookie)
	}
	withCookie := func(q req, csrf string) req {
		q.noAuth = true
		q.header = map[string]string{"Cookie": cookie}
		if csrf != "" {
			q.header[admin.CSRFHeader] = csrf
		}
		return q
	}
	e.must(withCookie(req{method: "GET", path: "/api/v1/virtual-services"}, ""), http.StatusOK)
	e.must(withCookie(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, ""), http.StatusForbidden)
	e.must(withCookie(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, "forged"), http.StatusForbidden)
	e.must(withCookie(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, si.CSRFToken), http.StatusCreated)
	if c := e.ctl.Current().Change; c.Source != "wui" {
		t.Errorf("browser change recorded with source %q", c.Source)
	}
	e.must(withCookie(req{method: "POST", path: "/api/v1/logout"}, si.CSRFToken), http.StatusNoContent)
	e.must(withCookie(req{method: "GET", path: "/api/v1/virtual-services"}, ""), http.StatusUnauthorized)
}

func TestAPIKeys(t *testing.T) {
	e := newEnv(t)
	var ck createdKey
	e.must(req{method: "POST", path: "/api/v1/api-keys", body: `{"description":"terraform"}`}, http.StatusCreated).json(t, &ck)
	if ck.Secret == "" || ck.Key.ID == "" || ck.Key.Hash != "" {
		t.Fatalf("created key %+v", ck)
	}
	bearer := map[string]string{"Authorization": "Bearer " + ck.Secret}
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS, noAuth: true, header: bearer}, http.StatusCreated)
	var kl keyList
	e.must(req{method: "GET", path: "/api/v1/api-keys"}, http.StatusOK).json(t, &kl)
	if len(kl.Keys) != 1 || kl.Keys[0].Hash != "" || strings.Contains(string(mustJSON(t, kl)), ck.Secret) {
		t.Errorf("listing %+v", kl)
	}
	e.must(req{method: "DELETE", path: "/api/v1/api-keys/" + ck.Key.ID}, http.StatusNoContent)
	e.must(req{method: "GET", path: "/api/v1/status", noAuth: true, header: bearer}, http.StatusUnauthorized)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOptionsEnableAPI(t *testing.T) {
	e := newEnv(t)
	r := e.must(req{method: "PATCH", path: "/api/v1/options", body: `{"enableApi":true}`}, http.StatusOK)
	if !bytes.Contains(r.body, []byte(`"enableApi": true`)) || !e.ctl.Current().Config.Options.EnableAPI {
		t.Fatalf("options %s", r.body)
	}
	if e.ctl.Current().Config.Options.ConnTimeout != 660 {
		t.Error("PATCH of one option reset the others")
	}
}

func TestConfigDryRunAndYAML(t *testing.T) {
	e := newEnv(t)
	doc := "virtualServices:\n- address: 127.0.0.2\n  port: 443\n  realServers:\n  - {address: 127.0.0.3, port: 4443}\n"
	var res changeResult
	e.must(req{method: "PUT", path: "/api/v1/config?dryRun=true", body: doc, contentType: "application/yaml"}, http.StatusOK).json(t, &res)
	if res.Committed || len(res.Diff) == 0 || e.ctl.Current().Revision != 0 {
		t.Fatalf("dry run %+v", res)
	}
	e.must(req{method: "PUT", path: "/api/v1/config", body: doc, contentType: "application/yaml"}, http.StatusOK).json(t, &res)
	if !res.Committed || res.Revision != 1 {
		t.Fatalf("apply %+v", res)
	}
	y := e.must(req{method: "GET", path: "/api/v1/config?format=yaml"}, http.StatusOK)
	e.must(req{method: "PUT", path: "/api/v1/config", body: string(y.body), contentType: "application/yaml"}, http.StatusOK).json(t, &res)
	if res.Committed || len(res.Diff) != 0 {
		t.Errorf("re-applying the export changed something: %+v", res)
	}
}

// TestDryRunEverywhere: every configuration change honours ?dryRun=true
// (answers its diff, commits nothing), and a write that cannot be dry-run
// refuses the parameter instead of committing (issue 15: PATCH
// …?dryRun=true committed).
func TestDryRunEverywhere(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: `{"address":"127.0.0.2","port":80,"realServers":[{"address":"127.0.0.3","port":8080}]}`}, http.StatusCreated)
	rev := e.ctl.Current().Revision
	for _, c := range []req{
		{method: "PATCH", path: "/api/v1/virtual-services/1?dryRun=true", body: `{"nickname":"x"}`},
		{method: "POST", path: "/api/v1/virtual-services?dryRun=true", body: `{"address":"127.0.0.4","port":80}`},
		{method: "DELETE", path: "/api/v1/virtual-services/1?dryRun=true"},
		{method: "POST", path: "/api/v1/virtual-services/1/real-servers?dryRun=true", body: `{"address":"127.0.0.5","port":8080}`},
		{method: "PATCH", path: "/api/v1/options?dryRun=true", body: `{"connTimeout":100}`},
	} {
		var res changeResult
		e.must(c, http.StatusOK).json(t, &res)
		if res.Committed || len(res.Diff) == 0 {
			t.Errorf("%s %s: %+v, want a diff and nothing committed", c.method, c.path, res)
		}
		if e.ctl.Current().Revision != rev {
			t.Fatalf("%s %s committed", c.method, c.path)
		}
	}
	if e.ctl.Current().Config.VirtualServices[0].NickName != "" {
		t.Fatal("a dry run changed the configuration")
	}
	r := e.must(req{method: "POST", path: "/api/v1/users?dryRun=true", body: `{"name":"eve","password":"a long passphrase 123","role":"admin"}`}, http.StatusBadRequest)
	if !bytes.Contains(r.body, []byte("cannot be dry-run")) {
		t.Errorf("answer %s", r.body)
	}
	users, err := e.auth.Users()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Name == "eve" {
			t.Fatal("a refused dry run created a user")
		}
	}
}

// TestStrictJSON: a body sent as application/json must be one JSON
// document in UTF-8 (issue 15, item 8: single quotes, trailing commas,
// YAML, a second document and UTF-16 were taken because the decoder reads
// YAML); YAML is welcome as application/yaml where the API takes it.
func TestStrictJSON(t *testing.T) {
	e := newEnv(t)
	utf16 := string([]byte{0xff, 0xfe, '{', 0, '}', 0})
	for name, body := range map[string]string{
		"single quotes":   `{'address':'127.0.0.2','port':80}`,
		"trailing comma":  `{"address":"127.0.0.2","port":80,}`,
		"yaml":            "address: 127.0.0.2\nport: 80\n",
		"second document": `{"address":"127.0.0.2","port":80} {"address":"127.0.0.3","port":80}`,
		"utf-16":          utf16,
	} {
		r := e.must(req{method: "POST", path: "/api/v1/virtual-services", body: body}, http.StatusBadRequest)
		if !bytes.Contains(r.body, []byte("JSON")) && !bytes.Contains(r.body, []byte("UTF")) {
			t.Errorf("%s: answer %s", name, r.body)
		}
	}
	if e.ctl.Current().Revision != 0 {
		t.Fatal("a refused body changed the configuration")
	}
	e.must(req{method: "PUT", path: "/api/v1/config", body: "virtualServices:\n- {address: 127.0.0.2, port: 80}\n", contentType: "application/yaml"}, http.StatusOK)
}

// TestUnlockUser: POST /users/{name}/unlock lifts an account's lockouts
// (the console's fulcrum passwd --unlock); it needs the users permission.
func TestUnlockUser(t *testing.T) {
	e := newEnv(t)
	var res unlockResult
	e.must(req{method: "POST", path: "/api/v1/users/bal/unlock"}, http.StatusOK).json(t, &res)
	if res.User != "bal" || res.WasLocked {
		t.Errorf("unlock of an account that was not locked: %+v", res)
	}
	e.must(req{method: "POST", path: "/api/v1/users/nobody/unlock"}, http.StatusNotFound)
	e.must(req{method: "POST", path: "/api/v1/users", body: `{"name":"viewer","password":"viewer password 12"}`}, http.StatusCreated)
	e.must(req{method: "POST", path: "/api/v1/users/bal/unlock", user: "viewer", pass: "viewer password 12"}, http.StatusForbidden)
}
