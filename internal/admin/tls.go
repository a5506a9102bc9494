package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files of the admin plane's TLS certificate, in the directory given to
// LoadOrCreateCertificate.
const (
	// CertFile holds the PEM certificate, optionally followed by its chain.
	CertFile = "admin-cert.pem"
	// KeyFile holds the PEM private key.
	KeyFile = "admin-key.pem"
)

// certValidity is the lifetime of a generated self-signed certificate.
const certValidity = 10 * 365 * 24 * time.Hour

// LoadOrCreateCertificate returns the admin plane's certificate from
// dir/admin-cert.pem and dir/admin-key.pem. If neither file exists it
// creates a self-signed ECDSA P-256 certificate valid for ten years whose
// subject alternative names are hosts (IP addresses and DNS names) plus
// 127.0.0.1, ::1 and localhost, and writes both files with mode 0600. If
// they exist they are loaded as they are: an administrator may have
// replaced them with an imported certificate. Errors name the file.
func LoadOrCreateCertificate(dir string, hosts []string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	certMissing, keyMissing := errors.Is(certErr, fs.ErrNotExist), errors.Is(keyErr, fs.ErrNotExist)
	switch {
	case certErr == nil && keyErr == nil:
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("admin certificate %s with key %s: %w", certPath, keyPath, err)
		}
		return cert, nil
	case certMissing && keyMissing:
		return createCertificate(dir, certPath, keyPath, hosts)
	case certErr != nil && !certMissing:
		return tls.Certificate{}, fmt.Errorf("admin certificate: %w", certErr)
	case keyErr != nil && !keyMissing:
		return tls.Certificate{}, fmt.Errorf("admin certificate key: %w", keyErr)
	case certMissing:
		return tls.Certificate{}, fmt.Errorf("admin certificate %s is missing but its key %s exists; restore it or remove both to generate new ones", certPath, keyPath)
	default:
		return tls.Certificate{}, fmt.Errorf("admin certificate key %s is missing but %s exists; restore it or remove both to generate new ones", keyPath, certPath)
	}
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

func createCertificate(dir, certPath, keyPath string, hosts []string) (tls.Certificate, error) {
	ips, names, err := certNames(hosts)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: serial number: %w", err)
	}
	cn := "fulcrum"
	for _, n := range names {
		if n != "localhost" {
			cn = n
			break
		}
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Fulcrum"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              names,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: create: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: encode key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate: %w", err)
	}
	// The key goes first so that a crash in between leaves a key without a
	// certificate, which LoadOrCreateCertificate reports, never the other
	// way round.
	if err := writeFileAtomic(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("admin certificate %s: %w", certPath, err)
	}
	return cert, nil
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
