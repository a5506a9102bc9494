package kempapi

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// wire is one way of calling the API: v1 with parameter names as given
// or lower-cased, v2 with numbers as JSON numbers or as strings, with or
// without a Content-Type.
type wire struct {
	name  string
	v2    bool
	lower bool // v1: parameter names in lower case
	strs  bool // v2: numbers as strings
	ct    bool // v2: Content-Type: application/json
}

var wires = []wire{
	{name: "v1-mixed"},
	{name: "v1-lower", lower: true},
	{name: "v2-numbers-ct", v2: true, ct: true},
	{name: "v2-strings", v2: true, strs: true},
}

// reply is an answer: its status, the data flattened to "Path" → values
// (v2 booleans as Y/N), and the error message.
type reply struct {
	status int
	data   map[string][]string
	msg    string
}

func (r reply) val(k string) string {
	if v := r.data[k]; len(v) > 0 {
		return v[0]
	}
	return "<missing>"
}

func (w wire) call(t *testing.T, e *env, cmd string, params ...[2]string) reply {
	t.Helper()
	out := reply{data: map[string][]string{}}
	if !w.v2 {
		var parts []string
		for _, p := range params {
			k := p[0]
			if w.lower {
				k = strings.ToLower(k)
			}
			parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(p[1]))
		}
		a := e.v1(auth{}, cmd, strings.Join(parts, "&"), nil)
		x, err := parseXML(a.body)
		if err != nil {
			t.Fatalf("%s %s: %v: %s", w.name, cmd, err, a.body)
		}
		out.status, out.msg = a.status, x.val("Error")
		if d := x.data(); d != nil {
			flattenXML(d, "", out.data)
		}
		return out
	}
	m := map[string]any{"cmd": cmd, "apiuser": "bal", "apipass": balPW}
	for _, p := range params {
		if n, err := strconv.Atoi(p[1]); err == nil && !w.strs && p[0] != "vs" {
			m[p[0]] = n
			continue
		}
		m[p[0]] = p[1]
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2", bytes.NewReader(b))
	if w.ct {
		r.Header.Set("Content-Type", "application/json")
	}
	a := e.do(r)
	j, err := parseJSON(a.body)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", w.name, cmd, err, a.body)
	}
	out.status, out.msg = a.status, j.get("message").s
	if a.status == http.StatusOK {
		flattenJSON(j, "", out.data)
	}
	return out
}

// ok fails the test unless the command succeeds.
func (w wire) ok(t *testing.T, e *env, cmd string, params ...[2]string) reply {
	t.Helper()
	r := w.call(t, e, cmd, params...)
	if r.status != http.StatusOK {
		t.Fatalf("%s %s %v: %d %s", w.name, cmd, params, r.status, r.msg)
	}
	return r
}

// refused fails the test unless the command is refused with 422 and a
// message containing want.
func (w wire) refused(t *testing.T, e *env, want, cmd string, params ...[2]string) {
	t.Helper()
	r := w.call(t, e, cmd, params...)
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.msg, want) {
		t.Fatalf("%s %s %v: %d %q, want 422 with %q", w.name, cmd, params, r.status, r.msg, want)
	}
}

func kv(k, v string) [2]string { return [2]string{k, v} }

// echo sends every plain field of a showvs answer back with modvs, as
// scripts that read a service, change a field and write it back do, and
// checks that the service still shows the same.
func echo(t *testing.T, e *env, w wire, vs string) {
	t.Helper()
	before := w.ok(t, e, "showvs", kv("vs", vs))
	params := []([2]string){kv("vs", vs)}
	for k, v := range before.data {
		if len(v) == 1 && !strings.Contains(k, "/") {
			params = append(params, kv(k, v[0]))
		}
	}
	after := w.ok(t, e, "modvs", params...)
	for k, v := range before.data {
		if k == "Status" {
			continue
		}
		if !slices.Equal(after.data[k], v) {
			t.Errorf("%s: echo of vs %s changed %s from %v to %v", w.name, vs, k, v, after.data[k])
		}
	}
}

func TestLenientForceLayerAndEcho(t *testing.T) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			ch := newChain(t, "web.example.com")
			e.mustXML(e.v1(auth{}, "addcert", "cert=web", ch.leafPEM), 200, "addcert")
			w.ok(t, e, "addvs", kv("vs", "127.0.181.1"), kv("port", "80"), kv("VStype", "http"))
			w.ok(t, e, "addvs", kv("vs", "127.0.181.1"), kv("port", "81"))
			w.ok(t, e, "addvs", kv("vs", "127.0.181.1"), kv("port", "443"), kv("VStype", "http2"),
				kv("SSLAcceleration", "1"), kv("CertFile", "web"), kv("TLSType", "3"))
			w.ok(t, e, "addvs", kv("vs", "127.0.181.1"), kv("port", "53"), kv("prot", "udp"))
			for _, c := range []struct {
				vs, param, val, refused string
			}{
				{"1", "ForceL7", "N", ""}, {"1", "ForceL7", "Y", ""}, {"1", "ForceL4", "N", ""},
				{"1", "ForceL4", "Y", "ForceL4: VStype http is served at layer 7"},
				{"3", "ForceL7", "0", ""}, {"3", "ForceL4", "1", "ForceL4: VStype http2"},
				{"2", "ForceL7", "Y", ""}, {"2", "ForceL7", "N", ""}, {"2", "ForceL4", "Y", ""}, {"2", "ForceL4", "N", ""},
				{"4", "ForceL7", "1", ""}, {"2", "ForceL7", "maybe", "ForceL7: Invalid boolean"},
			} {
				if c.refused != "" {
					w.refused(t, e, c.refused, "modvs", kv("vs", c.vs), kv(c.param, c.val))
					continue
				}
				d := w.ok(t, e, "modvs", kv("vs", c.vs), kv(c.param, c.val))
				// Accepted and ignored: the layer is the type's.
				if want := map[string]string{"1": "7", "2": "4", "3": "7", "4": "4"}[c.vs]; d.val("Layer") != want {
					t.Errorf("%s=%s on vs %s: Layer %s, want %s", c.param, c.val, c.vs, d.val("Layer"), want)
				}
			}
			// Both at once contradict each other.
			w.refused(t, e, "ForceL4: Y contradicts ForceL7=Y", "modvs", kv("vs", "2"), kv("ForceL7", "Y"), kv("ForceL4", "Y"))
			// The type in the same request decides.
			w.ok(t, e, "modvs", kv("vs", "2"), kv("VStype", "http"), kv("ForceL4", "N"), kv("ForceL7", "Y"))
			w.refused(t, e, "ForceL4", "modvs", kv("vs", "2"), kv("VStype", "tls"), kv("ForceL4", "Y"))
			w.ok(t, e, "modvs", kv("vs", "2"), kv("VStype", "gen"), kv("ForceL4", "Y"))

			// A SubVS, then every kind of service echoed back unchanged.
			sub := w.ok(t, e, "modvs", kv("vs", "1"), kv("createsubvs", "")).data["SubVS/VSIndex"]
			if len(sub) != 1 {
				t.Fatalf("createsubvs: %v", sub)
			}
			for _, vs := range []string{"1", "2", "3", "4", sub[0]} {
				echo(t, e, w, vs)
			}
			// A SubVS still has no port of its own.
			w.refused(t, e, "a SubVS has no address or port", "modvs", kv("vs", sub[0]), kv("VSPort", "8080"))
		})
	}
}

func TestLenientCreateSubVS(t *testing.T) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			gen := w.ok(t, e, "addvs", kv("vs", "127.0.182.1"), kv("port", "80"), kv("VStype", "gen"))
			if gen.val("VStype") != "gen" || gen.val("Layer") != "4" {
				t.Fatalf("addvs gen: %s %s", gen.val("VStype"), gen.val("Layer"))
			}
			// createsubvs on gen: the service becomes a layer-7 parent.
			d := w.ok(t, e, "modvs", kv("vs", "1"), kv("createsubvs", ""))
			if d.val("VStype") != "http" || d.val("Layer") != "7" || d.val("MasterVS") != "1" || len(d.data["SubVS/VSIndex"]) != 1 {
				t.Fatalf("createsubvs on gen: VStype %s Layer %s MasterVS %s SubVS %v", d.val("VStype"), d.val("Layer"), d.val("MasterVS"), d.data["SubVS/VSIndex"])
			}
			sub := w.ok(t, e, "showvs", kv("vs", d.data["SubVS/VSIndex"][0]))
			if sub.val("VStype") != "http" || sub.val("Layer") != "7" || sub.val("MasterVSID") != "1" || sub.val("ForceL7") != "Y" {
				t.Errorf("SubVS: VStype %s Layer %s MasterVSID %s ForceL7 %s", sub.val("VStype"), sub.val("Layer"), sub.val("MasterVSID"), sub.val("ForceL7"))
			}
			// An http2 parent's SubVS is http2.
			w.ok(t, e, "addvs", kv("vs", "127.0.182.1"), kv("port", "81"), kv("VStype", "http2"))
			d = w.ok(t, e, "modvs", kv("vs", "127.0.182.1"), kv("port", "81"), kv("createsubvs", ""))
			if d.val("VStype") != "http2" {
				t.Errorf("http2 parent became %s", d.val("VStype"))
			}
			if s := w.ok(t, e, "showvs", kv("vs", d.data["SubVS/VSIndex"][0])); s.val("VStype") != "http2" {
				t.Errorf("SubVS of http2: %s", s.val("VStype"))
			}
			// Refused: a udp service, a SubVS's SubVS, a gen service with
			// real servers (a service has real servers or SubVSs).
			w.ok(t, e, "addvs", kv("vs", "127.0.182.1"), kv("port", "53"), kv("prot", "udp"))
			w.refused(t, e, "createsubvs: SubVSs are chosen by HTTP content", "modvs", kv("vs", "127.0.182.1"), kv("port", "53"), kv("prot", "udp"), kv("createsubvs", ""))
			w.refused(t, e, "createsubvs: a SubVS cannot have SubVSs", "modvs", kv("vs", d.data["SubVS/VSIndex"][0]), kv("createsubvs", ""))
			w.ok(t, e, "addvs", kv("vs", "127.0.182.1"), kv("port", "82"))
			w.ok(t, e, "addrs", kv("vs", "127.0.182.1"), kv("port", "82"), kv("rs", "127.0.182.10"), kv("rsport", "80"))
			w.refused(t, e, "real servers or SubVSs", "modvs", kv("vs", "127.0.182.1"), kv("port", "82"), kv("createsubvs", ""))
			if v := e.ctl.Current().Config.VirtualServices[3]; v.Type != "gen" || len(v.SubVSs) != 0 {
				t.Errorf("refused createsubvs changed the service: %s %d", v.Type, len(v.SubVSs))
			}
		})
	}
}

// TestCreateSubVSTraffic: a gen service turned into a parent by
// createsubvs serves HTTP through its SubVS's real server.
func TestCreateSubVSTraffic(t *testing.T) {
	e := newEnv(t, envOpts{dataPlane: true})
	w := wires[2]
	vip := "127.0.182.101"
	port := testkit.FreePort(t, vip)
	rsPort := backend(t, "127.0.182.111", 8080, "sub-backend", false)
	w.ok(t, e, "addvs", kv("vs", vip), kv("port", strconv.Itoa(port)))
	sub := w.ok(t, e, "modvs", kv("vs", "1"), kv("createsubvs", "")).data["SubVS/VSIndex"][0]
	w.ok(t, e, "addrs", kv("vs", sub), kv("rs", "127.0.182.111"), kv("rsport", strconv.Itoa(rsPort)))
	only(t, "gen turned parent", answers(t, fmt.Sprintf("http://%s/", net.JoinHostPort(vip, strconv.Itoa(port))), 3), "sub-backend")
}

// TestEnumerationsRoundTrip: every value addvs and modvs accept of
// LoadMaster's enumerations is what showvs answers.
func TestEnumerationsRoundTrip(t *testing.T) {
	type rt struct {
		param, show, val string
		extra            [][2]string
	}
	var cases []rt
	for _, ty := range config.ServiceTypes {
		cases = append(cases, rt{"VStype", "VStype", ty, nil})
	}
	for _, m := range balance.Registered() {
		if m.LoadMaster != "" {
			cases = append(cases, rt{"Schedule", "Schedule", m.LoadMaster, nil})
		}
	}
	for _, m := range persist.Registered() {
		if m.LoadMaster == "" || m.LoadMaster == "none" || m.LoadMaster == "udpsip" {
			continue // none is shown by leaving Persist out; udpsip below
		}
		extra := [][2]string{kv("VStype", "http"), kv("Cookie", "sess"), kv("QueryTag", "id")}
		cases = append(cases, rt{"Persist", "Persist", m.LoadMaster, extra})
	}
	for i := range addVias {
		cases = append(cases, rt{"AddVia", "AddVia", strconv.Itoa(i), [][2]string{kv("VStype", "http")}})
	}
	for _, ct := range config.CheckTypes {
		if ct == "bdata" {
			continue // needs the bytes to send, which LoadMaster's API has no parameter for
		}
		var extra [][2]string
		if ct == "http" || ct == "https" {
			extra = [][2]string{kv("CheckUrl", "/")}
		}
		cases = append(cases, rt{"CheckType", "CheckType", ct, extra})
	}
	for i := range checkMethods {
		cases = append(cases, rt{"CheckUseGet", "CheckUseGet", strconv.Itoa(i), [][2]string{kv("CheckType", "http"), kv("CheckUrl", "/")}})
	}
	for _, n := range []string{"0", "1", "3", "7", "15", "17", "19", "23", "25", "27", "29"} {
		cases = append(cases, rt{"TLSType", "TlsType", n, [][2]string{kv("VStype", "http"), kv("SSLAcceleration", "1"), kv("CertFile", "web")}})
	}
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			ch := newChain(t, "web.example.com")
			e.mustXML(e.v1(auth{}, "addcert", "cert=web", ch.leafPEM), 200, "addcert")
			w.ok(t, e, "addvs", kv("vs", "127.0.183.1"), kv("port", "1"))
			port := 10
			for _, c := range cases {
				if c.param == "TLSType" && c.val == "0" {
					continue // without SSLAcceleration, below
				}
				// addvs with the value ...
				port++
				params := append([][2]string{kv("vs", "127.0.183.1"), kv("port", strconv.Itoa(port)), kv(c.param, c.val)}, c.extra...)
				if got := w.ok(t, e, "addvs", params...).val(c.show); got != c.val {
					t.Errorf("addvs %s=%s: showvs says %s", c.param, c.val, got)
				}
				if got := w.ok(t, e, "showvs", kv("vs", "127.0.183.1"), kv("port", strconv.Itoa(port))).val(c.show); got != c.val {
					t.Errorf("showvs after addvs %s=%s: %s", c.param, c.val, got)
				}
				// ... and modvs to it from another service's value.
				params = append([][2]string{kv("vs", "127.0.183.1"), kv("port", "1")}, c.extra...)
				if got := w.ok(t, e, "modvs", append(params, kv(c.param, c.val))...).val(c.show); got != c.val {
					t.Errorf("modvs %s=%s: %s", c.param, c.val, got)
				}
			}
			// Upper-case spellings are read as LoadMaster's values.
			if got := w.ok(t, e, "modvs", kv("vs", "1"), kv("VStype", "HTTP"), kv("Schedule", "WLC")); got.val("VStype") != "http" || got.val("Schedule") != "wlc" {
				t.Errorf("upper case: %s %s", got.val("VStype"), got.val("Schedule"))
			}
			// udpsip on a udp service.
			if got := w.ok(t, e, "addvs", kv("vs", "127.0.183.1"), kv("port", "5060"), kv("prot", "udp"), kv("Persist", "udpsip")).val("Persist"); got != "udpsip" {
				t.Errorf("udpsip: %s", got)
			}
			// TLSType without SSLAcceleration: 0 (what showvs shows) and the
			// service's own value are accepted; others need offload.
			w.ok(t, e, "addvs", kv("vs", "127.0.183.1"), kv("port", "2"), kv("VStype", "http"))
			for _, n := range []string{"0", "7"} {
				if got := w.ok(t, e, "modvs", kv("vs", "127.0.183.1"), kv("port", "2"), kv("TLSType", n)).val("TlsType"); got != "0" {
					t.Errorf("TLSType=%s without offload: %s", n, got)
				}
			}
			w.refused(t, e, "TLSType: sets the TLS versions of SSL acceleration", "modvs", kv("vs", "127.0.183.1"), kv("port", "2"), kv("TLSType", "15"))
			// Turning offload off while echoing the old TLSType is fine.
			off := w.ok(t, e, "modvs", kv("vs", "127.0.183.1"), kv("port", "1"), kv("SSLAcceleration", "0"), kv("TLSType", "29"))
			if off.val("TlsType") != "0" || off.val("SSLAcceleration") != "<missing>" {
				t.Errorf("offload off: TlsType %s SSLAcceleration %s", off.val("TlsType"), off.val("SSLAcceleration"))
			}
			// What Fulcrum cannot offer is refused, naming the parameter.
			for n, want := range map[string]string{
				"0": "Fulcrum never offers SSLv3", "6": "Fulcrum never offers SSLv3", "31": "disables every TLS version",
				"5": "Fulcrum offers one range", "9": "Fulcrum offers one range", "21": "Fulcrum offers one range",
				"32": "must be 0-31", "x": "Invalid integer",
			} {
				w.refused(t, e, "TLSType: "+want, "modvs", kv("vs", "127.0.183.1"), kv("port", "11"), kv("VStype", "http"),
					kv("SSLAcceleration", "1"), kv("CertFile", "web"), kv("TLSType", n))
			}
		})
	}
}

func TestTLSTypeMapping(t *testing.T) {
	for _, c := range []struct {
		n        int
		profile  string
		versions []string
	}{
		{1, "legacy", nil}, {3, "legacy", []string{"1.1", "1.2", "1.3"}}, {7, "intermediate", nil}, {15, "modern", nil},
		{17, "legacy", []string{"1.0", "1.1", "1.2"}}, {19, "legacy", []string{"1.1", "1.2"}}, {23, "intermediate", []string{"1.2"}},
		{25, "legacy", []string{"1.0", "1.1"}}, {27, "legacy", []string{"1.1"}}, {29, "legacy", []string{"1.0"}},
	} {
		p, v, why := tlsFromType(c.n)
		if why != "" || p != c.profile || !slices.Equal(v, c.versions) {
			t.Errorf("%d: %s %v %q, want %s %v", c.n, p, v, why, c.profile, c.versions)
		}
		if got := tlsTypeOut(config.TLS{Offload: true, Profile: p, Versions: v}); got != c.n {
			t.Errorf("%d shows as %d", c.n, got)
		}
	}
	// A list with a gap is served as its range (certs.versions), and
	// shown so.
	if got := tlsTypeOut(config.TLS{Offload: true, Profile: "legacy", Versions: []string{"1.0", "1.2"}}); got != 17 {
		t.Errorf("gap: %d", got)
	}
	if got := tlsTypeOut(config.TLS{Offload: true}); got != 7 {
		t.Errorf("default profile: %d", got)
	}
}

// tlsPeer connects to addr with TLS (maximum version max) and returns the
// server's leaf certificate, the version and the body of GET /.
func tlsPeer(t *testing.T, addr string, maxVersion uint16) (leafCN string, der []byte, version uint16, body string) {
	t.Helper()
	var conn *tls.Conn
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
			&tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion, NextProtos: []string{"http/1.1"}})
		if err != nil {
			return false, err.Error()
		}
		conn = c
		return true, ""
	}, "TLS to "+addr)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	st := conn.ConnectionState()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	b, _ := io.ReadAll(conn)
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		b = b[i+4:]
	}
	leaf := st.PeerCertificates[0]
	return leaf.Subject.CommonName, leaf.Raw, st.Version, string(b)
}

func TestSelfSignedOffload(t *testing.T) {
	for i, w := range []wire{wires[1], wires[2]} {
		t.Run(w.name, func(t *testing.T) {
			e := newEnv(t, envOpts{dataPlane: true})
			vip := fmt.Sprintf("127.0.184.%d", i*10+1)
			rsAddr := fmt.Sprintf("127.0.184.%d", i*10+2)
			rsPort := backend(t, rsAddr, 8080, "plain", false)
			ports := testkit.FreePorts(t, vip, 2)
			p1, p2 := strconv.Itoa(ports[0]), strconv.Itoa(ports[1])

			// SSLAcceleration without CertFile: the generated certificate.
			d := w.ok(t, e, "addvs", kv("vs", vip), kv("port", p1), kv("VStype", "http"), kv("SSLAcceleration", "Y"), kv("TLSType", "23"))
			if d.val("CertFile") != certs.SelfSignedName || d.val("SSLAcceleration") != "Y" || d.val("TlsType") != "23" {
				t.Fatalf("addvs: CertFile %s SSLAcceleration %s TlsType %s", d.val("CertFile"), d.val("SSLAcceleration"), d.val("TlsType"))
			}
			w.ok(t, e, "addrs", kv("vs", vip), kv("port", p1), kv("rs", rsAddr), kv("rsport", strconv.Itoa(rsPort)))
			if names := w.ok(t, e, "listcert").data["cert/name"]; !slices.Equal(names, []string{certs.SelfSignedName}) {
				t.Fatalf("listcert: %v", names)
			}
			cn, der1, ver, body := tlsPeer(t, net.JoinHostPort(vip, p1), tls.VersionTLS13)
			if cn != certs.SelfSignedName || body != "plain" || ver != tls.VersionTLS12 {
				t.Fatalf("TLS: certificate %q version %x body %q", cn, ver, body)
			}
			if !hasWarning(e, 1) {
				t.Errorf("status of service 1 lacks the self-signed warning: %+v", e.eng.Status())
			}
			// A second service without CertFile (through modvs) shares the
			// same certificate.
			w.ok(t, e, "addvs", kv("vs", vip), kv("port", p2), kv("VStype", "http"))
			w.ok(t, e, "addrs", kv("vs", vip), kv("port", p2), kv("rs", rsAddr), kv("rsport", strconv.Itoa(rsPort)))
			if d := w.ok(t, e, "modvs", kv("vs", vip), kv("port", p2), kv("SSLAcceleration", "1")); d.val("CertFile") != certs.SelfSignedName {
				t.Fatalf("modvs SSLAcceleration: CertFile %s", d.val("CertFile"))
			}
			if _, der2, _, body := tlsPeer(t, net.JoinHostPort(vip, p2), tls.VersionTLS13); !bytes.Equal(der1, der2) || body != "plain" {
				t.Errorf("second service: same certificate %v, body %q", bytes.Equal(der1, der2), body)
			}
			if n := len(e.ctl.Current().Config.Certificates); n != 1 {
				t.Errorf("%d certificates, want the one generated", n)
			}
			// It is in the stored revision, so a restart serves the same one.
			rev, err := e.st.Current()
			if err != nil {
				t.Fatal(err)
			}
			if len(rev.Config.Certificates) != 1 || rev.Config.Certificates[0].Name != certs.SelfSignedName ||
				rev.Config.Certificates[0].CertPEM != e.ctl.Current().Config.Certificates[0].CertPEM {
				t.Errorf("stored revision %d lacks the generated certificate", rev.Revision)
			}
			// Assigning a certificate replaces it; the warning goes.
			ch := newChain(t, "web.example.com")
			e.mustXML(e.v1(auth{}, "addcert", "cert=web", ch.leafPEM), 200, "addcert")
			w.ok(t, e, "modvs", kv("vs", vip), kv("port", p1), kv("CertFile", "web"))
			testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
				cn, _, _, _ := tlsPeer(t, net.JoinHostPort(vip, p1), tls.VersionTLS13)
				return cn == "web.example.com", cn
			}, "the assigned certificate")
			if hasWarning(e, 1) || !hasWarning(e, 2) {
				t.Errorf("warnings after assigning: service 1 %v, service 2 %v", hasWarning(e, 1), hasWarning(e, 2))
			}
			// It is in the stored configuration (it survives a restart) and
			// can be deleted once unused.
			w.refused(t, e, "assigned to Virtual Service 2", "delcert", kv("cert", certs.SelfSignedName))
			w.ok(t, e, "modvs", kv("vs", vip), kv("port", p2), kv("CertFile", "web"))
			w.ok(t, e, "delcert", kv("cert", certs.SelfSignedName))
		})
	}
}

func hasWarning(e *env, id int) bool {
	for _, s := range e.eng.Status() {
		if s.ID == id {
			return slices.Contains(s.Warnings, certs.SelfSignedWarning) && strings.Contains(s.Reason, certs.SelfSignedWarning)
		}
	}
	return false
}

// FuzzTLSType: every TLSType is either refused with a reason or shown
// back as given.
func FuzzTLSType(f *testing.F) {
	for _, n := range []int{0, 1, 2, 3, 5, 7, 15, 23, 29, 31, 32, -1} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int) {
		p, v, why := tlsFromType(n)
		if why != "" {
			if p != "" || v != nil {
				t.Fatalf("%d refused (%s) with a result %s %v", n, why, p, v)
			}
			return
		}
		if got := tlsTypeOut(config.TLS{Offload: true, Profile: p, Versions: v}); got != n {
			t.Fatalf("%d shows as %d", n, got)
		}
		for _, x := range v {
			if !slices.Contains(config.ProfileVersions(p), x) {
				t.Fatalf("%d: version %s outside profile %s", n, x, p)
			}
		}
	})
}

// TestSubVSReencryptFollowsParent: a SubVS re-encrypts as its parent
// does (the layer-7 proxy applies the parent's setting); showvs says so,
// an echo of it is accepted and a contradiction is refused.
func TestSubVSReencryptFollowsParent(t *testing.T) {
	for _, w := range wires {
		t.Run(w.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			ch := newChain(t, "web.example.com")
			e.mustXML(e.v1(auth{}, "addcert", "cert=web", ch.leafPEM), 200, "addcert")
			w.ok(t, e, "addvs", kv("vs", "127.0.183.1"), kv("port", "443"), kv("VStype", "http"),
				kv("SSLAcceleration", "1"), kv("CertFile", "web"), kv("SSLReencrypt", "1"))
			sub := w.ok(t, e, "modvs", kv("vs", "1"), kv("createsubvs", "")).data["SubVS/VSIndex"]
			if len(sub) != 1 {
				t.Fatalf("createsubvs: %v", sub)
			}
			if d := w.ok(t, e, "showvs", kv("vs", sub[0])); d.val("SSLReencrypt") != "Y" {
				t.Errorf("SubVS of a re-encrypting parent shows SSLReencrypt %s", d.val("SSLReencrypt"))
			}
			w.ok(t, e, "modvs", kv("vs", sub[0]), kv("SSLReencrypt", "Y"))
			w.refused(t, e, "SSLReencrypt: a SubVS re-encrypts as its parent service does", "modvs", kv("vs", sub[0]), kv("SSLReencrypt", "N"))
			w.ok(t, e, "modvs", kv("vs", "1"), kv("SSLReencrypt", "0"))
			if d := w.ok(t, e, "showvs", kv("vs", sub[0])); d.val("SSLReencrypt") != "N" {
				t.Errorf("after the parent stopped re-encrypting the SubVS shows SSLReencrypt %s", d.val("SSLReencrypt"))
			}
		})
	}
}
