package e2e

import (
	"crypto/x509"
	"testing"
)

func x509Pool(t *testing.T, pemBytes []byte) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("admin-cert.pem holds no certificate")
	}
	return pool
}
