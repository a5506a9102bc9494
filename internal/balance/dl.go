package balance

import (
	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// weightedResponse picks by weighted response time ("dl"): the server
// whose expected time to answer one more request, latency × (active+1) /
// weight, is lowest. Latency is the moving average that health checks and
// proxies feed into backend.Metrics.ObserveLatency: the latency of the
// passed checks, and that of every Outcome a done func of this Picker is
// given (connection set-up at layer 4, the response head at layer 7).
// Multiplying by
// (active+1) keeps the fastest server from taking every new connection at
// once (it gets more work until its queue makes it slower than the
// others), and the weight lets an operator favour a server. A server with
// no latency sample yet is treated as fast as the fastest known one, so it
// is tried; with no samples at all the method behaves as wlc. Ties are
// broken uniformly at random. A pick scans every server without a lock.
type weightedResponse struct{ *core }

func newWeightedResponse(c *core, _ Options) (Picker, error) {
	return weightedResponse{c}, nil
}

// Pick implements Picker.
func (p weightedResponse) Pick(req *Request) (*backend.Server, func(Outcome), error) {
	now, ramp := p.ramping()
	var buf [64]int32
	for range len(p.es) {
		fastest := int64(0)
		for i := range p.es {
			if l := int64(p.es[i].m.LatencyNanos()); l > 0 && (fastest == 0 || l < fastest) {
				fastest = l
			}
		}
		if fastest == 0 {
			fastest = 1
		}
		ties := buf[:0]
		var best float64
		for i := range p.es {
			e := &p.es[i]
			if !p.usable(e, req) || e.full() {
				continue
			}
			l := e.m.LatencyNanos()
			if l <= 0 {
				l = fastest
			}
			w := float64(e.weight)
			if ramp {
				w *= float64(p.rampFrac(e, now))
			}
			s := float64(l) * float64(e.srv.Active()+1) / w
			switch {
			case len(ties) == 0 || s < best:
				ties, best = append(ties[:0], int32(i)), s
			case s == best:
				ties = append(ties, int32(i))
			}
		}
		if len(ties) == 0 {
			return nil, nil, ErrNoServer
		}
		j := ties[0]
		if len(ties) > 1 {
			j = ties[p.randN(len(ties))]
		}
		if e := &p.es[j]; e.acquire() {
			return e.srv, e.done, nil
		}
	}
	return nil, nil, ErrNoServer
}
