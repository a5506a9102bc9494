package backend

import (
	"sync"
	"time"
)

// Limit names a limit whose hits Counters count.
type Limit int

// The limits of a virtual service.
const (
	// LimitMaxConns is the service's maximum of concurrent connections (or
	// UDP sessions): a new one over it is refused.
	LimitMaxConns Limit = iota
	// LimitConnRate is the service's maximum of new connections (or UDP
	// sessions) per second: a new one over it is refused.
	LimitConnRate
	// LimitBandwidth is the service's bandwidth: a TCP copy held back, or a
	// UDP datagram dropped, to keep under it.
	LimitBandwidth
	// LimitThroughput is the appliance's global throughput limit: a TCP
	// copy held back, or a UDP datagram dropped, to keep under it.
	LimitThroughput
	// LimitSessions is the UDP session table's bound: an idle session was
	// evicted to make room for a new one.
	LimitSessions
	// LimitGlobalConns is the appliance's ceiling on the concurrent client
	// connections of all services, derived from the descriptor limit
	// (internal/admission): a new connection over it is refused.
	LimitGlobalConns
	// LimitAbuse is the layer-7 penalty box: a connection from an address
	// whose HTTP/2 connections were closed for abuse several times in a
	// short time (rapid reset, floods) is refused for a while.
	LimitAbuse
	numLimits
)

// String returns the limit's name as used in status documents.
func (l Limit) String() string {
	switch l {
	case LimitMaxConns:
		return "maxConns"
	case LimitConnRate:
		return "connsPerSec"
	case LimitBandwidth:
		return "bandwidth"
	case LimitThroughput:
		return "throughput"
	case LimitSessions:
		return "sessions"
	case LimitGlobalConns:
		return "globalConns"
	case LimitAbuse:
		return "abuse"
	}
	return "unknown"
}

// Rates are per-second rates measured between two samples of a
// counter set.
type Rates struct {
	// ConnsPerSec is the rate of new connections.
	ConnsPerSec float64 `json:"connsPerSec"`
	// BytesInPerSec is the rate of bytes received from clients.
	BytesInPerSec float64 `json:"bytesInPerSec"`
	// BytesOutPerSec is the rate of bytes sent to clients.
	BytesOutPerSec float64 `json:"bytesOutPerSec"`
}

// meter turns successive samples of monotonic counters into rates. It is
// touched by the sampling goroutine and by readers of Rates, never by the
// data path, so a mutex is fine.
type meter struct {
	mu             sync.Mutex
	at             time.Time
	total, in, out int64
	last           Rates
	maxRate        float64   // highest ConnsPerSec seen
	changed        time.Time // the sample at which total last grew
}

func (m *meter) sample(now time.Time, total, in, out int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.at.IsZero() {
		if d := now.Sub(m.at).Seconds(); d > 0 {
			m.last = Rates{
				ConnsPerSec:    perSec(total-m.total, d),
				BytesInPerSec:  perSec(in-m.in, d),
				BytesOutPerSec: perSec(out-m.out, d),
			}
			m.maxRate = max(m.maxRate, m.last.ConnsPerSec)
		}
	}
	if total > m.total {
		m.changed = now
	}
	m.at, m.total, m.in, m.out = now, total, in, out
}

func (m *meter) rates() Rates {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last
}

// perSec returns delta/seconds, never negative.
func perSec(delta int64, seconds float64) float64 {
	if delta <= 0 {
		return 0
	}
	return float64(delta) / seconds
}

// peaks returns the highest connection rate seen and when the total last
// grew (as of the sample that saw it).
func (m *meter) peaks() (float64, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxRate, m.changed
}
