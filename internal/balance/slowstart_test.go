package balance

import (
	"fmt"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// share returns the fraction of w picks (held until all are made, then
// released, so least-connection methods see the load) that went to target.
// Keys are distinct per pick for the hashing methods.
func share(t *testing.T, p Picker, target *backend.Server, w int) float64 {
	t.Helper()
	hit := 0
	dones := make([]func(Outcome), 0, w)
	for k := range w {
		s, done, err := p.Pick(&Request{Client: clientAddr(k), HashKey: fmt.Sprintf("/u/%d", k)})
		if err != nil {
			t.Fatal(err)
		}
		if s == target {
			hit++
		}
		dones = append(dones, done)
	}
	for _, d := range dones {
		d(Outcome{})
	}
	return float64(hit) / float64(w)
}

// TestSlowStartRamps: a server that recovers from Down takes a share that
// grows monotonically over the slow-start time, from almost nothing to its
// full share, for every method; the others are untouched by it.
func TestSlowStartRamps(t *testing.T) {
	const slow = 100 * time.Second
	for _, m := range allMethods {
		t.Run(m, func(t *testing.T) {
			clk := newClock()
			servers := pool(3, 2, 1) // server 0 ranks first for fixed
			p := mustNewOpts(t, m, servers, Options{SlowStart: slow, Now: clk.now, Rand: seeded(5)})
			clk.advance(2 * slow) // the initial ramp of the new servers is over
			share(t, p, servers[0], 10)

			servers[0].SetHealth(backend.HealthDown)
			if s := share(t, p, servers[0], 50); s != 0 {
				t.Fatalf("down server got share %.2f", s)
			}
			clk.advance(time.Minute)
			servers[0].SetHealth(backend.HealthUp)

			const w = 3000
			// Noise allowance: the random methods (fixed draws per pick)
			// get a few standard deviations of a w-sample proportion.
			tol := 1.0 / w
			if m == "fixed" {
				tol = 0.04
			}
			var shares []float64
			for step := 0; step <= 10; step++ {
				shares = append(shares, share(t, p, servers[0], w))
				clk.advance(slow / 10)
			}
			full := share(t, p, servers[0], w)
			for k := 1; k < len(shares); k++ {
				if shares[k] < shares[k-1]-tol {
					t.Fatalf("share went down during the ramp: %.3f", shares)
				}
			}
			if shares[0] > full/4 {
				t.Errorf("share right after recovery %.3f, want well below the full %.3f (shares %.3f)", shares[0], full, shares)
			}
			if shares[5] <= shares[0]+tol || shares[10] < full-4*tol-0.02 {
				t.Errorf("share does not grow to full %.3f: %.3f", full, shares)
			}
		})
	}
}

// TestSlowStartAddedServer: a server added by a reload (a new Picker over
// the established servers and a new one) ramps up; the established ones do
// not.
func TestSlowStartAddedServer(t *testing.T) {
	const slow = 60 * time.Second
	clk := newClock()
	old := equal(2)
	p := mustNewOpts(t, "wrr", old, Options{SlowStart: slow, Now: clk.now})
	clk.advance(2 * slow)
	share(t, p, old[0], 4)

	added := pool(1, 1, 1)[2]
	servers := append(old, added)
	p = mustNewOpts(t, "wrr", servers, Options{SlowStart: slow, Now: clk.now})
	first := share(t, p, added, 3000)
	clk.advance(slow / 2)
	mid := share(t, p, added, 3000)
	clk.advance(slow)
	end := share(t, p, added, 3000)
	if !(first < 0.01 && mid > 0.15 && mid < 0.3 && end > 0.33 && end < 0.34) {
		t.Errorf("added server's share %.3f → %.3f → %.3f; want ~0 → ~0.2 → 1/3", first, mid, end)
	}
}

// TestRampFracMonotone checks the ramp itself.
func TestRampFracMonotone(t *testing.T) {
	clk := newClock()
	c := newCore(equal(1), Options{SlowStart: 30 * time.Second, Now: clk.now, Rand: seeded(1)})
	e := &c.es[0]
	prev := int64(0)
	start := clk.now().UnixNano()
	for ms := int64(0); ms <= 40_000; ms += 250 {
		f := c.rampFrac(e, start+ms*int64(time.Millisecond))
		if f < prev || f < 1 || f > rampScale {
			t.Fatalf("at %d ms: fraction %d after %d", ms, f, prev)
		}
		prev = f
	}
	if prev != rampScale {
		t.Errorf("fraction after the ramp %d, want %d", prev, rampScale)
	}
	if _, ok := c.ramping(); !ok {
		t.Error("not ramping at the start")
	}
	clk.advance(31 * time.Second)
	if _, ok := c.ramping(); ok {
		t.Error("still ramping after the slow start")
	}
}

// TestSlowStartOffNoRamp: without slow start a recovered server gets its
// full share at once.
func TestSlowStartOffNoRamp(t *testing.T) {
	servers := equal(2)
	p := mustNew(t, "rr", servers)
	servers[0].SetHealth(backend.HealthDown)
	share(t, p, servers[0], 10)
	servers[0].SetHealth(backend.HealthUp)
	if s := share(t, p, servers[0], 100); s != 0.5 {
		t.Errorf("share after recovery %.2f, want 0.5", s)
	}
}
