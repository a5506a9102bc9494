package balance

import (
	"cmp"
	"slices"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// fixed sends all traffic to the available server with the highest weight
// ("fixed", LoadMaster's Fixed Weighting, also known as chained failover):
// when it fails, is disabled, drains or is full, the next highest takes
// over, and when it comes back it takes over again. Servers of equal
// weight are ranked by their order in the configuration.
//
// With slow start, a higher-ranked server that comes back takes a growing
// share instead of everything at once: while ramping it takes a new
// connection with probability equal to its ramp fraction, and the rest go
// down the ranking to the first server that is not ramping. When every
// candidate is ramping (all added together), the highest takes all.
type fixed struct {
	*core
	order []int32 // indices by weight, highest first; stable
}

func newFixed(c *core, _ Options) (Picker, error) {
	order := make([]int32, len(c.es))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(c.es[b].weight, c.es[a].weight) })
	return &fixed{core: c, order: order}, nil
}

// Pick implements Picker.
func (p *fixed) Pick(req *Request) (*backend.Server, func(Outcome), error) {
	if now, ok := p.ramping(); ok {
		if e, ok := p.pickRamping(req, now); ok {
			return e.srv, e.done, nil
		}
	}
	for _, i := range p.order {
		e := &p.es[i]
		if p.usable(e, req) && e.acquire() {
			return e.srv, e.done, nil
		}
	}
	return nil, nil, ErrNoServer
}

// pickRamping is Pick while some server ramps up.
func (p *fixed) pickRamping(req *Request, now int64) (*entry, bool) {
	steady := -1 // position in order of the first candidate not ramping
	for k, i := range p.order {
		e := &p.es[i]
		if p.usable(e, req) && !e.full() && p.rampFrac(e, now) == rampScale {
			steady = k
			break
		}
	}
	if steady < 0 {
		return nil, false // all ramping: plain ranking
	}
	for _, i := range p.order[:steady] {
		e := &p.es[i]
		if p.usable(e, req) && !e.full() && int64(p.randN(rampScale)) < p.rampFrac(e, now) && e.acquire() {
			return e, true
		}
	}
	if e := &p.es[p.order[steady]]; e.acquire() {
		return e, true
	}
	return nil, false
}
