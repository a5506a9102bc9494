package balance

import (
	"sync"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// weightedRoundRobin is smooth weighted round robin ("wrr"), the method of
// nginx's upstream module: on each pick every server's current value grows
// by its weight, the server with the largest value wins and gives back the
// sum of all weights. Over any run of sum(weights) picks each server is
// chosen exactly weight times, and the choices are spread evenly (weights
// 5,1,1 give a a b a c a a, not a a a a a b c).
//
// A server at its limit (or avoided by the request) is passed over for the next largest value; the
// winner still gives back the whole sum, so the values keep summing to zero
// and the ratios of the others stay exact. A pick costs O(n) under a mutex
// held for that loop only.
type weightedRoundRobin struct {
	es    []entry
	total int64

	mu      sync.Mutex
	current []int64
	skip    []bool // scratch: servers found full or avoided during one pick
}

func newWeightedRoundRobin(es []entry) Picker {
	p := &weightedRoundRobin{es: es, current: make([]int64, len(es)), skip: make([]bool, len(es))}
	for _, e := range es {
		p.total += e.weight
	}
	return p
}

// Pick implements Picker.
func (p *weightedRoundRobin) Pick(req *Request) (*backend.Server, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.es {
		p.current[i] += p.es[i].weight
		p.skip[i] = false
	}
	for range p.es {
		best := -1
		for i := range p.es {
			if !p.skip[i] && (best < 0 || p.current[i] > p.current[best]) {
				best = i
			}
		}
		e := &p.es[best]
		if !e.avoided(req) && e.acquire() {
			p.current[best] -= p.total
			return e.srv, e.srv.ReleaseFunc(), nil
		}
		p.skip[best] = true
	}
	// Every server is full: undo this round's growth so that a run of
	// refusals does not distort the sequence that follows.
	for i := range p.es {
		p.current[i] -= p.es[i].weight
	}
	return nil, nil, ErrNoServer
}
