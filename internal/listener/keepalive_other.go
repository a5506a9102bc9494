//go:build !linux

package listener

import "syscall"

// keepAliveOnListener does nothing outside Linux: there, keep-alive is set
// on every accepted connection instead.
func keepAliveOnListener(_, _ string, _ syscall.RawConn) error { return nil }

// inheritsKeepAlive says that accepted connections do not inherit the
// listening socket's keep-alive options.
const inheritsKeepAlive = false
