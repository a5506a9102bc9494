package balance

import "sync"

// smooth is smooth weighted round robin over weights computed at each
// pick: every candidate's current value grows by its weight, the largest
// value wins and gives back the sum of this pick's weights. With constant
// weights every cycle of sum(weights) picks chooses each server exactly
// weight times, spread evenly (5,1,1 gives a a b a c a a). It is the
// general path of wrr, and the path of rr and wrr while a server ramps up
// (slow start) and of adaptive, whose weights change between picks. A pick
// costs O(n) under a mutex.
type smooth struct {
	mu  sync.Mutex
	cur []int64
	w   []int64 // scratch: this pick's weights; negative once skipped
}

func newSmooth(n int) *smooth {
	return &smooth{cur: make([]int64, n), w: make([]int64, n)}
}

// pick chooses among c's servers with weight(e) for each usable server.
// A server not usable this pick (unavailable, avoided, or weight ≤ 0)
// neither grows nor is chosen; one at its limit grows but is passed over
// for the next largest value, so the ratios of the others stay exact.
func (s *smooth) pick(c *core, req *Request, weight func(i int, e *entry) int64) (*entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pickLocked(c, req, weight)
}

// pickLocked is pick with s.mu held.
func (s *smooth) pickLocked(c *core, req *Request, weight func(i int, e *entry) int64) (*entry, bool) {
	var total int64
	for i := range c.es {
		e := &c.es[i]
		var w int64
		if c.usable(e, req) {
			w = max(weight(i, e), 0)
		}
		s.w[i] = w
		s.cur[i] += w
		total += w
	}
	if total > 0 {
		for range c.es {
			best := -1
			for i := range c.es {
				if s.w[i] > 0 && (best < 0 || s.cur[i] > s.cur[best]) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			if e := &c.es[best]; e.acquire() {
				s.cur[best] -= total
				return e, true
			}
			s.w[best] = -s.w[best]
		}
	}
	// Nobody could take it: undo this pick's growth so that a run of
	// refusals does not distort the sequence that follows.
	for i := range c.es {
		w := s.w[i]
		if w < 0 {
			w = -w
		}
		s.cur[i] -= w
	}
	return nil, false
}

// maxTable bounds the precomputed sequence of wrr (entries of 4 bytes).
const maxTable = 1 << 16

// maxTableWork bounds the work of building it (sequence length × distinct
// weights).
const maxTableWork = 1 << 24

// smoothTable returns one period of the smooth weighted round robin
// sequence of weights (after dividing them by their greatest common
// divisor), or nil if the period is longer than maxTable or too costly to
// compute. It produces exactly the sequence smooth.pick would, in O(period
// × distinct weights): servers of equal weight take their turns in index
// order, so only the next one of each weight competes.
func smoothTable(weights []int64) []int32 {
	g := int64(0)
	for _, w := range weights {
		g = gcd(g, w)
	}
	if g <= 0 {
		return nil
	}
	type group struct {
		w       int64
		members []int32
		taken   int64 // picks so far
	}
	var groups []*group
	byWeight := map[int64]*group{}
	var period int64
	for i, w := range weights {
		w /= g
		period += w
		gr := byWeight[w]
		if gr == nil {
			gr = &group{w: w}
			byWeight[w] = gr
			groups = append(groups, gr)
		}
		gr.members = append(gr.members, int32(i))
	}
	if period > maxTable || period*int64(len(groups)) > maxTableWork {
		return nil
	}
	out := make([]int32, 0, period)
	for k := int64(1); k <= period; k++ {
		var best *group
		var bestV int64
		var bestI int32
		for _, gr := range groups {
			n := int64(len(gr.members))
			i := gr.members[gr.taken%n]
			v := k*gr.w - period*(gr.taken/n)
			if best == nil || v > bestV || (v == bestV && i < bestI) {
				best, bestV, bestI = gr, v, i
			}
		}
		out = append(out, bestI)
		best.taken++
	}
	return out
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
