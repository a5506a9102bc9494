package health

import (
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// quiet is a logger that drops everything.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// changes records OnChange calls.
type changes struct {
	mu   sync.Mutex
	list []string
}

func (c *changes) record(k backend.Key, h backend.Health, reason string) {
	c.mu.Lock()
	c.list = append(c.list, k.String()+" "+h.String())
	c.mu.Unlock()
}

func (c *changes) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.list...)
}

// newMonitor starts a Monitor closed at the end of the test.
func newMonitor(t *testing.T, o Options) *Monitor {
	if o.Logger == nil {
		o.Logger = quiet
	}
	m := New(o)
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

// servers is the data plane's real-server state, as a test keeps it.
type servers struct {
	mu sync.Mutex
	m  map[backend.Key]*backend.Server
}

func (s *servers) get(k backend.Key) *backend.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[backend.Key]*backend.Server{}
	}
	if s.m[k] == nil {
		s.m[k] = backend.NewServer(k, backend.Settings{Enabled: true})
	}
	return s.m[k]
}

func vsOf(id int, check string, rss ...config.RealServer) config.VirtualService {
	return config.VirtualService{
		ID: id, Address: "127.0.1.1", Port: 1000 + id,
		HealthCheck: config.HealthCheck{Type: check}, RealServers: rss,
	}
}

func rsOf(id int, tg Target) config.RealServer {
	return config.RealServer{ID: id, Address: tg.Address, Port: tg.Port}
}

// validated sets defaults and validates, as the write path does.
func validated(t *testing.T, c *config.Config) *config.Config {
	t.Helper()
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("test configuration is invalid: %v", err)
	}
	return c
}

func cfgOf(t *testing.T, vss ...config.VirtualService) *config.Config {
	return validated(t, &config.Config{Options: config.DefaultOptions(), VirtualServices: vss})
}

func findVS(m *Monitor, id int) (VSStatus, bool) {
	for _, v := range m.Status() {
		if v.ID == id {
			return v, true
		}
	}
	return VSStatus{}, false
}

func findRS(m *Monitor, vs, rs int) (RSStatus, bool) {
	v, _ := findVS(m, vs)
	for _, r := range v.RealServers {
		if r.ID == rs {
			return r, true
		}
	}
	return RSStatus{}, false
}

// waitRS waits until real server rs of vs has status st and returns it.
func waitRS(t *testing.T, m *Monitor, vs, rs int, st string, d time.Duration) RSStatus {
	t.Helper()
	var got RSStatus
	testkit.Eventually(t, d, func() bool {
		got, _ = findRS(m, vs, rs)
		return got.Status == st
	}, "real server "+strconv.Itoa(rs)+" "+st)
	return got
}

func TestDetectionAndRecovery(t *testing.T) {
	// LoadMaster's interval (9) and retries (2) with rise 2, run with a
	// configured second of 50 ms; the timeout is 8 rather than 4 so that a
	// busy machine does not fail a check of a healthy server.
	const unit = 50 * time.Millisecond
	h := startHTTP(t, "127.0.0.20", nil)
	tg := h.target()
	var ch changes
	var srvs servers
	var evMu sync.Mutex
	var hooked []Event
	m := newMonitor(t, Options{Unit: unit, OnChange: ch.record, OnEvent: func(e Event) {
		evMu.Lock()
		hooked = append(hooked, e)
		evMu.Unlock()
	}})
	v := vsOf(1, TypeHTTP, rsOf(10, tg))
	v.HealthCheck.Timeout = 8
	c := cfgOf(t, v)
	c.Options.Health.RiseCount = 2
	if err := m.Sync(c, srvs.get); err != nil {
		t.Fatal(err)
	}
	key := backend.Key{VS: 1, Address: tg.Address, Port: tg.Port}
	rs := waitRS(t, m, 1, 10, StatusUp, 10*time.Second)
	if rs.Reason != "http 200 from "+tg.String()+"/" || rs.Health != "Up" || rs.Target != tg.String() {
		t.Errorf("up status %+v", rs)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return srvs.get(key).Health() == backend.HealthUp }, "backend server Up")

	interval, timeout := 9*unit, 8*unit
	detect := 2*interval + timeout // interval × retries + timeout
	recover := 2 * interval        // rise × interval

	// The server answers 503: Down after 2 retries.
	h.set(503, "")
	start := time.Now()
	rs = waitRS(t, m, 1, 10, StatusDown, 10*detect+5*time.Second)
	t.Logf("503: Down after %v (bound %v)", time.Since(start), detect)
	failedBefore := rs.CheckFailures
	if failedBefore < int64(rs.Failures) || failedBefore < 2 {
		t.Errorf("%d check failures counted, %d consecutive", failedBefore, rs.Failures)
	}
	if want := "http 503 from " + tg.String() + "/ after 2 retries"; rs.Reason != want {
		t.Errorf("reason %q, want %q", rs.Reason, want)
	}
	h.set(200, "ok")
	start = time.Now()
	rs = waitRS(t, m, 1, 10, StatusUp, 10*recover+5*time.Second)
	t.Logf("200 again: Up after %v (bound %v)", time.Since(start), recover)
	if !strings.Contains(rs.Reason, "(2 successes)") {
		t.Errorf("reason %q, want the rise count", rs.Reason)
	}

	// The server stops: Down within interval × retries + timeout.
	addr := h.srv.Addr()
	h.stop()
	start = time.Now()
	rs = waitRS(t, m, 1, 10, StatusDown, 10*detect+5*time.Second)
	t.Logf("stopped: Down after %v (bound %v)", time.Since(start), detect)
	if !strings.Contains(rs.Reason, "connection refused after 2 retries") {
		t.Errorf("reason %q", rs.Reason)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return srvs.get(key).Health() == backend.HealthDown }, "backend server Down")
	if v, _ := findVS(m, 1); v.Status != StatusDown || v.Reason != "all 1 enabled real servers are Down" {
		t.Errorf("service %s %q", v.Status, v.Reason)
	}
	// It comes back: Up within rise × interval.
	h2 := startHTTPOn(t, testkit.ListenAt(t, addr), nil)
	start = time.Now()
	rs = waitRS(t, m, 1, 10, StatusUp, 10*recover+5*time.Second)
	// The count of failed checks is cumulative: both outages, kept once
	// the server is Up again.
	if rs.CheckFailures < failedBefore+2 || rs.Failures != 0 {
		t.Errorf("after two outages: %d check failures (%d after the first), %d consecutive", rs.CheckFailures, failedBefore, rs.Failures)
	}
	t.Logf("restarted: Up after %v (bound %v)", time.Since(start), recover)
	if len(h2.requests()) < 2 {
		t.Errorf("%d checks after the restart, want at least rise = 2", len(h2.requests()))
	}

	// Every transition was reported, in order.
	testkit.Eventually(t, 5*time.Second, func() bool { return len(ch.get()) == 5 }, "OnChange calls")
	want := []string{"Up", "Down", "Up", "Down", "Up"}
	for i, c := range ch.get() {
		if c != key.String()+" "+want[i] {
			t.Errorf("OnChange %d: %q, want %s %s", i, c, key, want[i])
		}
	}
	ev := m.Events(0, 1)
	var rsEv []string
	for _, e := range ev {
		if e.RS == 10 {
			rsEv = append(rsEv, e.From+">"+e.To)
		}
	}
	if got := strings.Join(rsEv, " "); got != "Down>Up Up>Down Down>Up Up>Down Unknown>Up" {
		t.Errorf("events newest first: %s", got)
	}
	if ev[0].Seq <= ev[len(ev)-1].Seq {
		t.Error("events not newest first")
	}
	// OnEvent saw every recorded event, in order.
	testkit.Eventually(t, 5*time.Second, func() bool { evMu.Lock(); defer evMu.Unlock(); return len(hooked) == len(ev) }, "OnEvent calls")
	evMu.Lock()
	defer evMu.Unlock()
	for i, e := range hooked {
		if want := ev[len(ev)-1-i]; e != want {
			t.Errorf("OnEvent %d: %+v, want %+v", i, e, want)
		}
	}
}

func TestSyncKeepsUnchangedChecks(t *testing.T) {
	// A long interval: any check seen after the first is one that Sync
	// started.
	s1, s2 := startTCP(t, "127.0.0.21"), startTCP(t, "127.0.0.22")
	var ch changes
	var srvs servers
	m := newMonitor(t, Options{OnChange: ch.record})
	mk := func(interval int, nick string, weight int, rss ...config.RealServer) *config.Config {
		v := vsOf(1, TypeTCP, rss...)
		v.NickName = nick
		v.HealthCheck.Interval = interval
		for i := range v.RealServers {
			v.RealServers[i].Weight = weight
		}
		return cfgOf(t, v)
	}
	a, b := rsOf(1, targetOf(s1)), rsOf(2, targetOf(s2))
	if err := m.Sync(mk(600, "one", 10, a), srvs.get); err != nil {
		t.Fatal(err)
	}
	first := waitRS(t, m, 1, 1, StatusUp, 10*time.Second)
	if s1.Accepted() != 1 {
		t.Fatalf("%d checks, want 1", s1.Accepted())
	}
	nEvents := len(m.Events(0, 0))

	// Nickname and weight changed, a real server added: the first check
	// keeps its state and is not run again; the new one runs at once.
	if err := m.Sync(mk(600, "two", 20, a, b), srvs.get); err != nil {
		t.Fatal(err)
	}
	if rs, _ := findRS(m, 1, 1); rs.Status != StatusUp || rs.LastCheck != first.LastCheck || rs.Since != first.Since {
		t.Errorf("kept check changed: %+v, was %+v", rs, first)
	}
	waitRS(t, m, 1, 2, StatusUp, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := s1.Accepted(); n != 1 {
		t.Errorf("unchanged check ran again after Sync: %d checks", n)
	}
	for _, e := range m.Events(0, 0)[:len(m.Events(0, 0))-nEvents] {
		if e.RS == 1 {
			t.Errorf("event for the unchanged real server: %+v", e)
		}
	}

	// The interval changed: a fresh check, started at once.
	if err := m.Sync(mk(601, "two", 20, a, b), srvs.get); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return s1.Accepted() == 2 }, "the restarted check")
	testkit.Eventually(t, 10*time.Second, func() bool {
		rs, _ := findRS(m, 1, 1)
		return rs.LastCheck.After(first.LastCheck)
	}, "its result")
	if rs, _ := findRS(m, 1, 1); rs.Status != StatusUp {
		t.Errorf("restarted check: %+v", rs)
	}
	// Its health stayed Up throughout: one transition only, from the start.
	var tr []string
	for _, e := range m.Events(0, 1) {
		if e.RS == 1 {
			tr = append(tr, e.From+">"+e.To)
		}
	}
	if strings.Join(tr, " ") != "Unknown>Up" {
		t.Errorf("transitions of the restarted check: %v", tr)
	}

	// Type none: not checked, health back to Unknown, presumed Up.
	none := mk(601, "two", 20, a, b)
	none.VirtualServices[0].HealthCheck = config.HealthCheck{Type: TypeNone}
	if err := m.Sync(validated(t, none), srvs.get); err != nil {
		t.Fatal(err)
	}
	v, _ := findVS(m, 1)
	if v.Status != StatusUnchecked || v.RealServers[0].Status != StatusUp || v.RealServers[0].Health != "Unknown" ||
		v.RealServers[0].Target != "" {
		t.Errorf("type none: %+v", v)
	}
	k1 := backend.Key{VS: 1, Address: a.Address, Port: a.Port}
	testkit.Eventually(t, 5*time.Second, func() bool { return srvs.get(k1).Health() == backend.HealthUnknown }, "backend health reset to Unknown")
	testkit.Eventually(t, 5*time.Second, func() bool {
		l := ch.get()
		return len(l) > 0 && l[len(l)-1] == k1.String()+" Unknown" || len(l) > 1 && l[len(l)-2] == k1.String()+" Unknown"
	}, "OnChange Unknown")
	// Only Up once per server before that: no false transitions.
	for _, c := range ch.get() {
		if strings.HasSuffix(c, " Down") {
			t.Errorf("false Down: %s", c)
		}
	}

	// Removed: gone from the status.
	if err := m.Sync(cfgOf(t), srvs.get); err != nil {
		t.Fatal(err)
	}
	if len(m.Status()) != 0 {
		t.Errorf("status after removing everything: %+v", m.Status())
	}
}

func TestStatuses(t *testing.T) {
	up1, up2 := startTCP(t, "127.0.0.30"), startTCP(t, "127.0.0.31")
	u1, u2 := targetOf(up1), targetOf(up2)
	d1, d2 := closedTarget(t, "127.0.0.32"), closedTarget(t, "127.0.0.33")
	withPort := func(tg Target, port int) Target { tg.Port = port; return tg }
	off := config.Bool(false)

	critical := rsOf(21, d1)
	critical.Critical = true
	minUp := vsOf(3, TypeTCP, rsOf(31, u1), rsOf(32, d1))
	minUp.HealthCheck.MinUp = 2
	sorry := vsOf(4, TypeTCP, rsOf(41, d1), rsOf(42, d2))
	sorry.SorryServer = &config.Endpoint{Address: "127.0.0.34", Port: 80}
	disabled := vsOf(5, TypeTCP, rsOf(51, u1))
	disabled.Enabled = off
	follower := rsOf(72, withPort(d2, u1.Port)) // its own address is closed: it must not be checked
	follower.Follow = 71
	offRS := rsOf(73, d1)
	offRS.Enabled = off
	checkAddr := rsOf(74, Target{Address: "127.0.0.35", Port: 1})
	checkAddr.CheckAddress = u2.Address
	portOverride := vsOf(9, TypeTCP, rsOf(91, withPort(u2, 1)))
	portOverride.HealthCheck.Port = u2.Port
	parent := config.VirtualService{ID: 8, Address: "127.0.1.1", Port: 1008, Type: "http", SubVSs: []config.VirtualService{
		{ID: 81, NickName: "a", HealthCheck: config.HealthCheck{Type: TypeTCP}, RealServers: []config.RealServer{rsOf(811, d1)}},
		{ID: 82, NickName: "b", HealthCheck: config.HealthCheck{Type: TypeTCP}, RealServers: []config.RealServer{rsOf(821, u1)}},
	}}
	checkAddrVS := vsOf(10, TypeTCP, checkAddr)
	checkAddrVS.HealthCheck.Port = u2.Port

	c := cfgOf(t,
		vsOf(1, TypeTCP, rsOf(11, u1), rsOf(12, d1)),
		vsOf(2, TypeTCP, rsOf(22, u2), critical),
		minUp, sorry, disabled,
		vsOf(6, TypeNone, rsOf(61, d1)),
		vsOf(7, TypeTCP, rsOf(71, u1), follower, offRS),
		parent, portOverride, checkAddrVS,
	)
	var srvs servers
	m := newMonitor(t, Options{Unit: 100 * time.Millisecond})
	if err := m.Sync(c, srvs.get); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		for _, v := range m.Status() {
			for _, r := range v.RealServers {
				if r.Status == StatusUnknown {
					return false
				}
			}
		}
		return true
	}, "every check's first result")
	for _, tc := range []struct {
		vs     int
		status string
		reason string
		rs     map[int]string // id → status
	}{
		{1, StatusUp, "1 of 2 enabled real servers Up", map[int]string{11: StatusUp, 12: StatusDown}},
		{2, StatusDown, "critical real server 21 (" + d1.String() + ") is Down", map[int]string{22: StatusUp, 21: StatusDown}},
		{3, StatusDown, "1 real servers Up, at least 2 needed", map[int]string{31: StatusUp, 32: StatusDown}},
		{4, StatusSorry, "all 2 enabled real servers are Down; sorry server in use", map[int]string{41: StatusDown, 42: StatusDown}},
		{5, StatusDisabled, "", map[int]string{51: StatusDisabled}},
		{6, StatusUnchecked, "check type none: real servers presumed Up", map[int]string{61: StatusUp}},
		{7, StatusUp, "2 of 2 enabled real servers Up", map[int]string{71: StatusUp, 72: StatusUp, 73: StatusDisabled}},
		{8, StatusUp, "1 of 2 SubVSs Up", nil},
		{81, StatusDown, "all 1 enabled real servers are Down", map[int]string{811: StatusDown}},
		{82, StatusUp, "1 of 1 enabled real servers Up", map[int]string{821: StatusUp}},
		{9, StatusUp, "1 of 1 enabled real servers Up", map[int]string{91: StatusUp}},
		{10, StatusUp, "1 of 1 enabled real servers Up", map[int]string{74: StatusUp}},
	} {
		v, ok := findVS(m, tc.vs)
		if !ok {
			t.Errorf("service %d missing", tc.vs)
			continue
		}
		if v.Status != tc.status || v.Reason != tc.reason {
			t.Errorf("service %d: %s %q, want %s %q", tc.vs, v.Status, v.Reason, tc.status, tc.reason)
		}
		for _, r := range v.RealServers {
			if want := tc.rs[r.ID]; r.Status != want {
				t.Errorf("service %d real server %d: %s (%q), want %s", tc.vs, r.ID, r.Status, r.Reason, want)
			}
		}
	}
	if rs, _ := findRS(m, 7, 72); rs.Follows != 71 || !strings.HasPrefix(rs.Reason, "follows real server 71: tcp connect to") ||
		rs.Target != u1.String() {
		t.Errorf("follower: %+v", rs)
	}
	if rs, _ := findRS(m, 1, 12); !strings.HasSuffix(rs.Reason, "connection refused (first check)") {
		t.Errorf("first-check failure reason %q", rs.Reason)
	}
	if v, _ := findVS(m, 81); v.Parent != 8 {
		t.Errorf("SubVS parent %d", v.Parent)
	}
	if rs, _ := findRS(m, 10, 74); rs.Target != u2.String() {
		t.Errorf("check address: target %q, want %q", rs.Target, u2)
	}
	// The follower's backend server takes the leader's health.
	testkit.Eventually(t, 5*time.Second, func() bool {
		return srvs.get(backend.Key{VS: 7, Address: follower.Address, Port: follower.Port}).Health() == backend.HealthUp
	}, "the follower's backend health Up")

	// Draining is the data plane's: shown as it is.
	srvs.get(backend.Key{VS: 1, Address: u1.Address, Port: u1.Port}).SetDraining(true)
	if rs, _ := findRS(m, 1, 11); rs.Status != StatusDraining {
		t.Errorf("draining real server: %s", rs.Status)
	}

	// The follower's leader goes away: everything in service 7 follows.
	up1.Close()
	waitRS(t, m, 7, 72, StatusDown, 20*time.Second)
	if v, _ := findVS(m, 7); v.Status != StatusDown {
		t.Errorf("service 7 with its leader down: %s", v.Status)
	}
	testkit.Eventually(t, 20*time.Second, func() bool { v, _ := findVS(m, 8); return v.Status == StatusDown }, "the parent Down")
	if v, _ := findVS(m, 8); v.Reason != "none of 2 SubVSs is Up" {
		t.Errorf("parent with every SubVS down: %s %q", v.Status, v.Reason)
	}
	var parentEvents int
	for _, e := range m.Events(0, 8) {
		if e.VS != 8 {
			t.Errorf("filter by service returned %+v", e)
		}
		parentEvents++
	}
	if parentEvents == 0 {
		t.Error("no event for the parent service")
	}
}

func TestLeaderOf(t *testing.T) {
	rs := func(id, follow int) *config.RealServer { return &config.RealServer{ID: id, Follow: follow} }
	for _, tc := range []struct {
		name  string
		list  []*config.RealServer
		start int
		want  int
	}{
		{"none", []*config.RealServer{rs(1, 0)}, 1, 1},
		{"direct", []*config.RealServer{rs(1, 2), rs(2, 0)}, 1, 2},
		{"chain", []*config.RealServer{rs(1, 2), rs(2, 3), rs(3, 0)}, 1, 3},
		{"cycle", []*config.RealServer{rs(1, 2), rs(2, 1)}, 1, 1},
		{"cycle further on", []*config.RealServer{rs(1, 2), rs(2, 3), rs(3, 2)}, 1, 1},
		{"missing", []*config.RealServer{rs(1, 9)}, 1, 1},
	} {
		byID := map[int]*config.RealServer{}
		for _, r := range tc.list {
			byID[r.ID] = r
		}
		if got := leaderOf(byID[tc.start], byID); got.ID != tc.want {
			t.Errorf("%s: leader %d, want %d", tc.name, got.ID, tc.want)
		}
	}
}

func TestPassiveChecks(t *testing.T) {
	h := startHTTP(t, "127.0.0.40", nil)
	tg := h.target()
	key := backend.Key{VS: 1, Address: tg.Address, Port: tg.Port}
	c := cfgOf(t, vsOf(1, TypeHTTP, rsOf(1, tg))) // interval 0.45 s, timeout 0.2 s
	var srvs servers

	// Off by default.
	m := newMonitor(t, Options{Unit: 50 * time.Millisecond})
	if err := m.Sync(c, srvs.get); err != nil {
		t.Fatal(err)
	}
	waitRS(t, m, 1, 1, StatusUp, 10*time.Second)
	for range 100 {
		m.ReportFailure(key, "connection refused")
	}
	if rs, _ := findRS(m, 1, 1); rs.Status != StatusUp {
		t.Fatalf("passive checks off, yet %s", rs.Status)
	}

	var ch changes
	m = newMonitor(t, Options{Unit: 50 * time.Millisecond, PassiveFailures: 3, OnChange: ch.record})
	if err := m.Sync(c, srvs.get); err != nil {
		t.Fatal(err)
	}
	waitRS(t, m, 1, 1, StatusUp, 10*time.Second)
	m.ReportFailure(key, "connection refused")
	m.ReportFailure(key, "connection refused")
	m.ReportSuccess(key) // resets the count
	m.ReportFailure(key, "connection refused")
	m.ReportFailure(key, "connection refused")
	m.ReportFailure(backend.Key{VS: 1, Address: "127.0.0.99", Port: 1}, "unknown servers are ignored")
	if rs, _ := findRS(m, 1, 1); rs.Status != StatusUp {
		t.Fatalf("2 consecutive failures of 3: %s", rs.Status)
	}
	m.ReportFailure(key, "http 502")
	rs, _ := findRS(m, 1, 1)
	if rs.Status != StatusDown || rs.Reason != "passive: 3 consecutive failures on live traffic, last: http 502" {
		t.Fatalf("after 3 failures: %s %q", rs.Status, rs.Reason)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return srvs.get(key).Health() == backend.HealthDown }, "backend server Down")
	// The active check still passes: Up again.
	waitRS(t, m, 1, 1, StatusUp, 10*time.Second)
	testkit.Eventually(t, 5*time.Second, func() bool { return len(ch.get()) == 3 }, "OnChange")
	if got := strings.Join(ch.get(), ","); got != key.String()+" Up,"+key.String()+" Down,"+key.String()+" Up" {
		t.Errorf("OnChange calls %s", got)
	}
}

func TestFlapScaled(t *testing.T) {
	if testing.Short() {
		t.Skip("6 s; runs without -short")
	}
	// The flap test scaled by 0.1: a health endpoint alternating
	// 200/503 every 70 ms for 6 s, checked every 0.9 s, rise 2.
	res := runFlap(t, 100*time.Millisecond, 6*time.Second, 2)
	t.Logf("flap (scaled 0.1): %d checks, %d transitions", res.checks, res.transitions)
	// Each transition after the first needs 2 consecutive equal results
	// (retry 2, rise 2), so there are at most 1 + (checks-1)/2.
	if res.transitions > 1+(res.checks-1)/2 {
		t.Errorf("%d transitions in %d checks", res.transitions, res.checks)
	}
	if res.checks < 3 {
		t.Errorf("only %d checks in 6 s at a 0.9 s interval", res.checks)
	}
}

type flapResult struct{ checks, transitions int }

// runFlap checks an endpoint that flips between 200 and 503 every 7 units
// (0.7 s) for d, with LoadMaster's timers and the given rise count.
func runFlap(t testing.TB, unit, d time.Duration, rise int) flapResult {
	h := startHTTP(t, "127.0.0.41", nil)
	begin := time.Now()
	period := 7 * unit / 10
	h.setFlip(func() int {
		if (time.Since(begin)/period)%2 == 0 {
			return 200
		}
		return 503
	})
	tg := h.target()
	o := config.DefaultOptions()
	o.Health.RiseCount = rise
	c := &config.Config{Options: o, VirtualServices: []config.VirtualService{vsOf(1, TypeHTTP, rsOf(1, tg))}}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	m := New(Options{Unit: unit, Logger: quiet})
	defer m.Close()
	if err := m.Sync(c, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	var n int
	for _, e := range m.Events(0, 1) {
		if e.RS == 1 {
			n++
		}
	}
	return flapResult{checks: len(h.requests()), transitions: n}
}

func TestSpreadAcrossInterval(t *testing.T) {
	// 200 real servers added at once: first checks at most 1 ms apart,
	// later ones spread over the second half of the interval.
	s := startTCP(t, "127.0.0.42")
	tg := targetOf(s)
	var rss []config.RealServer
	for i := range 200 {
		rss = append(rss, config.RealServer{ID: i + 1, Address: "127.0.0.42", Port: 1 + i, CheckAddress: tg.Address})
	}
	v := vsOf(1, TypeTCP, rss...)
	v.HealthCheck.Port = tg.Port
	m := newMonitor(t, Options{Unit: 10 * time.Millisecond}) // interval 90 ms
	if err := m.Sync(cfgOf(t, v), nil); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, tk := range m.tasks {
			if tk.checks == 0 {
				return false
			}
		}
		return true
	}, "every first check")
	m.mu.Lock()
	var lo, hi time.Duration
	for _, tk := range m.tasks {
		// Phase of the next check within the interval.
		ph := tk.due % tk.interval
		if lo == 0 || ph < lo {
			lo = ph
		}
		hi = max(hi, ph)
	}
	interval := 90 * time.Millisecond
	m.mu.Unlock()
	if hi-lo < interval/4 {
		t.Errorf("checks bunched: phases within %v of a %v interval", hi-lo, interval)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return s.Accepted() >= 200 }, "200 connections on the server")
}

func TestMaxConcurrent(t *testing.T) {
	tg := silent(t, "127.0.0.43")
	var rss []config.RealServer
	for i := range 10 {
		rss = append(rss, config.RealServer{ID: i + 1, Address: "127.0.0.43", Port: 1 + i, CheckAddress: tg.Address})
	}
	v := vsOf(1, TypeHTTP, rss...)
	v.HealthCheck.Port = tg.Port
	m := newMonitor(t, Options{Unit: 10 * time.Millisecond, MaxConcurrent: 2})
	if err := m.Sync(cfgOf(t, v), nil); err != nil {
		t.Fatal(err)
	}
	peak := 0
	for range 50 {
		m.mu.Lock()
		peak = max(peak, m.inFlight)
		m.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	if peak > 2 {
		t.Errorf("%d checks in flight, limit 2", peak)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		v, _ := findVS(m, 1)
		for _, r := range v.RealServers {
			if r.Status != StatusDown {
				return false
			}
		}
		return true
	}, "every server Down by timeout")
}

func TestSyncErrors(t *testing.T) {
	s := startTCP(t, "127.0.0.44")
	m := newMonitor(t, Options{})
	good := cfgOf(t, vsOf(1, TypeTCP, rsOf(1, targetOf(s))))
	if err := m.Sync(good, nil); err != nil {
		t.Fatal(err)
	}
	waitRS(t, m, 1, 1, StatusUp, 10*time.Second)
	bad := good.Clone()
	bad.VirtualServices[0].HealthCheck = config.HealthCheck{Type: TypeHTTP, Pattern: "(["}
	bad.VirtualServices = append(bad.VirtualServices, vsOf(2, TypeBData, rsOf(2, targetOf(s))))
	err := m.Sync(bad, nil)
	if err == nil {
		t.Fatal("invalid checks accepted")
	}
	for _, want := range []string{"virtualServices[0].healthCheck (real server 0): pattern:", "virtualServices[1].healthCheck (real server 0): send: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if v, _ := findVS(m, 1); v.Check != TypeTCP || len(m.Status()) != 1 {
		t.Errorf("a refused Sync changed the state: %+v", m.Status())
	}
	if err := m.Sync(nil, nil); err == nil {
		t.Error("nil configuration accepted")
	}
	m.Close()
	if err := m.Sync(good, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestEventLog(t *testing.T) {
	l := newEventLog(3)
	if got := l.list(0, 0); len(got) != 0 {
		t.Errorf("empty log: %+v", got)
	}
	for i := range 5 {
		l.add(Event{VS: 1 + i%2, To: strconv.Itoa(i)})
	}
	var got []string
	for _, e := range l.list(0, 0) {
		got = append(got, e.To+"#"+strconv.Itoa(int(e.Seq)))
	}
	if strings.Join(got, " ") != "4#5 3#4 2#3" {
		t.Errorf("all: %v", got)
	}
	if e := l.list(1, 0); len(e) != 1 || e[0].To != "4" {
		t.Errorf("limit 1: %+v", e)
	}
	if e := l.list(0, 2); len(e) != 1 || e[0].To != "3" {
		t.Errorf("vs 2: %+v", e)
	}
	if e := l.list(0, 9); len(e) != 0 {
		t.Errorf("vs 9: %+v", e)
	}
}

func TestSpecFingerprint(t *testing.T) {
	o := config.DefaultOptions()
	base := config.VirtualService{HealthCheck: config.HealthCheck{Type: TypeHTTP, URL: "/", Method: "HEAD",
		Headers: map[string]string{"A": "1", "B": "2"}, Codes: []int{404, 503}}}
	rs := config.RealServer{Address: "127.0.0.60", Port: 80}
	fp := specFor(&o, &base, &rs).fingerprint()
	same := base
	same.HealthCheck.Headers = map[string]string{"B": "2", "A": "1"}
	same.HealthCheck.Codes = []int{503, 404}
	same.HealthCheck.Send = "ignored for http"
	same.NickName = "renamed"
	if specFor(&o, &same, &rs).fingerprint() != fp {
		t.Error("equal checks have different fingerprints")
	}
	type parts struct {
		v *config.VirtualService
		r *config.RealServer
		o *config.Options
	}
	for name, change := range map[string]func(p parts){
		"url":      func(p parts) { p.v.HealthCheck.URL = "/x" },
		"port":     func(p parts) { p.v.HealthCheck.Port = 81 },
		"address":  func(p parts) { p.r.CheckAddress = "127.0.0.61" },
		"interval": func(p parts) { p.o.Health.Interval = 10 },
		"rise":     func(p parts) { p.o.Health.RiseCount = 3 },
		"type":     func(p parts) { p.v.HealthCheck.Type = TypeHTTPS },
		"header":   func(p parts) { p.v.HealthCheck.Headers = nil },
	} {
		v, r, oo := base, rs, o
		change(parts{&v, &r, &oo})
		if specFor(&oo, &v, &r).fingerprint() == fp {
			t.Errorf("changing the %s keeps the fingerprint", name)
		}
	}
	marked := specFor(&o, &base, &rs)
	marked.Target.Mark = 0x10000
	if marked.fingerprint() == fp {
		t.Error("a packet mark keeps the fingerprint")
	}
	if marked.paramsKey() != specFor(&o, &base, &rs).paramsKey() {
		t.Error("a packet mark changes the parameters' key: the checker is no longer shared")
	}
}

func TestDataPlaneHookMayCallMonitor(t *testing.T) {
	// The data plane's health hook runs inside backend.Server.SetHealth;
	// the Monitor calls it without its lock, so the hook may call back.
	s := startTCP(t, "127.0.0.45")
	tg := targetOf(s)
	key := backend.Key{VS: 1, Address: tg.Address, Port: tg.Port}
	reg := backend.NewRegistry()
	srv := reg.Lookup(key, backend.Settings{ID: 1, Weight: 1000, Enabled: true})
	reg.Commit([]*backend.Server{srv})
	var m *Monitor
	hooked := make(chan string, 4)
	reg.SetHealthHook(func(s *backend.Server, from, to backend.Health) {
		v, _ := findVS(m, 1)
		hooked <- from.String() + ">" + to.String() + " " + v.Status
	})
	m = newMonitor(t, Options{})
	if err := m.Sync(cfgOf(t, vsOf(1, TypeTCP, rsOf(1, tg))), reg.Get); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-hooked:
		if got != "Unknown>Up Up" {
			t.Errorf("hook saw %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hook was not called")
	}
}
