package health

// Real servers the tests start on 127.0.0.0/8 (on internal/testkit's
// backends): HTTP(S) with a self-signed certificate, line protocols (SMTP,
// FTP, POP3, IMAP, NNTP, telnet), an LDAP bind responder, a UDP DNS
// responder and plain TCP.

import (
	"bufio"
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// addrOf is a test server: a testkit backend.
type addrOf interface {
	IP() string
	Port() int
}

// targetOf returns the Target of a test server.
func targetOf(s addrOf) Target { return Target{Address: s.IP(), Port: s.Port()} }

// closedTarget returns a Target on ip where nothing listens.
func closedTarget(t testing.TB, ip string) Target {
	return Target{Address: ip, Port: testkit.FreePort(t, ip)}
}

// startTCP starts a backend that accepts connections and closes them; its
// Accepted counts them.
func startTCP(t testing.TB, ip string) *testkit.TCPServer { return testkit.StartTCP(t, ip, nil) }

// httpBackend is an HTTP server whose answer is set by the test; it records
// the requests it gets.
type httpBackend struct {
	srv  *testkit.HTTPServer
	mu   sync.Mutex
	code int
	body string
	flip func() int // when set, gives the status code
	reqs []*http.Request
}

// startHTTP serves HTTP (or HTTPS with cert) on ip.
func startHTTP(t testing.TB, ip string, cert *tls.Certificate) *httpBackend {
	t.Helper()
	return startHTTPOn(t, testkit.Listen(t, ip), cert)
}

func startHTTPOn(t testing.TB, ln net.Listener, cert *tls.Certificate) *httpBackend {
	h := &httpBackend{code: 200, body: "ok"}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})
	var cfg *tls.Config
	if cert != nil {
		cfg = &tls.Config{Certificates: []tls.Certificate{*cert}}
	}
	h.srv = testkit.ServeHTTP(t, ln, handler, cfg)
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
func (h *httpBackend) stop() { h.srv.Close() }

func (h *httpBackend) target() Target { return targetOf(h.srv) }

// selfSigned returns a self-signed certificate for health.test and the
// given IPs, and the pool that trusts it.
func selfSigned(t testing.TB, ips ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	c := testkit.SelfSigned(t, testkit.Leaf{CommonName: "health test", Names: append([]string{"health.test"}, ips...)})
	return c.TLS(), c.Pool()
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
	srv      *testkit.TCPServer
	tlsCount atomic.Int64
	quits    atomic.Int64
}

func startLine(t testing.TB, ip string, p lineProto, cert *tls.Certificate) *lineServer {
	t.Helper()
	s := &lineServer{}
	s.srv = testkit.StartTCP(t, ip, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		s.session(c, p, cert)
	})
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

func (s *lineServer) target() Target { return targetOf(s.srv) }

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
	srv   *testkit.TCPServer
	code  atomic.Int32
	binds atomic.Int64
}

func startLDAP(t testing.TB, ip string) *ldapServer {
	s := &ldapServer{}
	s.srv = testkit.StartTCP(t, ip, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		s.session(c)
	})
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

func (s *ldapServer) target() Target { return targetOf(s.srv) }

// dnsServer answers every query over UDP with rcode, echoing the question.
type dnsServer struct {
	srv     *testkit.UDPServer
	rcode   atomic.Int32
	queries atomic.Int64
	mu      sync.Mutex
	names   []string
}

func startDNS(t testing.TB, ip string) *dnsServer {
	t.Helper()
	s := &dnsServer{}
	s.srv = testkit.StartUDP(t, ip, s.answer)
	return s
}

// serveDNS serves DNS on pc, which it owns from then on.
func serveDNS(t testing.TB, pc net.PacketConn) *dnsServer {
	t.Helper()
	s := &dnsServer{}
	s.srv = testkit.ServeUDP(t, pc, s.answer)
	return s
}

// answer answers query q from from on pc.
func (s *dnsServer) answer(pc net.PacketConn, from net.Addr, q []byte) {
	n := len(q)
	if n < 12 {
		return
	}
	name, off, err := readDNSName(q, 12)
	if err != nil || off+4 > n {
		return
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

func (s *dnsServer) target() Target { return targetOf(s.srv) }

// startBytes starts a backend that answers whatever it reads with reply
// and closes.
func startBytes(t testing.TB, ip string, reply []byte) *testkit.TCPServer {
	return testkit.StartTCPFixed(t, ip, reply)
}
