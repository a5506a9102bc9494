//go:build !linux || udpgoroutines

package udp

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// usesEpoll tells the tests that sessions have no goroutine of their own.
const usesEpoll = false

// recvSlots is how many datagrams one read of a session's socket takes.
const recvSlots = 1

// pollSet is, outside Linux (or built with the udpgoroutines tag, to test
// this fallback), no set at all: each session's socket is an *os.File in
// Go's netpoller and has a goroutine that waits for it, as sessions had
// before the epoll sets. The bounds (descriptors, table) are the same.
type pollSet struct {
	mu    sync.Mutex
	files map[*session]*os.File // own the sessions' descriptors
}

// readers are the reply buffers of the sessions' goroutines, taken only
// while a socket is readable, so idle sessions hold none.
var readers = sync.Pool{New: func() any { return newReader() }}

func newPollSet() (*pollSet, error) { return &pollSet{files: map[*session]*os.File{}}, nil }

func (ps *pollSet) start(*Proxy) {}

func (ps *pollSet) add(p *Proxy, ss *session) error {
	f := os.NewFile(uintptr(ss.fd), "udp-session")
	ps.mu.Lock()
	ps.files[ss] = f // f owns the descriptor from now on
	ps.mu.Unlock()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("session socket: %w", err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = rc.Read(func(uintptr) bool {
			r := readers.Get().(*reader)
			defer readers.Put(r)
			for {
				switch r.serve(ss) {
				case drained:
					return false // wait for the socket
				case ended:
					return true
				}
			}
		}) // returns once the session closed its file, or saw it closed
	}()
	return nil
}

func (ps *pollSet) closeSocket(ss *session, fd int) {
	ps.mu.Lock()
	f, ok := ps.files[ss]
	delete(ps.files, ss)
	ps.mu.Unlock()
	if ok {
		_ = f.Close() // waits for a callback in progress to return
		return
	}
	_ = unix.Close(fd)
}

func (ps *pollSet) close() error { return nil }

// recvBatch is nothing: a read takes one datagram.
type recvBatch struct{}

func (*recvBatch) init([][]byte) {}

// recv reads a datagram from ss's socket into r.bufs[0] and its length
// into r.lens[0]; open is false once the session is closed.
func (r *reader) recv(ss *session) (n int, open bool, err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.fd < 0 {
		return 0, false, nil
	}
	for {
		r.lens[0], err = unix.Read(ss.fd, r.bufs[0])
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, true, err
	}
	return 1, true, nil
}
