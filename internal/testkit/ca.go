package testkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// KeyType is the kind of key a certificate is made with.
type KeyType int

// The key types: ECDSA P-256 (the default) and RSA.
const (
	ECDSA KeyType = iota
	RSA
)

// Leaf describes a certificate to make. Only the fields a test cares
// about need to be set.
type Leaf struct {
	// CommonName is the subject's CN; by default the first of Names.
	CommonName string
	// Names are the subject alternative names: IP addresses become IP
	// SANs, anything else a DNS name.
	Names []string
	// Organization is the subject's O.
	Organization []string
	// Client makes a client certificate (extended key usage client
	// authentication) instead of a server certificate.
	Client bool
	// Key is the kind of key; RSABits its size for RSA (default 2048).
	Key     KeyType
	RSABits int
	// NotBefore and NotAfter bound the validity; by default from an hour
	// ago to a day from now.
	NotBefore, NotAfter time.Time
}

// Cert is a certificate with its private key and the intermediates
// between it and its root (none for a self-signed certificate).
type Cert struct {
	// Certificate is the certificate itself.
	Certificate *x509.Certificate
	// Key is its private key (*ecdsa.PrivateKey or *rsa.PrivateKey).
	Key crypto.Signer
	// Chain are the intermediates that issued it, nearest first, without
	// the root.
	Chain []*x509.Certificate
}

// CertPEM returns the certificate alone in PEM.
func (c *Cert) CertPEM() string { return PEM("CERTIFICATE", c.Certificate.Raw) }

// ChainPEM returns the certificate followed by its intermediates in PEM,
// as a server presents them.
func (c *Cert) ChainPEM() string {
	s := c.CertPEM()
	for _, i := range c.Chain {
		s += PEM("CERTIFICATE", i.Raw)
	}
	return s
}

// KeyPEM returns the private key in PEM (PKCS #8, "PRIVATE KEY").
func (c *Cert) KeyPEM() string {
	der, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		panic("testkit: marshal a key it made: " + err.Error())
	}
	return PEM("PRIVATE KEY", der)
}

// TLS returns the certificate, its intermediates and key for a
// tls.Config.
func (c *Cert) TLS() tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{c.Certificate.Raw}, PrivateKey: c.Key, Leaf: c.Certificate}
	for _, i := range c.Chain {
		tc.Certificate = append(tc.Certificate, i.Raw)
	}
	return tc
}

// Pool returns a pool that trusts the certificate itself (for a
// self-signed one).
func (c *Cert) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Certificate)
	return p
}

// CA is a test certificate authority: a self-signed root, or an
// intermediate issued by another CA.
type CA struct {
	Cert
	// Root is the self-signed root at the top of the CA's chain (the
	// CA's own certificate for a root).
	Root *x509.Certificate
}

// NewCA makes a root CA named cn (ECDSA P-256, valid from an hour ago for
// two years).
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	c := makeCert(t, caTemplate(cn), ECDSA, 0, nil)
	return &CA{Cert: *c, Root: c.Certificate}
}

// Intermediate makes an intermediate CA named cn, issued by ca. What it
// issues carries it (and ca's own intermediates) in its chain.
func (ca *CA) Intermediate(t testing.TB, cn string) *CA {
	t.Helper()
	c := makeCert(t, caTemplate(cn), ECDSA, 0, ca)
	return &CA{Cert: *c, Root: ca.Root}
}

// Issue makes a certificate as l describes, signed by ca.
func (ca *CA) Issue(t testing.TB, l Leaf) *Cert {
	t.Helper()
	return makeCert(t, leafTemplate(l), l.Key, l.RSABits, ca)
}

// Server issues an ECDSA server certificate for names (DNS names or IP
// addresses; the first is the common name).
func (ca *CA) Server(t testing.TB, names ...string) *Cert {
	t.Helper()
	return ca.Issue(t, Leaf{Names: names})
}

// Client issues an ECDSA client certificate for the common name cn.
func (ca *CA) Client(t testing.TB, cn string) *Cert {
	t.Helper()
	return ca.Issue(t, Leaf{CommonName: cn, Client: true})
}

// Pool returns a pool that trusts the CA's root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root)
	return p
}

// SelfSigned makes a self-signed certificate as l describes (a leaf, not
// a CA); its Pool trusts it.
func SelfSigned(t testing.TB, l Leaf) *Cert {
	t.Helper()
	return makeCert(t, leafTemplate(l), l.Key, l.RSABits, nil)
}

// PEM encodes der as one PEM block of type typ.
func PEM(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func caTemplate(cn string) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(2 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
}

func leafTemplate(l Leaf) *x509.Certificate {
	now := time.Now()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: l.CommonName, Organization: l.Organization},
		NotBefore: l.NotBefore, NotAfter: l.NotAfter, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if l.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if l.Key == RSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = now.Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = now.Add(24 * time.Hour)
	}
	for _, n := range l.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if tmpl.Subject.CommonName == "" && len(l.Names) > 0 {
		tmpl.Subject.CommonName = l.Names[0]
	}
	return tmpl
}

// makeCert makes a key of kind k and a certificate from tmpl, signed by
// parent or, without one, by itself.
func makeCert(t testing.TB, tmpl *x509.Certificate, k KeyType, bits int, parent *CA) *Cert {
	t.Helper()
	key, err := newKey(k, bits)
	if err != nil {
		t.Fatalf("testkit: generate a key: %v", err)
		return nil
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("testkit: serial number: %v", err)
		return nil
	}
	tmpl.SerialNumber = serial
	issuer, signer := tmpl, key
	var chain []*x509.Certificate
	if parent != nil {
		issuer, signer = parent.Certificate, parent.Key
		if parent.Certificate != parent.Root { // an intermediate: it and its own chain
			chain = append([]*x509.Certificate{parent.Certificate}, parent.Chain...)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		t.Fatalf("testkit: create certificate %q: %v", tmpl.Subject.CommonName, err)
		return nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testkit: parse certificate %q: %v", tmpl.Subject.CommonName, err)
		return nil
	}
	return &Cert{Certificate: c, Key: key, Chain: chain}
}

func newKey(k KeyType, bits int) (crypto.Signer, error) {
	if k == RSA {
		if bits == 0 {
			bits = 2048
		}
		return rsa.GenerateKey(rand.Reader, bits)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}
