// Command idleload opens many keep-alive client connections and leaves
// them idle, to measure what an idle connection costs a proxy. It opens
// -conns connections to -addr, at most -parallel at a time; on each it sends
// one keep-alive "GET / HTTP/1.1" and reads the whole response, then leaves
// the connection open. When all are open it prints one JSON line (how many
// are open, how many failed, how long opening took), holds them for -hold,
// closes them all and exits 0. With -tls the connections use TLS (the
// server's certificate is not verified).
//
// The open phase is bounded to 60 s and every socket call has a deadline.
// It raises its limit on open files to what -conns needs, and says on
// stderr when it cannot.
//
//	idleload -addr 127.0.0.1:8080 -conns 10000 -hold 10s
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// openPhase bounds the whole open phase.
	openPhase = 60 * time.Second
	// connTimeout bounds opening one connection (connect, handshake,
	// request and response).
	connTimeout = 10 * time.Second
)

// result is the JSON line idleload prints.
type result struct {
	Open   int     `json:"open"`
	Errors int     `json:"errors"`
	OpenMs float64 `json:"open_ms"`
}

// opener opens one connection, exchanges one request and response on it and
// returns it open and idle.
type opener struct {
	addr string
	host string
	tls  *tls.Config // nil for plain TCP
	req  []byte
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to connect to (host:port)")
	conns := flag.Int("conns", 10000, "connections to open and hold")
	hold := flag.Duration("hold", 10*time.Second, "how long to hold them open (at most 1 hour)")
	useTLS := flag.Bool("tls", false, "use TLS (certificate not verified)")
	sni := flag.String("sni", "bench.example", "server name for TLS and the Host header")
	parallel := flag.Int("parallel", 200, "connections being opened at once")
	flag.Parse()
	if *conns < 1 || *conns > 60000 || *parallel < 1 || *hold < 0 || *hold > time.Hour || *sni == "" {
		fmt.Fprintln(os.Stderr, "idleload: bad flags")
		flag.Usage()
		os.Exit(2)
	}
	if err := raiseNoFile(uint64(*conns) + 64); err != nil {
		fmt.Fprintf(os.Stderr, "idleload: %v\n", err)
	}
	o := newOpener(*addr, *sni, *useTLS)

	ctx, cancel := context.WithTimeout(context.Background(), openPhase)
	start := time.Now()
	open, errs, firstErr := openAll(ctx, o, *conns, *parallel)
	took := time.Since(start)
	cancel()
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "idleload: first error: %v\n", firstErr)
	}
	r := result{Open: len(open), Errors: errs, OpenMs: float64(took) / float64(time.Millisecond)}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintf(os.Stderr, "idleload: %v\n", err)
	}

	sig, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	select {
	case <-time.After(*hold):
	case <-sig.Done():
	}
	alive := stillOpen(open, *parallel)
	fmt.Fprintf(os.Stderr, "idleload: %d of %d connections still open after the hold\n", alive, len(open))
	for _, c := range open {
		c.Close()
	}
}

// newOpener prepares the request (and TLS settings) every connection uses.
func newOpener(addr, host string, useTLS bool) *opener {
	o := &opener{addr: addr, host: host,
		req: []byte("GET / HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: idleload\r\n\r\n")}
	if useTLS {
		o.tls = &tls.Config{ServerName: host, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	}
	return o
}

// open makes one connection, sends the request, reads the whole response
// and returns the connection, idle, with no deadline set.
func (o *opener) open(ctx context.Context) (net.Conn, error) {
	deadline := time.Now().Add(connTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	d := net.Dialer{Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, fmt.Errorf("deadline: %w", err)
	}
	if o.tls != nil {
		tc := tls.Client(c, o.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		c = tc
	}
	if err := exchange(c, o.req); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		return nil, fmt.Errorf("clear deadline: %w", err)
	}
	return c, nil
}

// errNotKept is returned when a server answers but will not keep the
// connection open.
var errNotKept = errors.New("server does not keep the connection alive")

// errExtra is returned when a server sends more than one response.
var errExtra = errors.New("bytes after the response")

// errStatus is wrapped when the status is not 200.
var errStatus = errors.New("unexpected status")

// exchange writes req on c and reads one whole response (framed by
// Content-Length or chunked encoding). The response must be a 200 that
// keeps the connection alive, with nothing after it.
func exchange(c net.Conn, req []byte) error {
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	br := bufio.NewReaderSize(c, 2048)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.Close {
		// Also true for a body that runs to the end of the connection,
		// which is not read: the caller drops the connection.
		return errNotKept
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d: %w", resp.StatusCode, errStatus)
	case br.Buffered() > 0:
		return errExtra
	}
	return nil
}

// openAll opens n connections with at most parallel being opened at once,
// until ctx ends. It returns those open, how many failed (or were never
// tried because ctx ended) and the first error.
func openAll(ctx context.Context, o *opener, n, parallel int) ([]net.Conn, int, error) {
	var (
		mu       sync.Mutex
		open     = make([]net.Conn, 0, n)
		errs     int
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	for range min(parallel, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for int(next.Add(1)) <= n {
				var c net.Conn
				err := ctx.Err()
				if err == nil {
					c, err = o.open(ctx)
				}
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					open = append(open, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return open, errs, firstErr
}

// stillOpen counts the connections the server has not closed: a short read
// that times out means the connection is still there and idle.
func stillOpen(conns []net.Conn, parallel int) int {
	var alive atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(parallel, len(conns)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b [1]byte
			for {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					return
				}
				c := conns[i]
				if err := c.SetReadDeadline(time.Now().Add(5 * time.Millisecond)); err != nil {
					continue
				}
				_, err := c.Read(b[:])
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					alive.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(alive.Load())
}

// raiseNoFile raises the soft limit on open files to at least need,
// raising the hard limit too when allowed.
func raiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("get open-file limit: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	want := lim
	want.Cur = need
	if want.Max < need {
		want.Max = need
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return nil
	}
	// Not allowed to raise the hard limit: take what it allows.
	want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("raise open-file limit to %d: %w", lim.Max, err)
	}
	return fmt.Errorf("open-file limit is %d, below the %d needed; some connections will fail", lim.Max, need)
}
