package balance

import (
	"sync"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// linearMax is the largest pool lc and wlc scan linearly; larger pools use
// a tournament tree.
const linearMax = 16

// leastConn picks the server with the fewest active connections ("lc"),
// or with wlc the lowest load relative to weight. A tie is broken
// uniformly at random among all tied servers. Servers that are unavailable,
// at their limit or avoided by the request are not candidates. Picks are
// serialised by a mutex, so each one sees the counts left by the previous:
// under concurrent picks the choice is still the least loaded.
//
// Small pools (≤ linearMax) are scanned. Larger ones keep an index of the
// servers' load keys, updated by every pick and by every done func this
// picker hands out: lc (and wlc with equal weights, the common case)
// groups servers by their integer key (buckets.go), O(1) per pick; wlc
// with unequal weights keeps a tournament tree of fractions (tree.go),
// O(log n). Changes the index is not told about (connections of an earlier
// generation's picker ending, a server coming back up) are folded in by
// refreshing one server per pick in turn, so every server is re-read at
// least once every n picks, and by re-reading the chosen server before
// taking it: the index may briefly over-estimate a server's load, never
// under-estimate the one it returns. While a server ramps up (slow start)
// or the request avoids servers, a pick scans.
type leastConn struct {
	*core
	weighted bool

	mu     sync.Mutex
	t      loadIndex // nil for pools of at most linearMax servers
	cursor int
}

// loadIndex finds the least loaded servers of a large pool: buckets or
// tree. Keys are fractions num/den; num < 0 excludes a server.
type loadIndex interface {
	set(j int32, num, den int64)
	leaf(j int32) (num, den int64, ok bool)
	minKey() (num, den int64)
	pick(randN func(int) int) (int32, bool)
}

func newLeastConn(c *core, _ Options) (Picker, error) { return newLC(c, false), nil }

func newLC(c *core, weighted bool) *leastConn {
	p := &leastConn{core: c, weighted: weighted}
	if len(c.es) <= linearMax {
		return p
	}
	uniform := true
	for _, e := range c.es {
		uniform = uniform && e.weight == c.es[0].weight
	}
	if weighted && uniform {
		p.weighted = false // (active+1)/w orders like active+1
	}
	if p.weighted {
		p.t = newTree(len(c.es))
	} else {
		p.t = newBuckets(len(c.es))
	}
	for i := range c.es {
		e, j := &c.es[i], int32(i)
		e.done = func(o Outcome) {
			e.srv.Release()
			p.fix(j)
			c.report(e, o)
		}
		p.refresh(j)
	}
	c.changed = p.fix
	return p
}

// key returns e's load key as a fraction: (active+1)/1 for lc, which
// orders like active, and (active+1)/weight for wlc (see wlc.go).
func (p *leastConn) key(e *entry) (num, den int64) {
	if p.weighted {
		return e.srv.Active() + 1, e.weight
	}
	return e.srv.Active() + 1, 1
}

// refresh re-reads server j into the tree; p.mu must be held.
func (p *leastConn) refresh(j int32) {
	e := &p.es[j]
	on, od, in := p.t.leaf(j)
	if !p.usable(e, &noRequest) || e.full() {
		if in {
			p.t.set(j, -1, 1)
		}
		return
	}
	if n, d := p.key(e); !in || n != on || d != od {
		p.t.set(j, n, d)
	}
}

// fix re-reads server j into the tree after its count changed.
func (p *leastConn) fix(j int32) {
	p.mu.Lock()
	p.refresh(j)
	p.mu.Unlock()
}

// noRequest is the request of refreshes: it avoids nothing.
var noRequest Request

// Pick implements Picker.
func (p *leastConn) Pick(req *Request) (*backend.Server, func(Outcome), error) {
	now, ramp := p.ramping()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.t != nil && !ramp && len(req.Avoid) == 0 {
		if e, ok := p.fromTree(req); ok {
			return e.srv, e.done, nil
		}
	}
	j, ok := p.scan(req, now, ramp)
	if !ok {
		return nil, nil, ErrNoServer
	}
	if p.t != nil {
		p.refresh(j)
	}
	e := &p.es[j]
	return e.srv, e.done, nil
}

// fromTree picks with the tree; p.mu must be held. It reports false when
// the tree has no candidate or keeps being contradicted by live counts
// (the caller then scans).
func (p *leastConn) fromTree(req *Request) (*entry, bool) {
	p.cursor++
	if p.cursor >= len(p.es) {
		p.cursor = 0
	}
	p.refresh(int32(p.cursor))
	for range len(p.es) + 1 {
		j, ok := p.t.pick(p.randN)
		if !ok {
			return nil, false
		}
		mn, md := p.t.minKey()
		e := &p.es[j]
		if !p.usable(e, req) {
			p.t.set(j, -1, 1)
			continue
		}
		if n, d := p.key(e); cmpKey(n, d, mn, md) > 0 {
			p.t.set(j, n, d) // busier than the tree thought: look again
			continue
		}
		if !e.acquire() {
			p.t.set(j, -1, 1) // full
			continue
		}
		n, d := p.key(e)
		p.t.set(j, n, d)
		return e, true
	}
	return nil, false
}

// scan picks by looking at every server; p.mu must be held. While ramping,
// a server's weight is scaled by its slow-start fraction (lc ramps as wlc
// with equal weights).
func (p *leastConn) scan(req *Request, now int64, ramp bool) (int32, bool) {
	var buf [64]int32 // tied indices; more ties than this spill to the heap
	for range len(p.es) {
		ties := buf[:0]
		var bn, bd int64
		for i := range p.es {
			e := &p.es[i]
			if !p.usable(e, req) || e.full() {
				continue
			}
			n, d := p.key(e)
			if ramp {
				d *= p.rampFrac(e, now)
			}
			if len(ties) == 0 {
				ties, bn, bd = append(ties, int32(i)), n, d
				continue
			}
			switch l, r := n*bd, bn*d; {
			case l < r:
				ties, bn, bd = append(ties[:0], int32(i)), n, d
			case l == r:
				ties = append(ties, int32(i))
			}
		}
		if len(ties) == 0 {
			return 0, false
		}
		best := ties[0]
		if len(ties) > 1 {
			best = ties[p.randN(len(ties))]
		}
		if p.es[best].acquire() {
			return best, true
		}
	}
	return 0, false
}
