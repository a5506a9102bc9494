package kempapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/time/rate"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/api"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/templates"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const balPW = "correct horse battery"

var quiet = slog.New(slog.DiscardHandler)

// env is the whole admin plane over a real store in a temporary directory:
// the native API and the LoadMaster-compatible API on one HTTPS test
// server, as the appliance mounts them. With a data plane, changes are
// served on real sockets.
type env struct {
	t    testing.TB
	srv  *httptest.Server
	st   *store.Store
	ctl  *control.Controller
	auth *admin.Service
	eng  *dataplane.Engine
	kemp *Server
	// ns is the namespace of a managed host (envOpts.managed).
	ns *topo.NS
}

type envOpts struct {
	dataPlane bool
	limit     rate.Limit
	burst     int
	// configLimit leaves the rate limit to options.apiRateLimit (by
	// default LoadMaster's 30 calls in 3 s) instead of no limit.
	configLimit bool
	disabled    bool // leave the API off
	// adminAddr is Options.AdminAddr: where the admin listener says it
	// is bound.
	adminAddr string
	// managed gives the controller a host: a network namespace of the
	// test's own (see testHost).
	managed bool
	// adminIn (with managed) puts this address (CIDR) on the namespace's
	// eth0 and serves the API on it, inside the namespace, with a confirm
	// window of 15 s; the client connects from the namespace.
	adminIn string
	// hostAdmin (with managed) is like adminIn, but the address is put on
	// the namespace's eth1 by the test (ip), outside Fulcrum's settings.
	hostAdmin string
}

func newEnv(t testing.TB, o envOpts) *env {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st}
	var rt control.Runtime
	if o.dataPlane {
		e.eng = dataplane.New(dataplane.Options{Logger: quiet})
		rt = e.eng
	}
	var host control.Host
	if o.managed {
		host, e.ns = testHost(t)
	}
	e.ctl, err = control.NewWith(st, rt, control.Options{Host: host, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ctl.Close)
	var ln net.Listener
	if o.adminIn != "" {
		if _, err := e.ctl.ApplyNetwork(control.NetChange{Actor: control.Actor{User: "test", Source: control.SourceCLI}, Confirmed: true,
			Mutate: func(n *netcfg.Network) error {
				n.ConfirmSeconds = 15
				n.Interfaces = []netcfg.Interface{{Name: "eth0", Addresses: []string{o.adminIn}}}
				return nil
			}}); err != nil {
			t.Fatal(err)
		}
		ln = e.ns.Listen("tcp", net.JoinHostPort(netip.MustParsePrefix(o.adminIn).Addr().String(), "0"))
		o.adminAddr = ln.Addr().String()
	}
	if o.hostAdmin != "" {
		e.ns.IP("addr", "add", o.hostAdmin, "dev", "eth1")
		e.ns.IP("link", "set", "eth1", "up")
		ln = e.ns.Listen("tcp", net.JoinHostPort(netip.MustParsePrefix(o.hostAdmin).Addr().String(), "0"))
		o.adminAddr = ln.Addr().String()
	}
	e.auth = admin.New(st, admin.Options{BcryptCost: bcrypt.MinCost, Logger: quiet})
	e.ctl.SetAuditor(e.auth)
	if _, err := e.auth.Bootstrap(balPW); err != nil {
		t.Fatal(err)
	}
	limit := o.limit
	if limit == 0 && !o.configLimit {
		limit = rate.Inf
	}
	lib, err := templates.NewLibrary(st)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Control: e.ctl, Auth: e.auth, Backups: st, Version: "test", RateLimit: limit, RateBurst: o.burst, Logger: quiet,
		AdminAddr: o.adminAddr, Templates: lib}
	if e.eng != nil {
		opts.Runtime = e.eng
	}
	e.kemp = New(opts)
	native := api.New(api.Options{Control: e.ctl, Auth: e.auth, History: st, Logger: quiet, Templates: lib})
	mux := http.NewServeMux()
	mux.Handle("/api/", native.Handler())
	for _, p := range []string{"/access", "/access/", "/accessv2", "/accessv2/"} {
		mux.Handle(p, e.kemp.Handler())
	}
	e.srv = httptest.NewUnstartedServer(mux)
	if ln != nil {
		_ = e.srv.Listener.Close()
		e.srv.Listener = ln
	}
	e.srv.StartTLS()
	if ln != nil {
		tr := e.srv.Client().Transport.(*http.Transport)
		tr.TLSClientConfig.ServerName = "example.com" // a name of httptest's certificate
		tr.DialContext = func(_ context.Context, network, addr string) (net.Conn, error) {
			return e.ns.Dial(&net.Dialer{Timeout: 2 * time.Second}, network, addr)
		}
		e.srv.Client().Timeout = 2 * time.Second
	}
	t.Cleanup(func() {
		e.srv.Close()
		if e.eng != nil {
			_ = e.eng.Close()
		}
		_ = st.Close()
	})
	if !o.disabled {
		e.enable()
	}
	return e
}

// enable turns the API on the way an administrator does: through the
// native API.
func (e *env) enable() {
	e.t.Helper()
	r, _ := http.NewRequest(http.MethodPatch, e.srv.URL+"/api/v1/options", strings.NewReader(`{"enableApi": true}`))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth("bal", balPW)
	res, err := e.srv.Client().Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("enable API: %d %s", res.StatusCode, b)
	}
}

// answer is a response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// auth says how a request authenticates.
type auth struct {
	user, pass string // HTTP Basic; "" for bal
	key        string // apikey parameter
	none       bool
}

// v1 sends GET /access/<cmd>?<query> (POST with a body when body != nil).
func (e *env) v1(a auth, cmd, query string, body []byte) answer {
	e.t.Helper()
	u := e.srv.URL + "/access/" + cmd
	if a.key != "" {
		if query != "" {
			query += "&"
		}
		query += "apikey=" + url.QueryEscape(a.key)
	}
	if query != "" {
		u += "?" + query
	}
	method := http.MethodGet
	var rd io.Reader
	if body != nil {
		method, rd = http.MethodPost, bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, u, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded") // as the SDKs send files
	}
	if !a.none && a.key == "" {
		user, pass := a.user, a.pass
		if user == "" {
			user, pass = "bal", balPW
		}
		r.SetBasicAuth(user, pass)
	}
	return e.do(r)
}

func (e *env) do(r *http.Request) answer {
	e.t.Helper()
	res, err := e.srv.Client().Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// ok1 sends a v1 command as bal and fails the test unless it succeeds.
func (e *env) ok1(cmd, query string) *xnode {
	e.t.Helper()
	a := e.v1(auth{}, cmd, query, nil)
	return e.mustXML(a, http.StatusOK, cmd+"?"+query)
}

func (e *env) mustXML(a answer, status int, what string) *xnode {
	e.t.Helper()
	if a.status != status {
		e.t.Fatalf("%s: status %d, want %d: %s", what, a.status, status, a.body)
	}
	x, err := parseXML(a.body)
	if err != nil {
		e.t.Fatalf("%s: %v: %s", what, err, a.body)
	}
	if got := x.attr("stat"); got != fmt.Sprint(status) {
		e.t.Fatalf("%s: stat=%q with HTTP %d", what, got, status)
	}
	return x
}

// v2 posts a JSON command to /accessv2.
func (e *env) v2(body any) (answer, *jval) {
	e.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2", bytes.NewReader(b))
	a := e.do(r)
	j, err := parseJSON(a.body)
	if err != nil {
		e.t.Fatalf("v2 %s: %v: %s", b, err, a.body)
	}
	return a, j
}

// ok2 posts a v2 command as bal and fails unless it succeeds.
func (e *env) ok2(cmd string, params map[string]any) *jval {
	e.t.Helper()
	body := map[string]any{"cmd": cmd, "apiuser": "bal", "apipass": balPW}
	for k, v := range params {
		body[k] = v
	}
	a, j := e.v2(body)
	if a.status != http.StatusOK || j.get("code").num() != 200 || j.get("status").s != "ok" {
		e.t.Fatalf("v2 %s %v: %d %s", cmd, params, a.status, a.body)
	}
	return j
}

// --- a generic XML tree ---

type xnode struct {
	name  string
	attrs map[string]string
	text  string
	kids  []*xnode
}

func (x *xnode) attr(n string) string { return x.attrs[n] }

// at follows a path of child names.
func (x *xnode) at(path ...string) *xnode {
	for _, p := range path {
		if x == nil {
			return nil
		}
		var next *xnode
		for _, k := range x.kids {
			if k.name == p {
				next = k
				break
			}
		}
		x = next
	}
	return x
}

// val is the trimmed text at a path, or "<missing>".
func (x *xnode) val(path ...string) string {
	n := x.at(path...)
	if n == nil {
		return "<missing>"
	}
	return strings.TrimSpace(n.text)
}

func (x *xnode) all(name string) []*xnode {
	var out []*xnode
	for _, k := range x.kids {
		if k.name == name {
			out = append(out, k)
		}
	}
	return out
}

// data is the <Data> element of a success answer.
func (x *xnode) data() *xnode { return x.at("Success", "Data") }

func parseXML(b []byte) (*xnode, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.CharsetReader = func(label string, in io.Reader) (io.Reader, error) {
		if !strings.EqualFold(label, "ISO-8859-1") {
			return nil, fmt.Errorf("unexpected charset %q", label)
		}
		raw, err := io.ReadAll(in)
		if err != nil {
			return nil, err
		}
		var out strings.Builder
		for _, c := range raw {
			out.WriteRune(rune(c))
		}
		return strings.NewReader(out.String()), nil
	}
	var stack []*xnode
	var root *xnode
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xnode{name: t.Name.Local, attrs: map[string]string{}}
			for _, a := range t.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			} else if root == nil {
				root = n
			} else {
				return nil, fmt.Errorf("second root element %s", n.name)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("no element")
	}
	return root, nil
}

// --- an order-keeping JSON tree ---

type jval struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys []string
	obj  map[string]*jval
	arr  []*jval
	s    string
	n    json.Number
	b    bool
}

func (j *jval) get(k string) *jval {
	if j == nil || j.obj == nil || j.obj[k] == nil {
		return &jval{kind: 'z'}
	}
	return j.obj[k]
}

func (j *jval) num() int64 {
	n, _ := j.n.Int64()
	return n
}

func parseJSON(b []byte) (*jval, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := readJSON(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the value")
	}
	return v, nil
}

func readJSON(d *json.Decoder) (*jval, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := &jval{kind: 'o', obj: map[string]*jval{}}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				if _, dup := v.obj[k]; dup {
					return nil, fmt.Errorf("duplicate key %q", k)
				}
				c, err := readJSON(d)
				if err != nil {
					return nil, err
				}
				v.keys = append(v.keys, k)
				v.obj[k] = c
			}
			_, err := d.Token()
			return v, err
		case '[':
			v := &jval{kind: 'a'}
			for d.More() {
				c, err := readJSON(d)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, c)
			}
			_, err := d.Token()
			return v, err
		}
	case string:
		return &jval{kind: 's', s: t}, nil
	case json.Number:
		return &jval{kind: 'n', n: t}, nil
	case bool:
		return &jval{kind: 'b', b: t}, nil
	case nil:
		return &jval{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// --- certificates made by the tests ---

type chain struct {
	interPEM  []byte // the intermediate CA
	leafPEM   []byte // leaf certificate and key
	leaf      *x509.Certificate
	leafKey   crypto.Signer
	interCert *x509.Certificate
}

// newChain makes root CA → intermediate CA → leaf for the given names.
func newChain(t *testing.T, names ...string) chain {
	t.Helper()
	inter := testkit.NewCA(t, "Test Root").Intermediate(t, "Test Intermediate")
	leaf := inter.Server(t, names...)
	return chain{
		interPEM:  []byte(inter.CertPEM()),
		leafPEM:   []byte(leaf.CertPEM() + leaf.KeyPEM()),
		leaf:      leaf.Certificate,
		leafKey:   leaf.Key,
		interCert: inter.Certificate,
	}
}

// mustErr checks an error answer of both formats.
func mustErrXML(t *testing.T, a answer, status int, contains string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	x, err := parseXML(a.body)
	if err != nil {
		t.Fatalf("%v: %s", err, a.body)
	}
	if x.attr("code") != "fail" || x.attr("stat") != fmt.Sprint(status) {
		t.Fatalf("envelope %v: %s", x.attrs, a.body)
	}
	if msg := x.val("Error"); !strings.Contains(msg, contains) {
		t.Fatalf("error %q does not contain %q", msg, contains)
	}
}

func mustErrJSON(t *testing.T, a answer, j *jval, status int, contains string) {
	t.Helper()
	if a.status != status || j.get("code").num() != int64(status) || j.get("status").s != "fail" {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	if !strings.Contains(j.get("message").s, contains) {
		t.Fatalf("message %q does not contain %q", j.get("message").s, contains)
	}
}

// addUser adds a user with a role.
func (e *env) addUser(name, role string) {
	e.t.Helper()
	bal := admin.Principal{User: "bal", Role: config.RoleAdmin, Method: admin.MethodConsole}
	if err := e.auth.AddUser(bal, "", name, role, balPW); err != nil {
		e.t.Fatal(err)
	}
}

// makePFX packs the chain's leaf, key and intermediate into a PKCS#12 file.
func makePFX(t *testing.T, ch chain, password string) []byte {
	t.Helper()
	b, err := pkcs12.Modern.Encode(ch.leafKey, ch.leaf, []*x509.Certificate{ch.interCert}, password)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
