package admin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestLoadOrCreateCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	cert, err := LoadOrCreateCertificate(dir, []string{"lb.example.com", "192.0.2.10", "[2001:db8::1]", "LB.example.com", "", "admin.example:8443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CertFile, KeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	// Valid for a year from now (back-dated by an hour for clock skew).
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life != 365*24*time.Hour+time.Hour {
		t.Errorf("valid for %v, want a year", life)
	}
	wantNames := []string{"lb.example.com", "admin.example", "localhost"}
	if !slices.Equal(leaf.DNSNames, wantNames) {
		t.Errorf("DNS names %v, want %v", leaf.DNSNames, wantNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"192.0.2.10", "2001:db8::1", "127.0.0.1", "::1"}; !slices.Equal(ips, want) {
		t.Errorf("IPs %v, want %v", ips, want)
	}
	if err := leaf.VerifyHostname("lb.example.com"); err != nil {
		t.Error(err)
	}
	if leaf.IsCA || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("IsCA %v, ExtKeyUsage %v", leaf.IsCA, leaf.ExtKeyUsage)
	}

	// A second call loads the same certificate, whatever the hosts.
	again, err := LoadOrCreateCertificate(dir, []string{"other.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Certificate[0], cert.Certificate[0]) {
		t.Fatal("reload gave a different certificate")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("directory holds %d files, want 3: certificate, key, record of generation (no temporary files left)", len(entries))
	}
}

func TestLoadCertificateErrors(t *testing.T) {
	t.Run("key missing", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := LoadOrCreateCertificate(dir, nil); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(dir, KeyFile))
		_, err := LoadOrCreateCertificate(dir, nil)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, KeyFile)) {
			t.Fatalf("err = %v, want one naming the key file", err)
		}
		if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil {
			t.Fatal("a key was generated beside an existing certificate")
		}
	})
	t.Run("certificate missing", func(t *testing.T) {
		dir := t.TempDir()
		LoadOrCreateCertificate(dir, nil)
		os.Remove(filepath.Join(dir, CertFile))
		if _, err := LoadOrCreateCertificate(dir, nil); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CertFile)) {
			t.Fatalf("err = %v, want one naming the certificate file", err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		dir := t.TempDir()
		LoadOrCreateCertificate(dir, nil)
		os.WriteFile(filepath.Join(dir, CertFile), []byte("garbage"), 0o600)
		if _, err := LoadOrCreateCertificate(dir, nil); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CertFile)) {
			t.Fatalf("err = %v, want one naming the certificate file", err)
		}
	})
	t.Run("mismatched pair", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		LoadOrCreateCertificate(a, nil)
		LoadOrCreateCertificate(b, nil)
		key, _ := os.ReadFile(filepath.Join(b, KeyFile))
		os.WriteFile(filepath.Join(a, KeyFile), key, 0o600)
		if _, err := LoadOrCreateCertificate(a, nil); err == nil || !strings.Contains(err.Error(), filepath.Join(a, KeyFile)) {
			t.Fatalf("err = %v, want one naming the key file", err)
		}
	})
	t.Run("bad host", func(t *testing.T) {
		if _, err := LoadOrCreateCertificate(t.TempDir(), []string{"not a host"}); err == nil || !strings.Contains(err.Error(), "not a host") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unreadable directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads everything")
		}
		dir := t.TempDir()
		LoadOrCreateCertificate(dir, nil)
		os.Chmod(filepath.Join(dir, KeyFile), 0)
		if _, err := LoadOrCreateCertificate(dir, nil); err == nil || !strings.Contains(err.Error(), KeyFile) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestImportedCertificateIsKept(t *testing.T) {
	// An administrator replaces the generated pair with another one (here:
	// another generated pair standing in for an imported certificate).
	dir, other := t.TempDir(), t.TempDir()
	if _, err := LoadOrCreateCertificate(dir, nil); err != nil {
		t.Fatal(err)
	}
	imported, err := LoadOrCreateCertificate(other, []string{"imported.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CertFile, KeyFile} {
		b, _ := os.ReadFile(filepath.Join(other, f))
		os.WriteFile(filepath.Join(dir, f), b, 0o600)
	}
	got, err := LoadOrCreateCertificate(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Certificate[0], imported.Certificate[0]) {
		t.Fatal("the imported certificate was not loaded")
	}
}

func TestTLSConfig(t *testing.T) {
	cert, err := LoadOrCreateCertificate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := TLSConfig(cert)
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion %x", cfg.MinVersion)
	}
	insecure := map[uint16]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.ID] = true
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] || !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "GCM") || strings.Contains(name, "CHACHA20")) {
			t.Errorf("cipher suite %s is not a modern ECDHE AEAD suite", name)
		}
	}

	srv := testkit.ServeHTTP(t, testkit.Listen(t, "127.0.0.1"), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), cfg)
	pool := x509.NewCertPool()
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	pool.AddCert(leaf)
	dial := func(c *tls.Config) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.Addr(), c)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatalf("TLS handshake with loopback SAN: %v", err)
	}
	if err := dial(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}); err == nil {
		t.Fatal("a CBC suite was accepted")
	}
	if err := dial(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 was accepted")
	}
}
