package certs

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

type pki struct {
	ca, leaf *x509.Certificate
	leafKey  *ecdsa.PrivateKey
}

func newPKI(t testing.TB) pki {
	t.Helper()
	ca := testkit.NewCA(t, "Test Intermediate CA")
	leaf := ca.Issue(t, testkit.Leaf{Names: []string{"meet.example.com", "lyncdiscover.example.com"}, NotAfter: time.Now().Add(12 * time.Hour)})
	return pki{ca: ca.Certificate, leaf: leaf.Certificate, leafKey: leaf.Key.(*ecdsa.PrivateKey)}
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func TestParsePEM(t *testing.T) {
	p := newPKI(t)
	k8, _ := x509.MarshalPKCS8PrivateKey(p.leafKey)
	kEC, _ := x509.MarshalECPrivateKey(p.leafKey)
	leaf, ca := pemOf("CERTIFICATE", p.leaf.Raw), pemOf("CERTIFICATE", p.ca.Raw)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name, in, wantErr string
		chain             int
	}{
		{"cert then key", leaf + pemOf("PRIVATE KEY", k8), "", 1},
		{"key, chain first then leaf", pemOf("EC PRIVATE KEY", kEC) + ca + leaf, "", 2},
		{"no key", leaf, "holds no private key", 0},
		{"no cert", pemOf("PRIVATE KEY", k8), "no PEM CERTIFICATE block", 0},
		{"wrong key", leaf + pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "matches none", 0},
		{"encrypted", leaf + pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2}), "encrypted", 0},
		{"garbage cert", pemOf("CERTIFICATE", []byte("xx")) + pemOf("PRIVATE KEY", k8), "certificate 1", 0},
		{"garbage key", leaf + pemOf("PRIVATE KEY", []byte("xx")), "not a readable", 0},
		{"empty", "", "no PEM CERTIFICATE", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePEM([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := Describe("x", false, got.CertPEM)
			if err != nil {
				t.Fatal(err)
			}
			if info.ChainLength != tt.chain || info.Subject != "CN=meet.example.com" {
				t.Errorf("info = %+v", info)
			}
		})
	}
}

func TestParsePFX(t *testing.T) {
	p := newPKI(t)
	pfx, err := pkcs12.Modern.Encode(p.leafKey, p.leaf, []*x509.Certificate{p.ca}, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePFX(pfx, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	info, err := Describe("meet", false, got.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Name: "meet", Subject: "CN=meet.example.com", Issuer: "CN=Test Intermediate CA", KeyType: "ECDSA P-256", ChainLength: 2}
	if info.Subject != want.Subject || info.Issuer != want.Issuer || info.KeyType != want.KeyType || info.ChainLength != 2 ||
		len(info.DNSNames) != 2 || !info.NotAfter.Equal(p.leaf.NotAfter) {
		t.Errorf("info = %+v", info)
	}
	if _, err := ParsePFX(pfx, "wrong"); err == nil || !strings.Contains(err.Error(), "wrong PFX password") {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := ParsePFX([]byte("not a pfx"), ""); err == nil || !strings.Contains(err.Error(), "not a readable PFX") {
		t.Errorf("garbage: %v", err)
	}
}

func TestParseIntermediate(t *testing.T) {
	p := newPKI(t)
	if _, err := ParseIntermediate([]byte(pemOf("CERTIFICATE", p.ca.Raw))); err != nil {
		t.Errorf("PEM CA: %v", err)
	}
	if _, err := ParseIntermediate(p.ca.Raw); err != nil {
		t.Errorf("DER CA: %v", err)
	}
	if _, err := ParseIntermediate([]byte(pemOf("CERTIFICATE", p.leaf.Raw))); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("leaf accepted as intermediate: %v", err)
	}
	if _, err := ParseIntermediate([]byte("junk")); err == nil {
		t.Error("junk accepted")
	}
}

func FuzzParsePEM(f *testing.F) {
	p := newPKI(f)
	k8, _ := x509.MarshalPKCS8PrivateKey(p.leafKey)
	f.Add([]byte(pemOf("CERTIFICATE", p.leaf.Raw) + pemOf("PRIVATE KEY", k8)))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParsePEM(data)
		if err == nil && (got.CertPEM == "" || got.KeyPEM == "") {
			t.Fatal("success without certificate or key")
		}
		_, _ = ParseIntermediate(data)
		_, _ = ParsePFX(data, "")
		_, _ = Describe("f", false, string(data))
	})
}
