package lync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

const exVIP = "127.0.1.40"

// TestExchangeTemplate publishes two emulated Mailbox servers with the
// Exchange 2013/2016 template: every protocol's SubVS comes Up from its own
// Managed Availability page, requests are routed by path, port 80
// redirects to HTTPS, and verification is green.
func TestExchangeTemplate(t *testing.T) {
	p := newPKI(t)
	roots := x509.NewCertPool()
	roots.AddCert(p.root)
	for _, a := range []string{"127.0.2.31", "127.0.2.32"} {
		startServer(t, a, "mailbox", p, []int{443}, nil, nil)
	}
	a := startAppliance(t)
	if c := a.do("POST", "/api/v1/certificates", map[string]any{"name": "mail", "pem": p.publicBundle}, nil); c != 201 {
		t.Fatal("certificate import")
	}
	if c := a.do("POST", "/api/v1/certificates", map[string]any{"name": "mail-ca", "pem": p.interPEM, "intermediate": true}, nil); c != 201 {
		t.Fatal("intermediate import")
	}
	params := map[string]any{"vip": exVIP, "certificate": "mail", "servers": []string{"127.0.2.31", "127.0.2.32"},
		"mailHost": "meet.example.com", "autodiscoverHost": "lyncweb.example.com"} // names the test certificate covers
	if c := a.do("POST", "/api/v1/templates/exchange2013-2016/instantiate", map[string]any{"parameters": params}, nil); c != 201 {
		t.Fatal("instantiate")
	}
	testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
		for _, v := range a.status() {
			if v.Port == 443 && v.Health != "Up" {
				return false, v.Health
			}
		}
		return true, ""
	}, "Exchange services Up")
	d := &net.Dialer{Timeout: 5 * time.Second}
	cl := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(address)
				return d.DialContext(ctx, network, net.JoinHostPort(exVIP, port))
			}}}
	for _, path := range []string{"/owa/", "/EWS/Exchange.asmx", "/mapi/emsmdb/", "/Microsoft-Server-ActiveSync"} {
		resp, err := cl.Get("https://meet.example.com" + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	resp, err := cl.Get("http://meet.example.com/owa/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://meet.example.com/owa/" {
		t.Errorf("port 80: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var rep struct{ Passed, Failed int }
	a.do("POST", "/api/v1/verify", map[string]any{"caPem": p.rootPEM}, &rep)
	if rep.Passed != 8 || rep.Failed != 0 {
		t.Errorf("verify: %d passed, %d failed", rep.Passed, rep.Failed)
	}
	// Routing by path: each protocol's SubVS counted its own requests.
	var st struct {
		VirtualServices []struct {
			Port int `json:"port"`
			L7   *struct {
				SubVSs []struct {
					Nickname string `json:"nickname"`
					Requests int64  `json:"requests"`
				} `json:"subVSs"`
			} `json:"l7"`
		} `json:"virtualServices"`
	}
	a.do("GET", "/api/v1/status", nil, &st)
	counted := map[string]int64{}
	for _, v := range st.VirtualServices {
		if v.Port == 443 && v.L7 != nil {
			for _, s := range v.L7.SubVSs {
				counted[s.Nickname] = s.Requests
			}
		}
	}
	for _, n := range []string{"Exchange OWA", "Exchange EWS", "Exchange MAPI", "Exchange ActiveSync"} {
		if counted[n] < 1 {
			t.Errorf("SubVS %s counted no request: %v", n, counted)
		}
	}
}
