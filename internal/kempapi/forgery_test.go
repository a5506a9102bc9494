package kempapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestSameSiteForgeryRefused reproduces issue 15, item 4: a page on
// another port of the same host renamed a service with
// <img src="https://lb:8443/access/modvs?vs=1&NickName=x"> in a browser
// holding Basic credentials, which sends Sec-Fetch-Site: same-site; a
// cross-origin Referer without fetch metadata was accepted too. Such
// requests must be refused for every command that changes something, while
// curl-like requests (none of these headers) and reads keep working.
func TestSameSiteForgeryRefused(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.ok1("addvs", "vs=127.0.95.1&port=8080&prot=tcp&NickName=before")
	u, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	sameSite := "https://" + u.Hostname() + ":1" // another port of the same host
	nickname := func() string {
		t.Helper()
		return e.ctl.Current().Config.VirtualServices[0].NickName
	}
	get := func(cmd, query string, headers map[string]string) answer {
		t.Helper()
		r, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/access/"+cmd+"?"+query, nil)
		r.SetBasicAuth("bal", balPW)
		for k, v := range headers {
			r.Header.Set(k, v)
		}
		return e.do(r)
	}

	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image", "Referer": sameSite + "/"},
		{"Sec-Fetch-Site": "same-site"},
		{"Referer": sameSite + "/page.html"},  // an older browser: no fetch metadata
		{"Referer": "https://evil.example/x"}, // another site, no fetch metadata
		{"Origin": sameSite, "Sec-Fetch-Site": "same-site"},
	} {
		a := get("modvs", "vs=1&NickName=forged", h)
		mustErrXML(t, a, http.StatusForbidden, "Permission Denied")
		if !strings.Contains(string(a.body), "another origin") {
			t.Errorf("refusal with %v gives no reason: %s", h, a.body)
		}
		if got := nickname(); got != "before" {
			t.Fatalf("modvs with %v renamed the service to %q", h, got)
		}
	}
	// Other state-changing commands are refused the same way.
	for _, c := range []struct{ cmd, q string }{
		{"delvs", "vs=1"},
		{"addrs", "vs=1&rs=127.0.95.2&rsport=80"},
		{"set", "param=enableapi&value=no"},
		{"addapikey", ""},
		{"usersetsyspassword", "password=" + url.QueryEscape("a new long password")},
		{"nosuchcommand", ""},
	} {
		mustErrXML(t, get(c.cmd, c.q, map[string]string{"Sec-Fetch-Site": "same-site"}), http.StatusForbidden, "Permission Denied")
	}

	// Reads stay open to same-site pages (a browser cannot read the answer
	// of another origin anyway), and a typed URL (Sec-Fetch-Site: none) or
	// the admin plane's own pages may change things.
	e.mustXML(get("listvs", "", map[string]string{"Sec-Fetch-Site": "same-site"}), http.StatusOK, "same-site listvs")
	e.mustXML(get("modvs", "vs=1&NickName=typed", map[string]string{"Sec-Fetch-Site": "none"}), http.StatusOK, "typed modvs")
	e.mustXML(get("modvs", "vs=1&NickName=own", map[string]string{"Sec-Fetch-Site": "same-origin", "Referer": e.srv.URL + "/ui"}), http.StatusOK, "same-origin modvs")

	// curl and the SDKs send no fetch metadata: they keep working.
	e.ok1("modvs", "vs=1&NickName=curl")
	if got := nickname(); got != "curl" {
		t.Fatalf("curl-like modvs: nickname %q", got)
	}

	// v2: every command is refused from another origin, before the body
	// is read; without browser headers it works.
	for _, h := range []map[string]string{{"Sec-Fetch-Site": "same-site"}, {"Origin": sameSite}, {"Referer": sameSite + "/"}} {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2",
			strings.NewReader(`{"cmd":"modvs","vs":"1","NickName":"forged2","apiuser":"bal","apipass":"`+balPW+`"}`))
		r.Header.Set("Content-Type", "text/plain") // what an HTML form can send
		for k, v := range h {
			r.Header.Set(k, v)
		}
		a := e.do(r)
		j, err := parseJSON(a.body)
		if err != nil {
			t.Fatal(err)
		}
		mustErrJSON(t, a, j, http.StatusForbidden, "Permission Denied")
	}
	if got := nickname(); got != "curl" {
		t.Fatalf("v2 forgery renamed the service to %q", got)
	}
	e.ok2("modvs", map[string]any{"vs": "1", "NickName": "v2"})
	if got := nickname(); got != "v2" {
		t.Fatalf("curl-like v2 modvs: nickname %q", got)
	}
}

// TestReadOnlyCommandsAreReads keeps the readOnly marks honest: a command
// marked read-only needs no more than the read permission (or, for
// backup, the permission to read secrets) and changes no revision.
func TestReadOnlyCommandsAreReads(t *testing.T) {
	for name, c := range commands {
		if !c.readOnly {
			continue
		}
		if c.permFn != nil || c.binary || (c.perm != 0 && c.perm > 2 && name != "userlist") {
			t.Errorf("%s is marked read-only but needs %v", name, c.perm)
		}
	}
	e := newEnv(t, envOpts{})
	e.ok1("addvs", "vs=127.0.96.1&port=80")
	before := e.ctl.Current().Revision
	for name, c := range commands {
		if c.readOnly && name != "backup" {
			e.v1(auth{}, name, "vs=1&param=version&cert=x&user=bal", nil)
		}
	}
	if after := e.ctl.Current().Revision; after != before {
		t.Fatalf("read-only commands made revision %d from %d", after, before)
	}
}
