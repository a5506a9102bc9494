// Package verify runs deployment verification: the smoke checks of virtual
// services (config.SmokeCheck, which templates add — for Lync the seed's
// list of URLs) sent through each service as a client would, to the
// service's address and port with the URL's host as Host header and TLS
// server name. For each check it reports pass or fail, the status, which
// real server answered, and for HTTPS the certificate chain's validity and
// whether the certificate's names cover the host.
package verify

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// RSRef names a real server of a service.
type RSRef struct {
	// VS is the service's ID.
	VS int
	// RS is the real server's ID.
	RS int
}

// Options configure Run.
type Options struct {
	// Counters returns, per real server, a number that grows with every
	// connection or request it serves; comparing it before and after a
	// check tells which real server answered. Nil: not reported.
	Counters func() map[RSRef]int64
	// Down returns the real servers that are Down now, by service ID
	// ("address:port"); nil: not reported.
	Down func() map[int][]string
	// Roots are the trusted roots for the chain check; nil means the
	// system's.
	Roots *x509.CertPool
	// Timeout bounds one check; 0 means 10 s.
	Timeout time.Duration
	// VS limits the run to one service (0: every service with checks).
	VS int
}

// TLSReport describes the certificate a service presented.
type TLSReport struct {
	// Version is the negotiated TLS version, e.g. "TLS 1.3".
	Version string `json:"version"`
	// Subject is the leaf certificate's subject.
	Subject string `json:"subject"`
	// Names are the leaf's DNS names.
	Names []string `json:"names"`
	// CoversHost is true when the leaf is valid for the URL's host.
	CoversHost bool `json:"coversHost"`
	// ChainLength is the number of certificates presented.
	ChainLength int `json:"chainLength"`
	// ChainValid is true when the presented chain verifies against the
	// trusted roots.
	ChainValid bool `json:"chainValid"`
	// ChainError says why the chain does not verify.
	ChainError string `json:"chainError,omitempty"`
	// NotAfter is the leaf's expiry.
	NotAfter time.Time `json:"notAfter"`
}

// Result is the outcome of one smoke check.
type Result struct {
	// VS is the service's ID and Service its nickname (or address).
	VS      int    `json:"vs"`
	Service string `json:"service"`
	// Check is the check's name and URL its URL.
	Check string `json:"check"`
	URL   string `json:"url"`
	// Pass is true when the answer's status is expected and, for HTTPS, the
	// certificate covers the host.
	Pass bool `json:"pass"`
	// Status is the HTTP status answered (0 when none).
	Status int `json:"status"`
	// Error says why the check failed.
	Error string `json:"error,omitempty"`
	// RealServer is the real server that answered ("address:port"), when it
	// could be told.
	RealServer string `json:"realServer,omitempty"`
	// DownServers are the service's real servers that were Down when the
	// check ran: the check passing shows the service survives them.
	DownServers []string `json:"downServers,omitempty"`
	// TLS describes the certificate, for HTTPS checks.
	TLS *TLSReport `json:"tls,omitempty"`
	// Millis is how long the check took.
	Millis int64 `json:"millis"`
}

// Run runs the smoke checks of cfg's services, one after another so that
// the real server that answered each can be told.
func Run(ctx context.Context, cfg *config.Config, o Options) []Result {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	out := []Result{}
	var down map[int][]string
	if o.Down != nil {
		down = o.Down()
	}
	cfg.Walk(func(v, parent *config.VirtualService) {
		if parent != nil || len(v.Checks) == 0 || (o.VS != 0 && v.ID != o.VS) {
			return
		}
		for _, c := range v.Checks {
			r := runOne(ctx, v, c, o)
			r.DownServers = down[v.ID]
			out = append(out, r)
		}
	})
	return out
}

func serviceName(v *config.VirtualService) string {
	if v.NickName != "" {
		return v.NickName
	}
	return net.JoinHostPort(v.Address, strconv.Itoa(v.Port))
}

func runOne(ctx context.Context, v *config.VirtualService, c config.SmokeCheck, o Options) Result {
	r := Result{VS: v.ID, Service: serviceName(v), Check: c.Name, URL: c.URL}
	start := time.Now()
	defer func() { r.Millis = time.Since(start).Milliseconds() }()
	u, err := url.Parse(c.URL)
	if err != nil {
		r.Error = "bad URL: " + err.Error()
		return r
	}
	var before map[RSRef]int64
	if o.Counters != nil {
		before = o.Counters()
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	status, report, err := fetch(ctx, v, u, o.Roots)
	r.Status, r.TLS = status, report
	if o.Counters != nil {
		// The proxy may count the exchange a moment after the client has
		// its answer: look a few times.
		for i := 0; i < 10 && r.RealServer == ""; i++ {
			if i > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			r.RealServer = whoAnswered(v, before, o.Counters())
		}
	}
	switch {
	case err != nil:
		r.Error = err.Error()
	case !expected(status, c.Expect):
		r.Error = fmt.Sprintf("status %d not expected", status)
	case report != nil && !report.CoversHost:
		r.Error = fmt.Sprintf("the certificate (%s) does not cover %s", report.Subject, u.Hostname())
	default:
		r.Pass = true
	}
	return r
}

func expected(status int, codes []int) bool {
	if len(codes) == 0 {
		return (status >= 200 && status < 400) || status == http.StatusUnauthorized
	}
	for _, c := range codes {
		if c == status {
			return true
		}
	}
	return false
}

// fetch sends GET u to the service's address, as a client of the host
// would.
func fetch(ctx context.Context, v *config.VirtualService, u *url.URL, roots *x509.CertPool) (int, *TLSReport, error) {
	addr := net.JoinHostPort(v.Address, strconv.Itoa(v.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var report *TLSReport
	if u.Scheme == "https" {
		// The chain is verified below, to report on it rather than fail.
		tc := tls.Client(conn, &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return 0, nil, fmt.Errorf("TLS handshake with %s for %s: %w", addr, u.Hostname(), err)
		}
		report = describe(tc.ConnectionState(), u.Hostname(), roots)
		conn = tc
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, report, err
	}
	req.Header.Set("User-Agent", "Fulcrum-verify/1")
	req.Close = true
	if err := req.Write(conn); err != nil {
		return 0, report, fmt.Errorf("send request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return 0, report, fmt.Errorf("read answer: %w", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, report, nil
}

func describe(cs tls.ConnectionState, host string, roots *x509.CertPool) *TLSReport {
	r := &TLSReport{Version: tls.VersionName(cs.Version), ChainLength: len(cs.PeerCertificates)}
	if len(cs.PeerCertificates) == 0 {
		r.ChainError = "no certificate presented"
		return r
	}
	leaf := cs.PeerCertificates[0]
	r.Subject, r.Names, r.NotAfter = leaf.Subject.String(), leaf.DNSNames, leaf.NotAfter
	r.CoversHost = leaf.VerifyHostname(host) == nil
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host})
	var hostErr x509.HostnameError
	switch {
	case err == nil:
		r.ChainValid = true
	case errors.As(err, &hostErr):
		r.ChainValid = true // the chain itself verifies; CoversHost reports the name
	default:
		r.ChainError = err.Error()
	}
	return r
}

// whoAnswered names the one real server whose counter moved.
func whoAnswered(v *config.VirtualService, before, after map[RSRef]int64) string {
	found := ""
	for _, rs := range v.RealServers {
		k := RSRef{VS: v.ID, RS: rs.ID}
		if after[k] > before[k] {
			if found != "" {
				return "" // several moved: another client was served meanwhile
			}
			found = net.JoinHostPort(rs.Address, strconv.Itoa(rs.Port))
		}
	}
	return found
}
