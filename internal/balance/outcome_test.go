package balance

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// observed is what an Options.Observe saw.
type observed struct {
	srv *backend.Server
	o   Outcome
}

// TestDoneReportsOutcome: every method's done func (of a pick and of a
// reservation) returns the slot and hands a failure or a measured success
// to Options.Observe, the zero Outcome to nobody; dl alone feeds the
// latency of successes to the servers' Metrics.
func TestDoneReportsOutcome(t *testing.T) {
	boom := errors.New("boom")
	for _, method := range Methods() {
		for _, many := range []bool{false, true} { // lc and wlc keep a tree beyond linearMax servers
			t.Run(fmt.Sprintf("%s/%d", method, map[bool]int{false: 3, true: linearMax + 2}[many]), func(t *testing.T) {
				n := 3
				if many {
					n = linearMax + 2
				}
				servers := make([]*backend.Server, n)
				for i := range servers {
					servers[i] = backend.NewServer(backend.Key{VS: 1, Address: fmt.Sprintf("10.0.0.%d", i+1), Port: 80},
						backend.Settings{Weight: 1, Enabled: true})
				}
				var seen []observed
				p, err := NewWithOptions(method, servers, Options{
					Adaptive: Adaptive{Interval: time.Hour},
					Observe:  func(srv *backend.Server, o Outcome) { seen = append(seen, observed{srv, o}) },
				})
				if err != nil {
					t.Fatal(err)
				}
				if c, ok := p.(interface{ Close() error }); ok {
					t.Cleanup(func() { _ = c.Close() })
				}
				for _, tc := range []struct {
					name     string
					o        Outcome
					reported bool
				}{
					{"failure", Outcome{Err: boom}, true},
					{"success", Outcome{Latency: 3 * time.Millisecond}, true},
					{"nothing to say", Outcome{}, false},
				} {
					seen = seen[:0]
					srv, done, err := p.Pick(&Request{HashKey: "k"})
					if err != nil {
						t.Fatal(err)
					}
					if srv.Active() != 1 {
						t.Fatalf("%s: active %d after the pick", tc.name, srv.Active())
					}
					before := srv.Metrics().LatencySamples()
					done(tc.o)
					if srv.Active() != 0 {
						t.Errorf("%s: active %d after done", tc.name, srv.Active())
					}
					switch {
					case tc.reported && (len(seen) != 1 || seen[0].srv != srv || seen[0].o != tc.o):
						t.Errorf("%s: observed %+v, want the outcome on %s", tc.name, seen, srv.Addr())
					case !tc.reported && len(seen) != 0:
						t.Errorf("%s: observed %+v, want nothing", tc.name, seen)
					}
					fed := srv.Metrics().LatencySamples() - before
					// Every method feeds the response time (the status shows it).
					if want := tc.o.Succeeded(); fed != map[bool]int64{false: 0, true: 1}[want] {
						t.Errorf("%s: %d latency samples fed, want %v", tc.name, fed, want)
					}
				}
				// A reservation reports as a pick does.
				seen = seen[:0]
				done, ok := p.(Reserver).Reserve(servers[1])
				if !ok {
					t.Fatal("Reserve refused")
				}
				done(Outcome{Err: boom})
				if len(seen) != 1 || seen[0].srv != servers[1] || servers[1].Active() != 0 {
					t.Errorf("reservation: observed %+v, active %d", seen, servers[1].Active())
				}
				// The picker still spreads work: it sees the released slots.
				if srv, done, err := p.Pick(&Request{HashKey: "k"}); err != nil {
					t.Fatal(err)
				} else {
					done(Outcome{})
					if srv.Active() != 0 {
						t.Errorf("active %d", srv.Active())
					}
				}
			})
		}
	}
}

// TestReleaseReportsNothing: the done func of a server outside any Picker
// only returns its slot.
func TestReleaseReportsNothing(t *testing.T) {
	srv := backend.NewServer(backend.Key{VS: 1, Address: "10.0.0.1", Port: 80}, backend.Settings{Weight: 1, Enabled: true})
	srv.Acquire(0)
	Release(srv)(Outcome{Err: errors.New("x"), Latency: time.Second})
	if srv.Active() != 0 || srv.Metrics().LatencySamples() != 0 {
		t.Errorf("active %d, %d latency samples", srv.Active(), srv.Metrics().LatencySamples())
	}
}
