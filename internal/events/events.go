// Package events is the appliance's event log: what happened that an
// administrator may want to know (a real server went down, the
// configuration changed, a login failed, a certificate is about to expire),
// kept in a bounded ring for the web UI's Logs page and the API, and handed
// to the sinks that forward it (remote syslog, e-mail and webhook alerts).
//
// Publishing never blocks: each subscriber has a bounded queue of its own,
// and an event that does not fit is counted as dropped for that subscriber.
package events

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Severity is an RFC 5424 severity: 0 (emerg) is the most severe, 7
// (debug) the least.
type Severity int

// The severities, as RFC 5424 numbers them.
const (
	Emerg Severity = iota
	Alert
	Crit
	Err
	Warning
	Notice
	Info
	Debug
)

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// String returns the RFC 5424 keyword ("err", "warning", …).
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "unknown"
	}
	return severityNames[s]
}

// MarshalText encodes the severity as its keyword (JSON "err").
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a severity keyword.
func (s *Severity) UnmarshalText(b []byte) error {
	v, ok := ParseSeverity(string(b))
	if !ok {
		return fmt.Errorf("unknown severity %q: want one of %s", b, strings.Join(severityNames[:], ", "))
	}
	*s = v
	return nil
}

// ParseSeverity returns the severity named by an RFC 5424 keyword, and
// false for an unknown one.
func ParseSeverity(name string) (Severity, bool) {
	for i, n := range severityNames {
		if n == name {
			return Severity(i), true
		}
	}
	return 0, false
}

// Kinds of events. Every kind is listed in docs/observability.md.
const (
	// KindRSDown: a real server went Down (health checks or passive).
	KindRSDown = "rs.down"
	// KindRSUp: a real server came Up.
	KindRSUp = "rs.up"
	// KindRSState: another change of a real server's status (disabled,
	// draining, unknown).
	KindRSState = "rs.state"
	// KindVSDown: a virtual service went Down (no real server available).
	KindVSDown = "vs.down"
	// KindVSUp: a virtual service came Up.
	KindVSUp = "vs.up"
	// KindVSState: another change of a service's status (sorry,
	// disabled, unchecked).
	KindVSState = "vs.state"
	// KindConfigChange: a configuration change was committed.
	KindConfigChange = "config.change"
	// KindLogin: an administrator logged in.
	KindLogin = "admin.login"
	// KindLoginFailed: a login failed.
	KindLoginFailed = "admin.login-failed"
	// KindLockout: an account was locked out after failed logins.
	KindLockout = "admin.lockout"
	// KindAdmin: another audited action of the admin plane (users, API
	// keys, backups).
	KindAdmin = "admin.action"
	// KindCertExpiring: a certificate expires within the configured days.
	KindCertExpiring = "cert.expiring"
	// KindCertExpired: a certificate has expired.
	KindCertExpired = "cert.expired"
	// KindNetwork: the node's network settings changed or were rolled
	// back.
	KindNetwork = "network"
	// KindSystem: the appliance started or stopped, or a sink failed.
	KindSystem = "system"
)

// Event is one thing that happened.
type Event struct {
	// Seq numbers the events from 1 in the order they were published.
	Seq uint64 `json:"seq"`
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Severity is how serious it is.
	Severity Severity `json:"severity"`
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// Message is a one-line description for people.
	Message string `json:"message"`
	// Fields are the event's details by name (vs, rs, address, user,
	// remote, certificate, reason, revision, …); may be nil.
	Fields map[string]string `json:"fields,omitempty"`
}

// Filter selects events.
type Filter struct {
	// MaxSeverity keeps events at least this severe (numerically not
	// above); a negative value keeps all.
	MaxSeverity Severity
	// Kind keeps events whose kind starts with it ("rs." keeps rs.down,
	// rs.up and rs.state); "" keeps all.
	Kind string
	// Text keeps events whose message or a field value contains it,
	// case-insensitively; "" keeps all.
	Text string
	// Before keeps events with Seq below it; 0 keeps all.
	Before uint64
}

// Match reports whether e passes f.
func (f Filter) Match(e *Event) bool {
	if f.MaxSeverity >= 0 && e.Severity > f.MaxSeverity {
		return false
	}
	if f.Kind != "" && !strings.HasPrefix(e.Kind, f.Kind) {
		return false
	}
	if f.Before != 0 && e.Seq >= f.Before {
		return false
	}
	if f.Text != "" {
		t := strings.ToLower(f.Text)
		if strings.Contains(strings.ToLower(e.Message), t) {
			return true
		}
		for _, v := range e.Fields {
			if strings.Contains(strings.ToLower(v), t) {
				return true
			}
		}
		return false
	}
	return true
}

// DefaultRingSize is the number of events a Bus keeps.
const DefaultRingSize = 5000

// Bus keeps the newest events and hands every event to its subscribers.
// It is safe for concurrent use.
type Bus struct {
	mu   sync.Mutex
	ring []Event
	next int
	full bool
	seq  uint64
	subs []*Subscription
	now  func() time.Time
}

// NewBus returns a Bus that keeps the newest size events (DefaultRingSize
// when size <= 0).
func NewBus(size int) *Bus {
	if size <= 0 {
		size = DefaultRingSize
	}
	return &Bus{ring: make([]Event, size), now: time.Now}
}

// Publish numbers e, stamps it with the time when it has none, keeps it
// and queues it for every subscriber. It never blocks.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	if e.Time.IsZero() {
		e.Time = b.now()
	}
	b.seq++
	e.Seq = b.seq
	b.ring[b.next] = e
	b.next++
	if b.next == len(b.ring) {
		b.next, b.full = 0, true
	}
	subs := b.subs
	b.mu.Unlock()
	for _, s := range subs {
		s.offer(e)
	}
}

// List returns at most limit events (all kept when limit <= 0) that pass
// f, newest first; never nil.
func (b *Bus) List(f Filter, limit int) []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.next
	if b.full {
		n = len(b.ring)
	}
	out := []Event{}
	for i := range n {
		e := &b.ring[(b.next-1-i+len(b.ring))%len(b.ring)]
		if !f.Match(e) {
			continue
		}
		out = append(out, *e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}

// Subscription is one subscriber's queue of events.
type Subscription struct {
	c       chan Event
	dropped atomic.Int64
	bus     *Bus
	mu      sync.Mutex // guards closed and the send on c
	closed  bool
}

// Subscribe returns a subscription whose C receives every event published
// from now on; queue bounds its backlog (64 when <= 0): events that do not
// fit are dropped and counted.
func (b *Bus) Subscribe(queue int) *Subscription {
	if queue <= 0 {
		queue = 64
	}
	s := &Subscription{c: make(chan Event, queue), bus: b}
	b.mu.Lock()
	b.subs = append(append([]*Subscription(nil), b.subs...), s)
	b.mu.Unlock()
	return s
}

// C is the channel the events arrive on; it is closed by Close.
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped returns how many events did not fit in the queue.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

func (s *Subscription) offer(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.c <- e:
	default:
		s.dropped.Add(1)
	}
}

// Close ends the subscription and closes its channel.
func (s *Subscription) Close() {
	b := s.bus
	b.mu.Lock()
	subs := make([]*Subscription, 0, len(b.subs))
	for _, x := range b.subs {
		if x != s {
			subs = append(subs, x)
		}
	}
	b.subs = subs
	b.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.c)
	}
}
