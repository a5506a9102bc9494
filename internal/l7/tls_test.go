package l7

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// portOr returns want when it can be bound on ip (it can as root), else a
// free port, so that the PAT tests use the real 443/4443/80/8080 where
// they can.
func portOr(t testing.TB, ip string, want int) int {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, want))
	if err != nil {
		t.Logf("%s:%d not available (%v); using a free port", ip, want, err)
		return testkit.FreePort(t, ip)
	}
	ln.Close()
	return want
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// certYAML renders a certificate entry of a configuration document.
func certYAML(name, certPEM, keyPEM string, intermediate bool) string {
	s := fmt.Sprintf("- name: %s\n  intermediate: %v\n  certPem: |\n%s\n", name, intermediate, indent(certPEM, 4))
	if keyPEM != "" {
		s += fmt.Sprintf("  keyPem: |\n%s\n", indent(keyPEM, 4))
	}
	return s
}

// TestOffloadReencryptPAT is the Lync reverse proxy: clients reach
// https://meet.example.com on 443, Fulcrum terminates TLS with the public
// certificate and its intermediate, and forwards to the front ends on 4443
// over TLS verified against their CA, sending the configured SNI.
func TestOffloadReencryptPAT(t *testing.T) {
	pub := testkit.NewCA(t, "Public Root")
	inter := pub.Intermediate(t, "Public Intermediate")
	leafC, leafK := pemPair(inter.Server(t, "meet.example.com"))
	internal := testkit.NewCA(t, "Internal CA")
	feC, feK := pemPair(internal.Server(t, "fe.internal"))
	vsPort := portOr(t, "127.0.4.43", 443)
	fePort := portOr(t, "127.0.4.44", 4443)
	startReal(t, "fe1", "127.0.4.44", fePort, nil, keyPair(t, feC, feK))
	doc := fmt.Sprintf(`
certificates:
%s%s
virtualServices:
- address: 127.0.4.43
  port: %d
  type: http
  tls:
    offload: true
    reencrypt: true
    verifyServer: true
    serverName: fe.internal
    certificates: [meet]
    caBundle: |
%s
  realServers: [{address: 127.0.4.44, port: %d}]
`, certYAML("meet", leafC, leafK, false), certYAML("public-inter", inter.CertPEM(), "", true), vsPort, indent(internal.CertPEM(), 6), fePort)
	f := startVS(t, doc)
	c := f.client(&tls.Config{RootCAs: pub.Pool(), ServerName: "meet.example.com"})
	resp, rep := getEcho(t, c, "https://meet.example.com/meet/abc", nil)
	if resp.StatusCode != 200 || rep.Server != "fe1" || !rep.TLS || rep.SNI != "fe.internal" || rep.URI != "/meet/abc" {
		t.Fatalf("status %d reply %+v", resp.StatusCode, rep)
	}
	if got := rep.Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
	if n := len(resp.TLS.PeerCertificates); n != 2 {
		t.Errorf("client got %d certificates, want leaf and intermediate", n)
	}

	// A real server whose certificate does not verify gets no request.
	rogueC, rogueK := pemPair(testkit.NewCA(t, "Rogue").Server(t, "fe.internal"))
	rogue := startReal(t, "rogue", "127.0.4.45", 0, nil, keyPair(t, rogueC, rogueK))
	_, port, _ := net.SplitHostPort(rogue.addr)
	doc2 := strings.Replace(strings.Replace(doc, fmt.Sprintf("address: 127.0.4.44, port: %d", fePort), "address: 127.0.4.45, port: "+port, 1),
		fmt.Sprintf("port: %d", vsPort), fmt.Sprintf("port: %d", testkit.FreePort(t, "127.0.4.43")), 1)
	f2 := startVS(t, doc2)
	resp2, _ := getEcho(t, f2.client(&tls.Config{RootCAs: pub.Pool(), ServerName: "meet.example.com"}), "https://meet.example.com/", nil)
	if resp2.StatusCode != 502 || rogue.requests.Load() != 0 {
		t.Errorf("unverified real server: status %d, it saw %d requests", resp2.StatusCode, rogue.requests.Load())
	}
}

// TestPlainPAT80to8080 forwards port 80 to 8080.
func TestPlainPAT80to8080(t *testing.T) {
	vsPort := portOr(t, "127.0.0.80", 80)
	rsPort := portOr(t, "127.0.0.81", 8080)
	startReal(t, "web", "127.0.0.81", rsPort, nil, nil)
	f := startVS(t, fmt.Sprintf("virtualServices:\n- {address: 127.0.0.80, port: %d, type: http, realServers: [{address: 127.0.0.81, port: %d}]}\n", vsPort, rsPort))
	_, rep := getEcho(t, f.client(nil), "http://meet.example.com/", nil)
	if rep.Server != "web" || rep.Host != "meet.example.com" {
		t.Fatalf("reply %+v", rep)
	}
}

// TestSNI chooses between two certificates by SNI: exact name, wildcard,
// and the first certificate as default; needHostName refuses no SNI.
func TestSNI(t *testing.T) {
	root := testkit.NewCA(t, "Root")
	aC, aK := pemPair(root.Server(t, "a.example.com"))
	wC, wK := pemPair(root.Server(t, "*.b.example.com"))
	rsPort := testkit.FreePort(t, "127.0.0.3")
	startReal(t, "rs", "127.0.0.3", rsPort, nil, nil)
	doc := fmt.Sprintf(`
certificates:
%s%s
virtualServices:
- address: 127.0.0.2
  port: %d
  type: http
  tls: {offload: true, certificates: [cert-a, cert-b]}
  realServers: [{address: 127.0.0.3, port: `+strconv.Itoa(rsPort)+`}]
`, certYAML("cert-a", aC, aK, false), certYAML("cert-b", wC, wK, false), testkit.FreePort(t, "127.0.0.2"))
	f := startVS(t, doc)
	for _, tt := range []struct{ sni, want string }{
		{"a.example.com", "a.example.com"},
		{"A.Example.COM", "a.example.com"},
		{"x.b.example.com", "*.b.example.com"},
		{"deep.x.b.example.com", "a.example.com"}, // wildcards cover one label: default
		{"other.example.org", "a.example.com"},
		{"", "a.example.com"},
	} {
		c, err := tls.Dial("tcp", f.addr, &tls.Config{ServerName: tt.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("sni %q: %v", tt.sni, err)
		}
		got := c.ConnectionState().PeerCertificates[0].Subject.CommonName
		c.Close()
		if got != tt.want {
			t.Errorf("sni %q: certificate %q, want %q", tt.sni, got, tt.want)
		}
	}
	f2 := startVS(t, strings.Replace(strings.Replace(doc, "offload: true", "offload: true, needHostName: true", 1),
		"port: "+strings.Split(f.addr, ":")[1], fmt.Sprintf("port: %d", testkit.FreePort(t, "127.0.0.2")), 1))
	if c, err := tls.Dial("tcp", f2.addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Error("a client without SNI was accepted with needHostName")
	}
}

// TestIntermediateServedInChain checks with openssl s_client -showcerts
// that the intermediate imported separately is sent after the leaf.
func TestIntermediateServedInChain(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is required in CI (scripts/test installs it)")
		}
		t.Skip("openssl not installed")
	}
	root := testkit.NewCA(t, "Chain Root")
	inter := root.Intermediate(t, "Chain Intermediate")
	lc, lk := pemPair(inter.Server(t, "chain.example.com"))
	rsPort := testkit.FreePort(t, "127.0.0.3")
	startReal(t, "rs", "127.0.0.3", rsPort, nil, nil)
	f := startVS(t, fmt.Sprintf(`
certificates:
%s%s
virtualServices:
- {address: 127.0.0.2, port: %d, type: http, tls: {offload: true, certificates: [leaf]}, realServers: [{address: 127.0.0.3, port: `+strconv.Itoa(rsPort)+`}]}
`, certYAML("inter", inter.CertPEM(), "", true), certYAML("leaf", lc, lk, false), testkit.FreePort(t, "127.0.0.2")))
	cmd := exec.Command(openssl, "s_client", "-connect", f.addr, "-servername", "chain.example.com", "-showcerts")
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	s := string(out)
	if n := strings.Count(s, "-----BEGIN CERTIFICATE-----"); n != 2 {
		t.Errorf("openssl saw %d certificates, want 2:\n%s", n, s)
	}
	if !strings.Contains(s, "CN=Chain Intermediate") && !strings.Contains(s, "CN = Chain Intermediate") {
		t.Errorf("intermediate not in the chain:\n%s", s)
	}
}

// TestHTTP2ClientHTTP1Servers: an HTTP/2 client (ALPN h2) is served over
// HTTP/1.1 keep-alive connections to the real servers.
func TestHTTP2ClientHTTP1Servers(t *testing.T) {
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "h2.example.com"))
	rsPort := testkit.FreePort(t, "127.0.0.3")
	a := startReal(t, "a", "127.0.0.3", rsPort, nil, nil)
	f := startVS(t, fmt.Sprintf(`
certificates:
%s
virtualServices:
- {address: 127.0.0.2, port: %d, type: http2, tls: {offload: true, certificates: [c]}, realServers: [{address: 127.0.0.3, port: `+strconv.Itoa(rsPort)+`}]}
`, certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2")))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: root.Pool(), ServerName: "h2.example.com"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, f.addr)
		}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range 5 {
		resp, rep := getEcho(t, c, fmt.Sprintf("https://h2.example.com/s/%d", i), map[string]string{"X-Forwarded-For": "6.6.6.6"})
		if resp.ProtoMajor != 2 || rep.Proto != "HTTP/1.1" || rep.URI != fmt.Sprintf("/s/%d", i) || rep.Host != "h2.example.com" {
			t.Fatalf("client %s, real server %+v", resp.Proto, rep)
		}
		if got := rep.Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
			t.Errorf("X-Forwarded-For = %q", got)
		}
	}
	// A body, both ways.
	resp, err := c.Post("https://h2.example.com/post", "text/plain", strings.NewReader(strings.Repeat("z", 100000)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), strings.Repeat("z", 1000)) {
		t.Errorf("post body not relayed")
	}
	if n := a.conns.Load(); n > 2 {
		t.Errorf("%d connections to the real server for 6 requests: keep-alive not used", n)
	}
}

// TestWebSocketThroughTLS relays a WebSocket handshake and echoes frames
// through the tunnel.
func TestWebSocketThroughTLS(t *testing.T) {
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "ws.example.com"))
	rsPort := testkit.FreePort(t, "127.0.0.3")
	startReal(t, "ws", "127.0.0.3", rsPort, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "not a websocket", 400)
			return
		}
		h := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			base64.StdEncoding.EncodeToString(h[:]))
		_ = brw.Flush()
		_, _ = io.Copy(c, brw) // echo raw bytes
	}), nil)
	f := startVS(t, fmt.Sprintf(`
certificates:
%s
virtualServices:
- {address: 127.0.0.2, port: %d, type: http, tls: {offload: true, certificates: [c]}, realServers: [{address: 127.0.0.3, port: `+strconv.Itoa(rsPort)+`}]}
`, certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2")))
	c, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: root.Pool(), ServerName: "ws.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /chat HTTP/1.1\r\nHost: ws.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(c)
	resp := readResponse(t, br, "GET")
	if resp.StatusCode != 101 || resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	frame := []byte{0x81, 0x85, 1, 2, 3, 4, 'h' ^ 1, 'e' ^ 2, 'l' ^ 3, 'l' ^ 4, 'o' ^ 1}
	for range 3 {
		if _, err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(frame))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != string(frame) {
			t.Fatalf("echo through tunnel: %v %x", err, got)
		}
	}
}

// TestTLSProfiles: the default profile refuses TLS 1.1, modern refuses
// TLS 1.2, and legacy accepts TLS 1.0; the default profile offers no CBC
// or RSA key exchange suite.
func TestTLSProfiles(t *testing.T) {
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "p.example.com"))
	rsPort := testkit.FreePort(t, "127.0.0.3")
	startReal(t, "rs", "127.0.0.3", rsPort, nil, nil)
	for _, tt := range []struct {
		profile string
		ok, bad uint16
	}{
		{"intermediate", tls.VersionTLS12, tls.VersionTLS11},
		{"modern", tls.VersionTLS13, tls.VersionTLS12},
		{"legacy", tls.VersionTLS10, 0},
	} {
		t.Run(tt.profile, func(t *testing.T) {
			f := startVS(t, fmt.Sprintf(`
certificates:
%s
virtualServices:
- {address: 127.0.0.2, port: %d, type: http, tls: {offload: true, profile: %s, certificates: [c]}, realServers: [{address: 127.0.0.3, port: `+strconv.Itoa(rsPort)+`}]}
`, certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2"), tt.profile))
			dial := func(v uint16) error {
				cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}
				if v < tls.VersionTLS12 {
					cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}
				}
				c, err := tls.Dial("tcp", f.addr, cfg)
				if err == nil {
					c.Close()
				}
				return err
			}
			if err := dial(tt.ok); err != nil {
				t.Errorf("version %x refused: %v", tt.ok, err)
			}
			if tt.bad != 0 {
				if err := dial(tt.bad); err == nil {
					t.Errorf("version %x accepted", tt.bad)
				}
			}
			if tt.profile == "intermediate" {
				cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
					CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}
				if c, err := tls.Dial("tcp", f.addr, cfg); err == nil {
					c.Close()
					t.Error("the intermediate profile accepted a CBC / RSA key exchange suite")
				}
			}
		})
	}
}

// TestSessionResumption: a second connection resumes the first one's
// session (tickets), also on a new generation of the service.
func TestSessionResumption(t *testing.T) {
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "r.example.com"))
	rsPort := testkit.FreePort(t, "127.0.0.3")
	startReal(t, "rs", "127.0.0.3", rsPort, nil, nil)
	f := startVS(t, fmt.Sprintf(`
certificates:
%s
virtualServices:
- {address: 127.0.0.2, port: %d, type: http, tls: {offload: true, certificates: [c]}, realServers: [{address: 127.0.0.3, port: `+strconv.Itoa(rsPort)+`}]}
`, certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2")))
	cache := tls.NewLRUClientSessionCache(4)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := &tls.Config{RootCAs: root.Pool(), ServerName: "r.example.com", ClientSessionCache: cache, MaxVersion: v}
		resumed := false
		for i := range 3 {
			c, err := tls.Dial("tcp", f.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			// TLS 1.3 tickets arrive after the handshake: make a request.
			fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")
			_, _ = io.ReadAll(c)
			if i > 0 && c.ConnectionState().DidResume {
				resumed = true
			}
			c.Close()
		}
		if !resumed {
			t.Errorf("TLS %x: no session was resumed", v)
		}
	}
}
