package balance

import (
	"sync/atomic"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// roundRobin hands out servers in turn, ignoring weights ("rr"). Each look
// at a server takes a turn, so a server that is skipped (unavailable, at
// its limit, avoided) gives its turn away instead of doubling the share of
// its neighbour: the others still alternate exactly. It is lock-free, one
// atomic counter, while no server ramps up; during a slow start it uses
// smooth weighted round robin with weights proportional to each server's
// ramp.
type roundRobin struct {
	*core
	next atomic.Uint64
	dyn  *smooth
}

func newRoundRobin(c *core, _ Options) (Picker, error) {
	return &roundRobin{core: c, dyn: newSmooth(len(c.es))}, nil
}

// Pick implements Picker.
func (p *roundRobin) Pick(req *Request) (*backend.Server, func(Outcome), error) {
	if now, ok := p.ramping(); ok {
		e, ok := p.dyn.pick(p.core, req, func(_ int, e *entry) int64 { return p.rampFrac(e, now) })
		if !ok {
			return nil, nil, ErrNoServer
		}
		return e.srv, e.done, nil
	}
	n := uint64(len(p.es))
	for range n {
		e := &p.es[(p.next.Add(1)-1)%n]
		if p.usable(e, req) && e.acquire() {
			return e.srv, e.done, nil
		}
	}
	return nil, nil, ErrNoServer
}
