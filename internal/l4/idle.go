package l4

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// watchdog enforces an idle timeout without touching the copy path: no
// deadline is reset per read. A timer fires once per idle period; it then
// asks how long ago bytes last moved on either socket (sinceActivity, from
// the kernel's own per-socket timestamps on Linux) and either aborts the
// connection or sleeps until the earliest moment it could be idle. An
// active connection thus costs one timer and one check per idle period.
type watchdog struct {
	client, server *net.TCPConn
	idle           time.Duration
	abort          func()
	term           *atomic.Uint32 // gets termIdle when the watchdog aborts

	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

// watch starts a watchdog that records termIdle in term (unless a cause
// is there) and calls abort once client and server have been idle for
// idle.
func watch(client, server *net.TCPConn, idle time.Duration, abort func(), term *atomic.Uint32) *watchdog {
	w := &watchdog{client: client, server: server, idle: idle, abort: abort, term: term}
	w.mu.Lock()
	w.t = time.AfterFunc(idle, w.check)
	w.mu.Unlock()
	return w
}

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	since, err := quietest(w.client, w.server)
	if err != nil || since >= w.idle {
		w.stopped = true
		w.term.CompareAndSwap(termNone, termIdle)
		w.abort()
		return
	}
	w.t.Reset(w.idle - since)
}

// stop ends the watchdog; abort is not called after stop returns.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.t.Stop()
}

// quietest returns how long ago bytes last moved on either connection.
func quietest(a, b *net.TCPConn) (time.Duration, error) {
	sa, err := sinceActivity(a)
	if err != nil {
		return 0, err
	}
	sb, err := sinceActivity(b)
	if err != nil {
		return 0, err
	}
	return min(sa, sb), nil
}
