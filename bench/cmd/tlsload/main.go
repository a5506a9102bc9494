// Command tlsload measures TLS connection set-up through a proxy. Each of
// -conns workers repeats one operation for -duration: connect over TCP,
// complete a TLS handshake, send "GET / HTTP/1.1" with "Connection: close",
// read the whole response (status 200 expected) and close. With -mode full
// every handshake is a full one (no session cache); with -mode resume each
// worker keeps its own session cache, so every handshake after its first
// resumes with a session ticket.
//
// It prints one JSON line: successful operations, errors, operations per
// second, the 50th and 99th percentile operation times in microseconds and
// how many operations resumed a session. Errors are counted; the first one
// is written to stderr.
//
//	tlsload -addr 127.0.0.1:8443 -mode resume -conns 8 -duration 5s -sni bench.example
package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// opTimeout bounds every operation; no socket call waits longer.
const opTimeout = 5 * time.Second

// result is the JSON line tlsload prints.
type result struct {
	Ops     int64   `json:"ops"`
	Errors  int64   `json:"errors"`
	OpsPerS float64 `json:"ops_per_s"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	Resumed int64   `json:"resumed"`
}

// curveSets maps -curves to the key exchanges offered; nil is Go's default.
var curveSets = map[string][]tls.CurveID{
	"x25519":     {tls.X25519},
	"p256":       {tls.CurveP256},
	"go-default": nil,
}

// config is what one run needs.
type config struct {
	addr     string
	sni      string
	resume   bool
	insecure bool
	curves   []tls.CurveID
	conns    int
	duration time.Duration
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "address to load (host:port)")
	mode := flag.String("mode", "full", "handshake kind: full or resume")
	conns := flag.Int("conns", 8, "concurrent workers")
	duration := flag.Duration("duration", 5*time.Second, "how long to run (at most 10 minutes)")
	sni := flag.String("sni", "bench.example", "server name sent in the handshake and the Host header")
	insecure := flag.Bool("insecure", true, "do not verify the server's certificate")
	curveName := flag.String("curves", "x25519",
		"key exchange offered: x25519 (what OpenSSL 3.0 clients such as curl and wrk on Debian 12 offer), "+
			"p256, or go-default (Go's list, led by the post-quantum hybrid X25519MLKEM768)")
	flag.Parse()
	curves, ok := curveSets[*curveName]
	if !ok {
		fmt.Fprintf(os.Stderr, "tlsload: -curves %q: want x25519, p256 or go-default\n", *curveName)
		os.Exit(2)
	}
	if (*mode != "full" && *mode != "resume") || *conns < 1 || *conns > 10000 ||
		*duration <= 0 || *duration > 10*time.Minute || *sni == "" {
		fmt.Fprintln(os.Stderr, "tlsload: bad flags")
		flag.Usage()
		os.Exit(2)
	}
	cfg := config{addr: *addr, sni: *sni, resume: *mode == "resume", insecure: *insecure,
		curves: curves, conns: *conns, duration: *duration}
	r, firstErr := run(cfg)
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "tlsload: first error: %v\n", firstErr)
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintf(os.Stderr, "tlsload: %v\n", err)
		os.Exit(1)
	}
}

// run drives cfg.conns workers for cfg.duration and summarises what they
// measured. It returns the first error any operation met.
func run(cfg config) (result, error) {
	end := time.Now().Add(cfg.duration)
	req := []byte("GET / HTTP/1.1\r\nHost: " + cfg.sni + "\r\nUser-Agent: tlsload\r\nConnection: close\r\n\r\n")
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     int64
		resumed  int64
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range cfg.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc := &tls.Config{ServerName: cfg.sni, InsecureSkipVerify: cfg.insecure, MinVersion: tls.VersionTLS12,
				CurvePreferences: cfg.curves}
			if cfg.resume {
				tc.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
			mine := make([]time.Duration, 0, 4096)
			var myErrs, myResumed int64
			var myFirst error
			br := bufio.NewReaderSize(nil, 4096)
			for time.Now().Before(end) {
				t0 := time.Now()
				didResume, err := operation(cfg.addr, tc, req, br, t0.Add(opTimeout))
				if err != nil {
					myErrs++
					if myFirst == nil {
						myFirst = err
					}
					// Do not spin on a refused port.
					time.Sleep(time.Millisecond)
					continue
				}
				mine = append(mine, time.Since(t0))
				if didResume {
					myResumed++
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += myErrs
			resumed += myResumed
			if firstErr == nil {
				firstErr = myFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(lat, errs, resumed, time.Since(start)), firstErr
}

// operation makes one connection: TCP connect, TLS handshake, one request
// and its whole response, close. Every socket call ends by deadline. It
// reports whether the handshake resumed a session.
func operation(addr string, tc *tls.Config, req []byte, br *bufio.Reader, deadline time.Time) (bool, error) {
	d := net.Dialer{Deadline: deadline}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return false, fmt.Errorf("connect: %w", err)
	}
	defer raw.Close()
	if err := raw.SetDeadline(deadline); err != nil {
		return false, fmt.Errorf("deadline: %w", err)
	}
	c := tls.Client(raw, tc)
	if err := c.Handshake(); err != nil {
		return false, fmt.Errorf("handshake: %w", err)
	}
	if _, err := c.Write(req); err != nil {
		return false, fmt.Errorf("write request: %w", err)
	}
	br.Reset(c)
	if err := readResponse(br); err != nil {
		return false, err
	}
	// The session ticket of TLS 1.3 arrives after the handshake and is
	// taken in while the response is read, so it is cached by now.
	return c.ConnectionState().DidResume, nil
}

// readResponse reads one whole HTTP/1.1 response from br (its body framed by
// Content-Length, chunked encoding or the end of the connection) and
// fails unless its status is 200.
func readResponse(br *bufio.Reader) error {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %w", resp.StatusCode, errStatus)
	}
	return nil
}

// errStatus is wrapped by readResponse when the status is not 200.
var errStatus = errors.New("unexpected status")

// summarize turns the measured operation times into the printed result.
// Percentiles are nearest-rank over the sorted times.
func summarize(lat []time.Duration, errs, resumed int64, elapsed time.Duration) result {
	r := result{Ops: int64(len(lat)), Errors: errs, Resumed: resumed}
	if len(lat) == 0 || elapsed <= 0 {
		return r
	}
	slices.Sort(lat)
	r.OpsPerS = float64(len(lat)) / elapsed.Seconds()
	r.P50us = micros(percentile(lat, 50))
	r.P99us = micros(percentile(lat, 99))
	return r
}

// percentile returns the p-th percentile (nearest rank) of sorted, which
// must not be empty.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

// micros is d in microseconds, with fractions.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
