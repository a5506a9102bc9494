package balance

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// agent is a real HTTP load agent started by the test on 127.0.0.1.
type agent struct {
	srv    *testkit.HTTPServer
	reply  atomic.Value // string
	status atomic.Int32
	hits   atomic.Int64
}

func startAgent(t *testing.T, reply string) *agent {
	t.Helper()
	a := &agent{}
	a.reply.Store(reply)
	a.status.Store(http.StatusOK)
	a.srv = testkit.StartHTTP(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		if r.URL.Path != "/agent/load" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(a.status.Load()))
		fmt.Fprint(w, a.reply.Load().(string))
	}))
	return a
}

// server returns a real server whose address and port are the agent's.
func (a *agent) server(t *testing.T, id int) *backend.Server {
	host, port, err := net.SplitHostPort(a.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return backend.NewServer(backend.Key{VS: 1, Address: host, Port: p}, backend.Settings{ID: id, Weight: 1, Enabled: true})
}

// waitLoad waits until s reports load (ok) or no load (!ok).
func waitLoad(t *testing.T, s *backend.Server, load int, ok bool) {
	t.Helper()
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		l, _, has := s.Metrics().Load()
		return has == ok && (!ok || l == load), fmt.Sprintf("load %d (reported %v)", l, has)
	}, fmt.Sprintf("server %s to report load %d (reported %v)", s.Key(), load, ok))
}

func TestAdaptiveFollowsAgents(t *testing.T) {
	a, b, c := startAgent(t, "20\n"), startAgent(t, " 60% \r\nextra"), startAgent(t, "0")
	servers := []*backend.Server{a.server(t, 1), b.server(t, 2), c.server(t, 3)}
	servers[2].SetHealth(backend.HealthDown) // its agent answers, but it gets nothing
	p := mustNewOpts(t, "adaptive", servers, Options{
		Adaptive: Adaptive{URL: "/agent/load", Interval: 20 * time.Millisecond, MinPercent: 5},
		Logger:   slog.New(slog.DiscardHandler),
	})
	waitLoad(t, servers[0], 20, true)
	waitLoad(t, servers[1], 60, true)

	// Effective weights 80 : 40.
	got, _ := counts(t, p, servers, 120, false)
	if got[0] != 80 || got[1] != 40 || got[2] != 0 {
		t.Errorf("loads 20%% and 60%%: picks %v, want [80 40 0]", got)
	}

	// Below the control threshold: static weights (wrr).
	a.reply.Store("3")
	b.reply.Store("4")
	waitLoad(t, servers[0], 3, true)
	waitLoad(t, servers[1], 4, true)
	got, _ = counts(t, p, servers, 100, false)
	if got[0] != 50 || got[1] != 50 {
		t.Errorf("loads below MinPercent: picks %v, want [50 50 0]", got)
	}

	// An agent that fails is forgotten and counted at the mean of the
	// others: b at 70%, a unknown → a counts as 70% too.
	a.status.Store(http.StatusInternalServerError)
	b.reply.Store("70")
	waitLoad(t, servers[0], 0, false)
	waitLoad(t, servers[1], 70, true)
	got, _ = counts(t, p, servers, 100, false)
	if got[0] != 50 || got[1] != 50 {
		t.Errorf("one agent down, other at 70%%: picks %v, want [50 50 0]", got)
	}

	// Nonsense is not a load.
	a.status.Store(http.StatusOK)
	a.reply.Store("banana")
	b.reply.Store("10")
	waitLoad(t, servers[1], 10, true)
	waitLoad(t, servers[0], 0, false)

	// Everyone at 100% (or above): static weights rather than nothing.
	a.reply.Store("100")
	b.reply.Store("102")
	waitLoad(t, servers[0], 100, true)
	waitLoad(t, servers[1], 100, true)
	got, _ = counts(t, p, servers, 100, false)
	if got[0] != 50 || got[1] != 50 {
		t.Errorf("all overloaded: picks %v, want [50 50 0]", got)
	}

	// One overloaded, one not: the overloaded one gets nothing.
	b.reply.Store("30")
	waitLoad(t, servers[1], 30, true)
	got, _ = counts(t, p, servers, 100, false)
	if got[0] != 0 || got[1] != 100 {
		t.Errorf("100%% and 30%%: picks %v, want [0 100 0]", got)
	}

	// Close stops polling.
	if err := p.(interface{ Close() error }).Close(); err != nil {
		t.Fatal(err)
	}
	n := a.hits.Load()
	time.Sleep(100 * time.Millisecond)
	if a.hits.Load() != n {
		t.Errorf("agent polled after Close")
	}
}

// TestAdaptiveStaleReports: a report older than three intervals is not
// used.
func TestAdaptiveStaleReports(t *testing.T) {
	clk := newClock()
	servers := equal(2)
	// No agent answers for these servers: a cancelled context keeps the
	// poller from clearing the loads the test sets.
	ctx, cancel := contextWithCancel()
	cancel()
	p := mustNewOpts(t, "adaptive", servers, Options{Now: clk.now, Context: ctx, Adaptive: Adaptive{Interval: time.Hour, MinPercent: 5}}).(*adaptive)
	servers[0].Metrics().SetLoad(80, clk.now())
	servers[1].Metrics().SetLoad(20, clk.now())
	got, _ := counts(t, p, servers, 100, false)
	if got[0] != 20 || got[1] != 80 {
		t.Errorf("fresh reports 80%% and 20%%: picks %v, want [20 80]", got)
	}
	clk.advance(3*time.Hour + time.Second)
	got, _ = counts(t, p, servers, 100, false)
	if got[0] != 50 || got[1] != 50 {
		t.Errorf("stale reports: picks %v, want [50 50]", got)
	}
}

// TestAdaptiveContextStops: the poller also stops with Options.Context.
func TestAdaptiveContextStops(t *testing.T) {
	a := startAgent(t, "10")
	ctx, cancel := contextWithCancel()
	p, err := NewWithOptions("adaptive", []*backend.Server{a.server(t, 1)}, Options{
		Context:  ctx,
		Adaptive: Adaptive{URL: "/agent/load", Interval: 10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Within(10*time.Second, func() bool { return a.hits.Load() >= 2 })
	cancel()
	ap := p.(*adaptive)
	select {
	case <-ap.poller.done:
	case <-time.After(10 * time.Second):
		t.Fatal("poller still running after its context ended")
	}
	_ = ap.Close() // and Close after that is harmless
}

func TestParseLoad(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		err  bool
	}{
		{"0", 0, false},
		{"42\n", 42, false},
		{" 42 \r\nrest of file", 42, false},
		{"100%", 100, false},
		{"7 %", 7, false},
		{"102", 102, false},
		{"1000", 1000, false},
		{"1001", 0, true},
		{"", 0, true},
		{"\n42", 0, true},
		{"-1", 0, true},
		{"4.5", 0, true},
		{"abc", 0, true},
		{"99999999999999999999", 0, true},
		{"%", 0, true},
	} {
		got, err := ParseLoad([]byte(tc.in))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseLoad(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
