package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// issue makes a certificate named cn for names, signed by ca, valid from
// past to future.
func issue(t *testing.T, ca *testkit.CA, cn string, names ...string) *testkit.Cert {
	t.Helper()
	return ca.Issue(t, testkit.Leaf{CommonName: cn, Names: names, NotBefore: past, NotAfter: future})
}

var (
	past   = time.Now().Add(-time.Hour)
	future = time.Now().Add(365 * 24 * time.Hour)
)

func TestStoreCompletesChain(t *testing.T) {
	root := testkit.NewCA(t, "Root")
	i1 := root.Intermediate(t, "Inter 1")
	i2 := i1.Intermediate(t, "Inter 2")
	leaf := issue(t, i2, "www", "www.example.com")
	other := testkit.NewCA(t, "Other Root").Intermediate(t, "Inter 2") // same subject, wrong key
	s, err := NewStore([]config.Certificate{
		{Name: "other", Intermediate: true, CertPEM: other.CertPEM()},
		{Name: "i1", Intermediate: true, CertPEM: i1.CertPEM()},
		{Name: "i2", Intermediate: true, CertPEM: i2.CertPEM()},
		{Name: "root-too", Intermediate: true, CertPEM: root.CertPEM()},
		{Name: "www", CertPEM: leaf.CertPEM(), KeyPEM: leaf.KeyPEM()},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Certificate("www")
	if len(c.Certificate) != 3 {
		t.Fatalf("chain has %d certificates, want leaf, Inter 2, Inter 1 (no root)", len(c.Certificate))
	}
	for i, want := range []*x509.Certificate{leaf.Certificate, i2.Certificate, i1.Certificate} {
		if string(c.Certificate[i]) != string(want.Raw) {
			t.Errorf("chain[%d] is not %s", i, want.Subject.CommonName)
		}
	}
	if _, err := NewStore([]config.Certificate{{Name: "bad", CertPEM: leaf.CertPEM(), KeyPEM: root.KeyPEM()}}); err == nil ||
		!strings.Contains(err.Error(), `certificate "bad"`) {
		t.Errorf("key mismatch: %v", err)
	}
}

func TestServerConfigSNI(t *testing.T) {
	root := testkit.NewCA(t, "Root")
	a := issue(t, root, "a", "a.example.com", "alt.example.com")
	w := issue(t, root, "wild", "*.example.org")
	cn := issue(t, root, "cn-only.example.net")
	s, err := NewStore([]config.Certificate{
		{Name: "a", CertPEM: a.CertPEM(), KeyPEM: a.KeyPEM()},
		{Name: "w", CertPEM: w.CertPEM(), KeyPEM: w.KeyPEM()},
		{Name: "cn", CertPEM: cn.CertPEM(), KeyPEM: cn.KeyPEM()},
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
	root := testkit.NewCA(t, "Root")
	inter := root.Intermediate(t, "Inter")
	good := issue(t, inter, "good", "good.example")
	expired := inter.Issue(t, testkit.Leaf{CommonName: "expired", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	soon := inter.Issue(t, testkit.Leaf{CommonName: "soon", NotBefore: past, NotAfter: now.Add(10 * 24 * time.Hour)})
	early := inter.Issue(t, testkit.Leaf{CommonName: "early", NotBefore: now.Add(24 * time.Hour), NotAfter: future})
	orphan := issue(t, testkit.NewCA(t, "Lost Root").Intermediate(t, "Lost Inter"), "orphan")
	wrongPair := issue(t, root, "wrongly-chained")
	list := []config.Certificate{
		{Name: "inter", Intermediate: true, CertPEM: inter.CertPEM()},
		{Name: "good", CertPEM: good.CertPEM(), KeyPEM: good.KeyPEM()},
		{Name: "expired", CertPEM: expired.CertPEM(), KeyPEM: expired.KeyPEM()},
		{Name: "soon", CertPEM: soon.CertPEM(), KeyPEM: soon.KeyPEM()},
		{Name: "early", CertPEM: early.CertPEM(), KeyPEM: early.KeyPEM()},
		{Name: "orphan", CertPEM: orphan.CertPEM(), KeyPEM: orphan.KeyPEM()},
		{Name: "broken", CertPEM: wrongPair.CertPEM() + inter.CertPEM(), KeyPEM: wrongPair.KeyPEM()},
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
	root := testkit.NewCA(t, "Root")
	leaf := issue(t, root, "t", "t.example")
	s, _ := NewStore([]config.Certificate{{Name: "t", CertPEM: leaf.CertPEM(), KeyPEM: leaf.KeyPEM()}})
	clock := time.Now()
	keys := NewTicketKeys(time.Hour)
	keys.now = func() time.Time { return clock }
	// Two configurations (two generations or two listeners) sharing keys.
	cfg1, _ := s.ServerConfig(config.TLS{Profile: "intermediate", Certificates: []string{"t"}}, ServerOptions{Tickets: keys})
	cfg2, _ := s.ServerConfig(config.TLS{Profile: "intermediate", Certificates: []string{"t"}}, ServerOptions{Tickets: keys})
	pool := root.Pool()
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
	root := testkit.NewCA(t, "Root")
	c, err := ClientConfig(config.TLS{Reencrypt: true, VerifyServer: true, ServerName: "fe.internal", CABundle: root.CertPEM()})
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
