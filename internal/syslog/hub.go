package syslog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// Sizes and timers of the senders.
const (
	// MaxUDP is the largest datagram sent: RFC 5426 says every receiver
	// should accept 2048 bytes; longer messages are cut (see Format).
	MaxUDP = 2048
	// MaxStream is the largest message sent over TCP or TLS.
	MaxStream = 64 << 10
	// QueueSize is each host's queue, in messages.
	QueueSize = 4096
	// DialTimeout bounds connecting (and the TLS handshake).
	DialTimeout = 5 * time.Second
	// WriteTimeout bounds writing one message.
	WriteTimeout = 10 * time.Second
	// MinBackoff and MaxBackoff bound the wait before reconnecting; it
	// doubles after each failure.
	MinBackoff = 500 * time.Millisecond
	MaxBackoff = 30 * time.Second
)

// Options configure a Hub.
type Options struct {
	// Logger receives connection errors (once per failure streak of a
	// host); slog.Default when nil.
	Logger *slog.Logger
	// Hostname is the HOSTNAME of the messages; "" means os.Hostname.
	Hostname string
	// OnError, when set, is called (from the host's sender goroutine,
	// once per failure streak: again only after a message got through)
	// with a host that cannot be reached. It must not block.
	OnError func(host string, err error)
}

// HostStats are one host's counters.
type HostStats struct {
	// Host is "protocol://address:port".
	Host string `json:"host"`
	// Sent counts the messages written to the host.
	Sent int64 `json:"sent"`
	// Dropped counts the messages lost: the queue was full, the host was
	// removed with messages queued, or a write failed three times.
	Dropped int64 `json:"dropped"`
	// Queued is the queue's length now.
	Queued int `json:"queued"`
	// Connected is true while a connection is open (UDP: a socket).
	Connected bool `json:"connected"`
	// LastError is the newest connection or write error, "" after a
	// success.
	LastError string `json:"lastError,omitempty"`
}

// Hub forwards events and access log lines to the configured syslog hosts.
// Its methods are safe for concurrent use; Event and ForwardAccess never
// block.
type Hub struct {
	log      *slog.Logger
	hostname string
	procID   string
	onError  func(string, error)

	mu      sync.Mutex
	senders map[string]*sender // by key
	closed  bool
	list    atomic.Pointer[[]*sender] // the senders in configuration order, for the senders of a message
}

// New returns a Hub without hosts; Configure gives it some.
func New(o Options) *Hub {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	host := o.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	h := &Hub{log: log, hostname: host, procID: strconv.Itoa(os.Getpid()), onError: o.OnError, senders: map[string]*sender{}}
	h.list.Store(&[]*sender{})
	return h
}

// hostKey names a sender: a host keeps its sender (and its queue) while
// its protocol, address and port stay the same.
func hostKey(c config.SyslogHost) string {
	return c.Protocol + "://" + net.JoinHostPort(c.Address, strconv.Itoa(c.Port))
}

// Configure makes the hub send to hosts (with defaults applied, as in a
// validated configuration). A host whose protocol, address and port are
// unchanged keeps its queue and connection; a change of its TLS settings
// reconnects it. Removed hosts are stopped and what they had queued is
// counted as dropped. A host whose CA does not parse is an error naming
// it, and the others are still configured.
func (h *Hub) Configure(hosts []config.SyslogHost) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("syslog: hub closed")
	}
	var errs []error
	keep := map[string]bool{}
	list := make([]*sender, 0, len(hosts))
	for i, c := range hosts {
		k := hostKey(c)
		if keep[k] {
			continue
		}
		tcfg, err := tlsConfig(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("options.logging.syslog[%d].caCert: %w", i, err))
			continue
		}
		sev, ok := config.SeverityLevel(c.Severity)
		if !ok {
			sev = int(events.Info)
		}
		s := h.senders[k]
		if s == nil {
			s = h.start(k, c)
			h.senders[k] = s
		}
		s.severity.Store(int32(sev))
		s.access.Store(c.AccessLogs)
		s.setTLS(tcfg)
		keep[k] = true
		list = append(list, s)
	}
	for k, s := range h.senders {
		if !keep[k] {
			s.stop()
			delete(h.senders, k)
		}
	}
	h.list.Store(&list)
	return errors.Join(errs...)
}

func tlsConfig(c config.SyslogHost) (*tls.Config, error) {
	if c.Protocol != "tls" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if cfg.ServerName == "" {
		cfg.ServerName = c.Address
	}
	if c.CACert != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CACert)) {
			return nil, errors.New("no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Event queues e for every host whose severity covers it (facility
// local0, MSGID the event's kind).
func (h *Hub) Event(e events.Event) {
	list := *h.list.Load()
	if len(list) == 0 {
		return
	}
	var msg item
	for _, s := range list {
		if int32(e.Severity) > s.severity.Load() {
			continue
		}
		if msg.full == nil {
			msg = newItem(&Message{Facility: FacilityLocal0, Severity: int(e.Severity), Time: e.Time, Hostname: h.hostname,
				ProcID: h.procID, MsgID: e.Kind, Fields: e.Fields, Text: e.Message})
		}
		s.enqueue(msg)
	}
}

// ForwardAccess queues an access log line for every host with accessLogs
// (facility local1, severity info, MSGID "access"). It copies line and
// does not keep it.
func (h *Hub) ForwardAccess(t time.Time, line []byte) {
	list := *h.list.Load()
	var msg item
	for _, s := range list {
		if !s.access.Load() {
			continue
		}
		if msg.full == nil {
			for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
				line = line[:len(line)-1]
			}
			msg = newItem(&Message{Facility: FacilityLocal1, Severity: int(events.Info), Time: t, Hostname: h.hostname,
				ProcID: h.procID, MsgID: "access", Text: string(line)})
		}
		s.enqueue(msg)
	}
}

// Run forwards the events of sub until its channel is closed.
func (h *Hub) Run(sub *events.Subscription) {
	for e := range sub.C() {
		h.Event(e)
	}
}

// Stats returns every host's counters in configuration order.
func (h *Hub) Stats() []HostStats {
	list := *h.list.Load()
	out := make([]HostStats, 0, len(list))
	for _, s := range list {
		st := HostStats{Host: s.key, Sent: s.sent.Load(), Dropped: s.dropped.Load(), Queued: len(s.queue),
			Connected: s.connected.Load()}
		if p := s.lastErr.Load(); p != nil {
			st.LastError = *p
		}
		out = append(out, st)
	}
	return out
}

// Close stops every sender; queued messages that cannot be written within
// a second are dropped.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	all := make([]*sender, 0, len(h.senders))
	for _, s := range h.senders {
		all = append(all, s)
	}
	h.senders = map[string]*sender{}
	h.list.Store(&[]*sender{})
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.flushAndStop(time.Second)
		}()
	}
	wg.Wait()
}

// sender writes one host's messages.
type sender struct {
	key      string
	proto    string
	addr     string
	log      *slog.Logger
	onError  func(string, error)
	queue    chan item
	severity atomic.Int32
	access   atomic.Bool
	tlsCfg   atomic.Pointer[tls.Config]
	redial   chan struct{} // the TLS settings changed
	ctx      context.Context
	cancel   context.CancelFunc
	flush    chan time.Duration
	done     chan struct{}

	sent, dropped atomic.Int64
	connected     atomic.Bool
	lastErr       atomic.Pointer[string]
}

func (h *Hub) start(key string, c config.SyslogHost) *sender {
	ctx, cancel := context.WithCancel(context.Background())
	s := &sender{key: key, proto: c.Protocol, addr: net.JoinHostPort(c.Address, strconv.Itoa(c.Port)), log: h.log,
		onError: h.onError, queue: make(chan item, QueueSize), redial: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, flush: make(chan time.Duration, 1), done: make(chan struct{})}
	go s.run()
	return s
}

// item is one queued message: full for TCP and TLS, short (the same
// message cut to MaxUDP by Format) for UDP.
type item struct{ full, short []byte }

func newItem(m *Message) item {
	full := Format(m, MaxStream)
	if len(full) <= MaxUDP {
		return item{full, full}
	}
	return item{full, Format(m, MaxUDP)}
}

func (s *sender) enqueue(msg item) {
	select {
	case s.queue <- msg:
	default:
		s.dropped.Add(1)
	}
}

func (s *sender) setTLS(cfg *tls.Config) {
	if cfg == nil {
		return
	}
	old := s.tlsCfg.Swap(cfg)
	if old != nil && (old.ServerName != cfg.ServerName || !old.RootCAs.Equal(cfg.RootCAs)) {
		select {
		case s.redial <- struct{}{}:
		default:
		}
	}
}

// stop ends the sender at once; what is queued is dropped.
func (s *sender) stop() {
	s.cancel()
	<-s.done
	s.dropped.Add(int64(len(s.queue)))
}

// flushAndStop gives the sender up to d to write what is queued, then
// stops it.
func (s *sender) flushAndStop(d time.Duration) {
	s.flush <- d
	select {
	case <-s.done:
	case <-time.After(d + 100*time.Millisecond):
	}
	s.stop()
}

func (s *sender) dial() (net.Conn, error) {
	d := net.Dialer{Timeout: DialTimeout}
	ctx, cancel := context.WithTimeout(s.ctx, DialTimeout)
	defer cancel()
	switch s.proto {
	case "udp":
		return d.DialContext(ctx, "udp", s.addr)
	case "tls":
		td := tls.Dialer{NetDialer: &d, Config: s.tlsCfg.Load()}
		return td.DialContext(ctx, "tcp", s.addr)
	default:
		return d.DialContext(ctx, "tcp", s.addr)
	}
}

// frame returns msg as written on the wire: one datagram for UDP, octet
// counting ("LEN SP MSG", RFC 6587) for TCP and TLS.
func (s *sender) frame(buf []byte, msg item) []byte {
	if s.proto == "udp" {
		return msg.short
	}
	buf = strconv.AppendInt(buf[:0], int64(len(msg.full)), 10)
	buf = append(buf, ' ')
	return append(buf, msg.full...)
}

func (s *sender) fail(err error, streak *bool) {
	msg := err.Error()
	s.lastErr.Store(&msg)
	s.connected.Store(false)
	if !*streak {
		*streak = true
		s.log.Warn("syslog: cannot send to host", "host", s.key, "err", err)
		if s.onError != nil {
			s.onError(s.key, err)
		}
	}
}

func (s *sender) run() {
	defer close(s.done)
	var (
		conn     net.Conn
		pending  *item // a message to write again
		retried  bool  // pending failed twice already
		streak   bool
		backoff  = MinBackoff
		buf      []byte
		deadline time.Time // when flushing: the time to stop
	)
	defer func() {
		if conn != nil {
			_ = conn.Close()
		}
		s.connected.Store(false)
		if pending != nil {
			s.dropped.Add(1)
		}
	}()
	for {
		var msg item
		switch {
		case pending != nil:
			msg = *pending
		case !deadline.IsZero():
			select {
			case msg = <-s.queue:
			default:
				return // flushed
			}
		default:
			select {
			case <-s.ctx.Done():
				return
			case d := <-s.flush:
				deadline = time.Now().Add(d)
				continue
			case <-s.redial:
				if conn != nil {
					_ = conn.Close()
					conn = nil
				}
				continue
			case msg = <-s.queue:
			}
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			if pending == nil {
				s.dropped.Add(1)
			}
			return
		}
		if conn == nil {
			c, err := s.dial()
			if err != nil {
				s.fail(err, &streak)
				pending = &msg
				if !deadline.IsZero() {
					return
				}
				select {
				case <-s.ctx.Done():
					return
				case d := <-s.flush:
					deadline = time.Now().Add(d)
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, MaxBackoff)
				continue
			}
			conn = c
			s.connected.Store(true)
		}
		buf = s.frame(buf, msg)
		wd := time.Now().Add(WriteTimeout)
		if !deadline.IsZero() && deadline.Before(wd) {
			wd = deadline
		}
		_ = conn.SetWriteDeadline(wd)
		if _, err := conn.Write(buf); err != nil {
			_ = conn.Close()
			conn = nil
			s.fail(err, &streak)
			if pending != nil && retried {
				pending, retried = nil, false
				s.dropped.Add(1)
			} else {
				pending, retried = &msg, pending != nil
			}
			continue
		}
		pending, retried = nil, false
		s.sent.Add(1)
		if streak {
			s.log.Info("syslog: host reachable again", "host", s.key)
		}
		streak, backoff = false, MinBackoff
		s.lastErr.Store(nil)
	}
}
