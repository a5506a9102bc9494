package l7

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// The penalty box: a client address (an IPv6 client's /64) whose HTTP/2
// connections were closed for abuse penaltyStrikes times within
// penaltyWindow has its new connections to every layer-7 service closed
// at once, before any TLS work, for penaltyTime. An attacker who
// reconnects after each GOAWAY (rapid reset, floods) otherwise makes the
// proxy pay a TLS handshake and a hundred streams every few
// milliseconds; established connections, an abuser's included, are not
// touched. Clients sharing the address (NAT) share the penalty.
const (
	penaltyStrikes = 3
	penaltyWindow  = 10 * time.Second
	penaltyTime    = 10 * time.Second
	penaltySlots   = 4096
)

// penaltyBox is bounded: a fixed table of slots indexed by a keyed hash of
// the address. A slot holds one address; a new address takes a slot only
// when the one there has nothing pending, so a flood of addresses cannot
// evict a penalty in force, and an innocent address that hashes to a busy
// slot is never refused for another's strikes.
type penaltyBox struct {
	seed  maphash.Seed
	slots [penaltySlots]penaltySlot
}

type penaltySlot struct {
	mu      sync.Mutex
	addr    netip.Addr
	strikes int
	first   time.Time // start of the strike window
	until   time.Time // refused until then
}

func newPenaltyBox() *penaltyBox { return &penaltyBox{seed: maphash.MakeSeed()} }

// penaltyKey is what a penalty applies to: an IPv4 address, or the /64 of
// an IPv6 one.
func penaltyKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func (b *penaltyBox) slot(a netip.Addr) *penaltySlot {
	var h maphash.Hash
	h.SetSeed(b.seed)
	s := a.As16()
	_, _ = h.Write(s[:])
	return &b.slots[h.Sum64()%penaltySlots]
}

// active reports whether a slot holds anything that still matters at now.
func (s *penaltySlot) active(now time.Time) bool {
	return now.Before(s.until) || s.strikes > 0 && now.Sub(s.first) < penaltyWindow
}

// strike records that a connection from a was closed for abuse, and
// reports whether that put the address in the penalty box.
func (b *penaltyBox) strike(a netip.Addr, now time.Time) bool {
	a = penaltyKey(a)
	s := b.slot(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.addr.IsValid() && s.active(now)
	if s.addr != a {
		if was {
			return false // the slot is busy with another address
		}
		s.addr, s.strikes, s.first, s.until = a, 0, time.Time{}, time.Time{}
	}
	if s.strikes == 0 || now.Sub(s.first) >= penaltyWindow {
		s.strikes, s.first = 0, now
	}
	s.strikes++
	boxed := false
	if s.strikes >= penaltyStrikes && !now.Before(s.until) {
		s.until, s.strikes, boxed = now.Add(penaltyTime), 0, true
	}
	return boxed
}

// refused reports whether new connections from a are refused at now.
func (b *penaltyBox) refused(a netip.Addr, now time.Time) bool {
	a = penaltyKey(a)
	s := b.slot(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr == a && now.Before(s.until)
}
