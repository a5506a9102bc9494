package certs

import (
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestSelfSigned(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	certPEM, keyPEM, err := NewSelfSigned(now)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSelfSigned(certPEM) {
		t.Fatal("IsSelfSigned does not recognise a generated certificate")
	}
	// It is a certificate like an imported one: parsed, stored, served.
	imp, err := ParsePEM([]byte(certPEM + keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	list := []config.Certificate{{Name: SelfSignedName, CertPEM: imp.CertPEM, KeyPEM: imp.KeyPEM}}
	st, err := NewStore(list)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ServerConfig(config.TLS{Offload: true, Certificates: []string{SelfSignedName}, Profile: "intermediate"}, ServerOptions{}); err != nil {
		t.Fatal(err)
	}
	leaf := st.Certificate(SelfSignedName).Leaf
	if leaf.NotAfter.Sub(now) != SelfSignedValidity || leaf.Subject.CommonName != SelfSignedName {
		t.Errorf("validity %v, subject %s", leaf.NotAfter.Sub(now), leaf.Subject)
	}
	// Check says what it is.
	ws := Check(list, now)
	if len(ws) != 1 || !strings.Contains(ws[0].Message, "self-signed") {
		t.Errorf("Check: %v", ws)
	}

	// Other certificates, self-signed ones included, are not it.
	other := testkit.SelfSigned(t, testkit.Leaf{Names: []string{SelfSignedName}})
	for name, p := range map[string]string{"test self-signed": other.CertPEM(), "garbage": "not PEM", "empty": ""} {
		if IsSelfSigned(p) {
			t.Errorf("%s taken for Fulcrum's", name)
		}
	}
	a, _, _ := NewSelfSigned(now)
	if a == certPEM {
		t.Error("two generated certificates are the same")
	}
}
