package webui

import (
	"bytes"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestFieldFor(t *testing.T) {
	f := newForm("port", "tls.certificates", "healthCheck.headers", "persistence.timeout")
	for _, tc := range []struct {
		rel, want string
		ok        bool
	}{
		{"port", "port", true},
		{"tls.certificates[0]", "tls.certificates", true},
		{"tls.certificates[12]", "tls.certificates", true},
		{"healthCheck.headers.X-Custom", "healthCheck.headers", true},
		{"persistence.timeout", "persistence.timeout", true},
		{"persistence.mode", "", false},
		{"", "", false},
		{"address", "", false},
	} {
		got, ok := f.fieldFor(tc.rel)
		if got != tc.want || ok != tc.ok {
			t.Errorf("fieldFor(%q) = %q, %v; want %q, %v", tc.rel, got, ok, tc.want, tc.ok)
		}
	}
}

func TestAddErrors(t *testing.T) {
	f := newForm("port", "tls.certificates", "persistence.mode")
	f.addErrors(config.Errors{
		{Path: "virtualServices[1].port", Message: "must be 1-65535, got 0"},
		{Path: "virtualServices[1].tls.certificates[0]", Message: `no certificate named "x"`},
		{Path: "virtualServices[1].persistence.mode", Message: "super needs an http service"},
		{Path: "virtualServices[1]", Message: "duplicate service"},
		{Path: "virtualServices[1].schedule", Message: "must be one of rr, lc"},
		{Path: "virtualServices[10].port", Message: "another service's problem"},
		{Path: "options.drainTime", Message: "must be 60-86400"},
	}, "virtualServices[1]")
	want := map[string]string{"port": "must be 1-65535, got 0", "tls.certificates": `no certificate named "x"`,
		"persistence.mode": "super needs an http service"}
	for k, v := range want {
		if got := f.Err(k); len(got) != 1 || got[0] != v {
			t.Errorf("errors of %s: %q, want [%q]", k, got, v)
		}
	}
	wantGeneral := []string{"duplicate service", "virtualServices[1].schedule: must be one of rr, lc",
		"virtualServices[10].port: another service's problem", "options.drainTime: must be 60-86400"}
	if strings.Join(f.General(), "|") != strings.Join(wantGeneral, "|") {
		t.Errorf("general errors %q, want %q", f.General(), wantGeneral)
	}
}

func TestParser(t *testing.T) {
	v := url.Values{"n": {" 42 "}, "bad": {"4x"}, "big": {"99999999999999"}, "cb": {"on"}, "codes": {"403, 404 500"},
		"badcodes": {"403,abc"}, "hdr": {"X-A: 1\r\nX-B:two\n\n"}, "badhdr": {"no colon here"}, "list": {"a", " ", "b"}}
	p := &parser{v: v, prefix: "virtualServices[0]"}
	if got := p.int("n"); got != 42 {
		t.Errorf("int = %d", got)
	}
	if got := p.int("missing"); got != 0 {
		t.Errorf("missing int = %d", got)
	}
	if !p.bool("cb") || p.bool("missing") {
		t.Error("bool")
	}
	if got := p.ints("codes"); len(got) != 3 || got[2] != 500 {
		t.Errorf("ints = %v", got)
	}
	if got := p.headers("hdr"); len(got) != 2 || got["X-B"] != "two" {
		t.Errorf("headers = %v", got)
	}
	if got := p.list("list"); strings.Join(got, ",") != "a,b" {
		t.Errorf("list = %v", got)
	}
	if len(p.errs) != 0 {
		t.Fatalf("unexpected errors %v", p.errs)
	}
	p.int("bad")
	p.int("big")
	p.ints("badcodes")
	p.headers("badhdr")
	paths := []string{}
	for _, e := range p.errs {
		paths = append(paths, e.Path)
	}
	want := "virtualServices[0].bad virtualServices[0].big virtualServices[0].badcodes virtualServices[0].badhdr"
	if strings.Join(paths, " ") != want {
		t.Errorf("error paths %v, want %s", paths, want)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/vs/3":                "/vs/3",
		"/vs?x=1":              "/vs?x=1",
		"":                     "/",
		"//evil.example/":      "/",
		"/\\evil.example":      "/",
		"https://evil.example": "/",
		"/api/v1/config":       "/",
		"/vs\r\nSet-Cookie: x": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSampler(t *testing.T) {
	m := newSampler(3)
	t0 := time.Unix(1000, 0)
	st := func(total, in, out, active int64) []status.VS {
		return []status.VS{{ID: 7, TotalConns: total, BytesIn: in, BytesOut: out, ActiveConns: active}}
	}
	m.observe(t0, st(10, 1000, 2000, 1))
	m.observe(t0.Add(500*time.Millisecond), st(99, 9999, 9999, 9)) // too soon: ignored
	m.observe(t0.Add(2*time.Second), st(30, 3000, 6000, 4))
	d := m.doc()
	if len(d.T) != 2 {
		t.Fatalf("%d samples, want 2", len(d.T))
	}
	s := d.VS["7"]
	if *s.CPS[1] != 10 || *s.In[1] != 8000 || *s.Out[1] != 16000 || *s.Conns[1] != 4 {
		t.Errorf("rates cps %v in %v out %v conns %v", *s.CPS[1], *s.In[1], *s.Out[1], *s.Conns[1])
	}
	if *d.Total.In[1] != 8000 {
		t.Errorf("total in %v", *d.Total.In[1])
	}
	// A counter that went down (a reload) reads as 0, not negative.
	m.observe(t0.Add(4*time.Second), st(5, 10, 10, 0))
	m.observe(t0.Add(6*time.Second), st(6, 20, 20, 0))
	d = m.doc()
	if len(d.T) != 3 {
		t.Errorf("%d samples, want the bound 3", len(d.T))
	}
	if *d.VS["7"].CPS[1] != 0 {
		t.Errorf("rate after a counter reset: %v", *d.VS["7"].CPS[1])
	}
}

// testServer is a Server over a real store, controller, data plane and
// admin service, with a signed-in session for each role.
type testServer struct {
	s       *Server
	h       http.Handler
	st      *store.Store
	ctl     *control.Controller
	bus     *events.Bus
	cookies map[string]*http.Cookie
	csrf    map[string]string
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	return newTestServerWith(t, nil)
}

// newTestServerWith is newTestServer with a controller that manages host.
func newTestServerWith(t testing.TB, host control.Host) *testServer {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := dataplane.New(dataplane.Options{Logger: log})
	t.Cleanup(func() {
		_ = eng.Close()
		_ = st.Close()
	})
	ctl, err := control.NewWith(st, eng, control.Options{Host: host, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Close)
	auth := admin.New(st, admin.Options{BcryptCost: bcrypt.MinCost, Logger: log})
	ctl.SetAuditor(auth)
	if _, err := auth.Bootstrap("admin password 1"); err != nil {
		t.Fatal(err)
	}
	root := admin.Principal{User: "bal", Role: config.RoleAdmin, Method: admin.MethodConsole}
	for _, u := range []string{config.RoleOperator, config.RoleReadOnly} {
		if err := auth.AddUser(root, "", strings.ReplaceAll(u, "-", ""), u, "password of "+u); err != nil {
			t.Fatal(err)
		}
	}
	bus := events.NewBus(0)
	s := New(Options{Control: ctl, Auth: auth, History: st, Logger: log, Status: eng, Events: bus})
	ts := &testServer{s: s, h: s.Handler(), st: st, ctl: ctl, bus: bus, cookies: map[string]*http.Cookie{}, csrf: map[string]string{}}
	for user, pw := range map[string]string{"bal": "admin password 1", "operator": "password of operator", "readonly": "password of read-only"} {
		p, c, err := auth.Login(user, pw, "192.0.2.1:1234")
		if err != nil {
			t.Fatal(err)
		}
		ts.cookies[user], ts.csrf[user] = c, p.CSRFToken
	}
	return ts
}

// get requests a page as user.
func (ts *testServer) get(user, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	if c := ts.cookies[user]; c != nil {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, r)
	return w
}

// post posts a same-origin form as user with the session's CSRF token.
func (ts *testServer) post(user, path string, form url.Values) *httptest.ResponseRecorder {
	form.Set("csrf", ts.csrf[user])
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "http://example.com")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.AddCookie(ts.cookies[user])
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, r)
	return w
}

// addVS adds a generic service with one real server through the UI and
// returns its ID.
func (ts *testServer) addVS(t testing.TB, addr string) int {
	t.Helper()
	w := ts.post("bal", "/vs/new", url.Values{"address": {addr}, "port": {"8080"}, "protocol": {"tcp"}, "type": {"http"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("add service: %d %s", w.Code, w.Body)
	}
	v := ts.ctl.Current().Config.VirtualServices
	id := v[len(v)-1].ID
	w = ts.post("bal", "/vs/"+itoa(id)+"/rs", url.Values{"address": {"192.0.2.50"}, "port": {"80"}, "weight": {"1000"}, "enabled": {"on"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("add real server: %d %s", w.Code, w.Body)
	}
	return id
}

func TestPagesRender(t *testing.T) {
	ts := newTestServer(t)
	id := ts.addVS(t, "192.0.2.10")
	rsID := ts.ctl.Current().Config.VirtualServiceByID(id).RealServers[0].ID
	rev := ts.ctl.Current().Revision
	pages := []string{"/", "/vs", "/vs/new", "/vs/" + itoa(id), "/vs/" + itoa(id) + "/rs/" + itoa(rsID), "/certificates",
		"/system", "/users", "/audit", "/history", "/history/" + itoa(int(rev)), "/backup", "/templates",
		"/templates/lync2013-reverse-proxy", "/verify", "/network", "/logs", "/system/logging"}
	for _, user := range []string{"bal", "operator", "readonly"} {
		for _, path := range pages {
			w := ts.get(user, path)
			want := http.StatusOK
			if (path == "/audit" || path == "/vs/new" || strings.HasPrefix(path, "/templates/")) && user != "bal" {
				want = http.StatusForbidden
			}
			if w.Code != want {
				t.Errorf("%s GET %s: %d, want %d: %.200s", user, path, w.Code, want, w.Body)
				continue
			}
			h := w.Header()
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("%s: CSP %q", path, csp)
			}
			if h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s: X-Frame-Options %q", path, h.Get("X-Frame-Options"))
			}
			body := w.Body.String()
			if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, " onclick=") {
				t.Errorf("%s has inline script or style", path)
			}
			// Every form that posts carries the CSRF token.
			forms := regexp.MustCompile(`(?s)<form method="post".*?</form>`).FindAllString(body, -1)
			for _, f := range forms {
				if !strings.Contains(f, `name="csrf" value="`+ts.csrf[user]+`"`) {
					t.Errorf("%s: a form without the CSRF token: %.200s", path, f)
				}
			}
			if user == "readonly" && strings.Contains(body, "/rs/"+itoa(rsID)+"/disable") {
				t.Errorf("%s shows the read-only user a disable button", path)
			}
		}
	}
	// Live fragments and data.
	for _, path := range []string{"/vs/live", "/vs/" + itoa(id) + "/live", "/ui/metrics"} {
		if w := ts.get("readonly", path); w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", path, w.Code)
		}
	}
	if w := ts.get("", "/vs"); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
		t.Errorf("anonymous GET /vs: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := ts.get("", "/static/js/app.js"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "use strict") {
		t.Errorf("static asset: %d", w.Code)
	}
}

func TestPermissions(t *testing.T) {
	ts := newTestServer(t)
	id := ts.addVS(t, "192.0.2.11")
	rsID := ts.ctl.Current().Config.VirtualServiceByID(id).RealServers[0].ID
	rev := ts.ctl.Current().Revision
	// A read-only user changes nothing.
	if w := ts.post("readonly", "/vs/"+itoa(id)+"/rs/"+itoa(rsID)+"/disable", url.Values{}); w.Code != http.StatusForbidden {
		t.Errorf("read-only disable: %d", w.Code)
	}
	if w := ts.post("operator", "/vs/"+itoa(id)+"/section/standard", url.Values{"schedule": {"lc"}}); w.Code != http.StatusForbidden {
		t.Errorf("operator edit: %d", w.Code)
	}
	if ts.ctl.Current().Revision != rev {
		t.Fatal("a refused post changed the configuration")
	}
	// An operator may disable and enable a real server.
	if w := ts.post("operator", "/vs/"+itoa(id)+"/rs/"+itoa(rsID)+"/disable", url.Values{}); w.Code != http.StatusSeeOther {
		t.Fatalf("operator disable: %d %s", w.Code, w.Body)
	}
	rs := ts.ctl.Current().Config.VirtualServiceByID(id).RealServerByID(rsID)
	if config.IsTrue(rs.Enabled) {
		t.Error("real server still enabled")
	}
	if ch := ts.ctl.Current().Change; ch.User != "operator" || ch.Source != control.SourceWUI {
		t.Errorf("revision by %+v", ch)
	}
}

func TestFormErrorsNextToFields(t *testing.T) {
	ts := newTestServer(t)
	id := ts.addVS(t, "192.0.2.12")
	rev := ts.ctl.Current().Revision
	w := ts.post("bal", "/vs/"+itoa(id)+"/section/standard", url.Values{
		"persistence.mode": {"super-src"}, "persistence.timeout": {"abc"}, "schedule": {"fastest"}, "idleTimeout": {"90000"},
		"rev": {itoa(int(rev))}})
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", w.Code)
	}
	body := w.Body.String()
	for id, msg := range map[string]string{
		"f-standard-persistence-timeout-err": "must be a whole number, got &#34;abc&#34;",
		"f-standard-schedule-err":            "must be one of rr",
		"f-standard-idleTimeout-err":         "must be 0-86400, got 90000",
	} {
		m := regexp.MustCompile(`id="` + id + `">([^<]*)<`).FindStringSubmatch(body)
		if m == nil || !strings.Contains(m[1], msg) {
			t.Errorf("%s: %v, want %q", id, m, msg)
		}
	}
	// What the user typed is kept.
	if !strings.Contains(body, `name="persistence.timeout" type="text" value="abc"`) {
		t.Error("typed timeout not kept")
	}
	if ts.ctl.Current().Revision != rev {
		t.Error("an invalid form changed the configuration")
	}
}

func TestStaleEditRefused(t *testing.T) {
	ts := newTestServer(t)
	id := ts.addVS(t, "192.0.2.13")
	shown := ts.ctl.Current().Revision
	// Someone else changes the scheduling method through the API's path.
	if _, err := ts.ctl.Apply(control.Change{Actor: control.Actor{User: "alice", Source: control.SourceAPI},
		Mutate: func(c *config.Config) error { c.VirtualServiceByID(id).Schedule = "wlc"; return nil }}); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"persistence.mode": {"none"}, "schedule": {"lc"}, "rev": {itoa(int(shown))}}
	w := ts.post("bal", "/vs/"+itoa(id)+"/section/standard", form)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "was changed by alice") {
		t.Fatalf("stale edit: %d %.300s", w.Code, w.Body)
	}
	if got := ts.ctl.Current().Config.VirtualServiceByID(id).Schedule; got != "wlc" {
		t.Errorf("schedule %q after a refused stale edit", got)
	}
	// A section nobody else touched saves on top of the newer revision.
	w = ts.post("bal", "/vs/"+itoa(id)+"/section/limits", url.Values{"limits.maxConns": {"100"}, "rev": {itoa(int(shown))}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("edit of an unchanged section: %d %.300s", w.Code, w.Body)
	}
	if got := ts.ctl.Current().Config.VirtualServiceByID(id); got.Limits.MaxConns != 100 || got.Schedule != "wlc" {
		t.Errorf("after the limits edit: maxConns %d schedule %q", got.Limits.MaxConns, got.Schedule)
	}
}

func TestDestructiveActionsConfirm(t *testing.T) {
	ts := newTestServer(t)
	id := ts.addVS(t, "192.0.2.14")
	rev := ts.ctl.Current().Revision
	w := ts.post("bal", "/vs/"+itoa(id)+"/delete", url.Values{})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `id="confirm-message"`) {
		t.Fatalf("delete without confirmation: %d", w.Code)
	}
	if ts.ctl.Current().Revision != rev {
		t.Fatal("deleted without confirmation")
	}
	w = ts.post("bal", "/vs/"+itoa(id)+"/delete", url.Values{"confirmed": {"yes"}})
	if w.Code != http.StatusSeeOther || ts.ctl.Current().Config.VirtualServiceByID(id) != nil {
		t.Fatalf("confirmed delete: %d", w.Code)
	}
	if sum := ts.ctl.Current().Change.Summary; !strings.HasPrefix(sum, "delete virtual service") {
		t.Errorf("summary %q", sum)
	}
}

func TestTemplatesParse(t *testing.T) {
	names, err := templateNames()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"layout": true, "parts": true}
	for _, n := range pageNames {
		known[n] = true
	}
	for _, n := range names {
		if !known[n] {
			t.Errorf("template %s.html is not in pageNames", n)
		}
	}
}

func TestTemplateUse(t *testing.T) {
	ts := newTestServer(t)
	rev := ts.ctl.Current().Revision
	// Add New with a template goes to the template's page with the address
	// and port typed.
	w := ts.post("bal", "/vs/new", url.Values{"address": {"192.0.2.30"}, "port": {"8443"}, "template": {"lync2013-reverse-proxy"}})
	if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || loc != "/templates/lync2013-reverse-proxy?address=192.0.2.30&port=8443" {
		t.Fatalf("Add New with a template: %d %q", w.Code, loc)
	}
	w = ts.get("bal", "/templates/lync2013-reverse-proxy?address=192.0.2.30&port=8443")
	if body := w.Body.String(); !strings.Contains(body, `name="parameters.vip" type="text" value="192.0.2.30"`) || !strings.Contains(body, `name="svcport.0" value="8443"`) {
		t.Errorf("template form not prefilled: %.500s", body)
	}
	// Missing and malformed values are shown next to their fields.
	w = ts.post("bal", "/templates/lync2013-reverse-proxy", url.Values{"parameters.vip": {"not-an-ip"}})
	body := w.Body.String()
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(body, `id="f-parameters-vip-err">must be an IP address`) ||
		!strings.Contains(body, `id="f-parameters-certificate-err">required`) {
		t.Errorf("template errors: %d %.2000s", w.Code, body)
	}
	// A certificate name that does not exist is refused by validation of
	// the whole configuration; nothing is added.
	w = ts.post("bal", "/templates/lync2013-reverse-proxy", url.Values{"parameters.vip": {"192.0.2.30"}, "parameters.certificate": {"nope"},
		"svcport.0": {"8443"}, "svcport.1": {"8080"}})
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), `no certificate named &#34;nope&#34;`) {
		t.Errorf("unknown certificate: %d", w.Code)
	}
	if ts.ctl.Current().Revision != rev {
		t.Fatal("a refused template changed the configuration")
	}
	// With a certificate imported (pasted PEM), the template adds its two
	// services as one revision, on the ports asked for.
	w = ts.post("bal", "/certificates", url.Values{"name": {"lync-public"}, "kind": {"certificate"}, "pem": {selfSigned(t)}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("import certificate: %d %.500s", w.Code, w.Body)
	}
	rev = ts.ctl.Current().Revision
	w = ts.post("bal", "/templates/lync2013-reverse-proxy", url.Values{"parameters.vip": {"192.0.2.30"}, "parameters.certificate": {"lync-public"},
		"parameters.frontEnds": {"192.0.2.41\n192.0.2.42:4444"}, "svcport.0": {"8443"}, "svcport.1": {"8080"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("use template: %d %.1000s", w.Code, w.Body)
	}
	cfg := ts.ctl.Current().Config
	if ts.ctl.Current().Revision != rev+1 || len(cfg.VirtualServices) != 2 {
		t.Fatalf("revision %d, %d services", ts.ctl.Current().Revision, len(cfg.VirtualServices))
	}
	v := cfg.VirtualServices[0]
	if v.Port != 8443 || cfg.VirtualServices[1].Port != 8080 || len(v.RealServers) != 2 || v.RealServers[1].Port != 4444 ||
		v.RealServers[0].Port != 4443 || v.TLS.Certificates[0] != "lync-public" {
		t.Errorf("services from the template: %+v", cfg.VirtualServices)
	}
}

// selfSigned returns a PEM certificate for meet.example.com with its key.
func selfSigned(t *testing.T) string {
	t.Helper()
	c := testkit.SelfSigned(t, testkit.Leaf{Names: []string{"meet.example.com"}})
	return c.CertPEM() + c.KeyPEM()
}

// postMultipart posts a multipart form with one file as user.
func (ts *testServer) postMultipart(t *testing.T, user, path string, fields map[string]string, file []byte) *httptest.ResponseRecorder {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fields["csrf"] = ts.csrf[user]
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if file != nil {
		fw, err := mw.CreateFormFile("file", "upload.bin")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(file)
	}
	_ = mw.Close()
	r := httptest.NewRequest("POST", path, &buf)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	r.Header.Set("Origin", "http://example.com")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.AddCookie(ts.cookies[user])
	w := httptest.NewRecorder()
	ts.h.ServeHTTP(w, r)
	return w
}

func TestCertificateImportPFX(t *testing.T) {
	ts := newTestServer(t)
	sc := testkit.SelfSigned(t, testkit.Leaf{Names: []string{"meet.example.com"}})
	pfx, err := pkcs12.Modern2023.Encode(sc.Key, sc.Certificate, nil, "pfx secret")
	if err != nil {
		t.Fatal(err)
	}
	rev := ts.ctl.Current().Revision
	w := ts.postMultipart(t, "bal", "/certificates", map[string]string{"name": "web", "kind": "certificate", "password": "wrong"}, pfx)
	body := w.Body.String()
	if w.Code != http.StatusUnprocessableEntity || !strings.Contains(body, `id="f-password-err">wrong PFX password`) {
		t.Fatalf("wrong password: %d %.300s", w.Code, body)
	}
	if strings.Contains(body, `value="wrong"`) {
		t.Error("the password typed was sent back")
	}
	w = ts.postMultipart(t, "bal", "/certificates", map[string]string{"name": "web", "kind": "certificate", "password": "pfx secret"}, pfx)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("import: %d %.300s", w.Code, w.Body)
	}
	c := ts.ctl.Current().Config.Certificates
	if ts.ctl.Current().Revision != rev+1 || len(c) != 1 || c[0].Name != "web" || c[0].KeyPEM == "" {
		t.Fatalf("certificates after import: %+v", c)
	}
	w = ts.get("bal", "/certificates")
	if !strings.Contains(w.Body.String(), "CN=meet.example.com") || strings.Contains(w.Body.String(), "PRIVATE KEY") {
		t.Error("certificate list")
	}
}

func TestBackupRestore(t *testing.T) {
	ts := newTestServer(t)
	ts.addVS(t, "192.0.2.60")
	if w := ts.get("readonly", "/backup/download"); w.Code != http.StatusForbidden {
		t.Errorf("read-only backup: %d, want 403", w.Code)
	}
	w := ts.get("bal", "/backup/download")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/gzip" {
		t.Fatalf("backup: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	backup := w.Body.Bytes()
	// Change something, then restore the backup.
	ts.addVS(t, "192.0.2.61")
	rev := ts.ctl.Current().Revision
	if w := ts.postMultipart(t, "bal", "/backup/restore", map[string]string{}, backup); w.Code != http.StatusUnprocessableEntity ||
		!strings.Contains(w.Body.String(), "Tick this box to confirm") {
		t.Fatalf("restore without confirmation: %d", w.Code)
	}
	if w := ts.postMultipart(t, "bal", "/backup/restore", map[string]string{"confirmed": "yes"}, []byte("not a backup")); w.Code != http.StatusUnprocessableEntity {
		t.Errorf("restore of garbage: %d", w.Code)
	}
	if ts.ctl.Current().Revision != rev {
		t.Fatal("a refused restore changed the configuration")
	}
	w = ts.postMultipart(t, "bal", "/backup/restore", map[string]string{"confirmed": "yes"}, backup)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("restore: %d %.300s", w.Code, w.Body)
	}
	if n := len(ts.ctl.Current().Config.VirtualServices); n != 1 || ts.ctl.Current().Revision != rev+1 {
		t.Errorf("after restore: %d services, revision %d", n, ts.ctl.Current().Revision)
	}
}
