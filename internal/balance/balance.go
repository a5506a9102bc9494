// Package balance implements the scheduling methods that choose a real
// server for a new connection or request: rr, wrr, lc, wlc, fixed, sh,
// uhash, dl and adaptive, one file each, behind one protocol-neutral
// Picker, and the slow start that ramps a recovered or added real server
// up to its full share.
//
// A Picker is built for one generation of the configuration (one set of
// real servers with their weights and limits) and is otherwise immutable:
// when the set, a weight or a limit changes, a new Picker is built. The
// state that must carry over between generations (active connection
// counts, health, draining, response times, agent loads, since when a
// server is available) lives on backend.Server and its backend.Metrics.
//
// Every pick skips real servers that are not Available (disabled, Down or
// draining), that are at their connection limit, or that the request asks
// to avoid; it never blocks; ties are broken uniformly at random with an
// injectable source. Pickers that run background work (adaptive's agent
// poller) also implement io.Closer.
package balance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// ErrNoServer is returned by Pick when no real server can take the
// connection: there is none, or every one is unavailable, avoided or at its
// connection limit.
var ErrNoServer = errors.New("no real server available")

// Request carries what any scheduling method may need to choose, protocol
// neutral. Fields a method does not use may be left zero.
type Request struct {
	// Client is the client's address and port (sh hashes its address).
	Client netip.AddrPort
	// SNI is the TLS server name sent by the client, if known.
	SNI string
	// HashKey is an explicit key for hashing methods: uhash hashes it (the
	// layer-7 proxy sets the URL). When empty, uhash hashes the client
	// address instead.
	HashKey string
	// Avoid lists servers the caller has just failed to reach for this
	// request; Pick treats them as unavailable.
	Avoid []*backend.Server
}

// Picker chooses a real server.
type Picker interface {
	// Pick chooses a real server and reserves a connection slot on it. It
	// never blocks. The caller must call done exactly once when the
	// connection or request ends (or its dial fails), with its Outcome:
	// done settles the server's active count and reports the outcome
	// (see Outcome). It returns ErrNoServer when no server is available.
	Pick(req *Request) (srv *backend.Server, done func(Outcome), err error)
}

// Reserver is implemented by every Picker of this package. Persistence
// uses it to send a returning client to the server it is stuck to: Reserve
// reserves a slot on srv if srv is below its connection limit, without
// looking at availability (the caller decides: a draining server keeps its
// persisted clients), and returns the done func to call when the
// connection or request ends, as Pick's. Reserving through the Picker
// keeps its bookkeeping (lc's tournament tree) exact and reports the
// outcome as a pick's would.
type Reserver interface {
	Reserve(srv *backend.Server) (done func(Outcome), ok bool)
}

// MaxSlowStart is the longest slow start (LoadMaster `slowstart`, 0-600 s).
const MaxSlowStart = 600 * time.Second

// Options tune a Picker beyond its method and servers. The zero value is
// what New uses: no slow start, default randomness and clock.
type Options struct {
	// SlowStart is the time over which a real server that becomes
	// available (added, recovered from Down, enabled, or out of drain)
	// ramps from almost nothing to its full share; 0 turns slow start off;
	// at most MaxSlowStart.
	SlowStart time.Duration
	// Adaptive configures the adaptive method; other methods ignore it.
	Adaptive Adaptive
	// Rand returns a uniformly random int in [0, n); it breaks ties. Nil
	// uses math/rand/v2. Tests inject a deterministic source.
	Rand func(n int) int
	// Now is the clock (slow start, agent report ages). Nil uses time.Now.
	Now func() time.Time
	// Context bounds the Picker's background work (adaptive's agent
	// poller): it stops when Context is done or when the Picker is closed.
	// Nil means context.Background.
	Context context.Context
	// Logger receives the agent poller's logs. Nil discards them.
	Logger *slog.Logger
	// Observe, when set, is told the outcome of every pick and
	// reservation of the Picker's servers that says something about the
	// server (a failure or a measured success, see Outcome), when its
	// done func is called, after the slot is returned. Passive health
	// checks use it. It must be cheap and safe for concurrent use.
	Observe func(srv *backend.Server, o Outcome)
}

// builder makes a Picker for a non-empty set of servers.
type builder func(c *core, o Options) (Picker, error)

// FallbackMethod is the method a caller may use in place of one that is not
// implemented. Every method of config.Schedules is implemented now; the
// constant stays for callers that still refer to it.
const FallbackMethod = "rr"

// New returns a Picker of the named method over servers with default
// Options (no slow start). It is NewWithOptions(method, servers, Options{}).
func New(method string, servers []*backend.Server) (Picker, error) {
	return NewWithOptions(method, servers, Options{})
}

// NewWithOptions returns a Picker of the named method over servers,
// reading each server's weight and limit now. An unknown method, or an
// option out of range, is an error naming it. With no servers it returns a
// Picker that always fails with ErrNoServer.
func NewWithOptions(method string, servers []*backend.Server, o Options) (Picker, error) {
	b, ok := methods[method]
	if !ok {
		return nil, fmt.Errorf("unknown scheduling method %q", method)
	}
	if o.SlowStart < 0 || o.SlowStart > MaxSlowStart {
		return nil, fmt.Errorf("slow start must be 0-600 s, got %s", o.SlowStart)
	}
	if len(servers) == 0 {
		return none{}, nil
	}
	if o.Rand == nil {
		o.Rand = rand.IntN
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Context == nil {
		o.Context = context.Background()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := newCore(servers, o)
	return b(c, o)
}

// Implemented reports whether method is a known scheduling method.
func Implemented(method string) bool {
	_, ok := methods[method]
	return ok
}

// Methods returns the scheduling methods, sorted.
func Methods() []string {
	out := make([]string, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// rampScale is the fixed-point scale of a slow-start fraction: a server
// fully ramped has fraction rampScale, one just recovered 1.
const rampScale = 1024

// core is what every Picker of one generation shares: the servers with
// the settings captured at build time, randomness, clock and slow start.
type core struct {
	es    []entry
	index map[*backend.Server]int32
	randN func(int) int
	now   func() time.Time
	slow  int64 // slow start in ns; 0 = off

	// rampUntil is the time (unix ns) until which some server may still be
	// ramping; 0 when none is. Pickers take their cheap static paths while
	// it is 0.
	rampUntil atomic.Int64

	// changed, when set, is told that server i's active count changed
	// outside a Pick (Reserve); lc's tree uses it.
	changed func(i int32)

	onOutcome func(*backend.Server, Outcome) // Options.Observe
}

// entry is a server with the settings captured when the Picker was built.
type entry struct {
	srv    *backend.Server
	m      *backend.Metrics
	weight int64
	limit  int64
	done   func(Outcome) // what picks of this server return; finish by default
}

func newCore(servers []*backend.Server, o Options) *core {
	c := &core{
		es:        make([]entry, len(servers)),
		index:     make(map[*backend.Server]int32, len(servers)),
		randN:     o.Rand,
		now:       o.Now,
		slow:      int64(o.SlowStart),
		onOutcome: o.Observe,
	}
	for i, s := range servers {
		set := s.Settings()
		c.es[i] = entry{srv: s, m: s.Metrics(), weight: int64(max(set.Weight, 1)), limit: int64(set.Limit)}
		e := &c.es[i]
		e.done = func(o Outcome) { c.finish(e, o) }
		c.index[s] = int32(i)
	}
	if c.slow > 0 {
		now := c.now()
		for i := range c.es {
			e := &c.es[i]
			c.observe(e, e.srv.Available())
			if since := e.m.AvailableSinceNanos(); since != 0 && since+c.slow > now.UnixNano() {
				c.extendRamp(since + c.slow)
			}
		}
	}
	return c
}

// acquire reserves a slot on e's server if it is below its limit.
func (e *entry) acquire() bool { return e.srv.Acquire(e.limit) }

// full reports whether e's server is at its limit now.
func (e *entry) full() bool { return e.limit > 0 && e.srv.Active() >= e.limit }

// avoided reports whether req asks to pass over e's server.
func (e *entry) avoided(req *Request) bool {
	return len(req.Avoid) > 0 && slices.Contains(req.Avoid, e.srv)
}

// usable reports whether e may be given new work for req: not avoided and
// Available. With slow start on it also records what it saw, which starts
// a ramp when a server comes back.
func (c *core) usable(e *entry, req *Request) bool {
	if e.avoided(req) {
		return false
	}
	ok := e.srv.Available()
	if c.slow > 0 {
		c.observe(e, ok)
	}
	return ok
}

// observe records e's availability for slow start.
func (c *core) observe(e *entry, available bool) {
	if !available {
		e.m.MarkUnavailable()
		return
	}
	if e.m.AvailableSinceNanos() == 0 {
		now := c.now()
		if e.m.MarkAvailable(now) {
			c.extendRamp(now.UnixNano() + c.slow)
		}
	}
}

// extendRamp makes rampUntil at least until.
func (c *core) extendRamp(until int64) {
	for {
		old := c.rampUntil.Load()
		if old >= until || c.rampUntil.CompareAndSwap(old, until) {
			return
		}
	}
}

// ramping reports whether some server may still be ramping, with the
// current time in unix ns when it is. It reads the clock only while a ramp
// is under way.
func (c *core) ramping() (now int64, ok bool) {
	u := c.rampUntil.Load()
	if u == 0 {
		return 0, false
	}
	now = c.now().UnixNano()
	if now < u {
		return now, true
	}
	c.rampUntil.CompareAndSwap(u, 0)
	return now, false
}

// rampFrac returns e's slow-start fraction at time now, in 1..rampScale.
func (c *core) rampFrac(e *entry, now int64) int64 {
	since := e.m.AvailableSinceNanos()
	if since == 0 || c.slow == 0 {
		return rampScale
	}
	el := now - since
	if el >= c.slow {
		return rampScale
	}
	return max(1, el*rampScale/c.slow)
}

// Reserve implements Reserver. A server that is not among the Picker's
// gets a done func that reports nothing.
func (c *core) Reserve(srv *backend.Server) (func(Outcome), bool) {
	i, ok := c.index[srv]
	if !ok {
		if srv.Acquire(int64(srv.Limit())) {
			return Release(srv), true
		}
		return nil, false
	}
	e := &c.es[i]
	if !e.acquire() {
		return nil, false
	}
	if c.changed != nil {
		c.changed(i)
	}
	return e.done, true
}

// none is the Picker of an empty set.
type none struct{}

// Pick implements Picker: there is never a server.
func (none) Pick(*Request) (*backend.Server, func(Outcome), error) { return nil, nil, ErrNoServer }

// Reserve implements Reserver: srv is not among the Picker's servers, so
// only its own limit applies.
func (none) Reserve(srv *backend.Server) (func(Outcome), bool) {
	if srv.Acquire(int64(srv.Limit())) {
		return Release(srv), true
	}
	return nil, false
}
