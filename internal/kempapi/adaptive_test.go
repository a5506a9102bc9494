package kempapi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestAdaptiveCommands drives showadaptive and modadaptive over both
// versions: parameter names in any case, numbers as strings and as JSON
// numbers, with and without a Content-Type; bad values are refused naming
// the parameter and change nothing.
func TestAdaptiveCommands(t *testing.T) {
	e := newEnv(t, envOpts{})
	d := e.ok1("showadaptive", "").data()
	def := config.DefaultAdaptive()
	for k, want := range map[string]string{"AdaptiveURL": def.URL, "AdaptivePort": strconv.Itoa(def.Port),
		"AdaptiveInterval": strconv.Itoa(def.Interval), "MinPercent": strconv.Itoa(def.MinPercent)} {
		if got := d.val(k); got != want {
			t.Errorf("showadaptive %s = %q, want %q", k, got, want)
		}
	}
	wantNow := func(t *testing.T, want config.Adaptive) {
		t.Helper()
		if got := e.ctl.Current().Config.Options.Adaptive; got != want {
			t.Fatalf("options.adaptive %+v, want %+v", got, want)
		}
	}

	// v1, lower-case and mixed-case names.
	d = e.ok1("modadaptive", "adaptiveurl=/agent&adaptiveport=8081&adaptiveinterval=3&minpercent=10").data()
	if d.val("AdaptiveURL") != "/agent" || d.val("AdaptivePort") != "8081" || d.val("AdaptiveInterval") != "3" || d.val("MinPercent") != "10" {
		t.Fatalf("modadaptive answered %+v", d)
	}
	wantNow(t, config.Adaptive{URL: "/agent", Port: 8081, Interval: 3, MinPercent: 10})
	e.ok1("modadaptive", "AdaptivePort=8082&MinPercent=12")
	wantNow(t, config.Adaptive{URL: "/agent", Port: 8082, Interval: 3, MinPercent: 12})

	// v2: numbers as JSON numbers and as strings.
	j := e.ok2("modadaptive", map[string]any{"AdaptiveURL": "/v2load", "AdaptivePort": 9001, "AdaptiveInterval": "4", "minpercent": 7})
	if j.get("AdaptiveURL").s != "/v2load" || j.get("AdaptivePort").kind != 'n' || j.get("AdaptivePort").n != "9001" {
		t.Fatalf("v2 modadaptive answered %+v", j)
	}
	wantNow(t, config.Adaptive{URL: "/v2load", Port: 9001, Interval: 4, MinPercent: 7})
	j = e.ok2("showadaptive", nil)
	if j.get("AdaptiveInterval").n != "4" || j.get("MinPercent").kind != 'n' {
		t.Fatalf("v2 showadaptive %+v", j)
	}
	for _, ct := range []string{"application/json", ""} {
		body := `{"cmd":"modadaptive","apiuser":"bal","apipass":"` + balPW + `","AdaptiveInterval":5}`
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2", strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		if a := e.do(r); a.status != http.StatusOK {
			t.Fatalf("Content-Type %q: %d %s", ct, a.status, a.body)
		}
	}
	wantNow(t, config.Adaptive{URL: "/v2load", Port: 9001, Interval: 5, MinPercent: 7})

	// Refusals name the parameter; a bad value among good ones changes
	// nothing.
	for _, tc := range []struct{ query, want string }{
		{"AdaptiveInterval=700&AdaptivePort=81", "AdaptiveInterval: must be 1-600, got 700"},
		{"AdaptivePort=70000", "AdaptivePort: must be 1-65535, got 70000"},
		{"MinPercent=51", "MinPercent: must be 0-50, got 51"},
		{"AdaptiveURL=load", "AdaptiveURL: must start with /"},
		{"AdaptiveURL=/a%20b", "AdaptiveURL: must start with /"},
		{"AdaptivePort=eighty", `AdaptivePort: Invalid integer value "eighty"`},
	} {
		mustErrXML(t, e.v1(auth{}, "modadaptive", tc.query, nil), http.StatusUnprocessableEntity, tc.want)
		wantNow(t, config.Adaptive{URL: "/v2load", Port: 9001, Interval: 5, MinPercent: 7})
	}
	a, jj := e.v2(map[string]any{"cmd": "modadaptive", "apiuser": "bal", "apipass": balPW, "AdaptiveInterval": 0.5})
	mustErrJSON(t, a, jj, http.StatusUnprocessableEntity, "AdaptiveInterval")

	// A read-only user may read, not change.
	e.addUser("viewer", "read-only")
	e.mustXML(e.v1(auth{user: "viewer", pass: balPW}, "showadaptive", "", nil), http.StatusOK, "showadaptive as read-only")
	mustErrXML(t, e.v1(auth{user: "viewer", pass: balPW}, "modadaptive", "MinPercent=3", nil), http.StatusForbidden, "Permission Denied")
}

// TestAdaptiveTraffic checks the effect on real traffic: two real servers
// of a service scheduled by adaptive run an agent on the path and port
// modadaptive names; the one reporting 90 % load gets far fewer requests
// than the one reporting 10 %, while before (the default agent path, which
// they do not answer) they share the work evenly.
func TestAdaptiveTraffic(t *testing.T) {
	e := newEnv(t, envOpts{dataPlane: true})
	vip, rs1, rs2 := "127.0.93.1", "127.0.93.11", "127.0.93.12"
	load := map[string]string{rs1: "90", rs2: "10"}
	port := testkit.FreePort(t, rs1)
	for _, addr := range []string{rs1, rs2} {
		ln := testkit.ListenAt(t, net.JoinHostPort(addr, strconv.Itoa(port)))
		testkit.ServeHTTP(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/agent-load" {
				_, _ = io.WriteString(w, load[addr]+"%\n")
				return
			}
			_, _ = io.WriteString(w, addr)
		}), nil)
	}
	vport := testkit.FreePort(t, vip)
	vs := fmt.Sprintf("vs=%s&port=%d&prot=tcp", vip, vport)
	e.ok1("addvs", vs+"&VStype=http&Schedule=adaptive&CheckType=tcp")
	for _, rs := range []string{rs1, rs2} {
		e.ok1("addrs", fmt.Sprintf("%s&rs=%s&rsport=%d", vs, rs, port))
	}
	url := fmt.Sprintf("http://%s:%d/", vip, vport)
	even := answers(t, url, 40)
	only(t, "before modadaptive", even, rs1, rs2)
	if even[rs1] < 12 || even[rs2] < 12 {
		t.Fatalf("without agents the work is not shared evenly: %v", even)
	}

	e.ok2("modadaptive", map[string]any{"AdaptiveURL": "/agent-load", "AdaptivePort": port, "AdaptiveInterval": 1, "MinPercent": 1})
	var last map[string]int
	testkit.EventuallyState(t, 20*time.Second, func() (bool, string) {
		last = answers(t, url, 40)
		return last[rs2] >= 30 && last[rs1] <= 10, fmt.Sprint(last)
	}, "the less loaded real server to take most of the work")
	only(t, "after modadaptive", last, rs1, rs2)
	t.Logf("before: %v; after: %v", even, last)
}
