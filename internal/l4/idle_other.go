//go:build !linux

package l4

import (
	"errors"
	"net"
	"time"
)

// sinceActivity reports no idle time: outside Linux the kernel's per-socket
// activity timestamps are not read, so the idle timeout is not enforced.
// Fulcrum's data plane targets Linux; this file only keeps other systems
// building for development.
func sinceActivity(*net.TCPConn) (time.Duration, error) { return 0, nil }

// bytesAcked is not available outside Linux: bytes are counted when a
// connection ends.
func bytesAcked(*net.TCPConn) (int64, error) { return 0, errors.New("not supported") }
