package balance

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// pool returns servers with the given weights (limit 0).
func pool(weights ...int) []*backend.Server {
	out := make([]*backend.Server, len(weights))
	for i, w := range weights {
		out[i] = backend.NewServer(backend.Key{VS: 1, Address: "127.0.0.1", Port: 8000 + i}, backend.Settings{ID: i + 1, Weight: w, Enabled: true})
	}
	return out
}

func index(servers []*backend.Server, s *backend.Server) int {
	for i, x := range servers {
		if x == s {
			return i
		}
	}
	return -1
}

func mustNew(t testing.TB, method string, servers []*backend.Server) Picker {
	t.Helper()
	p, err := New(method, servers)
	if err != nil {
		t.Fatalf("New(%q): %v", method, err)
	}
	return p
}

// counts makes n picks, releasing each at once unless hold, and returns how
// often each server was chosen and the sequence of indices.
func counts(t *testing.T, p Picker, servers []*backend.Server, n int, hold bool) ([]int, []int) {
	t.Helper()
	got := make([]int, len(servers))
	seq := make([]int, 0, n)
	for range n {
		s, done, err := p.Pick(&Request{})
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		i := index(servers, s)
		got[i]++
		seq = append(seq, i)
		if !hold {
			done()
		}
	}
	return got, seq
}

func TestNewMethods(t *testing.T) {
	for _, tc := range []struct {
		method      string
		implemented bool
		wantErr     bool
	}{
		{"rr", true, false},
		{"wrr", true, false},
		{"lc", true, false},
		{"wlc", true, false},
		{"fixed", false, false},
		{"sh", false, false},
		{"uhash", false, false},
		{"dl", false, false},
		{"adaptive", false, false},
		{"bogus", false, true},
		{"", false, true},
	} {
		t.Run(tc.method, func(t *testing.T) {
			p, err := New(tc.method, pool(1, 1))
			if (err != nil) != tc.wantErr {
				t.Fatalf("New err = %v, want error %v", err, tc.wantErr)
			}
			if Implemented(tc.method) != tc.implemented {
				t.Errorf("Implemented = %v, want %v", !tc.implemented, tc.implemented)
			}
			if err != nil {
				return
			}
			if !tc.implemented {
				if _, ok := p.(*roundRobin); !ok {
					t.Errorf("fallback picker is %T, want round robin", p)
				}
			}
		})
	}
	if got := strings.Join(Methods(), ","); got != "lc,rr,wlc,wrr" {
		t.Errorf("Methods() = %s", got)
	}
}

func TestNoServer(t *testing.T) {
	for _, m := range []string{"rr", "wrr", "lc", "wlc", "sh"} {
		t.Run(m, func(t *testing.T) {
			p := mustNew(t, m, nil)
			if _, _, err := p.Pick(&Request{}); !errors.Is(err, ErrNoServer) {
				t.Fatalf("Pick on empty set: err = %v, want ErrNoServer", err)
			}
		})
	}
}

func TestRoundRobinExact(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			servers := pool(make([]int, n)...)
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
	want := []int{0, 0, 1, 0, 2, 0, 0}
	if fmt.Sprint(seq) != fmt.Sprint(want) {
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

func TestLeastConnPicksLeastLoaded(t *testing.T) {
	servers := pool(1, 1, 1)
	// Load: 5, 2, 4 active connections.
	for i, n := range []int{5, 2, 4} {
		for range n {
			servers[i].Acquire(0)
		}
	}
	p := mustNew(t, "lc", servers)
	var seq []int
	for range 3 {
		s, _, err := p.Pick(&Request{})
		if err != nil {
			t.Fatal(err)
		}
		seq = append(seq, index(servers, s))
	}
	// Server 1 goes 2→3, then 3→4; now it ties with server 2 at 4.
	if seq[0] != 1 || seq[1] != 1 || (seq[2] != 1 && seq[2] != 2) {
		t.Errorf("picks %v, want 1, 1, then 1 or 2", seq)
	}
	if a := servers[1].Active() + servers[2].Active(); a != 9 {
		t.Errorf("active of servers 1+2 = %d, want 9", a)
	}
}

func TestLeastConnEvensOut(t *testing.T) {
	for _, method := range []string{"lc", "wlc"} {
		t.Run(method, func(t *testing.T) {
			servers := pool(1, 1, 1, 1)
			p := mustNew(t, method, servers)
			got, _ := counts(t, p, servers, 40, true)
			for i, c := range got {
				if c != 10 {
					t.Errorf("server %d holds %d connections, want 10", i, c)
				}
			}
		})
	}
}

func TestWeightedLeastConnByWeight(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		n       int
	}{
		{[]int{3, 1}, 40},
		{[]int{1000, 500, 250}, 70},
		{[]int{2, 2, 1}, 50},
	} {
		t.Run(fmt.Sprint(tc.weights), func(t *testing.T) {
			servers := pool(tc.weights...)
			p := mustNew(t, "wlc", servers)
			got, _ := counts(t, p, servers, tc.n, true)
			sum := 0
			for _, w := range tc.weights {
				sum += w
			}
			for i, w := range tc.weights {
				if want := tc.n * w / sum; got[i] != want {
					t.Errorf("server %d (weight %d) holds %d, want %d", i, w, got[i], want)
				}
			}
		})
	}
	// The first pick of an idle pool goes to the heaviest server.
	servers := pool(1, 5, 2)
	s, _, _ := mustNew(t, "wlc", servers).Pick(&Request{})
	if index(servers, s) != 1 {
		t.Errorf("first wlc pick = server %d, want 1 (heaviest)", index(servers, s))
	}
}

func TestLimitHonoured(t *testing.T) {
	for _, method := range []string{"rr", "wrr", "lc", "wlc", "fixed"} {
		t.Run(method, func(t *testing.T) {
			servers := pool(10, 1, 1)
			servers[0].Configure(backend.Settings{Weight: 10, Limit: 2, Enabled: true})
			servers[1].Configure(backend.Settings{Weight: 1, Limit: 3, Enabled: true})
			servers[2].Configure(backend.Settings{Weight: 1, Limit: 1, Enabled: true})
			p := mustNew(t, method, servers)
			var dones []func()
			for range 6 {
				_, done, err := p.Pick(&Request{})
				if err != nil {
					t.Fatalf("pick %d: %v", len(dones), err)
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
			dones[0]()
			s, done, err := p.Pick(&Request{})
			if err != nil || servers[0].Active()+servers[1].Active()+servers[2].Active() != 6 {
				t.Fatalf("pick after one release: %v, %v", s, err)
			}
			done()
			for _, d := range dones[1:] {
				d()
			}
			for i := range servers {
				if a := servers[i].Active(); a != 0 {
					t.Errorf("server %d active %d after all done, want 0", i, a)
				}
			}
		})
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
	hold()
}

func TestTieBreakCoversAllTied(t *testing.T) {
	for _, method := range []string{"lc", "wlc"} {
		t.Run(method, func(t *testing.T) {
			servers := pool(1, 1, 1, 1, 1)
			p := mustNew(t, method, servers)
			// Released at once, so every pick sees a 5-way tie.
			got, _ := counts(t, p, servers, 2000, false)
			for i, c := range got {
				// Expected 400 each; the bound is > 10 standard deviations.
				if c < 200 || c > 600 {
					t.Errorf("server %d chosen %d of 2000 times, want about 400", i, c)
				}
			}
		})
	}
}

func TestTieBreakUniformWithInjectedRandom(t *testing.T) {
	// With an injected source, each possible draw over a 3-way tie picks a
	// different server: every tied server is reachable with equal odds.
	servers := pool(1, 1, 1, 1)
	servers[2].Acquire(0) // not tied: busier
	es := make([]entry, len(servers))
	for i, s := range servers {
		es[i] = entry{srv: s, weight: 1}
	}
	wins := make([]int, len(servers))
	for draw := range 3 {
		var asked []int
		p := &leastConn{es: es, randN: func(n int) int { asked = append(asked, n); return draw }}
		s, done, err := p.Pick(&Request{})
		if err != nil {
			t.Fatal(err)
		}
		done()
		if fmt.Sprint(asked) != "[3]" {
			t.Fatalf("random source asked for %v, want one draw over 3 ties", asked)
		}
		wins[index(servers, s)]++
	}
	if fmt.Sprint(wins) != "[1 1 0 1]" {
		t.Errorf("wins over all draws %v, want [1 1 0 1]", wins)
	}
}

func TestAvoid(t *testing.T) {
	for _, method := range []string{"rr", "wrr", "lc", "wlc", "dl"} {
		t.Run(method, func(t *testing.T) {
			servers := pool(5, 1, 1)
			p := mustNew(t, method, servers)
			req := &Request{Avoid: []*backend.Server{servers[0], servers[2]}}
			for range 20 {
				s, done, err := p.Pick(req)
				if err != nil || s != servers[1] {
					t.Fatalf("Pick avoiding 0 and 2 = server %d, %v; want 1", index(servers, s), err)
				}
				done()
			}
			req.Avoid = servers
			if _, _, err := p.Pick(req); !errors.Is(err, ErrNoServer) {
				t.Fatalf("Pick avoiding all: err = %v, want ErrNoServer", err)
			}
		})
	}
}
