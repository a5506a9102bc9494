package udp

import (
	"hash/maphash"
	"net/netip"
	"sync/atomic"
	"time"
)

// DefaultSourceRate is the rate, in new sessions per second, at which one
// client address may open sessions on a Proxy whose Options do not say.
const DefaultSourceRate = 200

// DefaultSourceBurst is how many new sessions one client address may open
// at once on a Proxy whose Options do not say.
const DefaultSourceBurst = 1000

// sourceBuckets is the number of token buckets of a sourceLimiter. Client
// addresses share them through a keyed hash, so the limiter's memory is
// fixed whatever the number of addresses a flood spoofs; two addresses
// share a bucket with probability 1/sourceBuckets, and the key is secret,
// so a client cannot choose whose bucket it drains.
const sourceBuckets = 4096

// sourceLimiter limits the rate of new sessions per client address: IPv4
// addresses one by one, IPv6 ones by /64 (a host usually has a whole /64
// and can pick any address in it). Each bucket is a generic cell rate
// algorithm (GCRA) cell: the theoretical arrival time of the next session,
// updated with a compare-and-swap, so the limiter takes no lock.
type sourceLimiter struct {
	seed      maphash.Seed
	interval  int64 // nanoseconds per session at the rate
	tolerance int64 // how far the arrival time may run ahead of now: burst × interval
	buckets   [sourceBuckets]atomic.Int64
}

// newSourceLimiter returns a limiter of perSec new sessions per second and
// address with bursts of burst, or nil (no limit) when perSec < 0.
func newSourceLimiter(perSec float64, burst int) *sourceLimiter {
	if perSec < 0 {
		return nil
	}
	if perSec == 0 {
		perSec = DefaultSourceRate
	}
	if burst <= 0 {
		burst = DefaultSourceBurst
	}
	interval := max(int64(float64(time.Second)/perSec), 1)
	return &sourceLimiter{seed: maphash.MakeSeed(), interval: interval, tolerance: interval * int64(burst)}
}

// allow reports whether addr may open a session at now (nanoseconds since
// epoch), and counts it if so. A nil limiter allows everything.
func (l *sourceLimiter) allow(addr netip.Addr, now int64) bool {
	if l == nil {
		return true
	}
	b := &l.buckets[l.bucket(addr)]
	for range 16 { // bounded: each failed swap means another session of the bucket was counted
		tat := b.Load()
		next := max(tat, now) + l.interval
		if next-now > l.tolerance {
			return false
		}
		if b.CompareAndSwap(tat, next) {
			return true
		}
	}
	return false
}

// bucket returns the index of addr's bucket.
func (l *sourceLimiter) bucket(addr netip.Addr) uint64 {
	addr = addr.Unmap()
	k := addr.As16()
	if !addr.Is4() {
		clear(k[8:]) // the /64
	}
	return maphash.Comparable(l.seed, k) % sourceBuckets
}
