package templates

import (
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

func TestBuiltinTemplatesParse(t *testing.T) {
	b, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lync2013-reverse-proxy", "lync2013-internal-hlb", "lync2013-office-web-apps",
		"lync2013-frontend-dns-webservices", "lync2013-director", "lync2013-edge", "exchange2013-2016", "https-web-farm"} {
		tpl, ok := b[name]
		if !ok {
			t.Errorf("built-in template %s missing", name)
			continue
		}
		if len(tpl.Description) < 100 {
			t.Errorf("%s: the description must say where the values come from", name)
		}
	}
}

func TestLyncReverseProxy(t *testing.T) {
	b, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	inst, err := b["lync2013-reverse-proxy"].Instantiate(map[string]any{
		"vip": "127.0.0.10", "certificate": "lync-public",
		"frontEnds": []any{"127.0.0.21", "127.0.0.22:4444", map[string]any{"address": "127.0.0.23", "weight": 2000.0}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.VirtualServices) != 2 || len(inst.Checks) != 5 {
		t.Fatalf("%d services, %d checks", len(inst.VirtualServices), len(inst.Checks))
	}
	https := inst.VirtualServices[0]
	if https.Address != "127.0.0.10" || https.Port != 443 || https.Schedule != "lc" || https.Persistence.Mode != "super-src" ||
		https.Idletime != 1800 || !https.TLS.Offload || !https.TLS.Reencrypt || https.TLS.Certificates[0] != "lync-public" {
		t.Errorf("https service %+v", https)
	}
	rs := https.RealServers
	if len(rs) != 3 || rs[0].Port != 4443 || rs[1].Port != 4444 || rs[2].Weight != 2000 || rs[2].Address != "127.0.0.23" {
		t.Errorf("real servers %+v", rs)
	}
	if p := inst.VirtualServices[1].RealServers[0].Port; p != 8080 {
		t.Errorf("http service real server port %d, want 8080", p)
	}
	if u := inst.Checks[0]["url"]; u != "https://meet.example.com/" {
		t.Errorf("check url %v", u)
	}
	if c := https.Checks; len(c) != 5 || c[0].Name != "Meeting Space URL" || c[0].URL != "https://meet.example.com/" {
		t.Errorf("checks attached to the HTTPS service: %+v", c)
	}
}

func TestInstantiateErrors(t *testing.T) {
	b, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	rp := b["lync2013-reverse-proxy"]
	tests := []struct {
		name   string
		params map[string]any
		want   []string
	}{
		{"missing", map[string]any{}, []string{"parameters.vip: required", "parameters.certificate: required"}},
		{"bad ip and unknown", map[string]any{"vip": "300.1.1.1", "certificate": "c", "colour": "red"},
			[]string{`parameters.vip: must be an IP address, got "300.1.1.1"`, "parameters.colour: unknown parameter"}},
		{"bad servers", map[string]any{"vip": "127.0.0.1", "certificate": "c", "frontEnds": []any{"127.0.0.1:99999"}},
			[]string{"parameters.frontEnds: server 0: bad port"}},
		{"bad server value", map[string]any{"vip": "127.0.0.1", "certificate": "c", "frontEnds": []any{map[string]any{"adress": "x"}}},
			[]string{`parameters.frontEnds: server 0: unknown field "adress"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rp.Instantiate(tt.params)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"foreign", `{"format":"kemp","version":2,"name":"x","title":"t","virtualServices":[{}]}`,
			[]string{`format: must be "fulcrum-template"`, "version: must be 1"}},
		{"unknown key", "format: fulcrum-template\nversion: 1\nname: x\ntitle: t\nvirtualService: []\n", []string{"virtualService: unknown field"}},
		{"placeholder", "format: fulcrum-template\nversion: 1\nname: x\ntitle: t\nvirtualServices:\n- {address: '${vipp}', port: 80}\n",
			[]string{"virtualServices[0].address: placeholder ${vipp} names no parameter"}},
		{"bad field in service", "format: fulcrum-template\nversion: 1\nname: x\ntitle: t\nparameters: [{name: vip, type: ip, required: true}]\n" +
			"virtualServices:\n- {address: '${vip}', port: 80, shedule: lc}\n", []string{"virtualServices[0].shedule: unknown field"}},
		{"bad value in service", "format: fulcrum-template\nversion: 1\nname: x\ntitle: t\nparameters: [{name: vip, type: ip, required: true}]\n" +
			"virtualServices:\n- {address: '${vip}', port: 70000}\n", []string{"virtualServices[0].port: must be 1-65535, got 70000"}},
		{"bad parameter", "format: fulcrum-template\nversion: 1\nname: x\ntitle: t\nparameters: [{name: 1vip, type: colour}]\nvirtualServices: [{address: 127.0.0.1, port: 80}]\n",
			[]string{"parameters[0].name: must be letters", "parameters[0].type: must be one of"}},
		{"bad default", "format: fulcrum-template\nversion: 1\nname: x\ntitle: t\nparameters: [{name: p, type: port, default: 0}]\nvirtualServices: [{address: 127.0.0.1, port: 80}]\n",
			[]string{"parameters[0].default: must be a port 1-65535, got 0"}},
		{"clash inside", "format: fulcrum-template\nversion: 1\nname: x\ntitle: t\nvirtualServices: [{address: 127.0.0.1, port: 80}, {address: 127.0.0.1, port: 80}]\n",
			[]string{"virtualServices[1]: duplicate service"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

func TestLibraryAndExport(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lib, err := NewLibrary(st)
	if err != nil {
		t.Fatal(err)
	}
	v := &config.VirtualService{ID: 4, NickName: "shop", Address: "127.0.0.5", Port: 8443, Type: "http", Schedule: "wrr",
		Persistence: config.Persistence{Mode: "active-cookie", Timeout: 600},
		RealServers: []config.RealServer{{ID: 9, Address: "127.0.0.6", Port: 9000, Weight: 500}, {ID: 10, Address: "127.0.0.7", Port: 9001, Weight: 1000}}}
	c := config.Default()
	c.VirtualServices = []config.VirtualService{*v}
	c.SetDefaults()
	exported, err := FromVirtualService(&c.VirtualServices[0], "shop", "")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Encode(exported)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lib.Import(doc, false); err != nil {
		t.Fatalf("import of an export: %v\n%s", err, doc)
	}
	if _, err := lib.Import(doc, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second import: %v", err)
	}
	got, err := lib.Get("shop")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := got.Instantiate(map[string]any{"vip": "127.0.0.50"})
	if err != nil {
		t.Fatal(err)
	}
	nv := inst.VirtualServices[0]
	if nv.Address != "127.0.0.50" || nv.Schedule != "wrr" || nv.Persistence.Cookie != "FULCRUM" || len(nv.RealServers) != 2 ||
		nv.RealServers[1].Port != 9001 || nv.RealServers[0].Weight != 500 || nv.ID != 0 || nv.RealServers[0].ID != 0 {
		t.Errorf("instantiated export %+v", nv)
	}
	list, err := lib.List()
	if err != nil || len(list) < 8 || list[len(list)-1].Name != "shop" || list[len(list)-1].Builtin {
		t.Errorf("list %+v %v", list, err)
	}
	if err := lib.Delete("lync2013-edge"); err == nil {
		t.Error("deleted a built-in template")
	}
	if err := lib.Delete("shop"); err != nil {
		t.Error(err)
	}
	if _, err := lib.Get("shop"); err == nil {
		t.Error("deleted template still there")
	}
	if err := lib.Delete("shop"); err == nil || !strings.Contains(err.Error(), "no such template") {
		t.Errorf("second delete: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	b, _ := builtinFS.ReadFile("builtin/lync2013-reverse-proxy.yaml")
	f.Add(b)
	f.Add([]byte("format: fulcrum-template\nversion: 1\nname: x\ntitle: t\nvirtualServices: [{address: '$${x}${', port: 80}]\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		tpl, err := Parse(doc)
		if err != nil {
			return
		}
		_, _ = tpl.Instantiate(tpl.samples())
	})
}
