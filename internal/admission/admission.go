// Package admission bounds what the data plane may hold at once — client
// TCP connections and UDP sessions — by the process's file-descriptor
// limit, so that a flood against one service can never take the
// descriptors that the admin plane, the listeners, health checks and the
// other services need (issue 14: a UDP flood made accepts on an unrelated
// service fail with EMFILE).
//
// A Budget shares the descriptor limit out once, at start; a Gate is the
// ceiling on client connections of all services together. Per-service
// defaults (DefaultServiceConns) keep one service from taking the whole
// ceiling.
package admission

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Budget is how the process's descriptor limit is shared out.
type Budget struct {
	// Limit is the descriptor limit (RLIMIT_NOFILE, soft) it was made from.
	Limit int `json:"limit"`
	// Reserved descriptors are left for everything else: the admin plane,
	// listening sockets, health checks, the store, logs, and the idle
	// keep-alive connections to real servers.
	Reserved int `json:"reserved"`
	// UDPSessions bounds the UDP session table of all services (one
	// descriptor per session).
	UDPSessions int `json:"udpSessions"`
	// TCPConns bounds the client TCP connections of all services together;
	// each is counted with the connection to its real server, two
	// descriptors.
	TCPConns int `json:"tcpConns"`
}

// MaxUDPSessions caps Budget.UDPSessions however large the descriptor
// limit: each session also holds kernel socket memory.
const MaxUDPSessions = 65536

// minReserved is the smallest reserve, and reserveShare the share of the
// limit reserved when that is more (one eighth).
const (
	minReserved  = 256
	reserveShare = 8
)

// ForLimit shares a descriptor limit out: an eighth (at least 256) is
// reserved, a quarter of the rest (at most MaxUDPSessions) goes to UDP
// sessions, and what is left, halved, to TCP connections. A limit too
// small for that still gets at least 16 of each.
func ForLimit(limit int) Budget {
	b := Budget{Limit: limit, Reserved: max(minReserved, limit/reserveShare)}
	rest := max(limit-b.Reserved, 0)
	b.UDPSessions = max(16, min(MaxUDPSessions, rest/4))
	b.TCPConns = max(16, (rest-b.UDPSessions)/2)
	return b
}

// Current returns the budget of this process's descriptor limit. (Go
// raises the soft limit to the hard one when it starts.)
func Current() Budget {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return ForLimit(1 << 20)
	}
	return ForLimit(int(r.Cur))
}

// DefaultServiceConns is the maximum of concurrent connections (or UDP
// sessions) of a service that sets none: half of the ceiling of all
// services, so that one service under a flood leaves the other half to
// the others.
func DefaultServiceConns(ceiling int) int { return max(1, ceiling/2) }

// Gate is a ceiling on concurrent connections shared by every service. A
// nil Gate admits everything.
type Gate struct {
	max     int64
	held    atomic.Int64
	refused atomic.Int64
}

// NewGate returns a gate admitting at most n at once (at least 1).
func NewGate(n int) *Gate { return &Gate{max: int64(max(1, n))} }

// Enter admits one connection, or reports false (and counts a refusal)
// when the ceiling is reached. Every true Enter must be followed by one
// Leave.
func (g *Gate) Enter() bool {
	if g == nil {
		return true
	}
	if g.held.Add(1) > g.max {
		g.held.Add(-1)
		g.refused.Add(1)
		return false
	}
	return true
}

// ForceEnter admits one connection past the ceiling: for one that takes
// the place of a connection being closed, which leaves a moment later.
func (g *Gate) ForceEnter() {
	if g != nil {
		g.held.Add(1)
	}
}

// Leave releases what Enter admitted.
func (g *Gate) Leave() {
	if g != nil {
		g.held.Add(-1)
	}
}

// Max returns the ceiling.
func (g *Gate) Max() int {
	if g == nil {
		return 0
	}
	return int(g.max)
}

// Held returns the connections admitted and not yet left.
func (g *Gate) Held() int64 {
	if g == nil {
		return 0
	}
	return g.held.Load()
}

// Refused returns how many connections the ceiling refused.
func (g *Gate) Refused() int64 {
	if g == nil {
		return 0
	}
	return g.refused.Load()
}
