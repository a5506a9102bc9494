package health

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Options configure a Monitor.
type Options struct {
	// Logger receives transitions (Warn for Down and Sorry, Info for the
	// others); slog.Default when nil.
	Logger *slog.Logger
	// OnChange, when set, is called with every change of a real server's
	// health (Up, Down, or Unknown when the server stops being checked),
	// with the reason, right after the health is written to its
	// backend.Server. Calls come from one goroutine, in the order of the
	// changes, and never under the Monitor's lock, so OnChange may call the
	// Monitor. It must not block for long: later changes wait for it.
	OnChange func(key backend.Key, h backend.Health, reason string)
	// OnEvent, when set, is called with every event (status transition
	// of a service or real server) the Monitor records, in order, from
	// the same goroutine as OnChange and never under the Monitor's lock.
	// It must not block: later changes wait for it.
	OnEvent func(Event)
	// EventLogSize is the number of events kept; default 1000.
	EventLogSize int
	// MaxConcurrent bounds the checks in flight at once; default 1000. When
	// it is reached, due checks wait for a slot.
	MaxConcurrent int
	// PassiveFailures is the number of consecutive failures reported by
	// the proxies (ReportFailure) that mark a real server Down until its
	// active check passes again; 0 (the default) turns passive checks off.
	PassiveFailures int
	// RootCAs are the authorities trusted by checks with verifyTls; nil
	// means the system's.
	RootCAs *x509.CertPool
	// Unit is the length of one configured second; default time.Second.
	// Tests shorten it to run LoadMaster's timers (interval 9, timeout 4)
	// in a fraction of the time. Not for production use.
	Unit time.Duration
}

// ErrClosed is returned by Sync after Close.
var ErrClosed = errors.New("health: monitor closed")

// Monitor runs the health checks of a configuration and computes the
// statuses of its virtual services and real servers.
//
// One scheduler goroutine keeps every check in a heap ordered by due time
// and starts each due check on a goroutine of its own; a real server never
// has two checks in flight. Results become statuses and events at once;
// changes of health are written to the real server's backend.Server
// (SetHealth, which runs the data plane's hook) and passed to
// Options.OnChange by one more goroutine, in order and without the
// Monitor's lock.
//
// The methods are safe for concurrent use.
type Monitor struct {
	log    *slog.Logger
	opts   Options
	unit   time.Duration
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // wakes the scheduler
	epoch  time.Time     // due times are measured from it
	syncMu sync.Mutex    // serialises Sync

	mu       sync.Mutex
	closed   bool
	tasks    map[backend.Key]*task // by the checked real server's key
	queue    queue
	idle     []*worker // idle workers, the most recent last
	inFlight int
	nextWake time.Duration // when the scheduler wakes next; -1 when it waits for a signal
	services []*vsState    // configuration order, each SubVS after its parent
	servers  map[backend.Key]*rsState
	events   *eventLog

	passive atomic.Pointer[map[int]map[backend.Key]*task] // by service ID; nil when passive checks are off

	// Guarded by syncMu, and by mu too where apply writes them.
	forest []*tree             // the plans in force, in configuration order
	byID   map[int]*tree       // forest by service ID; nil after a configuration whose IDs repeat
	health config.HealthTimers // the global timers the forest was planned with
	gen    uint64              // counts the Syncs applied
	ids    map[int]struct{}    // scratch for plan

	nmu     sync.Mutex // guards pending; taken after mu when both are held
	pending []change
	nwake   chan struct{}
}

// task is the running check of one real server.
type task struct {
	key      backend.Key
	spec     Spec
	fp       string
	checker  Checker
	interval time.Duration
	timeout  time.Duration
	due      time.Duration // since the Monitor's epoch
	stopped  bool
	cancel   context.CancelFunc // of the check in flight; nil when none is

	health     backend.Health // Unknown until the first result
	reason     string         // why health is what it is
	fails, oks int            // consecutive
	checks     int
	failed     int64 // failed checks, cumulative (a changed check keeps the count)
	lastCheck  time.Time
	latency    time.Duration
	lastResult string
	lastUp     bool
	users      []*rsState // the real servers taking this result: its own and its followers
	gen        uint64     // the last Sync that kept it in force

	passiveFails atomic.Int32
}

// New returns a Monitor that checks nothing until Sync.
func New(o Options) *Monitor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.EventLogSize <= 0 {
		o.EventLogSize = 1000
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 1000
	}
	if o.Unit <= 0 {
		o.Unit = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{
		log: o.Logger, opts: o, unit: o.Unit, ctx: ctx, cancel: cancel,
		wake:     make(chan struct{}, 1),
		epoch:    time.Now(),
		nextWake: -1,
		nwake:    make(chan struct{}, 1),
		tasks:    map[backend.Key]*task{},
		servers:  map[backend.Key]*rsState{},
		events:   newEventLog(o.EventLogSize),
	}
	m.wg.Add(1)
	go m.schedule()
	m.wg.Add(1)
	go m.notify()
	return m
}

// Close stops every check, waits for the Monitor's goroutines to end and
// drops OnChange calls not yet made. Sync fails after Close.
func (m *Monitor) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for _, t := range m.tasks {
		m.stopTask(t)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}
