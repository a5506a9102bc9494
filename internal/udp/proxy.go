// Package udp is the layer-4 UDP proxy.
//
// A session is one client address (address and port) on one VIP socket.
// The first datagram of a new client picks a real server and opens a UDP
// socket connected to it; the client's datagrams are forwarded on that
// socket, and the real server's replies are sent back to the client from
// the VIP socket the client used, so they come from the address and port
// the client sent to.
//
// Each session has a socket of its own, since the proxy is not transparent:
// the replies of a real server to different clients are told apart only
// by the local port they arrive on. So a session costs one file descriptor,
// and the session table's bound (Options.MaxSessions) is a bound on the
// descriptors: every socket belongs to a slot of the table taken before
// the socket is opened, sessions being started included, and the package
// holds at most MaxSessions sockets plus one descriptor per poll set.
// Sessions cost no goroutine: their sockets are raw non-blocking
// descriptors in a few epoll sets, each served by one goroutine that reads
// the replies of every ready socket in a batch per wake-up (outside Linux,
// each session has a goroutine; see pollSet).
//
// Making a session takes several system calls, so it is not done on the
// VIP socket's read loop: the first datagram of a new client is queued
// for a starter goroutine, which makes the session and forwards it. When
// new clients come faster than sessions can be made (a flood of spoofed
// sources), the queue is full and their datagrams are dropped, while the
// read loop keeps up with the datagrams of established sessions. A
// client's datagrams sent while its session is being made may be overtaken
// by the ones it sends after.
//
// Sessions end when no datagram has moved either way for the idle timeout
// (the service's idle timeout, or DefaultIdleTimeout when that is 0: the
// 660 s TCP default would keep a port open per client for 11 minutes;
// a sweep every second ends them, so up to a second late), when the real
// server is dropped (drop on failure), when the service's drain time ends,
// and when the session table is full and they rank lowest in a random
// sample (see table): sessions that have not proved a round trip (a client
// datagram after a reply) first, as a spoofed source cannot, then the
// least recently active. Each service is also bounded by its MaxConns, and
// each client address by a rate of new sessions (Options.SourceRate).
//
// The data path takes no lock but the session's own per datagram: a
// session is found in a sync.Map and counted with atomics. Shaping a
// datagram flow means policing it: a datagram over the service bandwidth
// or the global throughput limit is dropped and counted.
package udp

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultIdleTimeout is the idle timeout of a UDP session whose service
// has Idletime 0.
const DefaultIdleTimeout = 60 * time.Second

// DefaultMaxSessions bounds the session table of a Proxy whose Options do
// not. Each session holds a socket (a file descriptor).
const DefaultMaxSessions = 16384

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// MaxPickRetries is how many further real servers a new session may try
// after a socket to one could not be opened.
const MaxPickRetries = 3

const (
	// sweepEvery is how often sessions are checked for their idle timeout.
	sweepEvery = time.Second
	// maxPollSets bounds the poll sets (and their goroutines) of a Proxy.
	maxPollSets = 8
	// slotChunk is the number of slots allocated at once.
	slotChunk = 1024
	// startQueue is how many datagrams of new clients may wait for a
	// starter: a few milliseconds of its work.
	startQueue = 1024
)

// Options configure a Proxy.
type Options struct {
	// Logger receives the proxy's logs; slog.Default when nil.
	Logger *slog.Logger
	// MaxSessions bounds the number of sessions of all services, and so
	// the sockets the proxy holds (at most MaxSessions, and one descriptor
	// per poll set); DefaultMaxSessions when 0.
	MaxSessions int
	// SourceRate is how many new sessions per second one client address
	// (IPv6: one /64) may open; DefaultSourceRate when 0, no limit when
	// negative. Refusals are counted as the service's LimitConnRate hits.
	SourceRate float64
	// SourceBurst is how many new sessions one client address may open at
	// once; DefaultSourceBurst when 0.
	SourceBurst int
}

// Proxy owns every UDP session of every service and configuration
// generation.
type Proxy struct {
	log     *slog.Logger
	max     int
	table   *table[key, *session]
	sources *sourceLimiter
	slots   slotTable
	queues  []chan *pending // one per starter
	seed    maphash.Seed    // spreads clients over the queues
	closed  atomic.Bool
	running atomic.Bool  // the goroutines are started (run)
	warned  atomic.Int64 // time of the last rate-limited warning, since epoch

	mu       sync.Mutex     // guards what follows; orders Close against session starts
	free     []int32        // released slots
	next     int32          // slots never used: next to max-1
	sets     []*pollSet     // made by run
	starting sync.WaitGroup // session starts under way (acquire to the end of start)
	stop     chan struct{}  // closed by Close: ends the starters and the sweep
	once     sync.Once

	wg sync.WaitGroup // the goroutines of the poll sets, the starters and the sweep (and, outside Linux, the sessions')
}

// key identifies a session: a client on a VIP socket.
type key struct {
	sock   *net.UDPConn
	client netip.AddrPort
}

// New returns a Proxy and starts its goroutines: a poll set's reader and
// a starter per two CPUs (at most 8 of each) and the idle sweep. Close
// ends them.
func New(o Options) *Proxy {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	o.MaxSessions = min(o.MaxSessions, math.MaxInt32)
	p := &Proxy{
		log:     o.Logger,
		max:     o.MaxSessions,
		table:   newTable[key](o.MaxSessions, (*session).rank),
		sources: newSourceLimiter(o.SourceRate, o.SourceBurst),
		slots:   newSlotTable(o.MaxSessions),
		seed:    maphash.MakeSeed(),
		stop:    make(chan struct{}),
	}
	for range min(max((runtime.GOMAXPROCS(0)+1)/2, 1), maxPollSets) {
		p.queues = append(p.queues, make(chan *pending, startQueue))
	}
	if err := p.run(); err != nil {
		p.log.Warn("udp: proxy not started; retrying at the first session", "err", err)
	}
	return p
}

// Active returns the number of sessions.
func (p *Proxy) Active() int { return p.table.len() }

// CloseService ends the sessions of every generation of the service with
// configuration ID id and returns how many it ended.
func (p *Proxy) CloseService(id int) int {
	n := 0
	for _, ss := range p.table.values() {
		if ss.svc.cfg.ID == id {
			ss.end(termClosed)
			n++
		}
	}
	return n
}

// Close ends every session and the proxy's goroutines, and waits for
// them. Datagrams handed to a Service after Close are dropped.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed.Store(true)
	sets := p.sets
	p.mu.Unlock()
	p.once.Do(func() { close(p.stop) }) // the starters and the sweep end
	p.starting.Wait()                   // no session start is under way, and none will be
	for _, ss := range p.table.values() {
		ss.end(termClosed)
	}
	var errs []error
	for _, ps := range sets {
		if err := ps.close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("udp: %w", err))
		}
	}
	p.wg.Wait()
	return errors.Join(errs...)
}

// run makes the poll sets and starts the proxy's goroutines (the sets',
// the starters and the sweep), once: New calls it, and so does the next
// new client if it failed.
func (p *Proxy) run() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return errClosed
	}
	if p.running.Load() {
		return nil
	}
	sets := make([]*pollSet, 0, len(p.queues))
	for range len(p.queues) {
		ps, err := newPollSet()
		if err != nil {
			for _, ps := range sets {
				_ = ps.close()
			}
			return fmt.Errorf("udp: %w", err)
		}
		sets = append(sets, ps)
	}
	p.sets = sets
	for _, ps := range sets {
		ps.start(p)
	}
	for _, q := range p.queues {
		p.wg.Add(1)
		go p.starter(q)
	}
	p.wg.Add(1)
	go p.sweep()
	p.running.Store(true)
	return nil
}

// setOf returns the poll set of slot.
func (p *Proxy) setOf(slot int32) *pollSet { return p.sets[int(slot)%len(p.sets)] }

// sweep ends idle sessions every sweepEvery until Close.
func (p *Proxy) sweep() {
	defer p.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	var idle []*session
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		now := int64(time.Since(epoch))
		p.table.each(func(ss *session) {
			if now-ss.last.Load() >= int64(ss.svc.cfg.IdleTimeout) {
				idle = append(idle, ss)
			}
		})
		for _, ss := range idle {
			ss.end(termIdle)
		}
		clear(idle)
		idle = idle[:0]
	}
}

// warn logs at most one warning every 10 seconds: the causes (no
// descriptor, no memory) come with floods.
func (p *Proxy) warn(msg string, args ...any) {
	now, last := int64(time.Since(epoch)), p.warned.Load()
	if last != 0 && now-last < int64(10*time.Second) {
		return
	}
	if p.warned.CompareAndSwap(last, now) {
		p.log.Warn(msg, args...)
	}
}
