package testkit

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	root := NewCA(t, "Test Root")
	inter := root.Intermediate(t, "Test Intermediate")
	inter2 := inter.Intermediate(t, "Test Intermediate 2")
	day := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	for _, tc := range []struct {
		name     string
		cert     *Cert
		cn       string
		dns      []string
		ips      []string
		client   bool
		rsaBits  int
		chain    []string
		notAfter time.Time
	}{
		{"server", root.Server(t, "www.test", "127.0.0.1", "alt.test"), "www.test", []string{"www.test", "alt.test"}, []string{"127.0.0.1"}, false, 0, nil, time.Time{}},
		{"client", root.Client(t, "alice"), "alice", nil, nil, true, 0, nil, time.Time{}},
		{"rsa", root.Issue(t, Leaf{Names: []string{"rsa.test"}, Key: RSA}), "rsa.test", []string{"rsa.test"}, nil, false, 2048, nil, time.Time{}},
		{"rsa 3072", root.Issue(t, Leaf{CommonName: "big", Key: RSA, RSABits: 3072}), "big", nil, nil, false, 3072, nil, time.Time{}},
		{"via intermediate", inter.Server(t, "meet.test"), "meet.test", []string{"meet.test"}, nil, false, 0, []string{"Test Intermediate"}, time.Time{}},
		{"via two intermediates", inter2.Issue(t, Leaf{Names: []string{"deep.test"}, NotAfter: day}), "deep.test", []string{"deep.test"}, nil, false, 0,
			[]string{"Test Intermediate 2", "Test Intermediate"}, day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cert.Certificate
			if c.Subject.CommonName != tc.cn || !slices.Equal(c.DNSNames, tc.dns) || len(c.IPAddresses) != len(tc.ips) {
				t.Errorf("subject %s, DNS %v, IPs %v", c.Subject, c.DNSNames, c.IPAddresses)
			}
			for i, ip := range tc.ips {
				if !c.IPAddresses[i].Equal(net.ParseIP(ip)) {
					t.Errorf("IP SAN %d: %v, want %s", i, c.IPAddresses[i], ip)
				}
			}
			var chainCNs []string
			for _, i := range tc.cert.Chain {
				chainCNs = append(chainCNs, i.Subject.CommonName)
			}
			if !slices.Equal(chainCNs, tc.chain) {
				t.Errorf("chain %v, want %v", chainCNs, tc.chain)
			}
			if !tc.notAfter.IsZero() && !c.NotAfter.Equal(tc.notAfter) {
				t.Errorf("NotAfter %v, want %v", c.NotAfter, tc.notAfter)
			}
			if time.Now().Before(c.NotBefore) || time.Now().After(c.NotAfter) {
				t.Errorf("not valid now: %v to %v", c.NotBefore, c.NotAfter)
			}
			switch k := tc.cert.Key.(type) {
			case *rsa.PrivateKey:
				if k.N.BitLen() != tc.rsaBits {
					t.Errorf("RSA %d bits, want %d", k.N.BitLen(), tc.rsaBits)
				}
			case *ecdsa.PrivateKey:
				if tc.rsaBits != 0 || k.Curve.Params().Name != "P-256" {
					t.Errorf("ECDSA %s key, want RSA %d", k.Curve.Params().Name, tc.rsaBits)
				}
			}
			// It verifies up to the root for its usage.
			usage := x509.ExtKeyUsageServerAuth
			if tc.client {
				usage = x509.ExtKeyUsageClientAuth
			}
			inters := x509.NewCertPool()
			for _, i := range tc.cert.Chain {
				inters.AddCert(i)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: root.Pool(), Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("verify: %v", err)
			}
			// The PEM and tls.Certificate forms hold the same thing.
			pair, err := tls.X509KeyPair([]byte(tc.cert.ChainPEM()), []byte(tc.cert.KeyPEM()))
			if err != nil {
				t.Fatal(err)
			}
			tc2 := tc.cert.TLS()
			if len(pair.Certificate) != 1+len(tc.chain) || len(tc2.Certificate) != len(pair.Certificate) || tc2.Leaf != c {
				t.Errorf("%d certificates in PEM, %d in TLS(), want %d", len(pair.Certificate), len(tc2.Certificate), 1+len(tc.chain))
			}
			for i := range pair.Certificate {
				if string(pair.Certificate[i]) != string(tc2.Certificate[i]) {
					t.Errorf("certificate %d differs between ChainPEM and TLS()", i)
				}
			}
			if b, _ := pem.Decode([]byte(tc.cert.CertPEM())); b == nil || string(b.Bytes) != string(c.Raw) {
				t.Error("CertPEM is not the certificate")
			}
		})
	}
	if root.Root != root.Certificate || inter.Root != root.Certificate || inter2.Root != root.Certificate {
		t.Error("Root is not the root of each CA")
	}
	if !root.Certificate.IsCA || !inter.Certificate.IsCA || inter.Certificate.CheckSignatureFrom(root.Certificate) != nil {
		t.Error("the intermediate is not a CA signed by the root")
	}
}

func TestSelfSigned(t *testing.T) {
	from, to := time.Now().Add(-72*time.Hour).Truncate(time.Second), time.Now().Add(-time.Hour).Truncate(time.Second)
	expired := SelfSigned(t, Leaf{CommonName: "old", Organization: []string{"Example Corp"}, Names: []string{"old.test"}, NotBefore: from, NotAfter: to})
	c := expired.Certificate
	if c.Subject.CommonName != "old" || !slices.Equal(c.Subject.Organization, []string{"Example Corp"}) ||
		!c.NotBefore.Equal(from) || !c.NotAfter.Equal(to) || c.IsCA || len(expired.Chain) != 0 ||
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil || string(c.RawIssuer) != string(c.RawSubject) {
		t.Errorf("self-signed: %s %v-%v CA %v", c.Subject, c.NotBefore, c.NotAfter, c.IsCA)
	}
	fresh := SelfSigned(t, Leaf{Names: []string{"127.0.0.10"}})
	if _, err := fresh.Certificate.Verify(x509.VerifyOptions{Roots: fresh.Pool()}); err != nil {
		t.Errorf("its own pool does not trust it: %v", err)
	}
	weak := SelfSigned(t, Leaf{CommonName: "weak", Key: RSA, RSABits: 1024})
	if k := weak.Key.(*rsa.PrivateKey); k.N.BitLen() != 1024 {
		t.Errorf("RSA %d bits", k.N.BitLen())
	}
}
