package admin

import (
	"net"
	"strings"
)

// RemoteHost returns the host part of a remote address ("ip:port", as in
// http.Request.RemoteAddr, or a bare host), without IPv6 brackets and
// bounded to 64 bytes. It is the one reading of a client's address for the
// audit log, lockouts, rate limits and the revisions' RemoteAddr.
func RemoteHost(remote string) string {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if len(host) > 64 {
		host = host[:64]
	}
	return host
}
