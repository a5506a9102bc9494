package testkit

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

func TestHTTPBackends(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", r.Host, r.URL.Path) })
	ca := NewCA(t, "testkit root")
	plain := StartHTTP(t, "127.0.0.9", h)
	secure := StartHTTPS(t, "127.0.0.9", h, ca.Server(t, "127.0.0.9").TLS())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, tc := range []struct {
		srv    *HTTPServer
		scheme string
	}{{plain, "http"}, {secure, "https"}} {
		if tc.srv.URL() != tc.scheme+"://"+tc.srv.Addr() || tc.srv.IP() != "127.0.0.9" || !strings.HasSuffix(tc.srv.Addr(), ":"+itoa(tc.srv.Port())) {
			t.Errorf("URL %s, address %s", tc.srv.URL(), tc.srv.Addr())
		}
		if got, want := get(t, c, tc.srv.URL()+"/a"), "200 "+tc.srv.Addr()+" /a"; got != want {
			t.Errorf("%s: %q, want %q", tc.scheme, got, want)
		}
	}
	// Served again on the same address after a stop.
	addr := plain.Addr()
	plain.Close()
	tr.CloseIdleConnections()
	again := ServeHTTP(t, ListenAt(t, addr), http.NotFoundHandler(), nil)
	if got := get(t, c, again.URL()+"/"); !strings.HasPrefix(got, "404 ") {
		t.Errorf("restarted server: %q", got)
	}
}
