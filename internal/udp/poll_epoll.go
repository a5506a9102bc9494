//go:build linux && !udpgoroutines

package udp

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// usesEpoll tells the tests that sessions have no goroutine of their own.
const usesEpoll = true

// recvSlots is how many datagrams one read of a session's socket takes
// (recvmmsg): a burst of replies costs one system call, and a read that
// returns fewer tells that the socket is drained without another read.
const recvSlots = 8

// pollEvents is how many ready sockets one wake-up of a poll set takes.
const pollEvents = 128

// pollSet is an epoll instance over session sockets, served by one
// goroutine. Its own descriptor is pollable, so the goroutine waits for it
// in Go's netpoller (through an *os.File) and holds no thread while no
// reply is waiting. Sockets are registered level-triggered with their
// session's slot as the event's data: a socket with datagrams left after
// a wake-up is reported again by the next one.
type pollSet struct {
	epfd   int
	file   *os.File // owns epfd
	events []unix.EpollEvent
	closed atomic.Bool
}

// newPollSet returns a poll set; start serves it.
func newPollSet() (*pollSet, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("epoll descriptor: %w", err)
	}
	return &pollSet{epfd: fd, file: os.NewFile(uintptr(fd), "udp-sessions"), events: make([]unix.EpollEvent, pollEvents)}, nil
}

// start starts the set's goroutine, counted in p.wg.
func (ps *pollSet) start(p *Proxy) {
	p.wg.Add(1)
	go ps.run(p)
}

// add registers the socket of ss, whose slot is set. The caller keeps the
// set open while it adds (Proxy.starting).
func (ps *pollSet) add(_ *Proxy, ss *session) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: ss.slot}
	if err := unix.EpollCtl(ps.epfd, unix.EPOLL_CTL_ADD, ss.fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// closeSocket closes fd, the socket of ss, once nothing uses it any more;
// closing it takes it out of the epoll set.
func (ps *pollSet) closeSocket(_ *session, fd int) { _ = unix.Close(fd) }

// close ends the set's goroutine.
func (ps *pollSet) close() error {
	ps.closed.Store(true)
	return ps.file.Close()
}

// run reads the replies of the set's sessions until the set is closed.
//
// It all happens in one RawConn.Read of the epoll descriptor, whose
// callback waits for nothing: it takes the ready sockets (epoll_wait with
// no timeout) and serves them, and returns false to have Go's netpoller
// wait for the epoll descriptor when nothing is left. When the last
// wake-up drained every socket it was given and did not fill the events,
// it returns false at once, without an epoll_wait: whatever is ready since
// woke the epoll descriptor, and the netpoller keeps that wake-up for the
// wait within one Read (a new Read would forget it).
func (ps *pollSet) run(p *Proxy) {
	defer p.wg.Done()
	rc, err := ps.file.SyscallConn()
	if err != nil {
		p.log.Error("udp: replies cannot be read", "err", err)
		return
	}
	r := newReader()
	var fatal error
	parked := false
	err = rc.Read(func(fd uintptr) bool {
		for {
			if parked {
				parked = false
				return false
			}
			n, err := unix.EpollWait(int(fd), ps.events, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				fatal = fmt.Errorf("epoll_wait: %w", err)
				return true
			}
			if n == 0 {
				return false
			}
			parked = n < len(ps.events)
			for _, ev := range ps.events[:n] {
				// A session closed since the wait left a nil slot, or a
				// new session in it: reading that one's socket is harmless.
				if ss := p.slots.load(ev.Fd); ss != nil && r.serve(ss) == more {
					parked = false
				}
			}
		}
	})
	if err == nil {
		err = fatal
	}
	if err != nil && !ps.closed.Load() {
		p.log.Error("udp: replies cannot be read", "err", err)
	}
}

// recvBatch holds the recvmmsg headers of a reader's buffers.
type recvBatch struct {
	msgs []unix.Mmsghdr
	iovs []unix.Iovec
}

func (b *recvBatch) init(bufs [][]byte) {
	b.msgs, b.iovs = make([]unix.Mmsghdr, len(bufs)), make([]unix.Iovec, len(bufs))
	for i := range bufs {
		b.iovs[i].Base = &bufs[i][0]
		b.iovs[i].SetLen(len(bufs[i]))
		b.msgs[i].Hdr.Iov = &b.iovs[i]
		b.msgs[i].Hdr.SetIovlen(1)
	}
}

// recv reads up to recvSlots datagrams from ss's socket into r.bufs and
// their lengths into r.lens; open is false once the session is closed.
func (r *reader) recv(ss *session) (n int, open bool, err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.fd < 0 {
		return 0, false, nil
	}
	msgs := r.batch.msgs
	for {
		got, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(ss.fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)),
			unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, true, errno
		}
		for i := range int(got) {
			r.lens[i] = int(msgs[i].Len)
		}
		return int(got), true, nil
	}
}

// load returns the session of slot, or nil.
func (t *slotTable) load(slot int32) *session {
	if slot < 0 || int(slot/slotChunk) >= len(t.chunks) {
		return nil
	}
	c := t.chunks[slot/slotChunk].Load()
	if c == nil {
		return nil
	}
	return c[slot%slotChunk].Load()
}
