package udp

import (
	"errors"
	"sync/atomic"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// Errors of Proxy.acquire.
var (
	errClosed = errors.New("proxy closed")
	errFull   = errors.New("no session slot free")
)

// acquire takes a slot for a new session (the caller then owes
// p.starting.Done). When every slot is taken, it evicts a session of the
// table; it fails when none can be (every slot is a session being
// started) and when the proxy is closed.
func (p *Proxy) acquire() (int32, error) {
	for range 8 { // bounded: a slot freed by an eviction may go to another socket's start
		p.mu.Lock()
		if p.closed.Load() {
			p.mu.Unlock()
			return -1, errClosed
		}
		if slot, ok := p.takeSlot(); ok {
			p.starting.Add(1)
			p.mu.Unlock()
			return slot, nil
		}
		p.mu.Unlock()
		victim, ok := p.table.evict()
		if !ok {
			break
		}
		victim.svc.cfg.Stats.AddLimitHit(backend.LimitSessions)
		victim.end(termEvicted)
	}
	return -1, errFull
}

// takeSlot returns a free slot; p.mu is held.
func (p *Proxy) takeSlot() (int32, bool) {
	if n := len(p.free); n > 0 {
		slot := p.free[n-1]
		p.free = p.free[:n-1]
		return slot, true
	}
	if int(p.next) >= p.max {
		return -1, false
	}
	slot := p.next
	p.next++
	p.slots.grow(slot)
	return slot, true
}

// releaseSlot frees the slot of a session that ended.
func (p *Proxy) releaseSlot(slot int32) {
	p.slots.store(slot, nil)
	p.mu.Lock()
	p.free = append(p.free, slot)
	p.mu.Unlock()
}

// slotTable maps slots to their sessions for the poll sets, whose events
// carry slots. Its chunks are allocated as slots are first used, so a
// large MaxSessions costs nothing until sessions fill it.
type slotTable struct {
	chunks []atomic.Pointer[[slotChunk]atomic.Pointer[session]]
}

func newSlotTable(n int) slotTable {
	return slotTable{chunks: make([]atomic.Pointer[[slotChunk]atomic.Pointer[session]], (n+slotChunk-1)/slotChunk)}
}

// grow allocates the chunk of slot if it has none; Proxy.mu is held.
func (t *slotTable) grow(slot int32) {
	if c := &t.chunks[slot/slotChunk]; c.Load() == nil {
		c.Store(new([slotChunk]atomic.Pointer[session]))
	}
}

// store sets the session of slot, whose chunk grow allocated.
func (t *slotTable) store(slot int32, ss *session) {
	t.chunks[slot/slotChunk].Load()[slot%slotChunk].Store(ss)
}
