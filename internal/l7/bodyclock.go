package l7

import (
	"time"
)

// bodyClock enforces BodyTimeout and BodyMinRate on one body moved from
// or to a client. Only the time spent waiting for the client counts
// (reads of a request body from it, writes of a response to it), so that
// a slow real server never uses up the client's allowance; the real
// server's side is bounded by BodyTimeout without progress alone. The
// zero value is the clock of a body that has not started.
//
// Use: reset it when the body starts, add every read from (write to) the
// client with its duration and byte count, and when refreshing the
// client connection's deadline (at most once a second), set it to
// now.Add(allow(...)); a non-positive allowance means the client is
// already too slow.
type bodyClock struct {
	waited time.Duration // spent in reads from (writes to) the client
	moved  int64         // bytes those reads (writes) moved
}

// add records one read from (write to) the client that took d and moved
// n bytes.
func (k *bodyClock) add(d time.Duration, n int) {
	k.waited += d
	k.moved += int64(n)
}

// allow returns how much longer Fulcrum may wait for the client: timeout
// (the limit without progress), or less once the client has taken longer
// than timeout plus one second per rate bytes moved (rate <= 0: no
// minimum rate).
func (k *bodyClock) allow(timeout time.Duration, rate int64) time.Duration {
	if rate <= 0 || k.moved >= 1<<33 { // 8 GiB earn more than any timeout
		return timeout
	}
	left := timeout + time.Duration(k.moved)*time.Second/time.Duration(rate) - k.waited
	return min(left, timeout)
}
