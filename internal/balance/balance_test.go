package balance

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// allMethods are every scheduling method.
var allMethods = []string{"rr", "wrr", "lc", "wlc", "fixed", "sh", "uhash", "dl", "adaptive"}

// pool returns enabled servers with the given weights (limit 0) on
// 127.0.0.1, ports 8000+i.
func pool(weights ...int) []*backend.Server {
	out := make([]*backend.Server, len(weights))
	for i, w := range weights {
		out[i] = backend.NewServer(backend.Key{VS: 1, Address: "127.0.0.1", Port: 8000 + i}, backend.Settings{ID: i + 1, Weight: w, Enabled: true})
	}
	return out
}

// equal returns n servers of weight 1.
func equal(n int) []*backend.Server {
	ws := make([]int, n)
	for i := range ws {
		ws[i] = 1
	}
	return pool(ws...)
}

func index(servers []*backend.Server, s *backend.Server) int {
	for i, x := range servers {
		if x == s {
			return i
		}
	}
	return -1
}

// seeded returns a deterministic random source for tie-breaking.
func seeded(seed uint64) func(int) int {
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	return r.IntN
}

// clock is a manual clock for slow start and agent report ages.
type clock struct{ t time.Time }

func newClock() *clock                   { return &clock{t: time.Unix(1_700_000_000, 0)} }
func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func mustNew(t testing.TB, method string, servers []*backend.Server) Picker {
	t.Helper()
	return mustNewOpts(t, method, servers, Options{Rand: seeded(1)})
}

func mustNewOpts(t testing.TB, method string, servers []*backend.Server, o Options) Picker {
	t.Helper()
	if method == "adaptive" && o.Adaptive.Interval == 0 {
		// No agents listen in these tests: keep the poller quiet.
		o.Adaptive.Interval = time.Hour
	}
	p, err := NewWithOptions(method, servers, o)
	if err != nil {
		t.Fatalf("NewWithOptions(%q): %v", method, err)
	}
	if c, ok := p.(interface{ Close() error }); ok {
		t.Cleanup(func() { _ = c.Close() })
	}
	return p
}

// counts makes n picks with req (a fresh one if nil), releasing each at
// once unless hold, and returns how often each server was chosen and the
// sequence of indices.
func counts(t *testing.T, p Picker, servers []*backend.Server, n int, hold bool) ([]int, []int) {
	t.Helper()
	got := make([]int, len(servers))
	seq := make([]int, 0, n)
	for k := range n {
		s, done, err := p.Pick(&Request{})
		if err != nil {
			t.Fatalf("pick %d: %v", k, err)
		}
		i := index(servers, s)
		got[i]++
		seq = append(seq, i)
		if !hold {
			done(Outcome{})
		}
	}
	return got, seq
}

func TestNewMethods(t *testing.T) {
	for _, m := range allMethods {
		if !Implemented(m) {
			t.Errorf("Implemented(%q) = false", m)
		}
		p, err := New(m, pool(1, 1))
		if err != nil {
			t.Errorf("New(%q): %v", m, err)
		}
		if c, ok := p.(interface{ Close() error }); ok {
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	if got, want := strings.Join(Methods(), ","), "adaptive,dl,fixed,lc,rr,sh,uhash,wlc,wrr"; got != want {
		t.Errorf("Methods() = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		method string
		o      Options
		want   string
	}{
		{"bogus", Options{}, `unknown scheduling method "bogus"`},
		{"", Options{}, `unknown scheduling method ""`},
		{"rr", Options{SlowStart: 601 * time.Second}, "slow start must be 0-600 s"},
		{"rr", Options{SlowStart: -time.Second}, "slow start must be 0-600 s"},
		{"adaptive", Options{Adaptive: Adaptive{URL: "load"}}, "adaptive url must be a path"},
		{"adaptive", Options{Adaptive: Adaptive{URL: "http://x/load"}}, "adaptive url must be a path"},
		{"adaptive", Options{Adaptive: Adaptive{Port: 70000}}, "adaptive port must be 0-65535"},
		{"adaptive", Options{Adaptive: Adaptive{MinPercent: 51}}, "adaptive minimum percent must be 0-50"},
		{"adaptive", Options{Adaptive: Adaptive{Interval: -time.Second}}, "adaptive interval must not be negative"},
	} {
		_, err := NewWithOptions(tc.method, pool(1), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewWithOptions(%q, %+v) err = %v, want it to contain %q", tc.method, tc.o, err, tc.want)
		}
	}
}

func TestNoServer(t *testing.T) {
	for _, m := range allMethods {
		t.Run(m, func(t *testing.T) {
			p := mustNew(t, m, nil)
			if _, _, err := p.Pick(&Request{}); !errors.Is(err, ErrNoServer) {
				t.Fatalf("Pick on empty set: err = %v, want ErrNoServer", err)
			}
		})
	}
}

// TestUnavailableNeverPicked: a server that is Down, disabled or draining
// gets no new work from any method, and the others still do.
func TestUnavailableNeverPicked(t *testing.T) {
	states := map[string]func(s *backend.Server){
		"down":     func(s *backend.Server) { s.SetHealth(backend.HealthDown) },
		"disabled": func(s *backend.Server) { s.Configure(backend.Settings{Weight: s.Weight(), Enabled: false}) },
		"draining": func(s *backend.Server) { s.SetDraining(true) },
	}
	for _, m := range allMethods {
		for name, set := range states {
			t.Run(m+"/"+name, func(t *testing.T) {
				servers := pool(5, 3, 1, 1)
				p := mustNew(t, m, servers)
				set(servers[0])
				set(servers[2])
				for k := range 200 {
					s, done, err := p.Pick(&Request{Client: clientAddr(k)})
					if err != nil {
						t.Fatal(err)
					}
					if i := index(servers, s); i == 0 || i == 2 {
						t.Fatalf("pick %d went to %s server %d", k, name, i)
					}
					done(Outcome{})
				}
				set(servers[1])
				set(servers[3])
				if _, _, err := p.Pick(&Request{}); !errors.Is(err, ErrNoServer) {
					t.Fatalf("all %s: err = %v, want ErrNoServer", name, err)
				}
			})
		}
	}
}

func TestLimitHonoured(t *testing.T) {
	for _, m := range allMethods {
		t.Run(m, func(t *testing.T) {
			servers := pool(10, 1, 1)
			servers[0].Configure(backend.Settings{Weight: 10, Limit: 2, Enabled: true})
			servers[1].Configure(backend.Settings{Weight: 1, Limit: 3, Enabled: true})
			servers[2].Configure(backend.Settings{Weight: 1, Limit: 1, Enabled: true})
			p := mustNew(t, m, servers)
			var dones []func(Outcome)
			for k := range 6 {
				_, done, err := p.Pick(&Request{Client: clientAddr(k)})
				if err != nil {
					t.Fatalf("pick %d: %v", k, err)
				}
				dones = append(dones, done)
			}
			for i, lim := range []int64{2, 3, 1} {
				if servers[i].Active() != lim {
					t.Errorf("server %d active %d, want its limit %d", i, servers[i].Active(), lim)
				}
			}
			if _, _, err := p.Pick(&Request{}); !errors.Is(err, ErrNoServer) {
				t.Fatalf("pick with all servers full: err = %v, want ErrNoServer", err)
			}
			dones[0](Outcome{})
			_, done, err := p.Pick(&Request{})
			if err != nil || servers[0].Active()+servers[1].Active()+servers[2].Active() != 6 {
				t.Fatalf("pick after one release: %v", err)
			}
			done(Outcome{})
			for _, d := range dones[1:] {
				d(Outcome{})
			}
			for i := range servers {
				if a := servers[i].Active(); a != 0 {
					t.Errorf("server %d active %d after all done, want 0", i, a)
				}
			}
		})
	}
}

func TestAvoid(t *testing.T) {
	for _, m := range allMethods {
		t.Run(m, func(t *testing.T) {
			servers := pool(5, 1, 1)
			p := mustNew(t, m, servers)
			req := &Request{Avoid: []*backend.Server{servers[0], servers[2]}}
			for k := range 20 {
				req.Client = clientAddr(k)
				s, done, err := p.Pick(req)
				if err != nil || s != servers[1] {
					t.Fatalf("Pick avoiding 0 and 2 = server %d, %v; want 1", index(servers, s), err)
				}
				done(Outcome{})
			}
			req.Avoid = servers
			if _, _, err := p.Pick(req); !errors.Is(err, ErrNoServer) {
				t.Fatalf("Pick avoiding all: err = %v, want ErrNoServer", err)
			}
		})
	}
}

// TestReserve: Reserve honours the limit and not availability, and its
// done func settles the count.
func TestReserve(t *testing.T) {
	for _, m := range allMethods {
		for _, n := range []int{3, 40} {
			t.Run(fmt.Sprintf("%s/%d", m, n), func(t *testing.T) {
				servers := equal(n)
				servers[1].Configure(backend.Settings{Weight: 1, Limit: 1, Enabled: true})
				p := mustNew(t, m, servers).(Reserver)
				servers[1].SetDraining(true)
				done, ok := p.Reserve(servers[1])
				if !ok || servers[1].Active() != 1 {
					t.Fatalf("Reserve on a draining server below its limit: ok=%v active=%d", ok, servers[1].Active())
				}
				if _, ok := p.Reserve(servers[1]); ok {
					t.Fatal("Reserve past the limit succeeded")
				}
				done(Outcome{})
				if servers[1].Active() != 0 {
					t.Fatalf("active %d after done", servers[1].Active())
				}
				stranger := backend.NewServer(backend.Key{VS: 9, Address: "127.0.0.9", Port: 1}, backend.Settings{Weight: 1, Enabled: true})
				done, ok = p.Reserve(stranger)
				if !ok {
					t.Fatal("Reserve of a server outside the picker failed")
				}
				done(Outcome{})
			})
		}
	}
}

func TestRoundRobinExact(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			servers := equal(n)
			p := mustNew(t, "rr", servers)
			got, seq := counts(t, p, servers, 100*n, false)
			for i, c := range got {
				if c != 100 {
					t.Errorf("server %d picked %d times, want 100", i, c)
				}
			}
			for i, s := range seq {
				if s != i%n {
					t.Fatalf("pick %d went to %d, want %d (strict rotation)", i, s, i%n)
				}
			}
		})
	}
}

// TestRoundRobinSkipGivesTurnAway: a down server's turn is not added to its
// neighbour's.
func TestRoundRobinSkipGivesTurnAway(t *testing.T) {
	servers := equal(3)
	servers[1].SetHealth(backend.HealthDown)
	p := mustNew(t, "rr", servers)
	got, _ := counts(t, p, servers, 100, false)
	if got[0] != 50 || got[2] != 50 {
		t.Errorf("with server 1 down: %v, want [50 0 50]", got)
	}
}

func TestWeightedRoundRobinExact(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		rounds  int
	}{
		{[]int{1}, 5},
		{[]int{1, 1}, 10},
		{[]int{5, 1, 1}, 10},
		{[]int{3, 2}, 10},
		{[]int{1000, 500, 250}, 3},
		{[]int{7, 11, 13, 2}, 4},
		{[]int{65535, 65534, 3}, 1}, // period too long for the table: the general path
	} {
		t.Run(fmt.Sprint(tc.weights), func(t *testing.T) {
			servers := pool(tc.weights...)
			p := mustNew(t, "wrr", servers)
			sum := 0
			for _, w := range tc.weights {
				sum += w
			}
			got, _ := counts(t, p, servers, sum*tc.rounds, false)
			for i, w := range tc.weights {
				if got[i] != w*tc.rounds {
					t.Errorf("server %d (weight %d) picked %d times, want %d", i, w, got[i], w*tc.rounds)
				}
			}
		})
	}
}

func TestWeightedRoundRobinSmooth(t *testing.T) {
	servers := pool(5, 1, 1)
	p := mustNew(t, "wrr", servers)
	_, seq := counts(t, p, servers, 7, false)
	// Smooth: the light servers are interleaved, not bunched at the end.
	if want := []int{0, 0, 1, 0, 2, 0, 0}; fmt.Sprint(seq) != fmt.Sprint(want) {
		t.Errorf("sequence %v, want %v", seq, want)
	}
	// In general a server's count never strays more than one pick from its
	// exact share at any point of the sequence.
	servers = pool(4, 3, 2, 1)
	p = mustNew(t, "wrr", servers)
	_, seq = counts(t, p, servers, 100, false)
	seen := make([]int, len(servers))
	for k, s := range seq {
		seen[s]++
		for i, w := range []int{4, 3, 2, 1} {
			exact := float64((k+1)*w) / 10
			if d := float64(seen[i]) - exact; d > 1.0001 || d < -1.0001 {
				t.Fatalf("after %d picks server %d has %d, exact share %.1f: not smooth", k+1, i, seen[i], exact)
			}
		}
	}
}

// TestSmoothTableMatchesSmooth: the precomputed wrr sequence is exactly
// the one the general algorithm produces, for many weight sets.
func TestSmoothTableMatchesSmooth(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 200 {
		n := 1 + r.IntN(12)
		ws := make([]int, n)
		w64 := make([]int64, n)
		for i := range ws {
			ws[i] = 1 + r.IntN(1+r.IntN(40))
			if trial%3 == 0 {
				ws[i] *= 250
			}
			w64[i] = int64(ws[i])
		}
		table := smoothTable(w64)
		if table == nil {
			t.Fatalf("weights %v: no table", ws)
		}
		// The general path over the weights divided by their gcd.
		servers := pool(ws...)
		c := newCore(servers, Options{Rand: seeded(1), Now: time.Now})
		g := int64(0)
		for _, w := range w64 {
			g = gcd(g, w)
		}
		s := newSmooth(n)
		for k := range 2 * len(table) {
			e, ok := s.pick(c, &noRequest, func(_ int, e *entry) int64 { return e.weight / g })
			if !ok {
				t.Fatal("smooth.pick failed")
			}
			e.srv.Release()
			if i := index(servers, e.srv); int32(i) != table[k%len(table)] {
				t.Fatalf("weights %v: pick %d is %d, table says %d", ws, k, i, table[k%len(table)])
			}
		}
	}
	if smoothTable([]int64{65535, 65534, 3}) != nil {
		t.Error("a period above maxTable got a table")
	}
}

func TestWRRFullServerKeepsRatios(t *testing.T) {
	servers := pool(2, 1, 1)
	servers[0].Configure(backend.Settings{Weight: 2, Limit: 1, Enabled: true})
	p := mustNew(t, "wrr", servers)
	// Hold one connection on server 0 so it is full; the others share.
	s, hold, err := p.Pick(&Request{})
	if err != nil || index(servers, s) != 0 {
		t.Fatalf("first pick %v %v, want server 0", index(servers, s), err)
	}
	got, _ := counts(t, p, servers, 100, false)
	if got[0] != 0 || got[1] != 50 || got[2] != 50 {
		t.Errorf("with server 0 full: %v, want [0 50 50]", got)
	}
	hold(Outcome{})
}

// TestFixedFailoverOrder: all traffic to the highest weight; on failure
// the next in weight order (ties by configuration order) takes over; on
// recovery the higher one takes over again.
func TestFixedFailoverOrder(t *testing.T) {
	servers := pool(5, 10, 1, 10, 7)
	p := mustNew(t, "fixed", servers)
	wantOrder := []int{1, 3, 4, 0, 2}
	for k, want := range wantOrder {
		got, _ := counts(t, p, servers, 20, false)
		if got[want] != 20 {
			t.Fatalf("step %d: picks %v, want all 20 on server %d", k, got, want)
		}
		servers[want].SetHealth(backend.HealthDown)
	}
	if _, _, err := p.Pick(&Request{}); !errors.Is(err, ErrNoServer) {
		t.Fatalf("all down: %v", err)
	}
	for _, i := range []int{2, 0, 3, 1} { // recoveries take over in rank order
		servers[i].SetHealth(backend.HealthUp)
		got, _ := counts(t, p, servers, 10, false)
		if got[i] != 10 {
			t.Fatalf("after server %d recovered: picks %v, want all on it", i, got)
		}
	}
	// A full top server overflows to the next one.
	servers[1].Configure(backend.Settings{Weight: 10, Limit: 2, Enabled: true})
	p = mustNew(t, "fixed", servers)
	got, _ := counts(t, p, servers, 5, true)
	if got[1] != 2 || got[3] != 3 {
		t.Errorf("with the top server's limit 2: held %v, want 2 on server 1 and 3 on server 3", got)
	}
}

// TestDLFollowsLatency: with held connections, dl shares them in inverse
// proportion to latency; an unmeasured server counts as the fastest.
func TestDLFollowsLatency(t *testing.T) {
	servers := equal(2)
	for range 20 {
		servers[0].Metrics().ObserveLatency(10 * time.Millisecond)
		servers[1].Metrics().ObserveLatency(50 * time.Millisecond)
	}
	p := mustNew(t, "dl", servers)
	got, _ := counts(t, p, servers, 60, true)
	if got[0] < 49 || got[0] > 51 {
		t.Errorf("held picks %v, want about 50:10 (latency 10 ms vs 50 ms)", got)
	}
	fresh := pool(1, 1)
	fresh[0].Metrics().ObserveLatency(10 * time.Millisecond)
	p = mustNew(t, "dl", fresh)
	got, _ = counts(t, p, fresh, 20, true)
	if got[0] != 10 || got[1] != 10 {
		t.Errorf("unmeasured server: held %v, want 10:10 (counted as fast as the fastest)", got)
	}
}

func TestMetricsLatencyAverage(t *testing.T) {
	s := equal(1)[0]
	m := s.Metrics()
	if m != s.Metrics() {
		t.Fatal("Metrics() returns a different value each call")
	}
	if _, ok := m.Latency(); ok {
		t.Fatal("latency before any sample")
	}
	m.ObserveLatency(80 * time.Millisecond)
	m.ObserveLatency(0) // ignored
	if l, _ := m.Latency(); l != 80*time.Millisecond {
		t.Fatalf("latency after one sample %s", l)
	}
	for range 200 {
		m.ObserveLatency(8 * time.Millisecond)
	}
	if l, _ := m.Latency(); l < 8*time.Millisecond || l > 9*time.Millisecond {
		t.Errorf("latency after 200 samples of 8 ms: %s", l)
	}
	if m.LatencySamples() != 201 {
		t.Errorf("samples %d, want 201", m.LatencySamples())
	}
}

// clientAddr returns a distinct client address for k.
func clientAddr(k int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}), uint16(1024+k%50000))
}
