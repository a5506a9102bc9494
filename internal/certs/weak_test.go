package certs

import (
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// rsaPEM makes a self-signed RSA certificate of bits, valid until
// notAfter, and its key in PEM.
func rsaPEM(t *testing.T, bits int, notAfter time.Time) (certPEM, keyPEM string) {
	t.Helper()
	c := testkit.SelfSigned(t, testkit.Leaf{Names: []string{"weak.example"}, Key: testkit.RSA, RSABits: bits,
		NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter})
	return c.CertPEM(), c.KeyPEM()
}

// TestWeakAndExpiredCertificates: an RSA key shorter than 2048 bits is
// refused at import; one stored before, and an expired certificate, are
// served with a warning that Check and Annotate report (issue 15, item 9:
// they were served without any).
func TestWeakAndExpiredCertificates(t *testing.T) {
	c, k := rsaPEM(t, 1024, time.Now().Add(time.Hour*24*90))
	if _, err := ParsePEM([]byte(c + k)); err == nil || !strings.Contains(err.Error(), "RSA 1024-bit key") {
		t.Fatalf("an RSA-1024 import: %v", err)
	}
	old, oldKey := rsaPEM(t, 2048, time.Now().Add(-time.Hour))
	if _, err := ParsePEM([]byte(old + oldKey)); err != nil {
		t.Fatalf("an RSA-2048 import: %v", err)
	}
	list := []config.Certificate{{Name: "weak", CertPEM: c, KeyPEM: k}, {Name: "old", CertPEM: old, KeyPEM: oldKey}}
	infos := []Info{{Name: "weak"}, {Name: "old"}}
	Annotate(infos, list, time.Now())
	if len(infos[0].Warnings) == 0 || !strings.Contains(strings.Join(infos[0].Warnings, ";"), "weak key: RSA 1024-bit key") {
		t.Errorf("weak: warnings %q", infos[0].Warnings)
	}
	if !strings.Contains(strings.Join(infos[1].Warnings, ";"), "expired on") {
		t.Errorf("old: warnings %q", infos[1].Warnings)
	}
}
