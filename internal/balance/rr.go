package balance

import (
	"sync/atomic"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// roundRobin hands out servers in turn, ignoring weights ("rr"). A server
// at its limit is skipped for the next one in turn. It is lock-free: one
// atomic counter.
type roundRobin struct {
	es   []entry
	next atomic.Uint64
}

func newRoundRobin(es []entry) Picker { return &roundRobin{es: es} }

// Pick implements Picker.
func (p *roundRobin) Pick(req *Request) (*backend.Server, func(), error) {
	n := uint64(len(p.es))
	start := p.next.Add(1) - 1
	for i := range n {
		e := &p.es[(start+i)%n]
		if !e.avoided(req) && e.acquire() {
			return e.srv, e.srv.ReleaseFunc(), nil
		}
	}
	return nil, nil, ErrNoServer
}
