package attack

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// UDPFloodResult is what a spoofed-source UDP flood sent.
type UDPFloodResult struct {
	Sources  int     `json:"sources"`
	Sent     int64   `json:"datagrams_sent"`
	Errors   int64   `json:"send_errors"`
	Replies  int64   `json:"replies_seen"`
	Duration float64 `json:"seconds"`
}

// SourceAddr is the i-th spoofed source address of a flood: distinct
// addresses in 127.10.0.1 – 127.255.255.254, never 127.0.0.1.
func SourceAddr(i int) net.IP {
	i %= 246 * 65536
	a, b, c := 10+i/65536, (i/256)%256, i%256
	if c == 0 || c == 255 { // stay away from .0 and .255 for neatness
		c = 1 + (i/65536)%253
	}
	return net.IPv4(127, byte(a), byte(b), byte(c))
}

// UDPFlood sends perSource datagrams of size bytes to target from each of
// sources distinct 127.x.y.z addresses (a socket bound to each), with
// workers senders, within d. Each source waits a moment for replies,
// counting them, so that the proxy's sessions see a live client.
func UDPFlood(ctx context.Context, target string, sources, perSource, size, workers int, d time.Duration) UDPFloodResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res := UDPFloodResult{Sources: sources}
	dst, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		res.Errors++
		return res
	}
	payload := make([]byte, size)
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2048)
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= sources {
					return
				}
				c, err := net.ListenUDP("udp", &net.UDPAddr{IP: SourceAddr(i)})
				if err != nil {
					atomic.AddInt64(&res.Errors, 1)
					continue
				}
				for range perSource {
					if _, err := c.WriteToUDP(payload, dst); err != nil {
						atomic.AddInt64(&res.Errors, 1)
					} else {
						atomic.AddInt64(&res.Sent, 1)
					}
				}
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Millisecond))
				for {
					if _, _, err := c.ReadFromUDP(buf); err != nil {
						break
					}
					atomic.AddInt64(&res.Replies, 1)
				}
				_ = c.Close()
			}
		}()
	}
	wg.Wait()
	res.Duration = time.Since(start).Seconds()
	return res
}
