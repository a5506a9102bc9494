package kempapi

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

func TestDisabledUntilEnabled(t *testing.T) {
	e := newEnv(t, envOpts{disabled: true})
	a := e.v1(auth{}, "listvs", "", nil)
	mustErrXML(t, a, http.StatusNotFound, "not enabled")
	a2, j := e.v2(map[string]any{"cmd": "listvs", "apiuser": "bal", "apipass": balPW})
	mustErrJSON(t, a2, j, http.StatusNotFound, "not enabled")
	// set?param=enableapi cannot turn it on while it is off.
	mustErrXML(t, e.v1(auth{}, "set", "param=enableapi&value=yes", nil), http.StatusNotFound, "not enabled")
	if e.ctl.Current().Config.Options.EnableAPI {
		t.Fatal("enableapi was set through the disabled API")
	}

	e.enable()
	x := e.ok1("get", "param=enableapi")
	if got := x.data().val("enableapi"); got != "yes" {
		t.Fatalf("enableapi = %q", got)
	}
	// Once on, set?param=enableapi turns it off again.
	e.ok1("set", "param=enableapi&value=no")
	mustErrXML(t, e.v1(auth{}, "listvs", "", nil), http.StatusNotFound, "not enabled")
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.addUser("viewer", config.RoleReadOnly)

	a := e.v1(auth{none: true}, "listvs", "", nil)
	mustErrXML(t, a, http.StatusUnauthorized, "Authorization required")
	if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("no Basic challenge: %v", a.header)
	}
	mustErrXML(t, e.v1(auth{user: "bal", pass: "wrong"}, "listvs", "", nil), http.StatusUnauthorized, "Authorization required")
	mustErrXML(t, e.v1(auth{key: "fk_0000000000000000_nope"}, "listvs", "", nil), http.StatusUnauthorized, "Authorization required")
	e.ok1("listvs", "")
	e.mustXML(e.v1(auth{user: "viewer", pass: balPW}, "listvs", "", nil), http.StatusOK, "viewer listvs")

	// API keys from addapikey work as apikey= (v1) and "apikey" (v2).
	x := e.ok1("addapikey", "")
	key := x.data().val("ApiKey")
	if !strings.HasPrefix(key, "fk_") {
		t.Fatalf("addapikey answered %q", key)
	}
	e.mustXML(e.v1(auth{key: key}, "listvs", "", nil), http.StatusOK, "listvs with apikey")
	a2, j := e.v2(map[string]any{"cmd": "listvs", "apikey": key})
	if a2.status != 200 || j.get("status").s != "ok" {
		t.Fatalf("v2 with apikey: %s", a2.body)
	}
	// The apikey wins over apiuser/apipass, as on a LoadMaster.
	a2, j = e.v2(map[string]any{"cmd": "listvs", "apikey": "fk_0000000000000000_nope", "apiuser": "bal", "apipass": balPW})
	mustErrJSON(t, a2, j, http.StatusUnauthorized, "Authorization required")
	a2, j = e.v2(map[string]any{"cmd": "listvs", "apiuser": "bal", "apipass": "wrong"})
	mustErrJSON(t, a2, j, http.StatusUnauthorized, "Authorization required")
	a2, j = e.v2(map[string]any{"cmd": "listvs"})
	mustErrJSON(t, a2, j, http.StatusUnauthorized, "Authorization required")

	// A browser session cookie does not authenticate here.
	r, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/access/listvs", nil)
	r.Header.Set("Cookie", "fulcrum_session=whatever")
	mustErrXML(t, e.do(r), http.StatusUnauthorized, "Authorization required")

	// Cross-site requests are refused even with good credentials.
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}} {
		r, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/access/delvs?vs=1", nil)
		r.SetBasicAuth("bal", balPW)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		mustErrXML(t, e.do(r), http.StatusForbidden, "Cross-site")
	}

	// delapikey revokes the key.
	e.ok1("delapikey", "key="+url.QueryEscape(key))
	mustErrXML(t, e.v1(auth{key: key}, "listvs", "", nil), http.StatusUnauthorized, "Authorization required")
}

func TestPermissions(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.addUser("viewer", config.RoleReadOnly)
	e.addUser("ops", config.RoleOperator)
	e.ok1("addvs", "vs=127.0.90.1&port=8080&prot=tcp")
	e.ok1("addrs", "vs=127.0.90.1&port=8080&prot=tcp&rs=127.0.90.2&rsport=80")

	viewer := auth{user: "viewer", pass: balPW}
	ops := auth{user: "ops", pass: balPW}
	for _, c := range []struct {
		who    auth
		cmd, q string
		status int
	}{
		{viewer, "listvs", "", 200},
		{viewer, "showrs", "vs=1", 200},
		{viewer, "addvs", "vs=127.0.90.3&port=80", 403},
		{viewer, "disablers", "rs=127.0.90.2", 403},
		{viewer, "backup", "", 403},
		{viewer, "useraddlocal", "user=x&password=" + url.QueryEscape(balPW), 403},
		{ops, "disablers", "rs=127.0.90.2", 200},
		{ops, "enablers", "rs=127.0.90.2", 200},
		{ops, "modrs", "vs=1&rs=!1&enable=n", 200},
		{ops, "modrs", "vs=1&rs=!1&weight=5", 403},
		{ops, "addvs", "vs=127.0.90.3&port=80", 403},
		{ops, "set", "param=snat&value=yes", 403},
		{ops, "backup", "", 403},
	} {
		a := e.v1(c.who, c.cmd, c.q, nil)
		if a.status != c.status {
			t.Errorf("%s %s?%s: status %d, want %d: %s", c.who.user, c.cmd, c.q, a.status, c.status, a.body)
			continue
		}
		if c.status == 403 {
			mustErrXML(t, a, 403, "Permission Denied")
		}
	}
	a, j := e.v2(map[string]any{"cmd": "addvs", "vs": "127.0.90.4", "port": 80, "apiuser": "viewer", "apipass": balPW})
	mustErrJSON(t, a, j, http.StatusForbidden, "Permission Denied")
}

func TestUnknownAndUnavailableCommands(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, cmd := range []string{"geostats", "addfqdn", "vsaddwafrule", "logging/df", "reboot", "nosuchthing"} {
		mustErrXML(t, e.v1(auth{}, cmd, "", nil), http.StatusMethodNotAllowed, "Unknown command")
	}
	a, j := e.v2(map[string]any{"cmd": "logging.df", "apiuser": "bal", "apipass": balPW})
	mustErrJSON(t, a, j, http.StatusMethodNotAllowed, "Unknown command")
	for _, cmd := range []string{"getcipherset"} {
		mustErrXML(t, e.v1(auth{}, cmd, "name=x", nil), http.StatusUnprocessableEntity, "Command not available")
	}
	mustErrXML(t, e.v1(auth{}, "addvs", "vs=127.0.90.1&port=80&template=Lync", nil), http.StatusUnprocessableEntity, "Unknown template")
	// Unauthenticated callers learn nothing about which commands exist.
	mustErrXML(t, e.v1(auth{none: true}, "geostats", "", nil), http.StatusUnauthorized, "Authorization required")
}

func TestVirtualServices(t *testing.T) {
	e := newEnv(t, envOpts{})
	x := e.ok1("addvs", "vs=127.0.91.1&port=443&prot=tcp&VStype=http&NickName=web&Schedule=lc&Persist=super-src&PersistTimeout=1830&Idletime=1800&CheckType=https&CheckUrl=/health&CheckUse1.1=1&CheckHost=web.example&CheckCodes=301%20404")
	d := x.data()
	for path, want := range map[string]string{
		"Index": "1", "VSAddress": "127.0.91.1", "VSPort": "443", "Layer": "7", "NickName": "web", "Enable": "Y",
		"VStype": "http", "Schedule": "lc", "Persist": "super-src", "PersistTimeout": "1800", "Idletime": "1800",
		"CheckType": "https", "CheckUrl": "/health", "CheckUse1.1": "Y", "CheckHost": "web.example", "CheckCodes": "301 404",
		"Transparent": "N", "SubnetOriginating": "Y", "ForceL7": "Y", "ForceL4": "N", "Protocol": "tcp", "NumberOfRSs": "0",
	} {
		if got := d.val(path); got != want {
			t.Errorf("addvs %s = %q, want %q", path, got, want)
		}
	}
	if rev := e.ctl.Current().Change; rev.Source != "kemp-api" || rev.User != "bal" {
		t.Errorf("revision made by %s/%s", rev.User, rev.Source)
	}
	mustErrXML(t, e.v1(auth{}, "addvs", "vs=127.0.91.1&port=443", nil), 422, "already exists")

	// Addressing by (vs, port, prot) and by index.
	if got := e.ok1("showvs", "vs=127.0.91.1&port=443&prot=tcp").data().val("Index"); got != "1" {
		t.Errorf("showvs by address: index %s", got)
	}
	if got := e.ok1("showvs", "vs=1").data().val("NickName"); got != "web" {
		t.Errorf("showvs by index: %s", got)
	}
	mustErrXML(t, e.v1(auth{}, "showvs", "vs=127.0.91.1&port=444", nil), 422, "Unknown VS")
	mustErrXML(t, e.v1(auth{}, "showvs", "vs=99", nil), 422, "Unknown VS")
	mustErrXML(t, e.v1(auth{}, "showvs", "", nil), 400, "vs: String Value missing")
	mustErrXML(t, e.v1(auth{}, "showvs", "vs=127.0.91.1", nil), 400, "port: String Value missing")

	// modvs: vsport, booleans in every spelling, validation with the
	// model's messages under LoadMaster's parameter names.
	x = e.ok1("modvs", "vs=1&vsport=4443&Enable=n&Transparent=y")
	if d := x.data(); d.val("VSPort") != "4443" || d.val("Enable") != "N" || d.val("Transparent") != "Y" {
		t.Errorf("modvs answer: %s %s %s", d.val("VSPort"), d.val("Enable"), d.val("Transparent"))
	}
	e.ok1("modvs", "vs=127.0.91.1&port=4443&prot=tcp&Enable=1&Transparent=0")
	mustErrXML(t, e.v1(auth{}, "modvs", "vs=1&Persist=sticky", nil), 422, "Persist: must be one of")
	mustErrXML(t, e.v1(auth{}, "modvs", "vs=1&Idletime=90000", nil), 422, "Idletime: must be 0-86400")
	mustErrXML(t, e.v1(auth{}, "modvs", "vs=1&Enable=maybe", nil), 422, "Enable: Invalid boolean value")
	mustErrXML(t, e.v1(auth{}, "modvs", "vs=1&Cache=1", nil), 422, "Cache: caching is not available")
	mustErrXML(t, e.v1(auth{}, "modvs", "vs=1&ForceL4=1", nil), 422, "ForceL4: VStype http is served at layer 7")
	mustErrXML(t, e.v1(auth{}, "showvs", "vs=127.0.91.1&port=*", nil), 422, "wildcard")
	e.ok1("modvs", "vs=1&Cache=0&Intercept=N&ForceL7=1&unknownparameter=whatever")
	// Less than a minute of persistence turns it off, as on a LoadMaster.
	if d := e.ok1("modvs", "vs=1&PersistTimeout=30").data(); d.val("Persist") != "<missing>" || d.val("PersistTimeout") != "0" {
		t.Errorf("PersistTimeout=30: Persist %s timeout %s", d.val("Persist"), d.val("PersistTimeout"))
	}
	if got := e.ok1("showvs", "vs=1").data().val("Enable"); got != "Y" {
		t.Errorf("after modvs Enable=%s", got)
	}

	// createsubvs adds a SubVS, addressed by its index.
	x = e.ok1("modvs", "vs=1&createsubvs=")
	subs := x.data().all("SubVS")
	if len(subs) != 1 || x.data().val("MasterVS") != "1" {
		t.Fatalf("createsubvs answer has %d SubVS: %s", len(subs), x.data().val("MasterVS"))
	}
	subID := subs[0].val("VSIndex")
	x = e.ok1("modvs", "vs="+subID+"&NickName=owa&Persist=src")
	if d := x.data(); d.val("NickName") != "owa" || d.val("MasterVSID") != "1" || d.val("VSPort") != "0" {
		t.Errorf("SubVS: %s %s %s", d.val("NickName"), d.val("MasterVSID"), d.val("VSPort"))
	}
	mustErrXML(t, e.v1(auth{}, "modvs", "vs="+subID+"&VSPort=80", nil), 422, "SubVS")
	if vs := e.ok1("listvs", "").data().all("VS"); len(vs) != 2 {
		t.Errorf("listvs has %d VS, want the service and its SubVS", len(vs))
	}

	// dupvs copies under a new address.
	x = e.ok1("dupvs", "vs=1&newvs=127.0.91.2")
	if d := x.data(); d.val("VSAddress") != "127.0.91.2" || d.val("NickName") != "web" || len(d.all("SubVS")) != 1 {
		t.Errorf("dupvs: %s %s %d", d.val("VSAddress"), d.val("NickName"), len(d.all("SubVS")))
	}
	mustErrXML(t, e.v1(auth{}, "dupvs", "vs=1", nil), 422, "duplicate service")

	e.ok1("delvs", "vs="+subID)
	x = e.ok1("delvs", "vs=127.0.91.1&port=4443&prot=tcp")
	if got := x.val("Success"); got != "Command completed ok" {
		t.Errorf("delvs answered %q", got)
	}
	if n := len(e.ctl.Current().Config.VirtualServices); n != 1 {
		t.Errorf("%d services left, want the copy", n)
	}
}

func TestRealServers(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.ok1("addvs", "vs=127.0.92.1&port=80&prot=tcp")
	e.ok1("addvs", "vs=127.0.92.1&port=81&prot=tcp")
	x := e.ok1("addrs", "vs=127.0.92.1&port=80&prot=tcp&rs=127.0.92.10&rsport=8080&weight=200&critical=1")
	rs := x.data().at("Rs")
	if rs == nil || rs.val("Addr") != "127.0.92.10" || rs.val("Port") != "8080" || rs.val("Weight") != "200" || rs.val("Critical") != "Y" || rs.val("Forward") != "nat" {
		t.Fatalf("addrs answer: %+v", x.data())
	}
	e.ok1("addrs", "vs=1&rs=127.0.92.11&rsport=8080")
	e.ok1("addrs", "vs=2&rs=127.0.92.10&rsport=8080")
	mustErrXML(t, e.v1(auth{}, "addrs", "vs=1&rs=127.0.92.10&rsport=8080", nil), 422, "already exists")
	mustErrXML(t, e.v1(auth{}, "addrs", "vs=1&rs=127.0.92.12&rsport=70000", nil), 422, "rsport: must be 1-65535")
	mustErrXML(t, e.v1(auth{}, "addrs", "vs=1&rs=127.0.92.12&rsport=80&forward=route", nil), 422, "forward")
	mustErrXML(t, e.v1(auth{}, "addrs", "vs=1&rsport=80", nil), 400, "rs: String Value missing")

	if n := len(e.ok1("showrs", "vs=1").data().all("Rs")); n != 2 {
		t.Errorf("showrs without rs lists %d", n)
	}
	one := e.ok1("showrs", "vs=1&rs=127.0.92.11&rsport=8080").data().all("Rs")
	if len(one) != 1 || one[0].val("Addr") != "127.0.92.11" {
		t.Fatalf("showrs one: %d", len(one))
	}
	idx := one[0].val("RsIndex")

	// modrs by index, newport, enable; the answer is LoadMaster's bare ok.
	x = e.ok1("modrs", "vs=1&rs=!"+idx+"&newport=9090&enable=n")
	if x.val("Success") != "Command completed ok" {
		t.Errorf("modrs answered %q", x.val("Success"))
	}
	got := e.ok1("showrs", "vs=1&rs=!"+idx).data().at("Rs")
	if got.val("Port") != "9090" || got.val("Enable") != "N" || got.val("Status") != "Disabled" {
		t.Errorf("after modrs: port %s enable %s status %s", got.val("Port"), got.val("Enable"), got.val("Status"))
	}
	mustErrXML(t, e.v1(auth{}, "modrs", "vs=1&rs=!999&weight=1", nil), 422, "Unknown Real Server")
	mustErrXML(t, e.v1(auth{}, "modrs", "vs=1&rs=!"+idx+"&weight=-1", nil), 422, "weight: must be 1-65535")
	// Weight 0 means the default (1000), as in the native API.
	e.ok1("modrs", "vs=1&rs=!"+idx+"&weight=0")
	if w := e.ok1("showrs", "vs=1&rs=!"+idx).data().at("Rs").val("Weight"); w != "1000" {
		t.Errorf("weight 0 gave %s, want the default 1000", w)
	}

	// disablers/enablers act on every service.
	e.ok1("disablers", "rs=127.0.92.10")
	for _, v := range e.ctl.Current().Config.VirtualServices {
		for _, r := range v.RealServers {
			if r.Address == "127.0.92.10" && config.IsTrue(r.Enabled) {
				t.Errorf("service %d still has 127.0.92.10 enabled", v.ID)
			}
		}
	}
	e.ok1("enablers", "rs=127.0.92.10")
	mustErrXML(t, e.v1(auth{}, "enablers", "rs=127.0.92.99", nil), 422, "Unknown Real Server")

	e.ok1("delrs", "vs=127.0.92.1&port=80&prot=tcp&rs=127.0.92.10&rsport=8080")
	e.ok1("delrs", "vs=1&rs=!"+idx)
	if n := len(e.ok1("showrs", "vs=1").data().all("Rs")); n != 0 {
		t.Errorf("%d real servers left", n)
	}
}

func TestCertificates(t *testing.T) {
	e := newEnv(t, envOpts{})
	ch := newChain(t, "lync.example.com", "meet.example.com")
	x := e.mustXML(e.v1(auth{}, "addcert", "cert=lync", ch.leafPEM), 200, "addcert")
	if x.val("Success") != "Command completed ok" {
		t.Errorf("addcert: %q", x.val("Success"))
	}
	mustErrXML(t, e.v1(auth{}, "addcert", "cert=lync", ch.leafPEM), 422, "already exists")
	e.mustXML(e.v1(auth{}, "addcert", "cert=lync&replace=1", ch.leafPEM), 200, "addcert replace")
	e.mustXML(e.v1(auth{}, "addintermediate", "cert=issuing", ch.interPEM), 200, "addintermediate")
	mustErrXML(t, e.v1(auth{}, "addintermediate", "cert=bad", ch.leafPEM), 422, "not a CA certificate")
	mustErrXML(t, e.v1(auth{}, "addcert", "cert=nokey", ch.interPEM), 422, "no private key")
	mustErrXML(t, e.v1(auth{}, "addcert", "cert=garbage", []byte("not a certificate")), 422, "Command Failed")

	pfx := makePFX(t, ch, "pfx-pass")
	e.mustXML(e.v1(auth{}, "addcert", "cert=lyncpfx&password=pfx-pass", pfx), 200, "addcert pfx")
	mustErrXML(t, e.v1(auth{}, "addcert", "cert=lyncpfx2&password=wrong", pfx), 422, "wrong PFX password")

	certs := e.ok1("listcert", "").data().all("cert")
	if len(certs) != 2 || certs[0].val("name") != "lync" || certs[0].val("type") != "ECC" || certs[0].val("publickey") == "<missing>" {
		t.Fatalf("listcert: %d", len(certs))
	}
	if in := e.ok1("listintermediate", "").data().all("cert"); len(in) != 1 || in[0].val("name") != "issuing" {
		t.Fatalf("listintermediate: %d", len(in))
	}
	a := e.v1(auth{}, "readcert", "cert=lync", nil)
	if a.status != 200 || !bytes.Contains(a.body, []byte("BEGIN CERTIFICATE")) || bytes.Contains(a.body, []byte("PRIVATE KEY")) {
		t.Fatalf("readcert: %d %s", a.status, a.body)
	}
	a = e.v1(auth{}, "readcert", "cert=lync&outform=DER", nil)
	if der, err := base64.StdEncoding.DecodeString(string(a.body)); err != nil || !bytes.Equal(der, ch.leaf.Raw) {
		t.Fatalf("readcert DER: %v", err)
	}
	if a := e.v1(auth{}, "readintermediate", "cert=issuing", nil); !bytes.Contains(a.body, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("readintermediate: %s", a.body)
	}
	// v2 returns blobs base64 in "data".
	j := e.ok2("readcert", map[string]any{"cert": "lync", "outform": "DER"})
	if der, _ := base64.StdEncoding.DecodeString(j.get("data").s); !bytes.Equal(der, ch.leaf.Raw) {
		t.Fatal("v2 readcert data")
	}

	// A certificate in use cannot be deleted.
	e.ok1("addvs", "vs=127.0.93.1&port=443&VStype=http&SSLAcceleration=1&CertFile=lync&TLSType=7&CipherSet=BestPractices")
	mustErrXML(t, e.v1(auth{}, "delcert", "cert=lync", nil), 422, "assigned to Virtual Service 1")
	mustErrXML(t, e.v1(auth{}, "modvs", "vs=1&CertFile=nosuch", nil), 422, "CertFile: no certificate named")
	mustErrXML(t, e.v1(auth{}, "modvs", "vs=1&TLSType=5", nil), 422, "TLSType")
	if d := e.ok1("showvs", "vs=1").data(); d.val("CertFile") != "lync" || d.val("TlsType") != "7" || d.val("SSLAcceleration") != "Y" {
		t.Errorf("TLS settings: %s %s %s", d.val("CertFile"), d.val("TlsType"), d.val("SSLAcceleration"))
	}
	e.ok1("delcert", "cert=lyncpfx")
	e.ok1("delintermediate", "cert=issuing")
	mustErrXML(t, e.v1(auth{}, "delintermediate", "cert=issuing", nil), 422, "not found")
}

func TestGetSet(t *testing.T) {
	e := newEnv(t, envOpts{})
	all := e.ok1("getall", "").data()
	for _, p := range []string{"version", "enableapi", "snat", "subnetorigin", "droponfail", "dropatdrainend", "finalpersist", "conntimeout", "alwayspersist", "slowstart"} {
		if all.at(p) == nil {
			t.Errorf("getall lacks %s", p)
		}
	}
	for _, c := range []struct{ param, value, want string }{
		{"snat", "yes", "yes"}, {"snat", "0", "no"}, {"subnetorigin", "1", "yes"}, {"subnetoriginating", "n", "no"},
		{"droponfail", "y", "yes"}, {"dropatdrainend", "true", "yes"}, {"finalpersist", "120", "120"},
		{"conntimeout", "1800", "1800"}, {"conntimeout", "0", "660"}, {"alwayspersist", "yes", "1"},
		{"alwayspersist", "2", "2"}, {"slowstart", "30", "30"}, {"SNAT", "Y", "yes"},
	} {
		e.ok1("set", "param="+c.param+"&value="+c.value)
		name := strings.ToLower(c.param)
		if a, ok := paramAliases[name]; ok {
			name = a
		}
		if got := e.ok1("get", "param="+c.param).data().val(name); got != c.want {
			t.Errorf("set %s=%s: get %q, want %q", c.param, c.value, got, c.want)
		}
	}
	o := e.ctl.Current().Config.Options
	if !o.SNAT || o.SubnetOriginating || !o.DropOnFail || o.DrainTime != 120 || o.ConnTimeout != 660 || o.AlwaysPersist != "accept-changes" || o.SlowStart != 30 {
		t.Errorf("options %+v", o)
	}
	mustErrXML(t, e.v1(auth{}, "set", "param=finalpersist&value=30", nil), 422, "finalpersist: must be 60-86400")
	mustErrXML(t, e.v1(auth{}, "set", "param=transparent&value=1", nil), 422, "Unknown parameter value")
	mustErrXML(t, e.v1(auth{}, "get", "param=ha1hostname", nil), 422, "Unknown parameter value")
	mustErrXML(t, e.v1(auth{}, "get", "", nil), 400, "param: String Value missing")
	mustErrXML(t, e.v1(auth{}, "set", "param=snat", nil), 400, "value: String Value missing")
	mustErrXML(t, e.v1(auth{}, "set", "param=version&value=1", nil), 422, "read-only")

	// v2: booleans are real booleans, values may be "val".
	j := e.ok2("get", map[string]any{"param": "snat"})
	if v := j.get("snat"); v.kind != 'b' || !v.b {
		t.Errorf("v2 get snat: %+v", v)
	}
	e.ok2("set", map[string]any{"param": "snat", "val": false})
	if e.ctl.Current().Config.Options.SNAT {
		t.Error("v2 set val=false did not clear snat")
	}

	// Health-check timers.
	h := e.ok1("modhealth", "RetryInterval=20&Timeout=5&RetryCount=3").data()
	if h.val("RetryInterval") != "20" || h.val("Timeout") != "5" || h.val("RetryCount") != "3" {
		t.Errorf("modhealth: %s %s %s", h.val("RetryInterval"), h.val("Timeout"), h.val("RetryCount"))
	}
	mustErrXML(t, e.v1(auth{}, "modhealth", "Timeout=30", nil), 422, "Timeout: must be less than interval")
	if got := e.ok1("showhealth", "").data().val("RetryInterval"); got != "20" {
		t.Errorf("showhealth RetryInterval %s", got)
	}
}

func TestUsers(t *testing.T) {
	e := newEnv(t, envOpts{})
	pw := url.QueryEscape(balPW)
	e.ok1("useraddlocal", "user=alice&password="+pw)
	mustErrXML(t, e.v1(auth{}, "useraddlocal", "user=alice&password="+pw, nil), 422, "User already exists.")
	mustErrXML(t, e.v1(auth{}, "useraddlocal", "user=bob&password=short", nil), 422, "password: must have at least")
	mustErrXML(t, e.v1(auth{}, "useraddlocal", "user=bob&radius=1", nil), 422, "RADIUS")
	role := func(name string) string {
		for _, u := range e.ok1("userlist", "").data().all("User") {
			if u.val("Name") == name {
				return u.val("Role") + "/" + u.val("Perms")
			}
		}
		return "<missing>"
	}
	if got := role("alice"); got != "read-only/" {
		t.Errorf("new user: %s", got)
	}
	e.ok1("usersetperms", "user=alice&perms=real")
	if got := role("alice"); got != "operator/real" {
		t.Errorf("perms=real: %s", got)
	}
	e.ok1("usersetperms", "user=alice&perms=root,users,vs")
	if got := role("alice"); got != "admin/root,users" {
		t.Errorf("perms=root,users: %s", got)
	}
	mustErrXML(t, e.v1(auth{}, "usersetperms", "user=alice&perms=vs,rules", nil), 422, "three roles")
	mustErrXML(t, e.v1(auth{}, "usersetperms", "user=alice&perms=wizard", nil), 422, "Invalid permission")
	e.ok1("usersetperms", "user=alice&perms=")
	if got := role("alice"); got != "read-only/" {
		t.Errorf("perms empty: %s", got)
	}
	newPW := "another long passphrase"
	e.ok1("userchangelocpass", "user=alice&password="+url.QueryEscape(newPW))
	e.mustXML(e.v1(auth{user: "alice", pass: newPW}, "listvs", "", nil), 200, "alice with new password")
	// alice (read-only) may not manage users, nor change her password
	// without the current one.
	mustErrXML(t, e.v1(auth{user: "alice", pass: newPW}, "userlist", "", nil), 403, "Permission Denied")
	mustErrXML(t, e.v1(auth{user: "alice", pass: newPW}, "userchangelocpass", "user=alice&password="+pw, nil), 422, "current password")
	e.mustXML(e.v1(auth{user: "alice", pass: newPW}, "userchangelocpass", "user=alice&password="+pw+"&currpassword="+url.QueryEscape(newPW), nil), 200, "own password")
	e.ok1("userdellocal", "user=alice")
	mustErrXML(t, e.v1(auth{}, "userdellocal", "user=alice", nil), 422, "User does not exist")
	mustErrXML(t, e.v1(auth{}, "userdellocal", "user=bal", nil), 422, "last admin")

	// API keys of another user need the users permission.
	e.ok1("useraddlocal", "user=carol&password="+pw)
	key := e.ok1("addapikey", "user=carol").data().val("ApiKey")
	keys := e.ok1("listapikeys", "user=carol").data().all("ApiKey")
	if len(keys) != 1 || !strings.Contains(key, keys[0].val("Id")) || keys[0].val("User") != "carol" {
		t.Fatalf("listapikeys: %d", len(keys))
	}
	mustErrXML(t, e.v1(auth{key: key}, "listapikeys", "user=bal", nil), 403, "Permission Denied")
	e.ok1("delapikey", "key="+keys[0].val("Id"))
	mustErrXML(t, e.v1(auth{}, "delapikey", "key=0123456789abcdef", nil), 422, "Unknown API key")
}

func TestBackupRestore(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.ok1("addvs", "vs=127.0.94.1&port=80&NickName=before")
	a := e.v1(auth{}, "backup", "", nil)
	if a.status != 200 || len(a.body) < 2 || a.body[0] != 0x1f || a.body[1] != 0x8b {
		t.Fatalf("backup is not a gzip file: %d %q", a.status, a.body[:min(len(a.body), 40)])
	}
	e.ok1("modvs", "vs=1&NickName=after")
	mustErrXML(t, e.v1(auth{}, "restore", "type=2", a.body), 422, "type 3")
	mustErrXML(t, e.v1(auth{}, "restore", "type=3", []byte("not a backup")), 422, "Command Failed")
	e.mustXML(e.v1(auth{}, "restore", "type=3", a.body), 200, "restore")
	if got := e.ctl.Current().Config.VirtualServices[0].NickName; got != "before" {
		t.Fatalf("after restore NickName %q", got)
	}
	if src := e.ctl.Current().Change.Source; src != "kemp-api" {
		t.Errorf("restore recorded source %q", src)
	}
	// v2: backup and restore carry the file base64 in "data".
	j := e.ok2("backup", nil)
	blob, err := base64.StdEncoding.DecodeString(j.get("data").s)
	if err != nil || len(blob) == 0 {
		t.Fatalf("v2 backup data: %v", err)
	}
	e.ok1("modvs", "vs=1&NickName=again")
	e.ok2("restore", map[string]any{"data": j.get("data").s})
	if got := e.ctl.Current().Config.VirtualServices[0].NickName; got != "before" {
		t.Fatalf("after v2 restore NickName %q", got)
	}
}

func TestSystemCommands(t *testing.T) {
	e := newEnv(t, envOpts{})
	d := e.ok1("licenseinfo", "").data()
	if !strings.Contains(d.val("LicenseType"), "open source") || d.val("Version") != "test" {
		t.Errorf("licenseinfo: %s %s", d.val("LicenseType"), d.val("Version"))
	}
	d = e.ok1("listapi", "").data()
	found := map[string]bool{}
	for _, c := range d.all("Command") {
		found[strings.TrimSpace(c.text)] = true
	}
	for _, c := range []string{"listvs", "addvs", "addrs", "addcert", "stats", "getall", "backup"} {
		if !found[c] {
			t.Errorf("listapi lacks %s", c)
		}
	}
	if found["backupcert"] || !found["addrule"] {
		t.Error("listapi lists a command Fulcrum does not have, or lacks addrule")
	}
	tot := e.ok1("vstotals", "").data()
	if tot.val("VS", "Total") != "0" {
		t.Errorf("vstotals: %s", tot.val("VS", "Total"))
	}
}

func TestXMLIsASCIIAndEscaped(t *testing.T) {
	e := newEnv(t, envOpts{})
	name := `Zürich <Lync> & "Skype" 会議`
	a := e.v1(auth{}, "addvs", "vs=127.0.95.1&port=80&NickName="+url.QueryEscape(name), nil)
	for _, c := range a.body {
		if c > 0x7e || (c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
			t.Fatalf("non-ASCII byte %#x in %s", c, a.body)
		}
	}
	x := e.mustXML(a, 200, "addvs")
	if got := x.data().val("NickName"); got != name {
		t.Fatalf("NickName round trip %q", got)
	}
	j := e.ok2("showvs", map[string]any{"vs": 1})
	if j.get("NickName").s != name {
		t.Fatalf("v2 NickName %q", j.get("NickName").s)
	}
}

func TestRequestParsing(t *testing.T) {
	e := newEnv(t, envOpts{})
	// Parameters are case-insensitive; the first of a repeated name wins.
	e.ok1("addvs", "VS=127.0.96.1&Port=80&NICKNAME=first&nickname=second")
	if got := e.ok1("showvs", "vs=1").data().val("NickName"); got != "first" {
		t.Errorf("NickName %q", got)
	}
	mustErrXML(t, e.v1(auth{}, "showvs", "vs=%zz", nil), 400, "Invalid query")
	// A POSTed form carries parameters too (for long values).
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/access/modvs", strings.NewReader("vs=1&NickName="+strings.Repeat("x", 60)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("bal", balPW)
	e.mustXML(e.do(r), 200, "POST form")
	if got := e.ctl.Current().Config.VirtualServices[0].NickName; len(got) != 60 {
		t.Errorf("NickName from form: %q", got)
	}
	// v2 takes numbers and booleans; rejects objects and duplicates.
	e.ok2("modvs", map[string]any{"vs": 1, "Enable": false, "Idletime": 120})
	v := e.ctl.Current().Config.VirtualServices[0]
	if config.IsTrue(v.Enabled) || v.Idletime != 120 {
		t.Errorf("v2 modvs: enabled %v idle %d", v.Enabled, v.Idletime)
	}
	for _, body := range []string{`[]`, `{"cmd":"listvs","x":{"a":1}}`, `{"cmd":"listvs","Enable":1,"enable":2}`, `{"cmd":"listvs"} {}`, `nope`} {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2", strings.NewReader(body))
		r.SetBasicAuth("bal", balPW)
		a := e.do(r)
		j, err := parseJSON(a.body)
		if err != nil {
			t.Fatalf("%s: %v %s", body, err, a.body)
		}
		mustErrJSON(t, a, j, http.StatusBadRequest, "")
	}
	r, _ = http.NewRequest(http.MethodGet, e.srv.URL+"/accessv2", nil)
	a := e.do(r)
	j, _ := parseJSON(a.body)
	mustErrJSON(t, a, j, http.StatusMethodNotAllowed, "POST")
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// A file sent to addcert or restore is not read before the caller is
// authenticated and allowed to run the command, and is bounded.
func TestFileBodyReadOnlyAfterAuth(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.addUser("viewer", config.RoleReadOnly)
	bal := admin.Principal{User: "bal", Role: config.RoleAdmin, Method: admin.MethodConsole}
	_, key, err := e.auth.CreateAPIKey(bal, "", "bal", "test")
	if err != nil {
		t.Fatal(err)
	}
	send := func(query string, basic bool) (int, int) {
		body := &countingReader{r: bytes.NewReader(bytes.Repeat([]byte("x"), 5<<20))}
		r := httptest.NewRequest(http.MethodPost, "/access/addcert?cert=big"+query, body)
		r.RemoteAddr = "192.0.2.50:1000"
		if basic {
			r.SetBasicAuth("viewer", balPW)
		}
		rec := httptest.NewRecorder()
		e.kemp.ServeHTTP(rec, r)
		return rec.Code, body.n
	}
	if code, n := send("", false); code != http.StatusUnauthorized || n != 0 {
		t.Errorf("unauthenticated: %d after reading %d bytes", code, n)
	}
	if code, n := send("", true); code != http.StatusForbidden || n != 0 {
		t.Errorf("read-only user: %d after reading %d bytes", code, n)
	}
	if code, n := send("&apikey="+url.QueryEscape(key), false); code != http.StatusRequestEntityTooLarge || n > 4<<20+64<<10 {
		t.Errorf("oversized file: %d after reading %d bytes", code, n)
	}
}
