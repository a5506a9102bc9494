package testkit

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// HTTPServer is an HTTP or HTTPS backend on a 127.x address, a real
// net/http server on a real socket (unlike httptest, it listens where the
// test says and serves the certificate the test gives). Close, which
// t.Cleanup calls, closes it and its connections and waits for it.
type HTTPServer struct {
	srv    *http.Server
	ln     net.Listener
	scheme string
	done   chan struct{}
	once   sync.Once
}

// StartHTTP serves h over plain HTTP on a free port of ip.
func StartHTTP(t testing.TB, ip string, h http.Handler) *HTTPServer {
	t.Helper()
	return ServeHTTP(t, Listen(t, ip), h, nil)
}

// StartHTTPS serves h over HTTPS with cert on a free port of ip.
func StartHTTPS(t testing.TB, ip string, h http.Handler, cert tls.Certificate) *HTTPServer {
	t.Helper()
	return ServeHTTP(t, Listen(t, ip), h, &tls.Config{Certificates: []tls.Certificate{cert}})
}

// ServeHTTP serves h on ln, which it owns from then on: over TLS with cfg,
// or plain HTTP when cfg is nil. Use it with ListenAt to serve on a given
// port, or with a cfg of your own (client certificates, versions).
func ServeHTTP(t testing.TB, ln net.Listener, h http.Handler, cfg *tls.Config) *HTTPServer {
	t.Helper()
	s := &HTTPServer{ln: ln, scheme: "http", done: make(chan struct{})}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	if cfg != nil {
		s.scheme = "https"
		s.srv.TLSConfig = cfg
	}
	go func() {
		defer close(s.done)
		if cfg != nil {
			_ = s.srv.ServeTLS(ln, "", "")
		} else {
			_ = s.srv.Serve(ln)
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// Close closes the server and its connections and waits for it to stop
// serving. It may be called more than once.
func (s *HTTPServer) Close() {
	s.once.Do(func() {
		_ = s.srv.Close()
		<-s.done
	})
}

// Addr returns the address the server listens on, "ip:port".
func (s *HTTPServer) Addr() string { return s.ln.Addr().String() }

// IP returns the IP address the server listens on.
func (s *HTTPServer) IP() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port returns the port the server listens on.
func (s *HTTPServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// URL returns the server's base URL, "http://ip:port" or "https://ip:port".
func (s *HTTPServer) URL() string { return s.scheme + "://" + s.Addr() }
