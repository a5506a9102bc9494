package persist

import (
	"crypto/tls"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// secret is the per-install secret of the tests.
var secret = []byte("0123456789abcdef-test-install-secret")

// servers returns n enabled real servers of VS vs on 10.0.0.1..n:port.
func servers(vs, n, port int) []*backend.Server {
	out := make([]*backend.Server, n)
	for i := range out {
		out[i] = backend.NewServer(backend.Key{VS: vs, Address: fmt.Sprintf("10.0.0.%d", i+1), Port: port}, backend.Settings{ID: i + 1, Weight: 1, Enabled: true})
	}
	return out
}

// clock is a manual clock.
type clock struct{ t time.Time }

func newClock() *clock                   { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }
func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// build returns a Persister of mode over a round-robin picker.
func build(t testing.TB, table *Table, srvs []*backend.Server, s Settings) *Persister {
	t.Helper()
	inner, err := balance.NewWithOptions("rr", srvs, balance.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Secret == nil {
		s.Secret = secret
	}
	p, err := New(inner, srvs, table, s)
	if err != nil {
		t.Fatalf("New(%+v): %v", s, err)
	}
	return p
}

// ip returns a distinct client address for k, with port.
func ip(k int, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, byte(k >> 16), byte(k >> 8), byte(k)}), port)
}

func indexOf(srvs []*backend.Server, s *backend.Server) int {
	for i, x := range srvs {
		if x == s {
			return i
		}
	}
	return -1
}

// tlsState marks a request as received over TLS.
var tlsState = tls.ConnectionState{Version: tls.VersionTLS13}
