package edit

import (
	"fmt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

// ExistsError refuses to import a certificate under a name that is taken,
// without Replace.
type ExistsError struct {
	// Name is the certificate's name.
	Name string
	// Index is the place of the existing certificate in the list.
	Index int
}

// Error implements error.
func (e *ExistsError) Error() string {
	return fmt.Sprintf("certificate %q already exists", e.Name)
}

// ImportCertificate adds a certificate or intermediate, or replaces the
// one of the same name.
type ImportCertificate struct {
	// Cert is the certificate, parsed and checked by the front end.
	Cert config.Certificate
	// Replace allows replacing a certificate of the same name; without it
	// that is an *ExistsError.
	Replace bool
}

// Apply implements control.Edit: "import certificate <name>", or "import
// intermediate certificate <name>".
func (e ImportCertificate) Apply(cfg *config.Config) (string, error) {
	summary := "import certificate " + e.Cert.Name
	if e.Cert.Intermediate {
		summary = "import intermediate certificate " + e.Cert.Name
	}
	for i := range cfg.Certificates {
		if cfg.Certificates[i].Name == e.Cert.Name {
			if !e.Replace {
				return "", &ExistsError{Name: e.Cert.Name, Index: i}
			}
			cfg.Certificates[i] = e.Cert
			return summary, nil
		}
	}
	cfg.Certificates = append(cfg.Certificates, e.Cert)
	return summary, nil
}

// DeleteCertificate removes a certificate or intermediate. One that a
// service still uses is refused by validation.
type DeleteCertificate struct {
	// Name is the certificate's name.
	Name string
}

// Apply implements control.Edit: "delete certificate <name>".
func (e DeleteCertificate) Apply(cfg *config.Config) (string, error) {
	for i := range cfg.Certificates {
		if cfg.Certificates[i].Name == e.Name {
			cfg.Certificates = append(cfg.Certificates[:i], cfg.Certificates[i+1:]...)
			return "delete certificate " + e.Name, nil
		}
	}
	return "", fmt.Errorf("certificate %q: %w", e.Name, control.ErrNotFound)
}
