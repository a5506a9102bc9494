package metrics

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// abortWeb is a real HTTP server: /slow sends the head of a 1 MB body
// and then 1,000 bytes of it every 20 ms (for at most 10 s) until the
// connection goes;
// /cut sends the head of a 1 MB body and 1,000 bytes of it and closes
// the connection.
func abortWeb(t *testing.T) int {
	const size = 1 << 20
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			w.Header().Set("Content-Length", strconv.Itoa(size))
			w.WriteHeader(200)
			// 1,000 bytes every 20 ms: the whole body would take 20 s.
			end := time.Now().Add(10 * time.Second)
			for time.Now().Before(end) {
				if _, err := w.Write([]byte(strings.Repeat("s", 1000))); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		case "/cut":
			c, bw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", size, strings.Repeat("c", 1000))
			_ = bw.Flush()
			_ = c.Close()
		default:
			fmt.Fprint(w, "ok")
		}
	})
	return testkit.StartHTTP(t, "127.0.0.1", h).Port()
}

// TestAbortsMeasured: at layer 7, over HTTP/1.1 and HTTP/2, a client that
// goes away in the middle of a slow answer is a client abort, and a real
// server that closes its connection in the middle of the body is a server
// abort — in the service's and the real server's counters, the HAProxy
// families and the access log's termination.
func TestAbortsMeasured(t *testing.T) {
	ca := testkit.NewCA(t, "Abort Test Root")
	cert := ca.Server(t, "www.example.test", "127.0.0.1")
	for _, tc := range []struct {
		name   string
		h2     bool
		tls    bool // HTTP/1.1 over TLS: the body is copied, not spliced
		path   string
		server bool // a server abort, else a client abort
		term   string
	}{
		{name: "http1-client", path: "/slow", term: "client-abort"},
		{name: "http1-server", path: "/cut", server: true, term: "server-abort"},
		{name: "https1-client", tls: true, path: "/slow", term: "client-abort"},
		{name: "https1-server", tls: true, path: "/cut", server: true, term: "server-abort"},
		{name: "http2-client", h2: true, path: "/slow", term: "client-abort"},
		{name: "http2-server", h2: true, path: "/cut", server: true, term: "server-abort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &accesslog.Memory{}
			p := newPlaneLog(t, 0, rec)
			port := testkit.FreePort(t, "127.0.0.1")
			vs := config.VirtualService{ID: 1, NickName: "web", Address: "127.0.0.1", Port: port, Protocol: "tcp", Type: "http",
				HealthCheck: config.HealthCheck{Type: "none"}, AccessLog: true,
				RealServers: []config.RealServer{{ID: 2, Address: "127.0.0.1", Port: abortWeb(t), Weight: 1}}}
			if tc.h2 {
				vs.Type = "http2"
			}
			if tc.h2 || tc.tls {
				vs.TLS = config.TLS{Offload: true, Certificates: []string{"site"}}
			}
			dir := t.TempDir()
			p.apply(t, func(c *config.Config) {
				c.Certificates = []config.Certificate{{Name: "site", CertPEM: cert.CertPEM(), KeyPEM: cert.KeyPEM()}}
				c.Options.Logging.AccessLog.File = dir + "/access.log" // a destination, so that the service logs
			}, vs)
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

			if tc.h2 {
				tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "www.example.test", NextProtos: []string{"h2"}},
					ForceAttemptHTTP2: true}
				defer tr.CloseIdleConnections()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr+tc.path, nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				if resp.ProtoMajor != 2 {
					t.Fatalf("answered over %s", resp.Proto)
				}
				buf := make([]byte, 500)
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatalf("first part of the body: %v", err)
				}
				if tc.server {
					if _, err := io.Copy(io.Discard, resp.Body); err == nil {
						t.Fatal("a body the server broke off was read whole")
					}
				}
				cancel() // the client resets the stream
				_ = resp.Body.Close()
			} else {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if tc.tls {
					c = tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "www.example.test", NextProtos: []string{"http/1.1"}})
				}
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: www.example.test\r\n\r\n", tc.path)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 500)
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatalf("first part of the body: %v", err)
				}
				if tc.server {
					if _, err := io.Copy(io.Discard, resp.Body); err == nil {
						t.Fatal("a body the server broke off was read whole")
					}
				}
				_ = c.Close()
			}

			wantClient, wantServer := int64(1), int64(0)
			if tc.server {
				wantClient, wantServer = 0, 1
			}
			testkit.EventuallyState(t, 15*time.Second, func() (bool, string) {
				st := p.e.Status()[0]
				h, rs := st.L7.HTTP, st.RealServers[0]
				return h.Requests == 1 && len(rec.Entries()) == 1 && h.Aborted == 1,
					fmt.Sprintf("requests %d, aborted %d (client %d, server %d); real server client %d, server %d; %d log entries",
						h.Requests, h.Aborted, h.ClientAborts, h.ServerAborts, rs.ClientAborts, rs.ServerAborts, len(rec.Entries()))
			}, "the request to end")
			st := p.e.Status()[0]
			h, rs := st.L7.HTTP, st.RealServers[0]
			if h.ClientAborts != wantClient || h.ServerAborts != wantServer || rs.ClientAborts != wantClient || rs.ServerAborts != wantServer {
				t.Errorf("service aborts client %d server %d, real server client %d server %d; want client %d server %d",
					h.ClientAborts, h.ServerAborts, rs.ClientAborts, rs.ServerAborts, wantClient, wantServer)
			}
			if en := rec.Entries()[0]; en.Termination != tc.term {
				t.Errorf("access log termination %q, want %q (status %d, %d bytes out)", en.Termination, tc.term, en.Status, en.BytesOut)
			}
			fams := p.scrape(t)
			web := map[string]string{"proxy": "web"}
			for name, want := range map[string]int64{
				"haproxy_backend_client_aborts_total": wantClient, "haproxy_backend_server_aborts_total": wantServer,
				"haproxy_server_client_aborts_total": wantClient, "haproxy_server_server_aborts_total": wantServer,
			} {
				if v := metric(t, fams, name, web); v != float64(want) {
					t.Errorf("%s = %v, want %d", name, v, want)
				}
			}
		})
	}
}
