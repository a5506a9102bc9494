package admin

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

const day = 24 * time.Hour

// TestAdminCertificateLifetimeOneYear reproduces issue 15, item 9: the
// admin plane's self-signed certificate was valid for ten years.
func TestAdminCertificateLifetimeOneYear(t *testing.T) {
	start := time.Now()
	cert, err := LoadOrCreateCertificate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if left := leaf.NotAfter.Sub(start); left > 366*day || left < 364*day {
		t.Fatalf("the generated certificate is valid until %v, %v from now; want about a year", leaf.NotAfter, left.Round(day))
	}
}

func openCert(t *testing.T, dir string, clk *fakeClock) *CertSource {
	t.Helper()
	cs, err := OpenCertificate(dir, []string{"lb.example"}, CertOptions{Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func leafOf(t *testing.T, c tls.Certificate) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// onDisk returns the certificate in dir's CertFile.
func onDisk(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM", CertFile)
	}
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func TestCertificateRenewedAtStart(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: t0}
	first := leafOf(t, openCert(t, dir, clk).Certificate())
	if !first.NotAfter.Equal(t0.Add(CertValidity)) {
		t.Fatalf("NotAfter %v, want %v", first.NotAfter, t0.Add(CertValidity))
	}
	// 31 days before expiry: not yet due.
	clk.Advance(CertValidity - 31*day)
	if got := leafOf(t, openCert(t, dir, clk).Certificate()); !bytes.Equal(got.Raw, first.Raw) {
		t.Fatal("renewed more than 30 days before expiry")
	}
	// 29 days before: a restart renews it, with the same key.
	clk.Advance(2 * day)
	cs := openCert(t, dir, clk)
	got := leafOf(t, cs.Certificate())
	if bytes.Equal(got.Raw, first.Raw) || !got.NotAfter.Equal(clk.Now().Add(CertValidity)) {
		t.Fatalf("not renewed at start: NotAfter %v", got.NotAfter)
	}
	if !first.PublicKey.(*ecdsa.PublicKey).Equal(got.PublicKey) {
		t.Error("renewal changed the key")
	}
	if !bytes.Equal(onDisk(t, dir).Raw, got.Raw) || !cs.Generated() {
		t.Fatal("the renewed certificate is not the one on disk, or not recorded as generated")
	}
	// The renewed one is recognised as Fulcrum's at the next start.
	if again := openCert(t, dir, clk); !again.Generated() || !bytes.Equal(leafOf(t, again.Certificate()).Raw, got.Raw) {
		t.Fatal("the renewed certificate was not kept or not recognised")
	}
}

func TestCertificateRenewedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: t0}
	cs := openCert(t, dir, clk)
	first := leafOf(t, cs.Certificate())

	// As the appliance serves it: a TLS listener with the source's
	// configuration (httptest would add a certificate of its own).
	srv := testkit.ServeHTTP(t, testkit.Listen(t, "127.0.0.1"), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), cs.TLSConfig())
	served := func() *x509.Certificate {
		t.Helper()
		conn, err := tls.Dial("tcp", srv.Addr(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test inspects what is served
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	if !bytes.Equal(served().Raw, first.Raw) {
		t.Fatal("the listener does not serve the source's certificate")
	}
	clk.Advance(CertValidity - CertRenewBefore) // due now
	now := served()
	if bytes.Equal(now.Raw, first.Raw) || !now.NotAfter.Equal(clk.Now().Add(CertValidity)) {
		t.Fatalf("not renewed while running: serving NotAfter %v", now.NotAfter)
	}
	if !bytes.Equal(onDisk(t, dir).Raw, now.Raw) {
		t.Fatal("the renewed certificate was not written")
	}
	if again := served(); !bytes.Equal(again.Raw, now.Raw) {
		t.Fatal("renewed again at once")
	}
}

func TestCertificateRenewalRetried(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: t0}
	cs := openCert(t, dir, clk)
	first := leafOf(t, cs.Certificate())
	// Make writing the record fail: its path is a directory.
	mark := filepath.Join(dir, GeneratedFile)
	if err := os.Remove(mark); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(mark, 0o700); err != nil {
		t.Fatal(err)
	}
	clk.Advance(CertValidity - CertRenewBefore)
	got, err := cs.GetCertificate(nil)
	if err != nil || !bytes.Equal(got.Leaf.Raw, first.Raw) {
		t.Fatalf("a failed renewal: %v; want the old certificate served", err)
	}
	os.Remove(mark)
	clk.Advance(certRetryEvery - time.Second)
	if got, _ := cs.GetCertificate(nil); !bytes.Equal(got.Leaf.Raw, first.Raw) {
		t.Fatal("retried before an hour")
	}
	clk.Advance(time.Second)
	if got, _ := cs.GetCertificate(nil); bytes.Equal(got.Leaf.Raw, first.Raw) {
		t.Fatal("not retried after an hour")
	}
}

// supplied writes a certificate an administrator could supply (not made by
// Fulcrum: another organisation) valid until notAfter.
func supplied(t *testing.T, dir string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	c := testkit.SelfSigned(t, testkit.Leaf{Names: []string{"lb.example"}, Organization: []string{"Example Corp"},
		NotBefore: notAfter.Add(-90 * day), NotAfter: notAfter})
	os.WriteFile(filepath.Join(dir, KeyFile), []byte(c.KeyPEM()), 0o600)
	os.WriteFile(filepath.Join(dir, CertFile), []byte(c.CertPEM()), 0o600)
	return c.Certificate
}

func TestSuppliedCertificateNeverRenewed(t *testing.T) {
	t.Run("at start and while running", func(t *testing.T) {
		dir := t.TempDir()
		clk := &fakeClock{t: t0}
		own := supplied(t, dir, t0.Add(5*day)) // due, by the generated ones' rule
		cs := openCert(t, dir, clk)
		if cs.Generated() || !bytes.Equal(leafOf(t, cs.Certificate()).Raw, own.Raw) {
			t.Fatal("a supplied certificate was replaced at start")
		}
		clk.Advance(10 * day) // expired even
		if got, _ := cs.GetCertificate(nil); !bytes.Equal(got.Leaf.Raw, own.Raw) {
			t.Fatal("a supplied certificate was replaced while running")
		}
		if !bytes.Equal(onDisk(t, dir).Raw, own.Raw) {
			t.Fatal("a supplied certificate was overwritten")
		}
	})
	t.Run("put in place while running", func(t *testing.T) {
		dir := t.TempDir()
		clk := &fakeClock{t: t0}
		cs := openCert(t, dir, clk)
		first := leafOf(t, cs.Certificate())
		own := supplied(t, dir, t0.Add(400*day)) // for the next start
		clk.Advance(CertValidity - CertRenewBefore)
		got, _ := cs.GetCertificate(nil)
		if !bytes.Equal(got.Leaf.Raw, first.Raw) || cs.Generated() {
			t.Fatal("renewal went ahead over a supplied certificate")
		}
		if !bytes.Equal(onDisk(t, dir).Raw, own.Raw) {
			t.Fatal("the supplied certificate was overwritten")
		}
		if again := openCert(t, dir, clk); again.Generated() || !bytes.Equal(leafOf(t, again.Certificate()).Raw, own.Raw) {
			t.Fatal("the supplied certificate is not used at the next start")
		}
	})
	t.Run("a copy of another install's generated certificate", func(t *testing.T) {
		dir, other := t.TempDir(), t.TempDir()
		clk := &fakeClock{t: t0}
		openCert(t, dir, clk)
		theirs := leafOf(t, openCert(t, other, clk).Certificate())
		for _, f := range []string{CertFile, KeyFile} {
			b, _ := os.ReadFile(filepath.Join(other, f))
			os.WriteFile(filepath.Join(dir, f), b, 0o600)
		}
		clk.Advance(CertValidity - day)
		if cs := openCert(t, dir, clk); cs.Generated() || !bytes.Equal(leafOf(t, cs.Certificate()).Raw, theirs.Raw) {
			t.Fatal("a certificate this install did not make was renewed")
		}
	})
}

// TestLegacyTenYearCertificateReplaced checks that the ten-year
// certificate an older Fulcrum made is recognised and replaced by a
// one-year one with the same key.
func TestLegacyTenYearCertificateReplaced(t *testing.T) {
	dir := t.TempDir()
	made := t0.Add(-100 * day)
	legacy := testkit.SelfSigned(t, testkit.Leaf{CommonName: "fulcrum", Organization: []string{"Fulcrum"},
		NotBefore: made.Add(-time.Hour), NotAfter: made.Add(10 * 365 * day)})
	key := legacy.Key.(*ecdsa.PrivateKey)
	os.WriteFile(filepath.Join(dir, KeyFile), []byte(legacy.KeyPEM()), 0o600)
	os.WriteFile(filepath.Join(dir, CertFile), []byte(legacy.CertPEM()), 0o600)

	cs := openCert(t, dir, &fakeClock{t: t0})
	got := leafOf(t, cs.Certificate())
	if !cs.Generated() || !got.NotAfter.Equal(t0.Add(CertValidity)) || !key.PublicKey.Equal(got.PublicKey) {
		t.Fatalf("legacy certificate: generated %v, NotAfter %v; want replaced by a one-year one with the same key", cs.Generated(), got.NotAfter)
	}
}
