package dataplane

import (
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestConnectionCeiling: without limits.maxConns a service may hold half
// of the connection ceiling (from the descriptor budget), so silent
// connections to one service never starve another; all services together
// never pass the ceiling (issue 14, item 8: 5,000 silent connections were
// all held with no limit).
func TestConnectionCeiling(t *testing.T) {
	t.Parallel()
	a := startTag(t, "a")
	e := New(Options{Logger: quiet, Budget: admission.Budget{Limit: 100, TCPConns: 20, UDPSessions: 16}})
	t.Cleanup(func() { e.Close() })
	p1, p2, p3 := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
	vs3 := vsOf(3, "127.0.0.1", p3, rsOf(31, a, 1))
	vs3.Limits.MaxConns = 100 // more than the ceiling: the ceiling wins
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1)), vsOf(2, "127.0.0.1", p2, rsOf(21, a, 1)), vs3))
	if l := e.Limits(); l.DefaultServiceConns != 10 || l.Budget.TCPConns != 20 {
		t.Fatalf("limits %+v", l)
	}
	// A flood of silent connections to service 1: 10 are held, the rest
	// closed at once.
	held := 0
	for range 15 {
		c := mustDial(t, hostPort("127.0.0.1", p1))
		if _, err := c.ask("x"); err == nil {
			held++
		}
	}
	if held != 10 {
		t.Errorf("service 1 held %d connections, default maximum 10", held)
	}
	// Service 2 still serves.
	if tag, err := askOnce(hostPort("127.0.0.1", p2)); err != nil || tag != "a" {
		t.Fatalf("service 2 under the flood of service 1: %q %v", tag, err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return e.Limits().Conns == 10 }, "the connection to service 2 to end")
	// Service 3 may take what is left of the ceiling of 20, no more.
	held3 := 0
	for range 15 {
		c := mustDial(t, hostPort("127.0.0.1", p3))
		if _, err := c.ask("x"); err == nil {
			held3++
		}
	}
	if held3 != 10 {
		t.Errorf("service 3 held %d connections, ceiling 20 with 10 held elsewhere", held3)
	}
	st := e.Status()
	if st[0].LimitHits.MaxConns != 5 || st[2].LimitHits.GlobalConns != 5 {
		t.Errorf("limit hits %+v, %+v", st[0].LimitHits, st[2].LimitHits)
	}
	if l := e.Limits(); l.Conns != 20 || l.ConnsRefused != 5 {
		t.Errorf("limits %+v: want 20 held, 5 refused", l)
	}
}
