package balance

import (
	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// weightedLeastConn picks the server with the lowest load relative to its
// weight ("wlc"). The load compared is (active+1)/weight, the load the
// server would have after taking this connection: with plain active/weight
// every idle server ties at zero and the weights would not matter until
// servers are busy. With (active+1)/weight, connections that stay open are
// shared in exact proportion to the weights (weights 3 and 1 hold 30 and 10
// of 40 connections). Ties are broken uniformly at random; servers at
// their limit or avoided by the request are not candidates. Comparisons use integer cross
// multiplication, no division.
type weightedLeastConn struct {
	es    []entry
	randN func(int) int
}

func newWeightedLeastConn(es []entry) Picker { return &weightedLeastConn{es: es, randN: randIntN} }

// Pick implements Picker.
func (p *weightedLeastConn) Pick(req *Request) (*backend.Server, func(), error) {
	return pickLeast(p.es, req, p.randN, func(a, b *entry, na, nb int64) int {
		// (na+1)/wa vs (nb+1)/wb  ⇔  (na+1)*wb vs (nb+1)*wa; weights ≤ 65535
		// and counts far below 2^47 keep this inside int64.
		l, r := (na+1)*b.weight, (nb+1)*a.weight
		switch {
		case l < r:
			return -1
		case l > r:
			return 1
		}
		return 0
	})
}
