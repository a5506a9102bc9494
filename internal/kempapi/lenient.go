package kempapi

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Where LoadMaster is lenient, Fulcrum is too: a modvs that echoes a
// service's fields succeeds, ForceL7/ForceL4 are refused only when they
// contradict the service type, SSLAcceleration without CertFile offers a
// generated self-signed certificate, and TLSType round-trips.

// checkLayer reads ForceL7 (want 7) or ForceL4 (want 4). Fulcrum serves
// VStype http, http2 and tls at layer 7 and gen at layer 4 whatever these
// say, so both are accepted and change nothing, except what contradicts
// the type: ForceL4=Y on a layer-7 type, or ForceL4=Y with ForceL7=Y.
// ForceL7=Y on gen is accepted, as LoadMaster shows it on gen services.
func checkLayer(c *vsCtx, display, val string, want int) *failure {
	x, good := parseBool(val)
	if !good {
		return invalid("%s: Invalid boolean value %q (use Y/N, y/n, 1/0)", display, short(val))
	}
	if !x {
		return nil
	}
	if want == 7 {
		c.forceL7 = true
		return nil
	}
	if layer(c.v) == 7 {
		return invalid("%s: VStype %s is served at layer 7; Y contradicts it (VStype gen is served at layer 4)", display, c.v.Type)
	}
	if c.forceL7 {
		return invalid("%s: Y contradicts ForceL7=Y in the same request", display)
	}
	return nil
}

// tlsVersionBits are LoadMaster's TLSType bits of the versions Fulcrum
// offers, lowest first; bit 1 (SSLv3) is always set: Fulcrum never offers
// SSLv3.
var tlsVersionBits = []struct {
	version string
	bit     int
}{{"1.0", 2}, {"1.1", 4}, {"1.2", 8}, {"1.3", 16}}

// tlsMask is the TLSType bitmask of disabled versions of a TLS setting,
// whether or not the service offloads: SSLv3 and every version outside the
// range the profile (narrowed by Versions) offers.
func tlsMask(t config.TLS) int {
	profile := t.Profile
	if profile == "" {
		profile = "intermediate"
	}
	list := t.Versions
	if len(list) == 0 {
		list = config.ProfileVersions(profile)
	}
	lo, hi := len(tlsVersionBits), -1
	for i, b := range tlsVersionBits {
		if slices.Contains(list, b.version) {
			lo, hi = min(lo, i), max(hi, i)
		}
	}
	mask := 1
	for i, b := range tlsVersionBits {
		if i < lo || i > hi {
			mask |= b.bit
		}
	}
	return mask
}

// tlsTypeOut is showvs's TlsType: 0 for a service without TLS offload, as
// LoadMaster shows it, else tlsMask.
func tlsTypeOut(t config.TLS) int {
	if !t.Offload {
		return 0
	}
	return tlsMask(t)
}

// tlsFromType is the profile and versions of a TLSType bitmask: the
// narrowest profile that offers the enabled versions (legacy for TLS 1.0
// or 1.1, modern for TLS 1.3 alone, else intermediate), and the versions
// when they are fewer than the profile's. It refuses what Fulcrum cannot
// offer, saying why: SSLv3, no version at all, or versions with a gap.
func tlsFromType(n int) (profile string, versions []string, why string) {
	if n < 0 || n > 31 {
		return "", nil, fmt.Sprintf("must be 0-31 (the bits of the disabled versions: 1 SSLv3, 2 TLS1.0, 4 TLS1.1, 8 TLS1.2, 16 TLS1.3), got %d", n)
	}
	if n&1 == 0 {
		return "", nil, fmt.Sprintf("Fulcrum never offers SSLv3: bit 1 must be set (e.g. 1 for TLS 1.0-1.3, 7 for TLS 1.2-1.3), got %d", n)
	}
	var on []string
	last := -1
	for i, b := range tlsVersionBits {
		if n&b.bit != 0 {
			continue
		}
		if last >= 0 && last != i-1 {
			return "", nil, fmt.Sprintf("Fulcrum offers one range of TLS versions without gaps, got %d (TLS %s)", n, strings.Join(append(on, b.version), ", "))
		}
		on, last = append(on, b.version), i
	}
	switch {
	case len(on) == 0:
		return "", nil, fmt.Sprintf("disables every TLS version, got %d", n)
	case slices.Contains(on, "1.0") || slices.Contains(on, "1.1"):
		profile = "legacy"
	case len(on) == 1 && on[0] == "1.3":
		profile = "modern"
	default:
		profile = "intermediate"
	}
	if slices.Equal(on, config.ProfileVersions(profile)) {
		return profile, nil, ""
	}
	return profile, on, ""
}

// setTLSType reads TLSType into the service's profile and versions. On a
// service without TLS offload it sets nothing that showvs (TlsType 0)
// would not show: 0, or the value the service already has, is accepted
// (an echo); any other value needs SSLAcceleration=Y.
func setTLSType(c *vsCtx, display, val string) *failure {
	n, good := parseInt(val)
	if !good {
		return invalid("%s: Invalid integer value %q", display, short(val))
	}
	if !c.v.TLS.Offload && (n == 0 || n == tlsMask(c.v.TLS)) {
		return nil
	}
	profile, versions, why := tlsFromType(n)
	if why != "" {
		return invalid("%s: %s", display, why)
	}
	if !c.v.TLS.Offload {
		return invalid("%s: sets the TLS versions of SSL acceleration, which this service does not have (give SSLAcceleration=Y with it)", display)
	}
	c.v.TLS.Profile, c.v.TLS.Versions = profile, versions
	return nil
}

// offloadDefault gives a service that offloads TLS without a certificate
// Fulcrum's self-signed one, as a LoadMaster offers its own until a
// certificate is assigned; selfSignedCert puts it in the configuration.
func offloadDefault(v *config.VirtualService) {
	if v.TLS.Offload && len(v.TLS.Certificates) == 0 {
		v.TLS.Certificates = []string{certs.SelfSignedName}
	}
}

// usesSelfSigned reports whether any service of cfg names the generated
// certificate.
func usesSelfSigned(cfg *config.Config) bool {
	found := false
	cfg.Walk(func(v, _ *config.VirtualService) {
		found = found || slices.Contains(v.TLS.Certificates, certs.SelfSignedName)
	})
	return found
}

// selfSignedCert is an edit that adds Fulcrum's self-signed certificate
// (certs.SelfSignedName) to the configuration when a service names it and
// the configuration has no certificate of that name yet. It is kept in the
// configuration like an imported certificate: it survives restarts, is in
// backups and revisions, is listed by listcert, and clients see the same
// certificate until one is assigned. It stays when no service uses it any
// more (delcert removes it), so that it is not replaced by another one.
type selfSignedCert struct {
	now func() time.Time
}

// Apply implements control.Edit.
func (e selfSignedCert) Apply(cfg *config.Config) (string, error) {
	if !usesSelfSigned(cfg) {
		return "", nil
	}
	for _, ct := range cfg.Certificates {
		if ct.Name == certs.SelfSignedName {
			return "", nil
		}
	}
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	certPEM, keyPEM, err := certs.NewSelfSigned(now())
	if err != nil {
		return "", fmt.Errorf("SSLAcceleration: %w", err)
	}
	cfg.Certificates = append(cfg.Certificates, config.Certificate{Name: certs.SelfSignedName, CertPEM: certPEM, KeyPEM: keyPEM})
	return "generate self-signed certificate " + certs.SelfSignedName, nil
}
