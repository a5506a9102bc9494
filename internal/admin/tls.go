package admin

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Files of the admin plane's TLS certificate, in the directory given to
// OpenCertificate.
const (
	// CertFile holds the PEM certificate, optionally followed by its chain.
	CertFile = "admin-cert.pem"
	// KeyFile holds the PEM private key.
	KeyFile = "admin-key.pem"
	// GeneratedFile records the SHA-256 fingerprints (hex, one a line) of
	// the self-signed certificates Fulcrum made in CertFile: only those
	// are ever renewed, never a certificate an administrator put there.
	GeneratedFile = "admin-cert.generated"
)

// Lifetime of the self-signed certificate Fulcrum makes.
const (
	// CertValidity is how long a generated certificate is valid.
	CertValidity = 365 * 24 * time.Hour
	// CertRenewBefore is how long before it expires a generated
	// certificate is replaced by a new one (with the same key).
	CertRenewBefore = 30 * 24 * time.Hour
	// certRetryEvery is how soon a renewal that failed is tried again.
	certRetryEvery = time.Hour
	// legacyValidity is the lifetime of the certificates earlier Fulcrum
	// versions made (ten years, plus the hour of NotBefore's back-dating),
	// which recognises them as generated although no GeneratedFile lists
	// them.
	legacyValidity = 10*365*24*time.Hour + time.Hour
)

// CertOptions configure OpenCertificate. The zero value is usable.
type CertOptions struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives renewals and their failures; nil means
	// slog.Default().
	Logger *slog.Logger
}

// CertSource holds the admin plane's certificate. A self-signed
// certificate that Fulcrum made is renewed, with the same key, once it is
// within CertRenewBefore of expiring: when the source is opened and, while
// the server runs, at the first TLS handshake after that (see
// GetCertificate). A certificate an administrator supplied is served as it
// is and never replaced. A CertSource is safe for concurrent use.
type CertSource struct {
	dir   string
	hosts []string
	now   func() time.Time
	log   *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	generated bool      // Fulcrum made cert: renew it
	renewAt   time.Time // when cert is due for renewal
	retryAt   time.Time // after a failed renewal, when to try again
}

// LoadOrCreateCertificate returns the admin plane's certificate from
// dir/admin-cert.pem and dir/admin-key.pem, making or renewing a
// self-signed one as OpenCertificate does. Errors name the file.
func LoadOrCreateCertificate(dir string, hosts []string) (tls.Certificate, error) {
	cs, err := OpenCertificate(dir, hosts, CertOptions{})
	if err != nil {
		return tls.Certificate{}, err
	}
	return cs.Certificate(), nil
}

// OpenCertificate loads the admin plane's certificate from
// dir/admin-cert.pem and dir/admin-key.pem. If neither file exists it
// creates a self-signed ECDSA P-256 certificate valid for CertValidity
// (one year) whose subject alternative names are hosts (IP addresses and
// DNS names) plus 127.0.0.1, ::1 and localhost, writes both files with
// mode 0600 and records it in dir/admin-cert.generated. If they exist they
// are loaded as they are — an administrator may have replaced them with an
// imported certificate — except that a certificate Fulcrum generated is
// renewed when it is due (and one made by an older Fulcrum, valid for ten
// years, is replaced by a one-year one). Errors name the file.
func OpenCertificate(dir string, hosts []string, o CertOptions) (*CertSource, error) {
	c := &CertSource{dir: dir, hosts: append([]string(nil), hosts...), now: o.Now, log: o.Logger}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certErr == nil && keyErr == nil:
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("admin certificate %s with key %s: %w", certPath, keyPath, err)
		}
		c.set(&cert, c.isGenerated(cert.Leaf))
		now := c.now()
		if c.generated && !now.Before(c.renewAt) {
			if err := c.renew(now); err != nil {
				if !now.Before(cert.Leaf.NotAfter) {
					return nil, err
				}
				// Still valid: serve it and try again while running.
				c.log.Error("admin certificate: renewal failed; will retry", "err", err, "notAfter", cert.Leaf.NotAfter)
				c.retryAt = now.Add(certRetryEvery)
			}
		}
		return c, nil
	case certMissing && keyMissing:
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("admin certificate: generate key: %w", err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("admin certificate: encode key: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("admin certificate: %w", err)
		}
		// The key goes first so that a crash in between leaves a key
		// without a certificate, which OpenCertificate reports, never the
		// other way round.
		if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
			return nil, err
		}
		cert, err := c.issue(key, c.now())
		if err != nil {
			return nil, err
		}
		c.set(cert, true)
		return c, nil
	case certErr != nil && !certMissing:
		return nil, fmt.Errorf("admin certificate: %w", certErr)
	case keyErr != nil && !keyMissing:
		return nil, fmt.Errorf("admin certificate key: %w", keyErr)
	case certMissing:
		return nil, fmt.Errorf("admin certificate %s is missing but its key %s exists; restore it or remove both to generate new ones", certPath, keyPath)
	default:
		return nil, fmt.Errorf("admin certificate key %s is missing but %s exists; restore it or remove both to generate new ones", keyPath, certPath)
	}
}

// Certificate returns the certificate being served.
func (c *CertSource) Certificate() tls.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *c.cert
}

// Generated reports whether the certificate being served is a
// self-signed one Fulcrum made (and renews).
func (c *CertSource) Generated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generated
}

// GetCertificate returns the certificate to serve; it is meant for
// tls.Config.GetCertificate. When a generated certificate is due for
// renewal it renews it first; should that fail, it logs why, serves the
// current certificate and tries again an hour later.
func (c *CertSource) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.generated && !now.Before(c.renewAt) && !now.Before(c.retryAt) {
		if err := c.renew(now); err != nil {
			c.log.Error("admin certificate: renewal failed; will retry", "err", err, "notAfter", c.cert.Leaf.NotAfter,
				"retryAt", now.Add(certRetryEvery))
			c.retryAt = now.Add(certRetryEvery)
		}
	}
	return c.cert, nil
}

// TLSConfig returns the admin plane's server TLS configuration (see the
// package function TLSConfig) serving this source's certificate, renewed
// while the server runs.
func (c *CertSource) TLSConfig() *tls.Config {
	cfg := TLSConfig(tls.Certificate{})
	cfg.Certificates = nil
	cfg.GetCertificate = c.GetCertificate
	return cfg
}

// set makes cert the one served. Called with c.mu held or before c is
// shared.
func (c *CertSource) set(cert *tls.Certificate, generated bool) {
	c.cert, c.generated = cert, generated
	c.renewAt = cert.Leaf.NotAfter.Add(-CertRenewBefore)
	if cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore) > CertValidity+time.Hour {
		c.renewAt = time.Time{} // an older Fulcrum's ten-year certificate: replace it now
	}
	c.retryAt = time.Time{}
}

// isGenerated reports whether leaf is a certificate Fulcrum made: listed
// in GeneratedFile, or one of the ten-year certificates older versions
// made (self-signed by Fulcrum, ECDSA P-256, with exactly their lifetime).
func (c *CertSource) isGenerated(leaf *x509.Certificate) bool {
	fp := fingerprint(leaf.Raw)
	if b, err := os.ReadFile(filepath.Join(c.dir, GeneratedFile)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) == fp {
				return true
			}
		}
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Curve == elliptic.P256() &&
		leaf.NotAfter.Sub(leaf.NotBefore) == legacyValidity &&
		len(leaf.Subject.Organization) == 1 && leaf.Subject.Organization[0] == "Fulcrum" &&
		bytes.Equal(leaf.RawIssuer, leaf.RawSubject) &&
		leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil
}

// renew replaces the generated certificate by a new one with the same
// key, unless the file on disk is no longer the one Fulcrum made (an
// administrator put their own there, for the next start): then it only
// stops renewing. Called with c.mu held or before c is shared.
func (c *CertSource) renew(now time.Time) error {
	certPath := filepath.Join(c.dir, CertFile)
	onDisk, err := os.ReadFile(certPath)
	if err != nil {
		return fmt.Errorf("admin certificate: renew: %w", err)
	}
	if blk, _ := pem.Decode(onDisk); blk == nil || !bytes.Equal(blk.Bytes, c.cert.Leaf.Raw) {
		c.log.Warn("admin certificate: not renewed: the file was replaced; the new one is used at the next start", "file", certPath)
		c.generated = false
		return nil
	}
	key, ok := c.cert.PrivateKey.(crypto.Signer)
	if !ok {
		return fmt.Errorf("admin certificate: renew: the key in %s cannot sign", filepath.Join(c.dir, KeyFile))
	}
	old := c.cert.Leaf
	cert, err := c.issue(key, now)
	if err != nil {
		return err
	}
	c.set(cert, true)
	c.log.Info("admin certificate renewed", "file", certPath, "oldNotAfter", old.NotAfter, "notAfter", cert.Leaf.NotAfter,
		"sha256", fingerprint(cert.Leaf.Raw))
	return nil
}

// issue makes a self-signed certificate for key valid from now for
// CertValidity and writes it to CertFile, recording it in GeneratedFile.
// The record names both the old and the new certificate while the
// certificate file is replaced, so that a crash at any moment leaves a
// certificate Fulcrum recognises as its own.
func (c *CertSource) issue(key crypto.Signer, now time.Time) (*tls.Certificate, error) {
	ips, names, err := certNames(c.hosts)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("admin certificate: serial number: %w", err)
	}
	cn := "fulcrum"
	for _, n := range names {
		if n != "localhost" {
			cn = n
			break
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Fulcrum"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("admin certificate: create: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("admin certificate: create: %w", err)
	}
	certPath, markPath := filepath.Join(c.dir, CertFile), filepath.Join(c.dir, GeneratedFile)
	record := fingerprint(der) + "\n"
	if c.cert != nil {
		if err := writeFileAtomic(markPath, []byte(record+fingerprint(c.cert.Leaf.Raw)+"\n")); err != nil {
			return nil, err
		}
	}
	if err := writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(markPath, []byte(record)); err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// fingerprint is the hex SHA-256 of a certificate's DER.
func fingerprint(der []byte) string {
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:])
}

// certNames sorts hosts into the IP addresses and DNS names of a
// certificate, adding the loopback names.
func certNames(hosts []string) (ips []net.IP, names []string, err error) {
	seen := map[string]bool{}
	for _, h := range append(append([]string{}, hosts...), "127.0.0.1", "::1", "localhost") {
		h = strings.TrimSpace(h)
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" {
			continue
		}
		if a, err := netip.ParseAddr(h); err == nil {
			a = a.Unmap().WithZone("")
			if !seen[a.String()] {
				seen[a.String()] = true
				ips = append(ips, net.IP(a.AsSlice()))
			}
			continue
		}
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if !validCertName(h) {
			return nil, nil, fmt.Errorf("admin certificate: %q is neither an IP address nor a DNS name", h)
		}
		if !seen[h] {
			seen[h] = true
			names = append(names, h)
		}
	}
	return ips, names, nil
}

// validCertName accepts DNS names, with an optional leading "*." wildcard.
func validCertName(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// writeFileAtomic writes data to path with mode 0600 through a temporary
// file in the same directory, so that path is never left half written.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// TLSConfig returns the admin plane's server TLS configuration: TLS 1.2 or
// later and, for TLS 1.2, only forward-secret AEAD cipher suites (TLS 1.3
// suites are all AEAD).
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}
