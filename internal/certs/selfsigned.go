package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// SelfSignedName is the name under which Fulcrum keeps the certificate it
// generates for a service that offloads TLS before a certificate of its
// own is assigned (LoadMaster's SSLAcceleration without CertFile).
const SelfSignedName = "fulcrum-self-signed"

// SelfSignedWarning is what a service offloading TLS with the generated
// certificate says in its status.
const SelfSignedWarning = "TLS offload with Fulcrum's self-signed certificate: assign a certificate"

// selfSignedUnit marks the certificates NewSelfSigned makes, so that they
// are recognised by content, whatever they are named.
const selfSignedUnit = "Fulcrum self-signed placeholder"

// SelfSignedValidity is how long a generated certificate is valid: 825
// days, the longest that clients such as Apple's platforms accept for a
// server certificate.
const SelfSignedValidity = 825 * 24 * time.Hour

// NewSelfSigned makes a self-signed ECDSA P-256 server certificate and its
// key, PEM-encoded, valid from an hour before now for SelfSignedValidity.
// Its subject names it as Fulcrum's placeholder (IsSelfSigned).
func NewSelfSigned(now time.Time) (certPEM, keyPEM string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{CommonName: SelfSignedName, Organization: []string{"Fulcrum"},
			OrganizationalUnit: []string{selfSignedUnit}},
		DNSNames:              []string{SelfSignedName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return certPEM, keyPEM, nil
}

// IsSelfSigned reports whether the first certificate of a PEM chain is one
// NewSelfSigned made: self-signed, with Fulcrum's placeholder subject.
func IsSelfSigned(certPEM string) bool {
	chain, err := parseChain(certPEM)
	if err != nil || len(chain) == 0 {
		return false
	}
	c := chain[0]
	return selfSigned(c) && slices.Contains(c.Subject.OrganizationalUnit, selfSignedUnit)
}
