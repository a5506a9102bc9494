package kempapi

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LoadMaster allows a client 30 calls in 3 seconds (it drops the
// connection of one that makes more); these are the defaults of
// Options.RateLimit and Options.RateBurst. Fulcrum answers a call over the
// limit with 429, LoadMaster's error body and Retry-After instead, so that
// the client can read why (see check).
const (
	DefaultRateBurst = 30
	DefaultRateLimit = rate.Limit(DefaultRateBurst) / 3 // calls per second
)

// Bounds of the limiter's memory.
const (
	maxTrackedClients = 65536
	sweepEvery        = 10 * time.Second
)

// limiter is a token bucket per client address. IPv6 clients are grouped
// by /64, the block one host usually controls. Buckets that have been idle
// long enough to be full again are forgotten; the number of buckets is
// bounded, and when that many clients are active at once new ones are
// refused (the limit fails closed).
type limiter struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	idle      time.Duration // a bucket idle this long is full again
	clients   map[netip.Prefix]*bucket
	lastSweep time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(limit rate.Limit, burst int) *limiter {
	l := &limiter{limit: limit, burst: burst, clients: map[netip.Prefix]*bucket{}}
	l.idle = time.Minute
	if limit > 0 && limit != rate.Inf {
		l.idle = time.Duration(float64(burst)/float64(limit)*float64(time.Second)) + time.Second
	}
	return l
}

// set changes the limit; buckets start afresh under it.
func (l *limiter) set(limit rate.Limit, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limit == limit && l.burst == burst {
		return
	}
	l.limit, l.burst = limit, burst
	l.idle = time.Minute
	if limit > 0 && limit != rate.Inf {
		l.idle = time.Duration(float64(burst)/float64(limit)*float64(time.Second)) + time.Second
	}
	l.clients = map[netip.Prefix]*bucket{}
}

// clientKey groups an address: the address itself for IPv4, its /64 for
// IPv6; unparsable addresses share one bucket.
func clientKey(host string) netip.Prefix {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64) // a valid IPv6 address always has a /64
	return p
}

// check is allow as an answer: nil when the client may make one more call
// at now, otherwise the 429 failure to answer with — LoadMaster's error
// body (XML for /access, JSON for /accessv2, written by the caller) saying
// what the limit is, and the seconds until the next call is allowed
// (Retry-After).
func (l *limiter) check(host string, now time.Time) *failure {
	if l.allow(host, now) {
		return nil
	}
	l.mu.Lock()
	limit, burst := l.limit, l.burst
	wait := 1.0 // tokens missing before the next call
	if b := l.clients[clientKey(host)]; b != nil {
		wait = 1 - b.l.TokensAt(now)
	}
	l.mu.Unlock()
	retry := 60
	window := "no time"
	if limit > 0 {
		retry = max(1, int(math.Ceil(wait/float64(limit))))
		window = strconv.FormatFloat(float64(burst)/float64(limit), 'f', -1, 64) + " s"
	}
	return &failure{status: http.StatusTooManyRequests, retryAfter: retry,
		msg: "Too many requests: this address made more than " + strconv.Itoa(burst) + " API calls in " + window +
			" (options.apiRateLimit); try again in " + strconv.Itoa(retry) + " s"}
}

// allow reports whether the client may make one more call at now.
func (l *limiter) allow(host string, now time.Time) bool {
	if l.limit == rate.Inf {
		return true
	}
	k := clientKey(host)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[k]
	if b == nil {
		if len(l.clients) >= maxTrackedClients/2 && now.Sub(l.lastSweep) >= sweepEvery {
			l.sweep(now)
		}
		if len(l.clients) >= maxTrackedClients {
			return false
		}
		b = &bucket{l: rate.NewLimiter(l.limit, l.burst)}
		l.clients[k] = b
	}
	b.seen = now
	return b.l.AllowN(now, 1)
}

// sweep forgets buckets idle long enough to be full again.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.clients {
		if now.Sub(b.seen) > l.idle {
			delete(l.clients, k)
		}
	}
}
