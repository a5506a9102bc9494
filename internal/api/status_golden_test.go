package api

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenConfig is the fixed configuration of TestStatusGolden. Every
// service listens on PORT (one free port, on several loopback addresses):
// an Up layer-4 service with persistence and a disabled real server, a
// layer-7 service with SubVSs, a UDP service, a disabled service, a
// service whose socket cannot be opened and one without real servers.
// Health checks are off, so nothing in the answer depends on time.
const goldenConfig = `{"virtualServices": [
 {"address": "127.0.0.21", "port": PORT, "protocol": "tcp", "type": "gen", "nickname": "l4", "schedule": "lc",
  "persistence": {"mode": "src", "timeout": 1800}, "healthCheck": {"type": "none"},
  "realServers": [{"address": "127.0.0.31", "port": 8080}, {"address": "127.0.0.32", "port": 8080, "weight": 2000, "enabled": false}]},
 {"address": "127.0.0.22", "port": PORT, "protocol": "tcp", "type": "http", "nickname": "web", "healthCheck": {"type": "none"},
  "subVSs": [
   {"type": "http", "nickname": "a", "healthCheck": {"type": "none"}, "realServers": [{"address": "127.0.0.33", "port": 80}]},
   {"type": "http", "healthCheck": {"type": "none"}, "realServers": [{"address": "127.0.0.34", "port": 80, "enabled": false}]}]},
 {"address": "127.0.0.23", "port": PORT, "protocol": "udp", "type": "gen", "nickname": "dns", "healthCheck": {"type": "none"},
  "realServers": [{"address": "127.0.0.35", "port": 53}]},
 {"address": "127.0.0.24", "port": PORT, "protocol": "tcp", "type": "gen", "enabled": false, "healthCheck": {"type": "none"},
  "realServers": [{"address": "127.0.0.36", "port": 80}]},
 {"address": "192.0.2.1", "port": 8080, "protocol": "tcp", "type": "gen", "nickname": "unbindable", "healthCheck": {"type": "none"},
  "realServers": [{"address": "127.0.0.37", "port": 80}]},
 {"address": "127.0.0.25", "port": PORT, "protocol": "tcp", "type": "gen", "nickname": "empty", "healthCheck": {"type": "none"}}
]}`

// goldenAddrs are the addresses goldenConfig listens on.
var goldenAddrs = []string{"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.24", "127.0.0.25"}

// TestStatusGolden keeps GET /api/v1/status byte for byte: the answer for
// a fixed configuration served by a real data plane, and the answer for a
// fixed status with every field set. Run `go test ./internal/api -run
// StatusGolden -update` after a deliberate change of the answer.
func TestStatusGolden(t *testing.T) {
	t.Run("engine", func(t *testing.T) {
		quiet := slog.New(slog.DiscardHandler)
		eng := dataplane.New(dataplane.Options{Logger: quiet, Budget: admission.ForLimit(4096)})
		t.Cleanup(func() { _ = eng.Close() })
		e := newStatusEnv(t, eng, Options{Status: eng})
		port := commonFreePort(t, goldenAddrs)
		e.must(req{method: "PUT", path: "/api/v1/config", body: strings.ReplaceAll(goldenConfig, "PORT", strconv.Itoa(port))}, http.StatusOK)
		body := e.must(req{method: "GET", path: "/api/v1/status"}, http.StatusOK).body
		checkGolden(t, "status-engine.golden", bytes.ReplaceAll(body, []byte(strconv.Itoa(port)), []byte("PORT")))
	})
	t.Run("every field", func(t *testing.T) {
		e := newStatusEnv(t, nil, Options{Status: fixedSource{vs: everyField(), limits: fixedLimits()}})
		body := e.must(req{method: "GET", path: "/api/v1/status"}, http.StatusOK).body
		checkGolden(t, "status-fields.golden", body)
	})
	t.Run("no data plane", func(t *testing.T) {
		e := newStatusEnv(t, nil, Options{})
		body := e.must(req{method: "GET", path: "/api/v1/status"}, http.StatusOK).body
		checkGolden(t, "status-none.golden", body)
	})
}

// newStatusEnv is newEnv with a data plane (nil for none) and the status
// options of o.
func newStatusEnv(t *testing.T, rt control.Runtime, o Options) *env {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctl, err := control.New(st, rt, quiet)
	if err != nil {
		t.Fatal(err)
	}
	auth := admin.New(st, admin.Options{BcryptCost: bcrypt.MinCost})
	if _, err := auth.Bootstrap(pw); err != nil {
		t.Fatal(err)
	}
	o.Control, o.Auth, o.History, o.Logger = ctl, auth, st, quiet
	e := &env{t: t, srv: httptest.NewServer(New(o).Handler()), st: st, ctl: ctl, auth: auth}
	t.Cleanup(func() {
		e.srv.Close()
		_ = st.Close()
	})
	return e
}

// commonFreePort returns a port free for TCP and UDP on every address.
func commonFreePort(t *testing.T, addrs []string) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", net.JoinHostPort(addrs[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if portFree(addrs, port) {
			return port
		}
	}
	t.Fatal("no port free on every address")
	return 0
}

// portFree reports whether port is free for TCP and UDP on every address.
func portFree(addrs []string, port int) bool {
	for _, a := range addrs {
		hp := net.JoinHostPort(a, strconv.Itoa(port))
		ln, err := net.Listen("tcp", hp)
		if err != nil {
			return false
		}
		_ = ln.Close()
		pc, err := net.ListenPacket("udp", hp)
		if err != nil {
			return false
		}
		_ = pc.Close()
	}
	return true
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the answer differs from %s (run with -update if the change is deliberate):\n%s", path, got)
	}
}

// fixedSource is a status.Source with fixed answers.
type fixedSource struct {
	vs     []status.VS
	limits status.Limits
}

func (f fixedSource) Status() []status.VS            { return f.vs }
func (f fixedSource) Limits() status.Limits          { return f.limits }
func (f fixedSource) Events(int, int) []health.Event { return []health.Event{} }

// fixedLimits are limits with every field set.
func fixedLimits() status.Limits {
	return status.Limits{Budget: admission.Budget{Limit: 4096, Reserved: 512, UDPSessions: 1792, TCPConns: 896},
		DefaultServiceConns: 448, DefaultServiceSessions: 896, Conns: 12, ConnsRefused: 3, UDPSessions: 7}
}

// everyField is a status with every field of every type set, and every
// service and real-server state.
func everyField() []status.VS {
	at := time.Date(2026, 12, 7, 20, 15, 30, 123456789, time.UTC)
	rates := backend.Rates{ConnsPerSec: 1.5, BytesInPerSec: 1024.25, BytesOutPerSec: 4096.75}
	up := status.RS{ID: 11, Address: "10.0.0.11", Port: 8080, Weight: 1000, Enabled: true, State: status.Enabled,
		Health: status.Up, ActiveConns: 2, TotalConns: 40, BytesIn: 4000, BytesOut: 16000, Failures: 1,
		Rates: rates, Status: status.Up, Reason: "http 10.0.0.11:8080: 200 OK", LastCheck: at, Latency: 1500 * time.Microsecond}
	down := status.RS{ID: 12, Address: "10.0.0.12", Port: 8080, Weight: 500, Enabled: true, State: status.Down,
		Health: status.Down, Failures: 7, Status: status.Down,
		Reason: "http 10.0.0.12:8080: connection refused after 2 retries", LastCheck: at, Latency: 250 * time.Microsecond}
	off := status.RS{ID: 13, Address: "10.0.0.13", Port: 8080, Weight: 1000, State: status.Disabled,
		Health: status.Unknown, Status: status.Draining, Reason: "disabled; draining until the drain time ends"}
	unknown := status.RS{ID: 14, Address: "10.0.0.14", Port: 8080, Weight: 1000, Enabled: true, State: status.Enabled,
		Health: status.Unknown, Status: status.Unknown}
	disabled := status.RS{ID: 15, Address: "10.0.0.15", Port: 8080, Weight: 1000, State: status.Disabled,
		Health: status.Unknown, Status: status.Disabled}
	return []status.VS{
		{ID: 1, Address: "192.0.2.10", Port: 443, Protocol: "tcp", State: status.Up, Reason: "a note; a warning", Warnings: []string{"a warning"},
			Sockets:     []status.Socket{{Address: "192.0.2.10:443", Listening: true}, {Address: "192.0.2.10:8443", Error: "bind: address already in use"}},
			ActiveConns: 3, TotalConns: 1000, BytesIn: 123456, BytesOut: 654321, Errors: 2, Rates: rates,
			LimitHits:   status.LimitHits{MaxConns: 1, ConnsPerSec: 2, Bandwidth: 3, Throughput: 4, Sessions: 5, GlobalConns: 6, Abuse: 7},
			RealServers: []status.RS{up, down, off}, Check: "http", Health: status.Up, HealthReason: "2 of 3 real servers Up",
			Persistence: &persist.Stats{VS: 1, Entries: 5, Capacity: 100000, ApproxBytes: 640, Hits: 9, Misses: 4, Stores: 5, Evictions: 1, Expired: 2},
			L7: &status.L7{Requests: 100, ActiveRequests: 1, RequestRate: 2.5, SubVSs: []status.SubVS{
				{ID: 2, NickName: "api", Requests: 60, ActiveRequests: 1, Health: status.Up, RealServers: []status.RS{unknown}},
				{ID: 3, Requests: 40, Health: status.Sorry, RealServers: []status.RS{}},
			}}},
		{ID: 4, Address: "192.0.2.11", Port: 53, Protocol: "udp", State: status.Down, Reason: "every enabled real server is Down",
			Sockets: []status.Socket{{Address: "192.0.2.11:53", Listening: true}}, RealServers: []status.RS{down},
			Check: "dns", Health: status.Down, HealthReason: "critical real server 12 (10.0.0.12:8080) is Down"},
		{ID: 5, Address: "192.0.2.12", Port: 80, Protocol: "tcp", State: status.Disabled, RealServers: []status.RS{disabled},
			Check: "none", Health: status.Disabled},
		{ID: 6, Address: "192.0.2.13", Port: 80, Protocol: "tcp", State: status.NotServed, Reason: `service type "log" is not served`,
			RealServers: []status.RS{}, Check: "tcp", Health: status.Unchecked},
	}
}
