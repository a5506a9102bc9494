package admin

import (
	"net/http/httptest"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

func TestForeignOrigin(t *testing.T) {
	tests := []struct {
		name    string
		target  string // request URL; https:// makes it a TLS request
		headers map[string]string
		foreign bool
	}{
		{name: "no browser headers (curl, SDKs)", target: "https://lb.example:8443/x"},
		{name: "same-origin fetch", target: "https://lb.example:8443/x", headers: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://lb.example:8443", "Referer": "https://lb.example:8443/ui/vs"}},
		{name: "user-initiated navigation", target: "https://lb.example:8443/x", headers: map[string]string{"Sec-Fetch-Site": "none"}},
		{name: "default port", target: "https://lb.example/x", headers: map[string]string{"Origin": "https://LB.example:443"}},
		{name: "same-site fetch", target: "https://lb.example:8443/x", headers: map[string]string{"Sec-Fetch-Site": "same-site"}, foreign: true},
		{name: "cross-site fetch", target: "https://lb.example:8443/x", headers: map[string]string{"Sec-Fetch-Site": "cross-site"}, foreign: true},
		{name: "unknown Sec-Fetch-Site", target: "https://lb.example:8443/x", headers: map[string]string{"Sec-Fetch-Site": "weird"}, foreign: true},
		{name: "origin on another port", target: "https://lb.example:8443/x", headers: map[string]string{"Origin": "https://lb.example:9000"}, foreign: true},
		{name: "origin with another scheme", target: "https://lb.example:8443/x", headers: map[string]string{"Origin": "http://lb.example:8443"}, foreign: true},
		{name: "null origin", target: "https://lb.example:8443/x", headers: map[string]string{"Origin": "null"}, foreign: true},
		{name: "foreign referer without fetch metadata", target: "https://lb.example:8443/x", headers: map[string]string{"Referer": "https://lb.example:9000/page.html"}, foreign: true},
		{name: "referer of another site", target: "https://lb.example:8443/x", headers: map[string]string{"Referer": "https://evil.example/"}, foreign: true},
		{name: "relative referer", target: "https://lb.example:8443/x", headers: map[string]string{"Referer": "/page"}, foreign: true},
		{name: "own referer", target: "https://lb.example:8443/x", headers: map[string]string{"Referer": "https://lb.example:8443/ui/?a=b"}},
		{name: "plain HTTP request, own origin", target: "http://lb.example:8080/x", headers: map[string]string{"Origin": "http://lb.example:8080"}},
		{name: "plain HTTP request, https origin", target: "http://lb.example:8080/x", headers: map[string]string{"Origin": "https://lb.example:8080"}, foreign: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			reason, foreign := ForeignOrigin(r)
			if foreign != tt.foreign || (foreign && reason == "") {
				t.Fatalf("ForeignOrigin = %q, %v; want %v", reason, foreign, tt.foreign)
			}
		})
	}
	t.Run("two Origin headers", func(t *testing.T) {
		r := httptest.NewRequest("GET", "https://lb.example/x", nil)
		r.Header.Add("Origin", "https://lb.example")
		r.Header.Add("Origin", "https://lb.example")
		if _, foreign := ForeignOrigin(r); !foreign {
			t.Fatal("two Origin headers accepted")
		}
	})
}

// TestSessionWriteSameSiteOriginRefused checks that a state-changing
// request made with a session cookie and its CSRF token is refused when a
// page of the same site but another origin made it: the documentation
// promises same-origin, not same-site (issue 15, item 9).
func TestSessionWriteSameSiteOriginRefused(t *testing.T) {
	e := newEnv(t)
	p, c, err := e.s.Login(config.FirstAdmin, adminPW, "10.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []map[string]string{
		{"Origin": "http://lb.example"},         // the same host over plain HTTP: same site, another origin
		{"Sec-Fetch-Site": "same-site"},         // a page on another port or subdomain
		{"Referer": "https://lb.example:9443/"}, // another port, seen only in the Referer
	} {
		r := withCookie(newRequest("POST", "10.0.0.1:1"), c)
		r.Header.Set(CSRFHeader, p.CSRFToken)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		if w := serve(e.s, r); w.Code != 403 {
			t.Errorf("session write with %v: status %d, want 403", h, w.Code)
		}
	}
	// The admin plane's own pages still work.
	r := withCookie(newRequest("POST", "10.0.0.1:1"), c)
	r.Header.Set(CSRFHeader, p.CSRFToken)
	r.Header.Set("Origin", "https://lb.example")
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	if w := serve(e.s, r); w.Code != 200 {
		t.Fatalf("same-origin session write: status %d, want 200", w.Code)
	}
}
