package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// issuer makes certificates for the store tests.
type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var nextSerial int64 = 100

func mkCert(t *testing.T, parent *issuer, cn string, ca bool, names []string, notBefore, notAfter time.Time) *issuer {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	nextSerial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(nextSerial), Subject: pkix.Name{CommonName: cn},
		DNSNames: names, NotBefore: notBefore, NotAfter: notAfter, IsCA: ca, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	signer, signerKey := tmpl, k
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &k.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &issuer{cert: c, key: k}
}

func (i *issuer) pem() string { return pemOf("CERTIFICATE", i.cert.Raw) }

func (i *issuer) keyPEM() string {
	d, _ := x509.MarshalPKCS8PrivateKey(i.key)
	return pemOf("PRIVATE KEY", d)
}

var (
	past   = time.Now().Add(-time.Hour)
	future = time.Now().Add(365 * 24 * time.Hour)
)

func TestStoreCompletesChain(t *testing.T) {
	root := mkCert(t, nil, "Root", true, nil, past, future)
	i1 := mkCert(t, root, "Inter 1", true, nil, past, future)
	i2 := mkCert(t, i1, "Inter 2", true, nil, past, future)
	leaf := mkCert(t, i2, "www", false, []string{"www.example.com"}, past, future)
	other := mkCert(t, mkCert(t, nil, "Other Root", true, nil, past, future), "Inter 2", true, nil, past, future) // same subject, wrong key
	s, err := NewStore([]config.Certificate{
		{Name: "other", Intermediate: true, CertPEM: other.pem()},
		{Name: "i1", Intermediate: true, CertPEM: i1.pem()},
		{Name: "i2", Intermediate: true, CertPEM: i2.pem()},
		{Name: "root-too", Intermediate: true, CertPEM: root.pem()},
		{Name: "www", CertPEM: leaf.pem(), KeyPEM: leaf.keyPEM()},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Certificate("www")
	if len(c.Certificate) != 3 {
		t.Fatalf("chain has %d certificates, want leaf, Inter 2, Inter 1 (no root)", len(c.Certificate))
	}
	for i, want := range []*x509.Certificate{leaf.cert, i2.cert, i1.cert} {
		if string(c.Certificate[i]) != string(want.Raw) {
			t.Errorf("chain[%d] is not %s", i, want.Subject.CommonName)
		}
	}
	if _, err := NewStore([]config.Certificate{{Name: "bad", CertPEM: leaf.pem(), KeyPEM: root.keyPEM()}}); err == nil ||
		!strings.Contains(err.Error(), `certificate "bad"`) {
		t.Errorf("key mismatch: %v", err)
	}
}

func TestServerConfigSNI(t *testing.T) {
	root := mkCert(t, nil, "Root", true, nil, past, future)
	a := mkCert(t, root, "a", false, []string{"a.example.com", "alt.example.com"}, past, future)
	w := mkCert(t, root, "wild", false, []string{"*.example.org"}, past, future)
	cn := mkCert(t, root, "cn-only.example.net", false, nil, past, future)
	s, err := NewStore([]config.Certificate{
		{Name: "a", CertPEM: a.pem(), KeyPEM: a.keyPEM()},
		{Name: "w", CertPEM: w.pem(), KeyPEM: w.keyPEM()},
		{Name: "cn", CertPEM: cn.pem(), KeyPEM: cn.keyPEM()},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.ServerConfig(config.TLS{Profile: "intermediate", Certificates: []string{"a", "w", "cn"}}, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ sni, want string }{
		{"a.example.com", "a"}, {"ALT.example.com.", "a"}, {"x.example.org", "wild"}, {"example.org", "a"},
		{"cn-only.example.net", "cn-only.example.net"}, {"", "a"}, {"nothing.test", "a"},
	} {
		hello := &tls.ClientHelloInfo{ServerName: tt.sni, SupportedVersions: []uint16{tls.VersionTLS13},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}}
		c, err := cfg.GetCertificate(hello)
		if err != nil {
			t.Fatalf("%q: %v", tt.sni, err)
		}
		if c.Leaf.Subject.CommonName != tt.want {
			t.Errorf("SNI %q: got %q, want %q", tt.sni, c.Leaf.Subject.CommonName, tt.want)
		}
	}
	need, _ := s.ServerConfig(config.TLS{Certificates: []string{"a"}, NeedHostName: true}, ServerOptions{})
	if _, err := need.GetCertificate(&tls.ClientHelloInfo{}); err != ErrNoSNI {
		t.Errorf("needHostName without SNI: %v", err)
	}
	if _, err := s.ServerConfig(config.TLS{Certificates: []string{"missing"}}, ServerOptions{}); err == nil {
		t.Error("unknown certificate accepted")
	}
}

func TestVersionsAndProfiles(t *testing.T) {
	tests := []struct {
		t      config.TLS
		lo, hi uint16
		err    bool
	}{
		{config.TLS{Profile: "intermediate"}, tls.VersionTLS12, tls.VersionTLS13, false},
		{config.TLS{Profile: "modern"}, tls.VersionTLS13, tls.VersionTLS13, false},
		{config.TLS{Profile: "legacy"}, tls.VersionTLS10, tls.VersionTLS13, false},
		{config.TLS{Profile: "intermediate", Versions: []string{"1.3"}}, tls.VersionTLS13, tls.VersionTLS13, false},
		{config.TLS{Profile: "legacy", Versions: []string{"1.1", "1.2"}}, tls.VersionTLS11, tls.VersionTLS12, false},
		{config.TLS{Profile: "intermediate", Versions: []string{"1.0"}}, 0, 0, true},
	}
	for _, tt := range tests {
		lo, hi, err := versions(tt.t)
		if (err != nil) != tt.err || lo != tt.lo || hi != tt.hi {
			t.Errorf("%+v: %x-%x %v", tt.t, lo, hi, err)
		}
	}
}

func TestCheckWarnings(t *testing.T) {
	now := time.Now()
	root := mkCert(t, nil, "Root", true, nil, past, future)
	inter := mkCert(t, root, "Inter", true, nil, past, future)
	good := mkCert(t, inter, "good", false, []string{"good.example"}, past, future)
	expired := mkCert(t, inter, "expired", false, nil, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	soon := mkCert(t, inter, "soon", false, nil, past, now.Add(10*24*time.Hour))
	early := mkCert(t, inter, "early", false, nil, now.Add(24*time.Hour), future)
	orphan := mkCert(t, mkCert(t, mkCert(t, nil, "Lost Root", true, nil, past, future), "Lost Inter", true, nil, past, future),
		"orphan", false, nil, past, future)
	wrongPair := mkCert(t, root, "wrongly-chained", false, nil, past, future)
	list := []config.Certificate{
		{Name: "inter", Intermediate: true, CertPEM: inter.pem()},
		{Name: "good", CertPEM: good.pem(), KeyPEM: good.keyPEM()},
		{Name: "expired", CertPEM: expired.pem(), KeyPEM: expired.keyPEM()},
		{Name: "soon", CertPEM: soon.pem(), KeyPEM: soon.keyPEM()},
		{Name: "early", CertPEM: early.pem(), KeyPEM: early.keyPEM()},
		{Name: "orphan", CertPEM: orphan.pem(), KeyPEM: orphan.keyPEM()},
		{Name: "broken", CertPEM: wrongPair.pem() + inter.pem(), KeyPEM: wrongPair.keyPEM()},
	}
	got := map[string]string{}
	for _, w := range Check(list, now) {
		got[w.Certificate] += w.Message + "; "
	}
	want := map[string]string{
		"expired": "the certificate expired on",
		"soon":    "the certificate expires on",
		"early":   "is not valid before",
		"orphan":  `incomplete chain: the issuer "CN=Lost Inter"`,
		"broken":  "broken chain: certificate 0 (wrongly-chained) is not signed by certificate 1 (Inter)",
	}
	for name, frag := range want {
		if !strings.Contains(got[name], frag) {
			t.Errorf("%s: warnings %q, want %q", name, got[name], frag)
		}
	}
	// The root is self-signed and absent: a chain ending at "Inter",
	// issued by a root the system does not know, is incomplete too.
	if !strings.Contains(got["good"], "incomplete chain") {
		t.Errorf("good (private root): %q", got["good"])
	}
	if _, ok := got["inter"]; ok {
		t.Errorf("inter: unexpected %q", got["inter"])
	}
}

func TestTicketKeysRotate(t *testing.T) {
	root := mkCert(t, nil, "Root", true, nil, past, future)
	leaf := mkCert(t, root, "t", false, []string{"t.example"}, past, future)
	s, _ := NewStore([]config.Certificate{{Name: "t", CertPEM: leaf.pem(), KeyPEM: leaf.keyPEM()}})
	clock := time.Now()
	keys := NewTicketKeys(time.Hour)
	keys.now = func() time.Time { return clock }
	// Two configurations (two generations or two listeners) sharing keys.
	cfg1, _ := s.ServerConfig(config.TLS{Profile: "intermediate", Certificates: []string{"t"}}, ServerOptions{Tickets: keys})
	cfg2, _ := s.ServerConfig(config.TLS{Profile: "intermediate", Certificates: []string{"t"}}, ServerOptions{Tickets: keys})
	pool := x509.NewCertPool()
	pool.AddCert(root.cert)
	cache := tls.NewLRUClientSessionCache(8)
	handshake := func(cfg *tls.Config) bool {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		done := make(chan error, 1)
		go func() {
			sc := tls.Server(b, cfg)
			err := sc.Handshake()
			if err == nil {
				_, err = sc.Write([]byte("x")) // TLS 1.3 tickets follow the handshake
			}
			done <- err
		}()
		cc := tls.Client(a, &tls.Config{RootCAs: pool, ServerName: "t.example", ClientSessionCache: cache})
		if err := cc.Handshake(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1)
		_, _ = cc.Read(buf)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return cc.ConnectionState().DidResume
	}
	handshake(cfg1)
	if !handshake(cfg2) {
		t.Error("a ticket from one configuration was not accepted by another sharing the keys")
	}
	clock = clock.Add(time.Hour) // the next period: still accepted
	if !handshake(cfg1) {
		t.Error("a ticket from the previous period was refused")
	}
	// Accepted for as long as the lifetime the ticket announces (Go's
	// TLS 1.3 hint, 7 days), then refused: a full handshake. The cache
	// holds the newest ticket, issued by the last resumption.
	clock = clock.Add(TicketLifetime - 2*time.Hour)
	if !handshake(cfg1) {
		t.Error("a ticket younger than its announced lifetime was refused")
	}
	clock = clock.Add(TicketLifetime + 2*time.Hour)
	if handshake(cfg1) {
		t.Error("a ticket older than its announced lifetime was accepted")
	}
	if _, err := keys.unwrap([]byte("garbage that is long enough to parse"), tls.ConnectionState{}); err != nil {
		t.Error("a forged ticket must give a full handshake, not an error")
	}
}

func TestClientConfig(t *testing.T) {
	root := mkCert(t, nil, "Root", true, nil, past, future)
	c, err := ClientConfig(config.TLS{Reencrypt: true, VerifyServer: true, ServerName: "fe.internal", CABundle: root.pem()})
	if err != nil || c.InsecureSkipVerify || c.ServerName != "fe.internal" || c.RootCAs == nil {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := ClientConfig(config.TLS{CABundle: "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}); err == nil {
		t.Error("unreadable CA bundle accepted")
	}
	if c, _ := ClientConfig(config.TLS{Reencrypt: true}); !c.InsecureSkipVerify {
		t.Error("verifyServer off must not verify")
	}
}
