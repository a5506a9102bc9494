package balance

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// rendezvous is highest-random-weight (rendezvous) hashing, the engine of
// sh and uhash. Each server scores every key; the key goes to the usable
// server with the highest score. Scores depend only on the key and the
// server's identity (address and port, not its position or the other
// servers), so when a server fails only the keys it held move, each to its
// own second choice, spread evenly over the rest; when it comes back they
// return. With unequal weights (or during slow start) the score is
// weight / -ln(u), u the hash mapped to (0,1), which gives each server a
// share of the keys proportional to its weight and, as a weight grows,
// only moves keys towards that server.
//
// A pick is O(n) hash computations: there is no state to lock.
type rendezvous struct {
	*core
	seeds   []uint64 // per server, from its address and port
	uniform bool     // all weights equal: compare raw hashes
}

func newRendezvous(c *core) *rendezvous {
	r := &rendezvous{core: c, seeds: make([]uint64, len(c.es)), uniform: true}
	for i, e := range c.es {
		k := e.srv.Key()
		r.seeds[i] = mix64(fnv1a(k.Address+":"+strconv.Itoa(k.Port)) ^ 0x9e3779b97f4a7c15)
		if e.weight != c.es[0].weight {
			r.uniform = false
		}
	}
	return r
}

// pickKey picks for the key hash h.
func (r *rendezvous) pickKey(h uint64, req *Request) (*backend.Server, func(Outcome), error) {
	now, ramp := r.ramping()
	for range len(r.es) {
		best := -1
		var bestH uint64
		var bestS float64
		for i := range r.es {
			e := &r.es[i]
			if !r.usable(e, req) || e.full() {
				continue
			}
			x := mix64(h ^ r.seeds[i])
			if r.uniform && !ramp {
				if best < 0 || x > bestH {
					best, bestH = i, x
				}
				continue
			}
			w := float64(e.weight)
			if ramp {
				w *= float64(r.rampFrac(e, now))
			}
			u := (float64(x>>11) + 0.5) / (1 << 53)
			s := w / -math.Log(u)
			if best < 0 || s > bestS {
				best, bestS = i, s
			}
		}
		if best < 0 {
			return nil, nil, ErrNoServer
		}
		if e := &r.es[best]; e.acquire() {
			return e.srv, e.done, nil
		}
		// Taken to its limit meanwhile: the next scan sees it full.
	}
	return nil, nil, ErrNoServer
}

// mix64 is the finaliser of SplitMix64: a bijection whose output bits each
// depend on every input bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// fnv1a is the 64-bit FNV-1a hash of s: stable across processes, so a key
// maps to the same server after a restart and on an HA peer.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// addrHash hashes an IP address (an IPv4-mapped IPv6 address hashes as the
// IPv4 address).
func addrHash(a netip.Addr) uint64 {
	b := a.Unmap().As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	return mix64(lo ^ mix64(hi^0x2545f4914f6cdd1d))
}
