package health

// Real servers the tests start on 127.0.0.0/8: HTTP(S), TLS with a
// self-signed certificate, line protocols (SMTP, FTP, POP3, IMAP, NNTP,
// telnet), an LDAP bind responder, a UDP DNS responder and plain TCP.

import (
	"bufio"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a TCP listener on ip (127.0.0.x) and a free port.
func listen(t testing.TB, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// portOf returns the port of a listener or packet conn address.
func portOf(a net.Addr) int {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.Port
	case *net.UDPAddr:
		return a.Port
	}
	return 0
}

// targetOf returns the Target of a listener.
func targetOf(ln net.Listener) Target {
	a := ln.Addr().(*net.TCPAddr)
	return Target{Address: a.IP.String(), Port: a.Port}
}

// closedTarget returns a Target on ip where nothing listens.
func closedTarget(t testing.TB, ip string) Target {
	ln := listen(t, ip)
	tg := targetOf(ln)
	ln.Close()
	return tg
}

// tcpServer accepts connections and closes them, counting them.
type tcpServer struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func startTCP(t testing.TB, ip string) *tcpServer {
	s := &tcpServer{ln: listen(t, ip)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *tcpServer) close() { s.ln.Close(); s.wg.Wait() }

// httpBackend is an HTTP server whose answer is set by the test; it records
// the requests it gets.
type httpBackend struct {
	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	code int
	body string
	flip func() int // when set, gives the status code
	reqs []*http.Request
	done chan struct{}
}

// startHTTP serves HTTP (or HTTPS with cert) on ip.
func startHTTP(t testing.TB, ip string, cert *tls.Certificate) *httpBackend {
	t.Helper()
	return startHTTPOn(t, listen(t, ip), cert)
}

func startHTTPOn(t testing.TB, ln net.Listener, cert *tls.Certificate) *httpBackend {
	h := &httpBackend{ln: ln, code: 200, body: "ok", done: make(chan struct{})}
	h.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.mu.Lock()
			code, body := h.code, h.body
			if h.flip != nil {
				code = h.flip()
			}
			h.reqs = append(h.reqs, r.Clone(r.Context()))
			h.mu.Unlock()
			if r.Method == http.MethodPost {
				b := make([]byte, 4096)
				n, _ := r.Body.Read(b)
				h.mu.Lock()
				h.reqs[len(h.reqs)-1].Header.Set("X-Test-Body", string(b[:n]))
				h.mu.Unlock()
			}
			w.WriteHeader(code)
			_, _ = w.Write([]byte(body))
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if cert != nil {
		h.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	go func() {
		defer close(h.done)
		if cert != nil {
			_ = h.srv.ServeTLS(ln, "", "")
		} else {
			_ = h.srv.Serve(ln)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *httpBackend) set(code int, body string) {
	h.mu.Lock()
	h.code, h.body = code, body
	h.mu.Unlock()
}

func (h *httpBackend) setFlip(f func() int) {
	h.mu.Lock()
	h.flip = f
	h.mu.Unlock()
}

func (h *httpBackend) requests() []*http.Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*http.Request(nil), h.reqs...)
}

// stop closes the server and its connections; idempotent.
func (h *httpBackend) stop() {
	_ = h.srv.Close()
	<-h.done
}

func (h *httpBackend) target() Target { return targetOf(h.ln) }

// selfSigned returns a self-signed certificate for the given IPs and the
// pool that trusts it.
func selfSigned(t testing.TB, ips ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "health test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"health.test"},
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// lineProto is a server-speaks-first protocol for lineServer.
type lineProto struct {
	greeting []string          // lines sent on connect
	answers  map[string]string // command (upper case) → answer lines, "\n"-separated
	startTLS string            // command that upgrades to TLS
	tlsReply string            // its answer
	tlsNo    string            // its answer without a certificate; default "502 no TLS here"
	quit     string            // command that ends the session
	hangUp   bool              // close right after the greeting
}

// lineServer speaks a line protocol on ip; with cert it upgrades on
// proto.startTLS. It counts sessions that reached TLS.
type lineServer struct {
	ln       net.Listener
	wg       sync.WaitGroup
	tlsCount atomic.Int64
	quits    atomic.Int64
}

func startLine(t testing.TB, ip string, p lineProto, cert *tls.Certificate) *lineServer {
	t.Helper()
	s := &lineServer{ln: listen(t, ip)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				s.session(c, p, cert)
			}()
		}
	}()
	t.Cleanup(func() { s.ln.Close(); s.wg.Wait() })
	return s
}

func (s *lineServer) session(c net.Conn, p lineProto, cert *tls.Certificate) {
	var conn net.Conn = c
	w := func(lines ...string) bool {
		for _, l := range lines {
			if _, err := conn.Write([]byte(l + "\r\n")); err != nil {
				return false
			}
		}
		return true
	}
	if !w(p.greeting...) || p.hangUp {
		return
	}
	r := bufio.NewReader(conn)
	for range 20 {
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(l))
		switch {
		case p.startTLS != "" && cmd == p.startTLS:
			if cert == nil {
				w(cmp.Or(p.tlsNo, "502 no TLS here"))
				continue
			}
			w(p.tlsReply)
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*cert}})
			if tc.Handshake() != nil {
				return
			}
			s.tlsCount.Add(1)
			conn, r = tc, bufio.NewReader(tc)
		case cmd == p.quit:
			s.quits.Add(1)
			w("221 bye")
			return
		default:
			if a, ok := p.answers[cmd]; ok {
				w(strings.Split(a, "\n")...)
			} else {
				w("500 what?")
			}
		}
	}
}

func (s *lineServer) target() Target { return targetOf(s.ln) }

// The protocols as test servers speak them.
var (
	smtpProto = lineProto{
		greeting: []string{"220-mail.test ESMTP", "220 ready"},
		answers:  map[string]string{"EHLO FULCRUM": "250-mail.test\n250 STARTTLS"},
		startTLS: "STARTTLS", tlsReply: "220 go ahead", quit: "QUIT",
	}
	ftpProto = lineProto{
		greeting: []string{"220-Welcome", " to the test FTP server", "220 ready"},
		startTLS: "AUTH TLS", tlsReply: "234 AUTH TLS ok", quit: "QUIT",
	}
	pop3Proto = lineProto{greeting: []string{"+OK POP3 ready"}, startTLS: "STLS", tlsReply: "+OK begin TLS", quit: "QUIT"}
	imapProto = lineProto{
		greeting: []string{"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready"},
		startTLS: "F1 STARTTLS", tlsReply: "f1 OK begin TLS", tlsNo: "f1 NO no TLS here", quit: "F2 LOGOUT",
	}
	nntpProto   = lineProto{greeting: []string{"200 news.test ready"}, startTLS: "STARTTLS", tlsReply: "382 continue", quit: "QUIT"}
	telnetProto = lineProto{greeting: []string{"\xff\xfd\x18\xff\xfd\x20login:"}}
)

// ldapServer answers BindRequests with a result code.
type ldapServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	code  atomic.Int32
	binds atomic.Int64
}

func startLDAP(t testing.TB, ip string) *ldapServer {
	s := &ldapServer{ln: listen(t, ip)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				s.session(c)
			}()
		}
	}()
	t.Cleanup(func() { s.ln.Close(); s.wg.Wait() })
	return s
}

func (s *ldapServer) session(c net.Conn) {
	for range 4 {
		msg, err := readBERMessage(c)
		if err != nil {
			return
		}
		_, body, _, err := berRead(msg)
		if err != nil {
			return
		}
		_, idb, body, err := berRead(body)
		if err != nil {
			return
		}
		id, _ := berIntValue(idb)
		tag, op, _, err := berRead(body)
		if err != nil || tag != ldapBindReq {
			return // unbind or anything else ends the session
		}
		_, ver, _, err := berRead(op)
		if v, _ := berIntValue(ver); err != nil || v != 3 {
			return
		}
		s.binds.Add(1)
		code := int(s.code.Load())
		var resp []byte
		resp = berTLV(resp, berEnumerated, berInt(code))
		resp = berTLV(resp, berOctetString, nil)
		diag := ""
		if code != 0 {
			diag = "anonymous binds are disabled"
		}
		resp = berTLV(resp, berOctetString, []byte(diag))
		m := berTLV(nil, berInteger, berInt(id))
		m = berTLV(m, ldapBindResp, resp)
		if _, err := c.Write(berTLV(nil, berSequence, m)); err != nil {
			return
		}
	}
}

func (s *ldapServer) target() Target { return targetOf(s.ln) }

// dnsServer answers every query over UDP with rcode, echoing the question.
type dnsServer struct {
	pc      net.PacketConn
	wg      sync.WaitGroup
	rcode   atomic.Int32
	queries atomic.Int64
	mu      sync.Mutex
	names   []string
}

func startDNS(t testing.TB, ip string) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if n < 12 {
				continue
			}
			name, off, err := readDNSName(q, 12)
			if err != nil || off+4 > n {
				continue
			}
			s.queries.Add(1)
			s.mu.Lock()
			s.names = append(s.names, name)
			s.mu.Unlock()
			resp := append([]byte(nil), q[:off+4]...)
			flags := uint16(0x8000|0x0100|0x0080) | uint16(s.rcode.Load())
			binary.BigEndian.PutUint16(resp[2:], flags)
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	t.Cleanup(func() { pc.Close(); s.wg.Wait() })
	return s
}

func (s *dnsServer) target() Target {
	a := s.pc.LocalAddr().(*net.UDPAddr)
	return Target{Address: a.IP.String(), Port: a.Port}
}

// byteServer answers whatever it reads with reply and closes.
func startBytes(t testing.TB, ip string, reply []byte) net.Listener {
	ln := listen(t, ip)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				b := make([]byte, 64)
				if _, err := c.Read(b); err != nil {
					return
				}
				_, _ = c.Write(reply)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relisten opens a listener on exactly addr ("ip:port"), retrying briefly
// while the port is still being released.
func relisten(t testing.TB, addr string) net.Listener {
	t.Helper()
	var err error
	for range 100 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("relisten %s: %v", addr, err)
	return nil
}
