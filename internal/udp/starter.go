package udp

import (
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// pending is a datagram of a new client waiting for its session.
type pending struct {
	svc  *Service
	key  key
	data []byte
}

// keepPending is the largest buffer a pending keeps for reuse.
const keepPending = 4096

var pendings = sync.Pool{New: func() any { return &pending{data: make([]byte, 0, 2048)} }}

// release returns pd to the pool, unless its buffer grew large.
func (pd *pending) release() {
	pd.svc, pd.key = nil, key{}
	if cap(pd.data) > keepPending {
		return
	}
	pendings.Put(pd)
}

// enqueue hands the first datagram of a new client to a starter, unless
// the client's address is over its rate of new sessions or the starter is
// behind.
func (p *Proxy) enqueue(s *Service, k key, data []byte) {
	st := s.cfg.Stats
	if p.closed.Load() {
		return
	}
	if !p.running.Load() {
		if err := p.run(); err != nil {
			if !errors.Is(err, errClosed) {
				st.AddError()
				p.warn("udp: no session", "service", s.cfg.Name, "err", err)
			}
			return
		}
	}
	if !p.sources.allow(k.client.Addr(), int64(time.Since(epoch))) {
		st.AddLimitHit(backend.LimitConnRate)
		return
	}
	pd := pendings.Get().(*pending)
	pd.svc, pd.key, pd.data = s, k, append(pd.data[:0], data...)
	q := p.queues[0]
	if len(p.queues) > 1 {
		q = p.queues[maphash.Comparable(p.seed, k.client)%uint64(len(p.queues))]
	}
	select {
	case q <- pd:
	default:
		st.AddLimitHit(backend.LimitConnRate)
		pd.release()
	}
}

// starter makes the sessions of the datagrams queued on q, in order, until
// Close. A client's datagrams all go to the same starter, so the ones it
// sent before its session existed are forwarded in order.
func (p *Proxy) starter(q chan *pending) {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case pd := <-q:
			if ss, ok := p.table.get(pd.key); ok {
				ss.forward(pd.data)
			} else if ss := pd.svc.start(pd.key, pd.data); ss != nil {
				ss.forward(pd.data)
			}
			pd.release()
		}
	}
}
