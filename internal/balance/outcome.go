package balance

import (
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// Outcome is what became of the work a pick reserved a real server for,
// as the proxy that did it saw it: a layer-4 connection (its dial), a
// UDP session, or one attempt of a layer-7 request. It is given to the
// done func of the pick, which hands it on to what learns from live
// traffic: passive health checks (Options.Observe) and the response time
// that dl schedules by (backend.Metrics.ObserveLatency).
//
// The zero Outcome reports nothing: the work was abandoned before the
// server could be judged (the client went away, the proxy is closing, a
// kept connection the server had already closed).
type Outcome struct {
	// Err is the real server's failure: it could not be reached, did not
	// answer (in time), or answered garbage. Nil when it did its part.
	Err error
	// Latency is how long the server took when it did its part: to
	// accept the connection (layer 4) or to send the response head
	// (layer 7). 0 when not measured.
	Latency time.Duration
}

// Failed reports whether o is a failure of the real server.
func (o Outcome) Failed() bool { return o.Err != nil }

// Succeeded reports whether o is a measured success: the server did its
// part, in Latency.
func (o Outcome) Succeeded() bool { return o.Err == nil && o.Latency > 0 }

// Release is a done func for a server a Picker did not reserve through
// one of its entries: it returns the slot and reports nothing. Callers on
// a hot path should keep the func rather than call this per pick (it
// allocates).
func Release(srv *backend.Server) func(Outcome) {
	return func(Outcome) { srv.Release() }
}

// finish is the done func of entry e's picks: it returns the slot, then
// reports the outcome.
func (c *core) finish(e *entry, o Outcome) {
	e.srv.Release()
	c.report(e, o)
}

// report hands a pick's outcome on: a measured success's latency to e's
// Metrics (the response time dl schedules by and the status shows, for
// every method), and the outcome to Options.Observe.
func (c *core) report(e *entry, o Outcome) {
	if o.Succeeded() {
		e.m.ObserveLatency(o.Latency)
	}
	if c.onOutcome != nil && (o.Err != nil || o.Latency > 0) {
		c.onOutcome(e.srv, o)
	}
}
