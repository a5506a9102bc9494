package certs

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// ExpirySoon is how close to its expiry a certificate draws a warning.
const ExpirySoon = 30 * 24 * time.Hour

// Warning is a problem with a stored certificate that does not stop it from
// being used: expired or expiring, not yet valid, or a chain that clients
// may not be able to verify.
type Warning struct {
	// Certificate is the certificate's name.
	Certificate string `json:"certificate"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String renders "name: message".
func (w Warning) String() string { return w.Certificate + ": " + w.Message }

// Check looks at every certificate of a configuration at time now and
// returns the warnings: expired, expiring within ExpirySoon, not yet
// valid, a weak key (RSA shorter than MinRSABits, ECDSA below P-256), a
// chain whose certificates do not sign each other, or one that
// cannot be completed up to a root from the intermediates (nor verified
// against the system's roots). Certificates it cannot parse are reported
// too; Validate refuses those.
func Check(list []config.Certificate, now time.Time) []Warning {
	var out []Warning
	var inter []*x509.Certificate
	for _, c := range list {
		if c.Intermediate {
			if chain, err := parseChain(c.CertPEM); err == nil {
				inter = append(inter, chain...)
			}
		}
	}
	roots, _ := x509.SystemCertPool()
	for _, c := range list {
		chain, err := parseChain(c.CertPEM)
		if err != nil {
			out = append(out, Warning{c.Name, fmt.Sprintf("cannot be read: %v", err)})
			continue
		}
		for i, x := range chain {
			what := "the certificate"
			if i > 0 {
				what = fmt.Sprintf("chain certificate %d (%s)", i, x.Subject.CommonName)
			}
			switch {
			case now.After(x.NotAfter):
				out = append(out, Warning{c.Name, fmt.Sprintf("%s expired on %s", what, x.NotAfter.UTC().Format(time.DateOnly))})
			case now.Add(ExpirySoon).After(x.NotAfter):
				out = append(out, Warning{c.Name, fmt.Sprintf("%s expires on %s", what, x.NotAfter.UTC().Format(time.DateOnly))})
			case now.Before(x.NotBefore):
				out = append(out, Warning{c.Name, fmt.Sprintf("%s is not valid before %s", what, x.NotBefore.UTC().Format(time.DateOnly))})
			}
		}
		if why := weakKey(chain[0].PublicKey); why != "" && !c.Intermediate {
			out = append(out, Warning{c.Name, "weak key: " + why})
		}
		if !c.Intermediate && IsSelfSigned(c.CertPEM) {
			out = append(out, Warning{c.Name, "Fulcrum's generated self-signed certificate, which clients cannot verify: assign a certificate of your own to the services using it"})
		}
		for i := 0; i+1 < len(chain); i++ {
			if chain[i].CheckSignatureFrom(chain[i+1]) != nil {
				out = append(out, Warning{c.Name, fmt.Sprintf("broken chain: certificate %d (%s) is not signed by certificate %d (%s)",
					i, chain[i].Subject.CommonName, i+1, chain[i+1].Subject.CommonName)})
			}
		}
		if c.Intermediate {
			continue
		}
		full := completeChain(chain, inter)
		last := full[len(full)-1]
		if selfSigned(last) {
			continue
		}
		if roots != nil {
			pool := x509.NewCertPool()
			for _, x := range full[1:] {
				pool.AddCert(x)
			}
			if _, err := full[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
				continue
			}
		}
		out = append(out, Warning{c.Name, fmt.Sprintf("incomplete chain: the issuer %q of %q is neither an imported intermediate nor a system root",
			last.Issuer.String(), last.Subject.CommonName)})
	}
	return out
}
