package balance

import (
	"sync/atomic"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// weightedRoundRobin is smooth weighted round robin ("wrr"), the method of
// nginx's upstream module: over every cycle of sum(weights) picks (from the
// start) each server is chosen exactly weight times, and the choices are spread evenly
// (weights 5,1,1 give a a b a c a a, not a a a a a b c).
//
// The sequence repeats with a period of sum(weights)/gcd(weights). When
// that period is at most maxTable, it is computed once and a pick is one
// atomic increment into it: lock-free, O(1). A server that cannot take the
// pick (unavailable, at its limit, avoided) gives its slot away to the
// next slot, so the ratios among the others stay exact. After 2n refused
// slots in a row, and whenever the period is too long or a server is
// ramping up (slow start, which changes weights over time), a pick uses
// the general O(n) form of the same algorithm (smooth.pick) under a mutex.
type weightedRoundRobin struct {
	*core
	table []int32
	next  atomic.Uint64
	dyn   *smooth
}

func newWeightedRoundRobin(c *core, _ Options) (Picker, error) {
	ws := make([]int64, len(c.es))
	for i, e := range c.es {
		ws[i] = e.weight
	}
	return &weightedRoundRobin{core: c, table: smoothTable(ws), dyn: newSmooth(len(c.es))}, nil
}

// Pick implements Picker.
func (p *weightedRoundRobin) Pick(req *Request) (*backend.Server, func(Outcome), error) {
	now, ramp := p.ramping()
	if !ramp && p.table != nil {
		t := uint64(len(p.table))
		for range 2 * len(p.es) {
			e := &p.es[p.table[(p.next.Add(1)-1)%t]]
			if p.usable(e, req) && e.acquire() {
				return e.srv, e.done, nil
			}
		}
	}
	e, ok := p.dyn.pick(p.core, req, func(_ int, e *entry) int64 {
		if ramp {
			return e.weight * p.rampFrac(e, now)
		}
		return e.weight
	})
	if !ok {
		return nil, nil, ErrNoServer
	}
	return e.srv, e.done, nil
}
