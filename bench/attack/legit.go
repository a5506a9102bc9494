package attack

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// H1Client is a keep-alive HTTP/1.1 client (TLS without verification, no
// HTTP/2) for legitimate traffic.
func H1Client(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test tool
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
		MaxIdleConnsPerHost: 64,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// H2Client is an HTTP/2 client over TLS (one connection, multiplexed) for
// legitimate traffic.
func H2Client(timeout time.Duration) *http.Client {
	var p http.Protocols
	p.SetHTTP2(true)
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true, ServerName: "reliability.test"}, //nolint:gosec // a test tool
		Protocols:          &p,
		DisableCompression: true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// CloseIdle closes the idle connections of a client made here.
func CloseIdle(c *http.Client) {
	if ci, ok := c.Transport.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// Get returns a request function that GETs url with c and wants a 200.
func Get(c *http.Client, url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status: %d", resp.StatusCode)
		}
		return nil
	}
}

// Steady calls fn rate times a second for d, at most maxInFlight at once,
// and summarises the latencies of the calls that succeeded. A call that
// finds maxInFlight calls running is counted as an "overload" error.
func Steady(ctx context.Context, rate int, d time.Duration, maxInFlight int, fn func(context.Context) error) Latency {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var lat, errLat []time.Duration
	errs := map[string]int{}
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	t := time.NewTicker(time.Second / time.Duration(max(1, rate)))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			l := Summarise(lat, errs)
			if len(errLat) > 0 {
				slices.Sort(errLat)
				l.ErrP50ms, l.ErrMaxMs = Ms(Percentile(errLat, 50)), Ms(errLat[len(errLat)-1])
			}
			return l
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			mu.Lock()
			errs["overload"]++
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			// The call may outlive the window: it is bounded by its own
			// client's timeout (at most a minute), not cut by the end of the
			// window.
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer ccancel()
			start := time.Now()
			err := fn(cctx)
			el := time.Since(start)
			mu.Lock()
			if err != nil {
				errs[ErrKind(err)]++
				errLat = append(errLat, el)
			} else {
				lat = append(lat, el)
			}
			mu.Unlock()
		}()
	}
}

// TCPProbe returns a function that opens a new TCP connection to addr,
// writes a line and wants it echoed back within timeout.
func TCPProbe(addr string, timeout time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		d := net.Dialer{Timeout: timeout}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := io.WriteString(c, "probe\n"); err != nil {
			return err
		}
		buf := make([]byte, 6)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "probe\n" {
			return fmt.Errorf("echo: got %q", buf)
		}
		return nil
	}
}
