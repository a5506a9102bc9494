package l7

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// outcomes records what the pickers' done funcs report (Options.Observe),
// per real server: what passive health checks are told.
type outcomes struct {
	mu    sync.Mutex
	fails map[backend.Key][]string
	oks   map[backend.Key]int
}

func newOutcomes() *outcomes {
	return &outcomes{fails: map[backend.Key][]string{}, oks: map[backend.Key]int{}}
}

func (o *outcomes) observe(srv *backend.Server, out balance.Outcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if out.Err != nil {
		o.fails[srv.Key()] = append(o.fails[srv.Key()], out.Err.Error())
		return
	}
	if out.Latency <= 0 {
		panic("a success without latency was reported")
	}
	o.oks[srv.Key()]++
}

func (o *outcomes) get(k backend.Key) (fails []string, oks int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.fails[k]...), o.oks[k]
}

// closingServer answers every request by closing the connection without a
// response byte.
func closingServer(t *testing.T, ip string) *realServer {
	return startReal(t, "closer", ip, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = c.Close()
		}
	}), nil)
}

// dualVS serves an http2 service (TLS offload) scheduled by fixed over the
// real servers first (weight 2: always tried first) and second (weight
// 1), with pickers reporting to o. HTTP/1.1 and HTTP/2 clients reach the
// same service.
func dualVS(t *testing.T, o *outcomes, first, second string) *fixture {
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "h2.example.com", "127.0.0.2"))
	h1, p1, _ := net.SplitHostPort(first)
	h2, p2, _ := net.SplitHostPort(second)
	return startVSOpts(t, fmt.Sprintf(`
certificates:
%s
virtualServices:
- address: 127.0.0.2
  port: %d
  type: http2
  schedule: fixed
  tls: {offload: true, certificates: [c]}
  http: {retries: 2}
  realServers: [{address: %s, port: %s, weight: 2}, {address: %s, port: %s, weight: 1}]
`, certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2"), h1, p1, h2, p2), balance.Options{Observe: o.observe})
}

// protoClient returns a client of f speaking HTTP/1.1 or HTTP/2 over TLS.
func protoClient(t *testing.T, f *fixture, proto string) *http.Client {
	if proto == "h2" {
		return h2Client(t, f, 20*time.Second)
	}
	tc := &tls.Config{InsecureSkipVerify: true}
	tc.NextProtos = []string{"http/1.1"}
	return f.client(tc)
}

// TestRetryIsProtocolNeutral: a request that fails on the first real
// server (it refuses the connection, or closes it without a response) is
// retried on the next the same way over HTTP/1.1 and HTTP/2: the same
// answer, the same failure counters, the same outcomes reported to the
// pickers (what passive health checks see), and no slot left reserved.
func TestRetryIsProtocolNeutral(t *testing.T) {
	good := startReal(t, "good", "127.0.0.4", 0, nil, nil)
	closer := closingServer(t, "127.0.0.3")
	dead := fmt.Sprintf("127.0.0.5:%d", testkit.FreePort(t, "127.0.0.5"))
	for _, tc := range []struct {
		name  string
		first string
		fail  string // the failure reported on the first server
	}{
		{"connect refused", dead, "connect to real server"},
		{"no response", closer.addr, errNoResponse.Error()},
	} {
		type result struct {
			status, failsFirst, failsGood int
			reported                      []string
			oksFirst, oksGood             int
		}
		got := map[string]result{}
		for _, proto := range []string{"http/1.1", "h2"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				o := newOutcomes()
				f := dualVS(t, o, tc.first, good.addr)
				id := f.cfg.VirtualServices[0].ID
				fh, fp, _ := net.SplitHostPort(tc.first)
				gh, gp, _ := net.SplitHostPort(good.addr)
				first, second := f.server(id, fh, atoi(fp)), f.server(id, gh, atoi(gp))
				resp, err := protoClient(t, f, proto).Get("https://h2.example.com/x")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if wantProto := map[string]int{"http/1.1": 1, "h2": 2}[proto]; resp.ProtoMajor != wantProto {
					t.Fatalf("answered over HTTP/%d, want %d", resp.ProtoMajor, wantProto)
				}
				if !strings.Contains(string(body), `"good"`) {
					t.Errorf("body %q, want the good server's echo", body)
				}
				waitFor(t, "the slots released", func() bool { return first.Active() == 0 && second.Active() == 0 })
				fails, oksFirst := o.get(first.Key())
				_, oksGood := o.get(second.Key())
				for _, r := range fails {
					if !strings.Contains(r, tc.fail) {
						t.Errorf("reported failure %q, want one about %q", r, tc.fail)
					}
				}
				got[proto] = result{status: resp.StatusCode, failsFirst: int(first.Failures()), failsGood: int(second.Failures()),
					reported: fails, oksFirst: oksFirst, oksGood: oksGood}
			})
		}
		h1r, h2r := got["http/1.1"], got["h2"]
		want := result{status: 200, failsFirst: 1, failsGood: 0, oksFirst: 0, oksGood: 1}
		for proto, r := range got {
			if r.status != want.status || r.failsFirst != want.failsFirst || r.failsGood != want.failsGood ||
				len(r.reported) != 1 || r.oksFirst != want.oksFirst || r.oksGood != want.oksGood {
				t.Errorf("%s over %s: %+v; want status 200, one failure counted and reported on the first server, one success on the second", tc.name, proto, r)
			}
		}
		if fmt.Sprint(h1r) != fmt.Sprint(h2r) {
			t.Errorf("%s: HTTP/1.1 %+v, HTTP/2 %+v: the protocols retried differently", tc.name, h1r, h2r)
		}
	}
}

// TestL7FailureReachesPassiveHealth: with passive health checks on, the
// failures of layer-7 attempts, reported through the picker's done func,
// take a real server Down before its active check would (the server
// accepts connections, so its TCP check passes), for both protocols.
func TestL7FailureReachesPassiveHealth(t *testing.T) {
	good := startReal(t, "good", "127.0.0.4", 0, nil, nil)
	closer := closingServer(t, "127.0.0.3")
	for _, proto := range []string{"http/1.1", "h2"} {
		t.Run(proto, func(t *testing.T) {
			var mon *health.Monitor
			var mu sync.Mutex
			var downs []string
			o := newOutcomes()
			// What the data plane installs (runtime's passiveHook): the
			// outcomes go to the monitor.
			passive := func(srv *backend.Server, out balance.Outcome) {
				o.observe(srv, out)
				if out.Err != nil {
					mon.ReportFailure(srv.Key(), out.Err.Error())
					return
				}
				mon.ReportSuccess(srv.Key())
			}
			mon = health.New(health.Options{Unit: 20 * time.Millisecond, PassiveFailures: 2, Logger: testLogger(),
				OnChange: func(k backend.Key, h backend.Health, reason string) {
					mu.Lock()
					defer mu.Unlock()
					if h == backend.HealthDown {
						downs = append(downs, k.String()+": "+reason)
					}
				}})
			t.Cleanup(func() { _ = mon.Close() })
			f := dualVSPassive(t, passive, closer.addr, good.addr)
			id := f.cfg.VirtualServices[0].ID
			ch, cp, _ := net.SplitHostPort(closer.addr)
			first := f.server(id, ch, atoi(cp))
			if err := mon.Sync(f.cfg, f.reg.Get); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the closing server Up by its TCP check", func() bool { return first.Health() == backend.HealthUp })
			c := protoClient(t, f, proto)
			for i := range 2 {
				resp, err := c.Get(fmt.Sprintf("https://h2.example.com/%d", i))
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("GET %d: %d, want 200 from the retry", i, resp.StatusCode)
				}
			}
			want := first.Key().String() + ": passive: 2 consecutive failures on live traffic, last: " + errNoResponse.Error()
			waitFor(t, "the closing server Down by passive checks", func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, d := range downs {
					if d == want {
						return true
					}
				}
				return false
			})
		})
	}
}

// dualVSPassive is dualVS with a health check, every request scheduled
// (HTTP/1.1 connections are not pinned to the server that answered) and
// the pickers' outcomes going to observe.
func dualVSPassive(t *testing.T, observe func(*backend.Server, balance.Outcome), first, second string) *fixture {
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "h2.example.com", "127.0.0.2"))
	h1, p1, _ := net.SplitHostPort(first)
	h2, p2, _ := net.SplitHostPort(second)
	return startVSOpts(t, fmt.Sprintf(`
certificates:
%s
options: {alwaysPersist: "yes", health: {passiveFailures: 2}}
virtualServices:
- address: 127.0.0.2
  port: %d
  type: http2
  schedule: fixed
  healthCheck: {type: tcp}
  tls: {offload: true, certificates: [c]}
  realServers: [{address: %s, port: %s, weight: 2}, {address: %s, port: %s, weight: 1}]
`, certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2"), h1, p1, h2, p2), balance.Options{Observe: observe})
}
