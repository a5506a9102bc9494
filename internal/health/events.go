package health

import "time"

// Event is one status transition of a virtual service or real server.
type Event struct {
	// Seq numbers events from 1 in the order they happened.
	Seq uint64 `json:"seq"`
	// Time is when the transition happened.
	Time time.Time `json:"time"`
	// VS is the ID of the virtual service (or SubVS).
	VS int `json:"vs"`
	// RS is the ID of the real server; 0 for an event of the service.
	RS int `json:"rs,omitempty"`
	// Address and Port are the real server's (or the service's).
	Address string `json:"address,omitempty"`
	// Port is the real server's (or the service's) port.
	Port int `json:"port,omitempty"`
	// From is the status before.
	From string `json:"from"`
	// To is the status after.
	To string `json:"to"`
	// Reason says why, e.g. "https 503 from 10.0.0.5:4443/ after 2 retries".
	Reason string `json:"reason,omitempty"`
}

// eventLog is a ring buffer of the newest events. It is not safe for
// concurrent use; the Monitor's lock guards it.
type eventLog struct {
	buf  []Event
	next int // index of the slot the next event goes to
	full bool
	seq  uint64
}

func newEventLog(size int) *eventLog { return &eventLog{buf: make([]Event, size)} }

// add records e, numbering it, and overwrites the oldest event when full.
func (l *eventLog) add(e Event) Event {
	l.seq++
	e.Seq = l.seq
	l.buf[l.next] = e
	l.next++
	if l.next == len(l.buf) {
		l.next, l.full = 0, true
	}
	return e
}

// list returns at most limit events (all when limit <= 0), newest first,
// of service vs (all when vs is 0).
func (l *eventLog) list(limit, vs int) []Event {
	n := l.next
	if l.full {
		n = len(l.buf)
	}
	out := []Event{}
	for i := range n {
		e := l.buf[(l.next-1-i+len(l.buf))%len(l.buf)]
		if vs != 0 && e.VS != vs {
			continue
		}
		out = append(out, e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out
}
