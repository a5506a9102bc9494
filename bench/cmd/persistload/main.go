// Command persistload measures the memory of Fulcrum's persistence table
// with a million clients.
//
//	persistload -fulcrum /tmp/fulcrum [-clients 1000000 -conns 16 -time-limit 180s]
//
// It starts three Go HTTP real servers (each answers with its own name)
// and `fulcrum serve` in a temporary data directory, applies one
// layer-7 (type http) virtual service over them that persists on a
// request header (persistence mode header, header X-Client) with the
// option alwaysPersist "yes" (so that each request on a keep-alive
// connection is scheduled, not just its first), and reads
// the process's resident set size (VmRSS). It then sends one request per
// client, each with its own X-Client value, over -conns keep-alive
// connections, so that the table gets one entry per client; the sending
// stops after -time-limit and says so. It reads the RSS again and the
// table's size from the status API, and checks that a sample of the
// clients, asking again, lands on the real server that answered them the
// first time. It prints one JSON object; everything it started is
// stopped at the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/internal/fulcrumproc"
)

// result is the JSON printed at the end.
type result struct {
	Clients        int64   `json:"clients"`
	Entries        int64   `json:"entries"`
	RSSBeforeMiB   float64 `json:"rss_before_mib"`
	RSSAfterMiB    float64 `json:"rss_after_mib"`
	BytesPerClient float64 `json:"bytes_per_client"`
	RequestsPerS   float64 `json:"requests_per_s"`
	Failed         int64   `json:"failed_requests"`
	StickyOK       int     `json:"sticky_ok"`
	StickyChecked  int     `json:"sticky_checked"`
	Aborted        string  `json:"aborted,omitempty"`
}

const (
	password = "persistload passphrase"
	header   = "X-Client"
	// sampleEvery: one client in this many is asked again.
	sampleEvery = 1000
)

func main() {
	bin := flag.String("fulcrum", "", "the fulcrum binary (required)")
	clients := flag.Int("clients", 1000000, "distinct clients (one request each)")
	conns := flag.Int("conns", 16, "keep-alive connections sending them")
	timeLimit := flag.Duration("time-limit", 180*time.Second, "stop sending after this long")
	port := flag.Int("port", 28080, "port of the virtual service")
	adminPort := flag.Int("admin-port", 28443, "port of Fulcrum's admin plane")
	flag.Parse()
	if *bin == "" || *clients < 1 || *conns < 1 || *conns > 1000 {
		log.Fatal("persistload: -fulcrum is required; -clients at least 1; -conns 1..1000")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeLimit+60*time.Second)
	defer cancel()
	res, err := run(ctx, *bin, *clients, *conns, *timeLimit, *port, *adminPort)
	if err != nil {
		log.Printf("persistload: %v", err)
		if res == nil {
			os.Exit(1)
		}
		res.Aborted = err.Error()
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func run(ctx context.Context, bin string, clients, conns int, timeLimit time.Duration, port, adminPort int) (*result, error) {
	dir, err := os.MkdirTemp("", "persistload-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	var backendPorts []int
	for i := range 3 {
		srv, p, err := startBackend(i)
		if err != nil {
			return nil, err
		}
		defer func() { _ = srv.Close() }()
		backendPorts = append(backendPorts, p)
	}

	f, err := fulcrumproc.Start(ctx, bin, dir, adminPort, password)
	if err != nil {
		return nil, err
	}
	defer f.Stop()

	// alwaysPersist yes: every request of a keep-alive connection is
	// scheduled (LoadMaster's "Always Check Persist"); with the default,
	// no, a connection keeps the real server of its first request.
	doc := fmt.Sprintf(`options: {alwaysPersist: "yes"}
virtualServices:
- address: 127.0.0.1
  port: %d
  protocol: tcp
  type: http
  schedule: lc
  persistence: {mode: header, cookie: %s, timeout: 3600}
  realServers:
  - {address: 127.0.0.1, port: %d}
  - {address: 127.0.0.1, port: %d}
  - {address: 127.0.0.1, port: %d}
`, port, header, backendPorts[0], backendPorts[1], backendPorts[2])
	file := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		return nil, fmt.Errorf("write configuration: %w", err)
	}
	if err := f.Apply(ctx, file); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitServed(ctx, addr); err != nil {
		return nil, fmt.Errorf("the virtual service never answered: %w", err)
	}
	api, err := f.Client()
	if err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // let the start-up settle
	res := &result{RSSBeforeMiB: fulcrumproc.RSSMiB(f.Pid())}
	before := fulcrumproc.RSSKiB(f.Pid())

	// One request per client.
	var next, done, failed atomic.Int64
	var mu sync.Mutex
	first := map[int64]int{} // sampled client → backend
	sendCtx, stopSending := context.WithTimeout(ctx, timeLimit)
	defer stopSending()
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *client
			defer func() {
				if c != nil {
					c.close()
				}
			}()
			for sendCtx.Err() == nil {
				n := next.Add(1) - 1
				if n >= int64(clients) {
					return
				}
				if c == nil {
					nc, err := dial(sendCtx, addr)
					if err != nil {
						failed.Add(1)
						continue
					}
					c = nc
				}
				b, err := c.get(n)
				if err != nil {
					if sendCtx.Err() == nil {
						failed.Add(1)
						log.Printf("persistload: client %d: %v", n, err)
					}
					c.close()
					c = nil
					continue
				}
				done.Add(1)
				if n%sampleEvery == 0 {
					mu.Lock()
					first[n] = b
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var runErr error
	if sendCtx.Err() != nil && done.Load() < int64(clients) {
		runErr = fmt.Errorf("time limit %v reached after %d clients", timeLimit, done.Load())
	}
	res.Clients = done.Load()
	res.Failed = failed.Load()
	res.RequestsPerS = math.Round(float64(res.Clients) / elapsed.Seconds())
	res.RSSAfterMiB = fulcrumproc.RSSMiB(f.Pid())
	if res.Clients > 0 {
		res.BytesPerClient = math.Round(float64(fulcrumproc.RSSKiB(f.Pid())-before) * 1024 / float64(res.Clients))
	}
	res.Entries, err = persistEntries(ctx, api)
	if err != nil {
		log.Printf("persistload: table size: %v", err)
	}

	// The sampled clients come back.
	c, err := dial(ctx, addr)
	if err != nil {
		return res, fmt.Errorf("sticky check: %w", err)
	}
	defer c.close()
	for n, b := range first {
		got, err := c.get(n)
		if err != nil {
			return res, fmt.Errorf("sticky check: %w", err)
		}
		res.StickyChecked++
		if got == b {
			res.StickyOK++
		}
	}
	return res, runErr
}

// client is one keep-alive HTTP/1.1 connection.
type client struct {
	conn net.Conn
	r    *bufio.Reader
	buf  []byte
}

func dial(ctx context.Context, addr string) (*client, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &client{conn: conn, r: bufio.NewReaderSize(conn, 4096), buf: make([]byte, 0, 256)}, nil
}

func (c *client) close() { _ = c.conn.Close() }

// get sends one request as client n and returns the index of the real
// server that answered.
func (c *client) get(n int64) (int, error) {
	c.buf = append(c.buf[:0], "GET / HTTP/1.1\r\nHost: persistload\r\n"+header+": client-"...)
	c.buf = strconv.AppendInt(c.buf, n, 10)
	c.buf = append(c.buf, "\r\n\r\n"...)
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(c.buf); err != nil {
		return 0, err
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200")) {
		return 0, fmt.Errorf("status %q", bytes.TrimSpace(status))
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, fmt.Errorf("content-length %q", v)
			}
		}
	}
	if length < 0 || length > 64 {
		return 0, fmt.Errorf("content-length %d", length)
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return 0, err
	}
	if !bytes.HasPrefix(body, []byte("b")) {
		return 0, fmt.Errorf("unexpected body %q", body)
	}
	return strconv.Atoi(string(body[1:]))
}

// waitServed waits until addr answers a request (at most 30 s).
func waitServed(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		var c *client
		if c, err = dial(ctx, addr); err == nil {
			_, err = c.get(-1)
			c.close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// startBackend starts real server i: every request is answered "b<i>".
func startBackend(i int) (*http.Server, int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, 0, fmt.Errorf("backend: %w", err)
	}
	body := []byte("b" + strconv.Itoa(i))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().(*net.TCPAddr).Port, nil
}

// persistEntries returns the entries of the persistence tables of every
// service, from GET /api/v1/status.
func persistEntries(ctx context.Context, api *fulcrumproc.Client) (int64, error) {
	body, err := api.Get(ctx, "/api/v1/status")
	if err != nil {
		return 0, err
	}
	var st struct {
		VirtualServices []struct {
			Persistence *struct {
				Entries int64 `json:"entries"`
			} `json:"persistence"`
		} `json:"virtualServices"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, fmt.Errorf("status: %w", err)
	}
	var n int64
	found := false
	for _, vs := range st.VirtualServices {
		if vs.Persistence != nil {
			n += vs.Persistence.Entries
			found = true
		}
	}
	if !found {
		return 0, errors.New("the status shows no persistence table")
	}
	return n, nil
}
