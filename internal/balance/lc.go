package balance

import (
	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// leastConn picks the server with the fewest active connections ("lc"). A
// tie is broken uniformly at random among all tied servers (one draw over
// the tied set collected in one scan), so no server is favoured by its
// position.
// Servers at their limit or avoided by the request are not candidates. It takes no lock: counts are
// read atomically, and a lost race with another pick only means a count
// one off, which the next pick sees.
type leastConn struct {
	es    []entry
	randN func(int) int
}

func newLeastConn(es []entry) Picker { return &leastConn{es: es, randN: randIntN} }

// Pick implements Picker.
func (p *leastConn) Pick(req *Request) (*backend.Server, func(), error) {
	return pickLeast(p.es, req, p.randN, func(a, b *entry, na, nb int64) int {
		switch {
		case na < nb:
			return -1
		case na > nb:
			return 1
		}
		return 0
	})
}

// pickLeast scans es for the entries with the smallest load according to
// cmp (given the two entries and their active counts), chooses one of them
// uniformly at random with a single draw, and reserves a slot on it. If
// the slot is taken meanwhile (a race at the limit), it scans again, at
// most len(es) times.
func pickLeast(es []entry, req *Request, randN func(int) int, cmp func(a, b *entry, na, nb int64) int) (*backend.Server, func(), error) {
	var buf [64]int32 // tied indices; more ties than this spill to the heap
	for range len(es) {
		ties := buf[:0]
		var bestN int64
		for i := range es {
			e := &es[i]
			n := e.srv.Active()
			if (e.limit > 0 && n >= e.limit) || e.avoided(req) {
				continue
			}
			if len(ties) == 0 {
				ties, bestN = append(ties, int32(i)), n
				continue
			}
			switch c := cmp(e, &es[ties[0]], n, bestN); {
			case c < 0:
				ties, bestN = append(ties[:0], int32(i)), n
			case c == 0:
				ties = append(ties, int32(i))
			}
		}
		if len(ties) == 0 {
			return nil, nil, ErrNoServer
		}
		best := ties[0]
		if len(ties) > 1 {
			best = ties[randN(len(ties))]
		}
		if e := &es[best]; e.acquire() {
			return e.srv, e.srv.ReleaseFunc(), nil
		}
	}
	return nil, nil, ErrNoServer
}
