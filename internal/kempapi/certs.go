package kempapi

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
)

// certName reads the cert parameter.
func certName(p params) (string, *failure) {
	name := strings.TrimSpace(p.str("cert"))
	if name == "" {
		return "", missing("cert")
	}
	return name, nil
}

// leaf returns the first certificate of a PEM chain.
func leaf(certPEM string) (*x509.Certificate, []byte) {
	rest := []byte(certPEM)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, nil
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil
			}
			return c, b.Bytes
		}
	}
}

// certNodes describes a certificate as listcert does: its name, key type
// (RSA or ECC) and the RSA modulus in hex or the public key in base64.
func certNodes(ct config.Certificate) node {
	ns := []node{str("name", ct.Name)}
	c, _ := leaf(ct.CertPEM)
	switch k := publicKey(c).(type) {
	case *rsa.PublicKey:
		ns = append(ns, str("type", "RSA"), str("modulus", strings.ToUpper(k.N.Text(16))))
	case nil:
		ns = append(ns, str("type", "unknown"))
	default:
		ns = append(ns, str("type", "ECC"), str("publickey", base64.StdEncoding.EncodeToString(c.RawSubjectPublicKeyInfo)))
	}
	return node{name: "cert", kind: kGroup, item: true, children: ns}
}

func publicKey(c *x509.Certificate) any {
	if c == nil {
		return nil
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return k
	}
	return nil
}

func (c *call) listCerts(intermediate bool) result {
	var out []node
	for _, ct := range c.s.ctl.Current().Config.Certificates {
		if ct.Intermediate == intermediate {
			out = append(out, certNodes(ct))
		}
	}
	if out == nil {
		out = []node{}
	}
	return withData(out...)
}

// readCert returns a certificate (never its key) as PEM, or as base64 DER
// with outform=DER.
func (c *call) readCert(intermediate bool) result {
	name, f := certName(c.p)
	if f != nil {
		return f.result()
	}
	form := strings.ToUpper(strings.TrimSpace(c.p.str("outform")))
	if form != "" && form != "PEM" && form != "DER" {
		return invalid("outform: must be PEM or DER").result()
	}
	for _, ct := range c.s.ctl.Current().Config.Certificates {
		if ct.Name != name || ct.Intermediate != intermediate {
			continue
		}
		if form == "DER" {
			_, der := leaf(ct.CertPEM)
			if der == nil {
				return fail(http.StatusInternalServerError, "Internal error").result()
			}
			if c.req.v2 {
				return result{blob: der}
			}
			return result{blob: []byte(base64.StdEncoding.EncodeToString(der)), blobCT: "text/plain; charset=us-ascii"}
		}
		return result{blob: []byte(ct.CertPEM), blobCT: "application/x-pem-file"}
	}
	return invalid("Certificate %q not found", short(name)).result()
}

// addCert imports a certificate with its key from the body: a PEM file
// holding both, or a PFX/PKCS#12 file unlocked with password.
func (c *call) addCert() result {
	name, f := certName(c.p)
	if f != nil {
		return f.result()
	}
	replace, _, f := boolParam(c.p, "replace", "replace")
	if f != nil {
		return f.result()
	}
	if len(c.req.body) == 0 {
		return missing("data").result()
	}
	var imp certs.Imported
	var err error
	if bytes.Contains(c.req.body, []byte("-----BEGIN")) {
		imp, err = certs.ParsePEM(c.req.body)
	} else {
		imp, err = certs.ParsePFX(c.req.body, c.p.str("password"))
	}
	if err != nil {
		return invalid("Command Failed: %s", err.Error()).result()
	}
	return c.storeCert(config.Certificate{Name: name, CertPEM: imp.CertPEM, KeyPEM: imp.KeyPEM}, replace)
}

// addIntermediate imports CA certificates (PEM or DER) from the body.
func (c *call) addIntermediate() result {
	name, f := certName(c.p)
	if f != nil {
		return f.result()
	}
	replace, _, f := boolParam(c.p, "replace", "replace")
	if f != nil {
		return f.result()
	}
	if len(c.req.body) == 0 {
		return missing("data").result()
	}
	p, err := certs.ParseIntermediate(c.req.body)
	if err != nil {
		return invalid("Command Failed: %s", err.Error()).result()
	}
	return c.storeCert(config.Certificate{Name: name, Intermediate: true, CertPEM: p}, replace)
}

func (c *call) storeCert(ct config.Certificate, replace bool) result {
	for _, old := range c.s.ctl.Current().Config.Certificates {
		if old.Name == ct.Name && old.Intermediate != ct.Intermediate {
			return invalid("Command Failed: the name %q is taken by an %s", ct.Name, otherKind(ct.Intermediate)).result()
		}
	}
	if _, f := c.edit(edit.ImportCertificate{Cert: ct, Replace: replace}); f != nil {
		return f.result()
	}
	return completed()
}

func otherKind(intermediate bool) string {
	if intermediate {
		return "ordinary certificate"
	}
	return "intermediate certificate"
}

// certDeletable refuses to delete a certificate (an intermediate when
// intermediate is set) that cfg does not have or that a service uses.
func certDeletable(cfg *config.Config, name string, intermediate bool) *failure {
	for _, ct := range cfg.Certificates {
		if ct.Name != name || ct.Intermediate != intermediate {
			continue
		}
		var user *config.VirtualService
		cfg.Walk(func(v, _ *config.VirtualService) {
			for _, n := range v.TLS.Certificates {
				if n == name && user == nil {
					user = v
				}
			}
		})
		if user != nil {
			return invalid("Command Failed: certificate %q is assigned to Virtual Service %d", name, user.ID)
		}
		return nil
	}
	return invalid("Certificate %q not found", short(name))
}

// delCert deletes a certificate that no service uses.
func (c *call) delCert(intermediate bool) result {
	name, f := certName(c.p)
	if f != nil {
		return f.result()
	}
	if f := certDeletable(c.s.ctl.Current().Config, name, intermediate); f != nil {
		return f.result()
	}
	if _, f = c.edit(edit.DeleteCertificate{Name: name}); f != nil {
		return f.result()
	}
	return completed()
}
