package balance

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// sizes exercise both the scan (≤ linearMax) and the tournament tree.
var lcSizes = []int{3, linearMax, linearMax + 1, 100}

func TestLeastConnPicksLeastLoaded(t *testing.T) {
	for _, n := range lcSizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			servers := equal(n)
			// Load: 5 on every server but 1 (2) and 2 (4).
			for i, s := range servers {
				load := 5
				switch i {
				case 1:
					load = 2
				case 2:
					load = 4
				}
				for range load {
					s.Acquire(0)
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
		})
	}
}

func TestLeastConnEvensOut(t *testing.T) {
	for _, method := range []string{"lc", "wlc"} {
		for _, n := range lcSizes {
			t.Run(fmt.Sprintf("%s/%d", method, n), func(t *testing.T) {
				servers := equal(n)
				p := mustNew(t, method, servers)
				got, _ := counts(t, p, servers, 10*n, true)
				for i, c := range got {
					if c != 10 {
						t.Errorf("server %d holds %d connections, want 10", i, c)
					}
				}
			})
		}
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
		{weightsCycle(40, 1, 2, 3, 4), 400}, // tree
	} {
		t.Run(fmt.Sprint(len(tc.weights)), func(t *testing.T) {
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

func weightsCycle(n int, ws ...int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = ws[i%len(ws)]
	}
	return out
}

// TestLeastConnConcurrent: picks and dones from many goroutines at once
// (churn), then held picks from many goroutines: every pick took the least
// loaded server, so the held connections are spread exactly (lc: counts
// differ by at most one; wlc: exactly in proportion to the weights), and
// every count returns to zero.
func TestLeastConnConcurrent(t *testing.T) {
	for _, method := range []string{"lc", "wlc"} {
		for _, n := range []int{8, 100} {
			t.Run(fmt.Sprintf("%s/%d", method, n), func(t *testing.T) {
				ws := weightsCycle(n, 1)
				if method == "wlc" {
					ws = weightsCycle(n, 1, 2, 3, 2)
				}
				servers := pool(ws...)
				p := mustNewOpts(t, method, servers, Options{})
				const workers = 8
				var wg sync.WaitGroup
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r := rand.New(rand.NewPCG(uint64(w), 1))
						var held []func(Outcome)
						for range 2000 {
							_, done, err := p.Pick(&Request{})
							if err != nil {
								t.Error(err)
								return
							}
							held = append(held, done)
							if len(held) > 5 || r.IntN(2) == 0 {
								k := r.IntN(len(held))
								held[k](Outcome{})
								held = append(held[:k], held[k+1:]...)
							}
						}
						for _, d := range held {
							d(Outcome{})
						}
					}()
				}
				wg.Wait()
				for i, s := range servers {
					if s.Active() != 0 {
						t.Fatalf("server %d active %d after churn", i, s.Active())
					}
				}
				sum := 0
				for _, w := range ws {
					sum += w
				}
				total := 4 * sum
				per := total / workers
				var mu sync.Mutex
				var dones []func(Outcome)
				for range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range per {
							_, done, err := p.Pick(&Request{})
							if err != nil {
								t.Error(err)
								return
							}
							mu.Lock()
							dones = append(dones, done)
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				lo, hi := int64(1<<62), int64(0)
				for i, s := range servers {
					a := s.Active()
					if method == "wlc" && a != int64(4*ws[i]) {
						t.Errorf("server %d (weight %d) holds %d, want %d", i, ws[i], a, 4*ws[i])
					}
					lo, hi = min(lo, a), max(hi, a)
				}
				if method == "lc" && hi-lo > 1 {
					t.Errorf("held counts range %d..%d, want a spread of at most 1", lo, hi)
				}
				for _, d := range dones {
					d(Outcome{})
				}
				for i, s := range servers {
					if s.Active() != 0 {
						t.Fatalf("server %d active %d after all done", i, s.Active())
					}
				}
			})
		}
	}
}

// TestLeastConnIndexMatchesScan: after random acquires, releases (some
// behind the picker's back, as an earlier generation's connections would
// be), failures and recoveries, every pick through the index (lc: buckets;
// wlc with unequal weights: tree) returns a server whose live key is
// minimal among the usable ones, once the index has had n picks to
// refresh.
func TestLeastConnIndexMatchesScan(t *testing.T) {
	for _, method := range []string{"lc", "wlc"} {
		t.Run(method, func(t *testing.T) {
			const n = 50
			servers := pool(weightsCycle(n, 1, 3, 2, 5)...)
			p := mustNew(t, method, servers).(*leastConn)
			if _, isTree := p.t.(*tree); p.t == nil || isTree != (method == "wlc") {
				t.Fatalf("index %T for %s", p.t, method)
			}
			r := rand.New(rand.NewPCG(3, 3))
			var held []func(Outcome)
			var outside []*backend.Server // connections of an "earlier generation"
			for step := range 3000 {
				switch r.IntN(7) {
				case 0:
					servers[r.IntN(n)].SetHealth(backend.HealthDown)
				case 1:
					servers[r.IntN(n)].SetHealth(backend.HealthUp)
				case 2: // a connection opened outside the picker
					s := servers[r.IntN(n)]
					s.Acquire(0)
					outside = append(outside, s)
				case 6: // and one of them ending
					if len(outside) > 0 {
						k := r.IntN(len(outside))
						outside[k].Release()
						outside = append(outside[:k], outside[k+1:]...)
					}
				case 3:
					if len(held) > 0 {
						k := r.IntN(len(held))
						held[k](Outcome{})
						held = append(held[:k], held[k+1:]...)
					}
				}
				if step%n == 0 {
					// Let the refresh cursor pass over every leaf once.
					for range n {
						_, d, err := p.Pick(&Request{})
						if err == nil {
							d(Outcome{})
						}
					}
				}
				s, done, err := p.Pick(&Request{})
				if err != nil {
					continue
				}
				// Compare the chosen key before the pick with the minimum.
				i := index(servers, s)
				n0, d0 := s.Active(), p.es[i].weight
				if method == "lc" {
					d0 = 1
				}
				for j, o := range servers {
					if !o.Available() || j == i {
						continue
					}
					n1, d1 := o.Active()+1, p.es[j].weight
					if method == "lc" {
						d1 = 1
					}
					if n1*d0 < n0*d1 && step%n == 0 {
						t.Fatalf("step %d: picked server %d with key %d/%d but server %d has %d/%d", step, i, n0, d0, j, n1, d1)
					}
				}
				held = append(held, done)
			}
			for _, d := range held {
				d(Outcome{})
			}
			for _, s := range outside {
				s.Release()
			}
		})
	}
}

// TestTieBreakUniform: every tied server is reachable with equal odds, in
// the scan and in the tree: with an injected source, each possible draw
// over the k ties picks a different server.
func TestTieBreakUniform(t *testing.T) {
	// wlc with unequal weights uses the tree: weights 1 and 2 alternate,
	// so the 20 servers of weight 2 tie when idle.
	t.Run("wlc-tree", func(t *testing.T) {
		servers := pool(weightsCycle(40, 1, 2)...)
		wins := make([]int, len(servers))
		for draw := range 20 {
			var asked []int
			p := mustNewOpts(t, "wlc", servers, Options{Rand: func(k int) int { asked = append(asked, k); return draw }})
			s, done, err := p.Pick(&Request{})
			if err != nil {
				t.Fatal(err)
			}
			done(Outcome{})
			if fmt.Sprint(asked) != "[20]" {
				t.Fatalf("random source asked for %v, want one draw over 20 ties", asked)
			}
			wins[index(servers, s)]++
		}
		for i, w := range wins {
			if want := i % 2; w != want {
				t.Errorf("server %d (weight %d) won %d draws, want %d", i, 1+i%2, w, want)
			}
		}
	})
	for _, method := range []string{"lc", "wlc", "dl"} {
		for _, n := range []int{4, 40} {
			t.Run(fmt.Sprintf("%s/%d", method, n), func(t *testing.T) {
				servers := equal(n)
				servers[2].Acquire(0) // busier: not tied
				ties := n - 1
				wins := make([]int, n)
				for draw := range ties {
					var asked []int
					p := mustNewOpts(t, method, servers, Options{Rand: func(k int) int { asked = append(asked, k); return draw }})
					s, done, err := p.Pick(&Request{})
					if err != nil {
						t.Fatal(err)
					}
					done(Outcome{})
					if fmt.Sprint(asked) != fmt.Sprintf("[%d]", ties) {
						t.Fatalf("random source asked for %v, want one draw over %d ties", asked, ties)
					}
					wins[index(servers, s)]++
				}
				for i, w := range wins {
					if want := 1; i == 2 {
						if w != 0 {
							t.Errorf("busier server won %d draws", w)
						}
					} else if w != want {
						t.Errorf("server %d won %d of the %d draws, want 1", i, w, ties)
					}
				}
				servers[2].Release()
			})
		}
	}
}

// TestTieBreakCoversAllTied: with the default source, released picks over
// a five-way tie spread over all five.
func TestTieBreakCoversAllTied(t *testing.T) {
	for _, method := range []string{"lc", "wlc", "dl"} {
		t.Run(method, func(t *testing.T) {
			servers := equal(5)
			p := mustNewOpts(t, method, servers, Options{})
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
