package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Store holds the certificates of one configuration, parsed once, with
// each certificate's chain completed from the intermediates.
type Store struct {
	certs map[string]*tls.Certificate // by name; only certificates with a key
	inter []*x509.Certificate
}

// NewStore parses every certificate of a configuration. A certificate that
// cannot be parsed, or whose key does not match, is an error naming it.
func NewStore(list []config.Certificate) (*Store, error) {
	s := &Store{certs: map[string]*tls.Certificate{}}
	for _, c := range list {
		if !c.Intermediate {
			continue
		}
		chain, err := parseChain(c.CertPEM)
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", c.Name, err)
		}
		s.inter = append(s.inter, chain...)
	}
	for _, c := range list {
		if c.Intermediate {
			continue
		}
		pair, err := tls.X509KeyPair([]byte(c.CertPEM), []byte(c.KeyPEM))
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", c.Name, err)
		}
		chain, err := parseChain(c.CertPEM)
		if err != nil {
			return nil, fmt.Errorf("certificate %q: %w", c.Name, err)
		}
		chain = completeChain(chain, s.inter)
		pair.Certificate = pair.Certificate[:0]
		for _, x := range chain {
			pair.Certificate = append(pair.Certificate, x.Raw)
		}
		pair.Leaf = chain[0]
		s.certs[c.Name] = &pair
	}
	return s, nil
}

// Certificate returns the named certificate with its completed chain, or
// nil.
func (s *Store) Certificate(name string) *tls.Certificate { return s.certs[name] }

// parseChain reads every CERTIFICATE block of a PEM string.
func parseChain(p string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := []byte(p)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// maxChain bounds chain completion.
const maxChain = 8

// completeChain appends to chain, while its last certificate is not
// self-signed, the intermediate whose subject is that certificate's issuer
// and whose key signed it. Roots are never appended (clients have them).
func completeChain(chain []*x509.Certificate, inter []*x509.Certificate) []*x509.Certificate {
	for len(chain) < maxChain {
		last := chain[len(chain)-1]
		if selfSigned(last) {
			break
		}
		next := issuerOf(last, inter)
		if next == nil || selfSigned(next) || slices.ContainsFunc(chain, next.Equal) {
			break
		}
		chain = append(chain, next)
	}
	return chain
}

func issuerOf(c *x509.Certificate, pool []*x509.Certificate) *x509.Certificate {
	for _, p := range pool {
		if string(p.RawSubject) == string(c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}

func selfSigned(c *x509.Certificate) bool {
	// CheckSignature, not CheckSignatureFrom: a self-signed leaf is no CA,
	// and CheckSignatureFrom refuses parents that are not.
	return string(c.RawSubject) == string(c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// The TLS 1.2 cipher suites of the profiles (TLS 1.3 suites are not
// configurable in Go and are all AEAD).
var (
	intermediateSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	legacySuites = append(slices.Clone(intermediateSuites),
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	)
)

var tlsVersion = map[string]uint16{"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// versions returns the lowest and highest version of a profile narrowed by
// an explicit list (a list with gaps is taken as its lowest to highest).
func versions(t config.TLS) (lo, hi uint16, err error) {
	allowed := config.ProfileVersions(t.Profile)
	list := t.Versions
	if len(list) == 0 {
		list = allowed
	}
	for _, v := range list {
		n, ok := tlsVersion[v]
		if !ok || !slices.Contains(allowed, v) {
			return 0, 0, fmt.Errorf("TLS version %q is not allowed by profile %q", v, t.Profile)
		}
		if lo == 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return lo, hi, nil
}

// ServerOptions are what a service's server-side TLS configuration needs
// besides its config.TLS.
type ServerOptions struct {
	// NextProtos are the ALPN protocols offered, e.g. "h2", "http/1.1".
	NextProtos []string
	// Tickets encrypts session tickets; share one between the listeners
	// and generations of a service so that resumption survives reloads.
	// nil gives the config Go's own per-config ticket keys.
	Tickets *TicketKeys
}

// ServerConfig returns the TLS configuration terminating a service's
// client connections: its certificates chosen by SNI (exact names, then
// wildcards, then the first certificate as default), its profile and
// versions, and session resumption with o.Tickets.
func (s *Store) ServerConfig(t config.TLS, o ServerOptions) (*tls.Config, error) {
	if len(t.Certificates) == 0 {
		return nil, errors.New("no certificate")
	}
	sel := &selector{exact: map[string][]*tls.Certificate{}, wild: map[string][]*tls.Certificate{}, needSNI: t.NeedHostName}
	for _, name := range t.Certificates {
		c := s.certs[name]
		if c == nil {
			return nil, fmt.Errorf("no certificate named %q", name)
		}
		if sel.def == nil {
			sel.def = c
		}
		names := c.Leaf.DNSNames
		if len(names) == 0 && c.Leaf.Subject.CommonName != "" {
			names = []string{c.Leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				sel.wild[rest] = append(sel.wild[rest], c)
			} else {
				sel.exact[n] = append(sel.exact[n], c)
			}
		}
	}
	lo, hi, err := versions(t)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     lo,
		MaxVersion:     hi,
		GetCertificate: sel.get,
		NextProtos:     o.NextProtos,
	}
	switch t.Profile {
	case "legacy":
		cfg.CipherSuites = legacySuites
	default:
		cfg.CipherSuites = intermediateSuites
	}
	if o.Tickets != nil {
		cfg.WrapSession = o.Tickets.wrap
		cfg.UnwrapSession = o.Tickets.unwrap
	}
	return cfg, nil
}

// selector chooses a certificate by SNI.
type selector struct {
	exact, wild map[string][]*tls.Certificate
	def         *tls.Certificate
	needSNI     bool
}

// ErrNoSNI is the handshake error for a client without SNI on a service
// that requires it.
var ErrNoSNI = errors.New("tls: the client sent no server name (SNI), which this service requires")

func (s *selector) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		if s.needSNI {
			return nil, ErrNoSNI
		}
		return s.def, nil
	}
	if c := pick(s.exact[name], hello); c != nil {
		return c, nil
	}
	if _, rest, ok := strings.Cut(name, "."); ok {
		if c := pick(s.wild[rest], hello); c != nil {
			return c, nil
		}
	}
	return s.def, nil
}

// pick returns the first of list the client supports (RSA or ECDSA, say),
// or the first at all.
func pick(list []*tls.Certificate, hello *tls.ClientHelloInfo) *tls.Certificate {
	if len(list) == 0 {
		return nil
	}
	for _, c := range list {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	return list[0]
}

// ClientConfig returns the TLS configuration of re-encrypted connections
// to a service's real servers: verification against CABundle (or the
// system's roots) when VerifyServer is set, SNI ServerName, and a session
// cache for resumption. With PassSNI the caller sets ServerName per client
// on a clone.
func ClientConfig(t config.TLS) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: !t.VerifyServer, //nolint:gosec // the administrator's choice (LoadMaster default)
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
		NextProtos:         []string{"http/1.1"},
	}
	if t.Profile == "legacy" {
		cfg.MinVersion = tls.VersionTLS10
		cfg.CipherSuites = legacySuites
	}
	if t.CABundle != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(t.CABundle)) {
			return nil, errors.New("caBundle holds no readable certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
