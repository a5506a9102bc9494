package health

import (
	"context"
	"time"
)

// tcpChecker passes when a TCP connection to the target is established.
type tcpChecker struct{}

// Check connects and closes the connection at once.
func (tcpChecker) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	c, err := dialerFor(t).DialContext(ctx, "tcp", t.String())
	if err != nil {
		return down(TypeTCP, t, start, "connect: "+describe(err))
	}
	_ = c.Close()
	return up("tcp connect to "+t.String(), start)
}
