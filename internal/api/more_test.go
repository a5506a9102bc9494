package api

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func selfSigned(t *testing.T, cn string) (*x509.Certificate, crypto.Signer, string) {
	t.Helper()
	c := testkit.SelfSigned(t, testkit.Leaf{Names: []string{cn}, NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	return c.Certificate, c.Key, c.CertPEM() + c.KeyPEM()
}

func TestCertificates(t *testing.T) {
	e := newEnv(t)
	cert, key, bundle := selfSigned(t, "meet.example.com")
	body, _ := json.Marshal(certUpload{Name: "meet", PEM: bundle})
	r := e.must(req{method: "POST", path: "/api/v1/certificates", body: string(body)}, http.StatusCreated)
	if !bytes.Contains(r.body, []byte(`"subject": "CN=meet.example.com"`)) || !bytes.Contains(r.body, []byte(`"keyType": "ECDSA P-256"`)) {
		t.Errorf("import answer %s", r.body)
	}
	pfx, err := pkcs12.Modern.Encode(key, cert, nil, "pfx-pass")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(certUpload{Name: "meet-pfx", PFX: base64.StdEncoding.EncodeToString(pfx), Password: "pfx-pass"})
	e.must(req{method: "POST", path: "/api/v1/certificates", body: string(body)}, http.StatusCreated)
	body, _ = json.Marshal(certUpload{Name: "bad", PFX: base64.StdEncoding.EncodeToString(pfx), Password: "wrong"})
	r = e.must(req{method: "POST", path: "/api/v1/certificates", body: string(body)}, http.StatusBadRequest)
	if !bytes.Contains(r.body, []byte("wrong PFX password")) || !bytes.Contains(r.body, []byte(`"path": "pfx"`)) {
		t.Errorf("wrong password answer %s", r.body)
	}
	body, _ = json.Marshal(certUpload{Name: "meet", PEM: bundle})
	e.must(req{method: "POST", path: "/api/v1/certificates", body: string(body)}, http.StatusConflict)

	var list certList
	e.must(req{method: "GET", path: "/api/v1/certificates"}, http.StatusOK).json(t, &list)
	if len(list.Certificates) != 2 {
		t.Fatalf("list %+v", list)
	}
	// A service using the certificate keeps it from being deleted.
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: `{"address":"127.0.0.2","port":443,"type":"http",
		"tls":{"offload":true,"certificates":["meet"]},"realServers":[{"address":"127.0.0.3","port":4443}]}`}, http.StatusCreated)
	r = e.must(req{method: "DELETE", path: "/api/v1/certificates/meet"}, http.StatusBadRequest)
	if !bytes.Contains(r.body, []byte(`no certificate named \"meet\"`)) {
		t.Errorf("delete in use: %s", r.body)
	}
	e.must(req{method: "DELETE", path: "/api/v1/certificates/meet-pfx"}, http.StatusOK)
	e.must(req{method: "GET", path: "/api/v1/certificates/meet-pfx"}, http.StatusNotFound)
	// Keys are never shown to a read-only user.
	e.must(req{method: "POST", path: "/api/v1/users", body: `{"name":"viewer","password":"viewer password 12"}`}, http.StatusCreated)
	cfg := e.must(req{method: "GET", path: "/api/v1/config", user: "viewer", pass: "viewer password 12"}, http.StatusOK)
	if bytes.Contains(cfg.body, []byte("PRIVATE KEY")) || !bytes.Contains(cfg.body, []byte("(redacted)")) {
		t.Error("a read-only user can read private keys")
	}
}

func TestBackupRestore(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, http.StatusCreated)
	b := e.must(req{method: "GET", path: "/api/v1/backup"}, http.StatusOK)
	if !strings.HasPrefix(b.header.Get("Content-Disposition"), "attachment;") {
		t.Errorf("Content-Disposition %q", b.header.Get("Content-Disposition"))
	}
	e.must(req{method: "DELETE", path: "/api/v1/virtual-services/1"}, http.StatusOK)
	before := e.ctl.Current().Revision
	for name, junk := range map[string]string{
		"garbage":   "this is not a backup",
		"foreign":   `{"format":"something-else","version":1}`,
		"truncated": string(b.body[:len(b.body)/2]),
	} {
		r := e.do(req{method: "POST", path: "/api/v1/restore", body: junk, contentType: "application/octet-stream"})
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: status %d: %s", name, r.status, r.body)
		}
	}
	if e.ctl.Current().Revision != before {
		t.Fatal("a refused restore changed the configuration")
	}
	e.must(req{method: "POST", path: "/api/v1/restore", body: string(b.body), contentType: "application/gzip"}, http.StatusOK)
	cur := e.ctl.Current()
	if cur.Revision != before+1 || len(cur.Config.VirtualServices) != 1 {
		t.Fatalf("after restore: revision %d, %d services", cur.Revision, len(cur.Config.VirtualServices))
	}
}

// TestOpenAPIMatchesRoutes checks both directions: every route of the table
// is documented, and every documented operation is served (it answers with
// something other than "no such resource" or "method not allowed").
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	e.must(req{method: "GET", path: "/api/v1/openapi.json", noAuth: true}, http.StatusOK).json(t, &doc)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	s := New(Options{Control: e.ctl, Auth: e.auth, History: e.st})
	documented := 0
	for _, rt := range s.routes {
		if _, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("%s %s is not in the OpenAPI document", rt.method, rt.path)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented++
			concrete := strings.NewReplacer("{id}", "1", "{rsid}", "1", "{rev}", "1", "{name}", "bal").Replace(path)
			if method == "delete" || strings.HasSuffix(path, "/logout") || strings.HasSuffix(path, "/rollback") || strings.HasSuffix(path, "/restore") {
				// Probe destructive operations with a body they refuse or on
				// objects that do not exist, which still proves the route.
				concrete = strings.NewReplacer("/users/bal", "/users/nobody").Replace(concrete)
			}
			r := e.do(req{method: strings.ToUpper(method), path: concrete, body: "{}"})
			if r.status == http.StatusMethodNotAllowed || bytes.Contains(r.body, []byte("no such API resource")) {
				t.Errorf("documented %s %s is not served: %d %s", method, path, r.status, r.body)
			}
		}
	}
	if documented != len(s.routes) {
		t.Errorf("%d documented operations, %d routes", documented, len(s.routes))
	}
}

func TestTemplates(t *testing.T) {
	e := newEnv(t)
	var list templateList
	e.must(req{method: "GET", path: "/api/v1/templates"}, http.StatusOK).json(t, &list)
	if len(list.Templates) < 7 {
		t.Fatalf("templates %+v", list)
	}
	// Missing and bad parameters: refused, nothing changes.
	r := e.must(req{method: "POST", path: "/api/v1/templates/lync2013-internal-hlb/instantiate", body: `{"parameters":{"vip":"nope"}}`}, http.StatusBadRequest)
	if !bytes.Contains(r.body, []byte(`"path": "parameters.vip"`)) {
		t.Errorf("bad vip: %s", r.body)
	}
	// A port clash with an existing service refuses the whole template.
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: `{"address":"127.0.0.30","port":5061}`}, http.StatusCreated)
	r = e.must(req{method: "POST", path: "/api/v1/templates/lync2013-internal-hlb/instantiate", body: `{"parameters":{"vip":"127.0.0.30"}}`}, http.StatusBadRequest)
	if !bytes.Contains(r.body, []byte("duplicate service: tcp 127.0.0.30:5061")) || len(e.ctl.Current().Config.VirtualServices) != 1 {
		t.Errorf("clash: %s", r.body)
	}
	var res instantiateResult
	e.must(req{method: "POST", path: "/api/v1/templates/lync2013-internal-hlb/instantiate",
		body: `{"parameters":{"vip":"127.0.0.31","frontEnds":["127.0.0.41","127.0.0.42","127.0.0.43"]}}`}, http.StatusCreated).json(t, &res)
	if len(res.VirtualServices) != 15 || res.Revision != 2 || len(e.ctl.Current().Config.VirtualServices) != 16 {
		t.Fatalf("instantiate: %+v", res)
	}
	// Export a service as a template, save it, instantiate it elsewhere.
	body := `{"name":"my-sip","save":true}`
	y := e.must(req{method: "POST", path: fmt.Sprintf("/api/v1/virtual-services/%d/template", res.VirtualServices[4]), body: body}, http.StatusOK)
	if !bytes.Contains(y.body, []byte("realServersFrom")) {
		t.Errorf("export %s", y.body)
	}
	e.must(req{method: "POST", path: "/api/v1/templates/my-sip/instantiate", body: `{"parameters":{"vip":"127.0.0.32"}}`}, http.StatusCreated)
	e.must(req{method: "POST", path: "/api/v1/templates", body: string(y.body), contentType: "application/yaml"}, http.StatusConflict)
	e.must(req{method: "DELETE", path: "/api/v1/templates/lync2013-edge"}, http.StatusConflict)
	e.must(req{method: "DELETE", path: "/api/v1/templates/my-sip"}, http.StatusNoContent)
	e.must(req{method: "GET", path: "/api/v1/templates/my-sip"}, http.StatusNotFound)
}

func TestVerify(t *testing.T) {
	e := newEnv(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
		}
	}))
	defer app.Close()
	a := app.Listener.Addr().(*net.TCPAddr)
	// The service's address is the app itself here: verification sends the
	// checks to the service's address and port as a client would.
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: fmt.Sprintf(`{"address":"%s","port":%d,
		"checks":[{"name":"Home","url":"http://www.example.com/"},{"name":"Missing","url":"http://www.example.com/nope"}]}`, a.IP, a.Port)}, http.StatusCreated)
	var rep verifyReport
	e.must(req{method: "POST", path: "/api/v1/verify"}, http.StatusOK).json(t, &rep)
	if rep.Passed != 1 || rep.Failed != 1 || rep.Results[1].Status != 404 {
		t.Errorf("report %+v", rep)
	}
	e.must(req{method: "POST", path: "/api/v1/verify", body: `{"caPem":"nope"}`}, http.StatusBadRequest)
}

// TestCertificateWarnings: an RSA key under 2048 bits is refused at import;
// a stored certificate that expired is listed with its warning, and the
// status names it (issue 15, item 9: served without a word).
func TestCertificateWarnings(t *testing.T) {
	e := newEnv(t)
	weak := testkit.SelfSigned(t, testkit.Leaf{CommonName: "weak.example", Key: testkit.RSA, RSABits: 1024})
	bundle := weak.CertPEM() + weak.KeyPEM()
	body, _ := json.Marshal(certUpload{Name: "weak", PEM: bundle})
	r := e.must(req{method: "POST", path: "/api/v1/certificates", body: string(body)}, http.StatusBadRequest)
	if !bytes.Contains(r.body, []byte("RSA 1024-bit key")) {
		t.Errorf("weak import answer %s", r.body)
	}
	// An expired certificate stored through the configuration.
	old := testkit.SelfSigned(t, testkit.Leaf{Names: []string{"old.example"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	cfg := map[string]any{"certificates": []map[string]any{{"name": "old", "certPem": old.CertPEM(), "keyPem": old.KeyPEM()}}}
	doc, _ := json.Marshal(cfg)
	e.must(req{method: "PUT", path: "/api/v1/config", body: string(doc)}, http.StatusOK)
	var list certList
	e.must(req{method: "GET", path: "/api/v1/certificates"}, http.StatusOK).json(t, &list)
	if len(list.Certificates) != 1 || !strings.Contains(strings.Join(list.Certificates[0].Warnings, ";"), "expired on") {
		t.Errorf("list %+v", list)
	}
	var st statusBody
	e.must(req{method: "GET", path: "/api/v1/status"}, http.StatusOK).json(t, &st)
	if len(st.CertificateWarnings) != 1 || !strings.HasPrefix(st.CertificateWarnings[0], "old: the certificate expired on") {
		t.Errorf("status certificate warnings %q", st.CertificateWarnings)
	}
}

// The e-mail password and webhook secrets are secrets like private keys:
// hidden from read-only users, kept when a document gives back the
// placeholder, and never in a diff in clear.
func TestAlertSecretsRedacted(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "PATCH", path: "/api/v1/options", body: `{"alerts":{"email":{"server":"mail.example","from":"lb@example.com",
		"to":["ops@example.com"],"user":"lb","password":"smtp password 1"},"webhooks":[{"url":"https://hooks.example/a","secret":"hook secret 1"}]}}`}, http.StatusOK)
	e.must(req{method: "POST", path: "/api/v1/users", body: `{"name":"viewer","password":"viewer password 12"}`}, http.StatusCreated)
	for _, p := range []string{"/api/v1/options", "/api/v1/config", "/api/v1/revisions/1"} {
		r := e.must(req{method: "GET", path: p, user: "viewer", pass: "viewer password 12"}, http.StatusOK)
		if bytes.Contains(r.body, []byte("smtp password 1")) || bytes.Contains(r.body, []byte("hook secret 1")) {
			t.Errorf("%s shows a secret to a read-only user: %s", p, r.body)
		}
	}
	// An administrator sends back what a read-only user saw: the secrets stay.
	e.must(req{method: "PATCH", path: "/api/v1/options", body: `{"alerts":{"email":{"server":"mail.example","from":"lb@example.com",
		"to":["ops@example.com"],"user":"lb","password":"(redacted)","severity":"err"},"webhooks":[{"url":"https://hooks.example/a","secret":"(redacted)"}]}}`}, http.StatusOK)
	o := e.ctl.Current().Config.Options.Alerts
	if o.Email.Password != "smtp password 1" || o.Webhooks[0].Secret != "hook secret 1" || o.Email.Severity != "err" {
		t.Errorf("placeholders not resolved: %+v", o)
	}
	r := e.must(req{method: "PATCH", path: "/api/v1/options", body: `{"alerts":{"webhooks":[{"url":"https://hooks.example/b","secret":"(redacted)"}]}}`}, http.StatusBadRequest)
	if !bytes.Contains(r.body, []byte("options.alerts.webhooks[0].secret")) {
		t.Errorf("placeholder for an unknown webhook: %s", r.body)
	}
	e.must(req{method: "PATCH", path: "/api/v1/options", body: `{"alerts":{"email":{"password":"smtp password 2"}}}`}, http.StatusOK)
	d := e.must(req{method: "GET", path: "/api/v1/revisions/3/diff"}, http.StatusOK)
	if bytes.Contains(d.body, []byte("smtp password")) || !bytes.Contains(d.body, []byte("options.alerts.email.password")) {
		t.Errorf("diff of a password change: %s", d.body)
	}
}
