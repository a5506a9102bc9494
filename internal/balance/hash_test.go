package balance

import (
	"fmt"
	"math"
	"net/netip"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// assignments maps each of keys clients to the index of its server.
func assignments(t *testing.T, p Picker, servers []*backend.Server, keys int, req func(k int) *Request) []int {
	t.Helper()
	out := make([]int, keys)
	for k := range keys {
		s, done, err := p.Pick(req(k))
		if err != nil {
			t.Fatal(err)
		}
		done(Outcome{})
		out[k] = index(servers, s)
	}
	return out
}

// TestHashMinimalMove: when one of n servers fails, only its keys move
// (at most 1/n + 2% of all keys), each to another server; when it comes
// back they return; the keys are spread evenly.
func TestHashMinimalMove(t *testing.T) {
	const keys = 20000
	reqs := map[string]func(k int) *Request{
		"sh":    func(k int) *Request { return &Request{Client: clientAddr(k)} },
		"uhash": func(k int) *Request { return &Request{HashKey: fmt.Sprintf("/img/%d.png?v=%d", k, k%7)} },
	}
	for method, req := range reqs {
		for _, n := range []int{2, 3, 5, 10, 30} {
			t.Run(fmt.Sprintf("%s/%d", method, n), func(t *testing.T) {
				servers := equal(n)
				p := mustNew(t, method, servers)
				before := assignments(t, p, servers, keys, req)
				share := make([]int, n)
				for _, i := range before {
					share[i]++
				}
				for i, c := range share {
					// Binomial(keys, 1/n): 6 standard deviations.
					exp := float64(keys) / float64(n)
					if math.Abs(float64(c)-exp) > 6*math.Sqrt(exp) {
						t.Errorf("server %d holds %d keys, want about %.0f", i, c, exp)
					}
				}
				failed := n / 2
				servers[failed].SetHealth(backend.HealthDown)
				after := assignments(t, p, servers, keys, req)
				moved := 0
				for k := range keys {
					if after[k] == before[k] {
						continue
					}
					moved++
					if before[k] != failed {
						t.Fatalf("key %d moved from healthy server %d to %d", k, before[k], after[k])
					}
				}
				if limit := (1/float64(n) + 0.02) * keys; float64(moved) > limit {
					t.Errorf("%d of %d keys moved, more than 1/n + 2%% = %.0f", moved, keys, limit)
				}
				if moved != share[failed] {
					t.Errorf("%d keys moved, want exactly the failed server's %d", moved, share[failed])
				}
				servers[failed].SetHealth(backend.HealthUp)
				back := assignments(t, p, servers, keys, req)
				for k := range keys {
					if back[k] != before[k] {
						t.Fatalf("key %d on %d after recovery, was %d before the failure", k, back[k], before[k])
					}
				}
			})
		}
	}
}

// TestHashStableAcrossGenerations: the mapping depends on the servers'
// identities, not on their order or on the Picker: a rebuilt Picker with
// the servers in another order maps every key the same way.
func TestHashStableAcrossGenerations(t *testing.T) {
	servers := equal(7)
	p1 := mustNew(t, "sh", servers)
	rev := make([]*backend.Server, len(servers))
	for i, s := range servers {
		rev[len(servers)-1-i] = s
	}
	p2 := mustNew(t, "sh", rev)
	for k := range 2000 {
		req := &Request{Client: clientAddr(k)}
		a, d1, _ := p1.Pick(req)
		d1(Outcome{})
		b, d2, _ := p2.Pick(req)
		d2(Outcome{})
		if a != b {
			t.Fatalf("key %d: %s in one generation, %s in the other", k, a.Key(), b.Key())
		}
	}
}

// TestHashWeighted: with unequal weights each server's share of the keys
// follows its weight.
func TestHashWeighted(t *testing.T) {
	ws := []int{1, 2, 3, 4}
	servers := pool(ws...)
	p := mustNew(t, "sh", servers)
	const keys = 40000
	got := make([]int, len(ws))
	for _, i := range assignments(t, p, servers, keys, func(k int) *Request { return &Request{Client: clientAddr(k)} }) {
		got[i]++
	}
	for i, w := range ws {
		exp := float64(keys) * float64(w) / 10
		if math.Abs(float64(got[i])-exp) > 6*math.Sqrt(exp) {
			t.Errorf("server %d (weight %d) holds %d keys, want about %.0f", i, w, got[i], exp)
		}
	}
}

// TestSourceHashIgnoresPortAndMapsIPv4: all connections of a client go
// together, and an IPv4-mapped IPv6 address is its IPv4 address.
func TestSourceHashIgnoresPortAndMapsIPv4(t *testing.T) {
	servers := equal(5)
	p := mustNew(t, "sh", servers)
	pick := func(ap netip.AddrPort) *backend.Server {
		s, done, err := p.Pick(&Request{Client: ap})
		if err != nil {
			t.Fatal(err)
		}
		done(Outcome{})
		return s
	}
	for k := range 200 {
		a := clientAddr(k).Addr()
		first := pick(netip.AddrPortFrom(a, 1000))
		if pick(netip.AddrPortFrom(a, 2000)) != first {
			t.Fatalf("client %s: other port, other server", a)
		}
		if pick(netip.AddrPortFrom(netip.AddrFrom16(a.As16()), 3000)) != first {
			t.Fatalf("client %s: mapped form, other server", a)
		}
	}
}

// TestURLHashWithoutKey: without a HashKey, uhash hashes the client address.
func TestURLHashWithoutKey(t *testing.T) {
	servers := equal(5)
	sh := mustNew(t, "sh", servers)
	uh := mustNew(t, "uhash", servers)
	for k := range 500 {
		req := &Request{Client: clientAddr(k)}
		a, d1, _ := sh.Pick(req)
		d1(Outcome{})
		b, d2, _ := uh.Pick(req)
		d2(Outcome{})
		if a != b {
			t.Fatalf("client %d: uhash without key chose %s, sh %s", k, b.Key(), a.Key())
		}
	}
}
