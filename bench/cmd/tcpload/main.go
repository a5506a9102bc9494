// Command tcpload is the load generator of the layer-4 benchmark. Each of
// -conns workers sends requests to -addr for -duration: a request is the
// line "<size>\n" and its answer is size bytes (see bench/cmd/backend).
// With -newconn every request uses a new connection (connect, request,
// answer, close); otherwise each worker keeps one connection. It prints
// one JSON object: requests, errors, seconds, requests per second and the
// 50th and 99th percentile latencies in microseconds.
//
//	tcpload -addr 127.0.0.1:8080 -conns 50 -size 64 -duration 5s
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

type result struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	MBps     float64 `json:"mb_per_s"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to load")
	conns := flag.Int("conns", 50, "concurrent workers")
	size := flag.Int("size", 64, "answer size in bytes")
	newConn := flag.Bool("newconn", false, "a new connection for every request")
	duration := flag.Duration("duration", 5*time.Second, "how long to run (bounded to 10 minutes)")
	flag.Parse()
	if *duration > 10*time.Minute || *duration <= 0 || *conns < 1 || *size < 1 {
		fmt.Fprintln(os.Stderr, "tcpload: bad flags")
		os.Exit(2)
	}
	req := []byte(fmt.Sprintf("%d\n", *size))
	deadline := time.Now().Add(*duration)
	var mu sync.Mutex
	var lat []time.Duration
	var errs int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, min(*size, 256<<10))
			mine := make([]time.Duration, 0, 1<<16)
			var myErrs int64
			var c net.Conn
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if c == nil {
					var err error
					if c, err = net.DialTimeout("tcp", *addr, 5*time.Second); err != nil {
						myErrs++
						time.Sleep(time.Millisecond)
						continue
					}
				}
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				err := exchange(c, req, buf, *size)
				if err != nil {
					myErrs++
					c.Close()
					c = nil
					continue
				}
				if *newConn {
					c.Close()
					c = nil
				}
				mine = append(mine, time.Since(t0))
			}
			if c != nil {
				c.Close()
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += myErrs
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(lat)
	r := result{Requests: int64(len(lat)), Errors: errs, Seconds: secs}
	if len(lat) > 0 {
		r.RPS = float64(len(lat)) / secs
		r.P50us = float64(lat[len(lat)/2].Microseconds())
		r.P99us = float64(lat[len(lat)*99/100].Microseconds())
		r.MBps = float64(len(lat)) * float64(*size) / secs / 1e6
	}
	_ = json.NewEncoder(os.Stdout).Encode(r)
}

// exchange sends one request and reads its answer.
func exchange(c net.Conn, req, buf []byte, size int) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	for size > 0 {
		n, err := c.Read(buf[:min(len(buf), size)])
		size -= n
		if err != nil {
			if err == io.EOF && size == 0 {
				return nil
			}
			return err
		}
	}
	return nil
}
