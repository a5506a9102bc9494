// Package certs reads imported TLS certificates — a PEM bundle holding a
// certificate and its key, a PFX/PKCS#12 file with a password, or an
// intermediate CA certificate — into the PEM form the configuration stores,
// and describes certificates for listings.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// MaxImportSize is the largest certificate file accepted.
const MaxImportSize = 1 << 20

// Imported is a certificate read from a file, in PEM.
type Imported struct {
	// CertPEM holds the leaf certificate first, then any chain certificates
	// that came in the same file.
	CertPEM string
	// KeyPEM holds the private key in PKCS#8 PEM; empty for an intermediate.
	KeyPEM string
}

// ErrNoKey is returned when a certificate file holds no private key.
var ErrNoKey = errors.New("the file holds no private key: import it as an intermediate, or add the key")

// ParsePEM reads a PEM file holding a certificate (optionally followed by
// its chain) and its private key, in any order. The key must match the
// first certificate whose public key it fits, which becomes the leaf.
func ParsePEM(data []byte) (Imported, error) {
	if len(data) > MaxImportSize {
		return Imported{}, fmt.Errorf("certificate file too large: %d bytes, at most %d", len(data), MaxImportSize)
	}
	var certs []*x509.Certificate
	var key crypto.Signer
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return Imported{}, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
			}
			certs = append(certs, c)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			if key != nil {
				return Imported{}, errors.New("the file holds more than one private key")
			}
			if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
				return Imported{}, errors.New("the private key is encrypted: decrypt it first or import a PFX with its password")
			}
			k, err := parseKey(block.Bytes)
			if err != nil {
				return Imported{}, err
			}
			key = k
		}
	}
	if len(certs) == 0 {
		return Imported{}, errors.New("no PEM CERTIFICATE block found")
	}
	if key == nil {
		return Imported{}, ErrNoKey
	}
	leaf := -1
	for i, c := range certs {
		if publicKeysEqual(c.PublicKey, key.Public()) {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return Imported{}, errors.New("the private key matches none of the certificates")
	}
	ordered := append([]*x509.Certificate{certs[leaf]}, append(certs[:leaf:leaf], certs[leaf+1:]...)...)
	return encode(ordered, key)
}

// ParseIntermediate reads one or more CA certificates (PEM or DER) for use
// as intermediates.
func ParseIntermediate(data []byte) (string, error) {
	if len(data) > MaxImportSize {
		return "", fmt.Errorf("certificate file too large: %d bytes, at most %d", len(data), MaxImportSize)
	}
	var out bytes.Buffer
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.HasSuffix(block.Type, "PRIVATE KEY") {
				return "", errors.New("an intermediate certificate is imported without a private key")
			}
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("certificate: %w", err)
		}
		if !c.IsCA {
			return "", fmt.Errorf("%q is not a CA certificate", c.Subject.String())
		}
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if out.Len() == 0 {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return "", errors.New("no certificate found: expected PEM CERTIFICATE blocks or one DER certificate")
		}
		if !c.IsCA {
			return "", fmt.Errorf("%q is not a CA certificate", c.Subject.String())
		}
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return out.String(), nil
}

// ParsePFX reads a PFX/PKCS#12 file protected by password.
func ParsePFX(data []byte, password string) (Imported, error) {
	if len(data) > MaxImportSize {
		return Imported{}, fmt.Errorf("certificate file too large: %d bytes, at most %d", len(data), MaxImportSize)
	}
	key, leaf, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			return Imported{}, errors.New("wrong PFX password")
		}
		return Imported{}, fmt.Errorf("not a readable PFX/PKCS#12 file: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || leaf == nil {
		return Imported{}, ErrNoKey
	}
	return encode(append([]*x509.Certificate{leaf}, chain...), signer)
}

func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("the private key is not a readable PKCS#8, PKCS#1 or EC key")
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// MinRSABits is the smallest RSA key a new certificate may have: shorter
// keys are refused at import (browsers and Mozilla's guidelines refuse
// them too). Ones stored before are still served, with a warning.
const MinRSABits = 2048

// weakKey says why a public key is too weak to serve, or "".
func weakKey(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < MinRSABits {
			return fmt.Sprintf("RSA %d-bit key: at least %d bits are needed", n, MinRSABits)
		}
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().BitSize; n < 256 {
			return fmt.Sprintf("ECDSA %d-bit key: P-256 or larger is needed", n)
		}
	}
	return ""
}

func encode(chain []*x509.Certificate, key crypto.Signer) (Imported, error) {
	if why := weakKey(chain[0].PublicKey); why != "" {
		return Imported{}, fmt.Errorf("refused: %s", why)
	}
	var cb bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&cb, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Imported{}, fmt.Errorf("encode private key: %w", err)
	}
	kp := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
	if _, err := tls.X509KeyPair(cb.Bytes(), kp); err != nil {
		return Imported{}, fmt.Errorf("certificate and key do not form a usable pair: %w", err)
	}
	return Imported{CertPEM: cb.String(), KeyPEM: string(kp)}, nil
}

// Info describes a certificate for listings; it never carries key material.
type Info struct {
	// Name is the certificate's name in the configuration.
	Name string `json:"name"`
	// Intermediate is true for an intermediate CA certificate.
	Intermediate bool `json:"intermediate"`
	// Subject is the leaf's subject distinguished name.
	Subject string `json:"subject"`
	// DNSNames are the leaf's DNS subject alternative names.
	DNSNames []string `json:"dnsNames,omitempty"`
	// IPAddresses are the leaf's IP subject alternative names.
	IPAddresses []string `json:"ipAddresses,omitempty"`
	// Issuer is the leaf's issuer distinguished name.
	Issuer string `json:"issuer"`
	// NotBefore is the start of the leaf's validity.
	NotBefore time.Time `json:"notBefore"`
	// NotAfter is the leaf's expiry.
	NotAfter time.Time `json:"notAfter"`
	// KeyType is "RSA 2048", "ECDSA P-256", "Ed25519", ...
	KeyType string `json:"keyType"`
	// ChainLength is the number of certificates stored, leaf included.
	ChainLength int `json:"chainLength"`
	// Warnings are Check's findings for the certificate (expired or
	// expiring, weak key, broken or incomplete chain); set by Annotate.
	Warnings []string `json:"warnings,omitempty"`
}

// Annotate sets the Warnings of infos, which describe certificates of
// list, from Check(list, now).
func Annotate(infos []Info, list []config.Certificate, now time.Time) {
	by := map[string][]string{}
	for _, w := range Check(list, now) {
		by[w.Certificate] = append(by[w.Certificate], w.Message)
	}
	for i := range infos {
		infos[i].Warnings = by[infos[i].Name]
	}
}

// Describe reads the first certificate of a PEM chain.
func Describe(name string, intermediate bool, certPEM string) (Info, error) {
	info := Info{Name: name, Intermediate: intermediate}
	rest := []byte(certPEM)
	var leaf *x509.Certificate
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		info.ChainLength++
		if leaf == nil {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return info, fmt.Errorf("certificate %q: %w", name, err)
			}
			leaf = c
		}
	}
	if leaf == nil {
		return info, fmt.Errorf("certificate %q: no PEM certificate", name)
	}
	info.Subject, info.Issuer = leaf.Subject.String(), leaf.Issuer.String()
	info.DNSNames = leaf.DNSNames
	for _, ip := range leaf.IPAddresses {
		info.IPAddresses = append(info.IPAddresses, ip.String())
	}
	info.NotBefore, info.NotAfter = leaf.NotBefore, leaf.NotAfter
	info.KeyType = keyType(leaf.PublicKey)
	return info, nil
}

func keyType(k crypto.PublicKey) string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", k)
}
