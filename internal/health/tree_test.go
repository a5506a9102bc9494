package health

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestSameCheckCoversEveryField changes each field of config.HealthCheck
// in turn: the comparison that decides whether a service's plan is kept
// (config.SameService) must see every one, or a changed check would keep
// its old plan.
func TestSameCheckCoversEveryField(t *testing.T) {
	var a config.HealthCheck
	sameCheck := func(a, b *config.HealthCheck) bool {
		return config.SameService(&config.VirtualService{HealthCheck: *a}, &config.VirtualService{HealthCheck: *b})
	}
	if !sameCheck(&a, &a) {
		t.Fatal("a check differs from itself")
	}
	typ := reflect.TypeOf(a)
	for i := range typ.NumField() {
		f := typ.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			var b config.HealthCheck
			v := reflect.ValueOf(&b).Elem().Field(i)
			switch v.Kind() {
			case reflect.String:
				v.SetString("x")
			case reflect.Int:
				v.SetInt(1)
			case reflect.Bool:
				v.SetBool(true)
			case reflect.Map:
				v.Set(reflect.ValueOf(map[string]string{"X-A": "b"}))
			case reflect.Slice:
				v.Set(reflect.ValueOf([]int{200}))
			default:
				t.Fatalf("field %s of kind %s: teach sameCheck and this test about it", f.Name, v.Kind())
			}
			if sameCheck(&a, &b) {
				t.Errorf("a change of %s is not seen", f.Name)
			}
			kept := config.CloneService(&config.VirtualService{HealthCheck: b})
			if !config.SameService(kept, &config.VirtualService{HealthCheck: b}) {
				t.Errorf("a check with %s set differs from itself", f.Name)
			}
		})
	}
}

// TestSyncIncremental syncs a configuration where one service is kept
// (only a weight changed), one changed its check, one was removed, one
// added, and the order changed: the kept service keeps its checks and
// takes the data plane's new servers, the removed one's checks stop, the
// statuses follow the new order, and passive reports reach the new
// service's checks alone.
func TestSyncIncremental(t *testing.T) {
	s1, s2 := startTCP(t, "127.0.0.61"), startTCP(t, "127.0.0.62")
	t1, t2 := targetOf(s1), targetOf(s2)
	m := newMonitor(t, Options{Unit: 50 * time.Millisecond, PassiveFailures: 2})
	var srvs, srvs2 servers
	key := func(vs int, tg Target) backend.Key { return backend.Key{VS: vs, Address: tg.Address, Port: tg.Port} }
	taskOf := func(k backend.Key) *task {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.tasks[k]
	}
	stopped := func(t *task) bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return t.stopped
	}
	sizes := func() (tasks, servers int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.tasks), len(m.servers)
	}

	cfg1 := cfgOf(t,
		vsOf(1, TypeTCP, rsOf(1, t1), rsOf(2, t2)),
		vsOf(2, TypeTCP, rsOf(3, t1)),
		vsOf(3, TypeTCP, rsOf(4, t2)),
	)
	if err := m.Sync(cfg1, srvs.get); err != nil {
		t.Fatal(err)
	}
	for _, w := range [][2]int{{1, 1}, {1, 2}, {2, 3}, {3, 4}} {
		waitRS(t, m, w[0], w[1], StatusUp, 10*time.Second)
	}
	kept1, kept2, gone, changed := taskOf(key(1, t1)), taskOf(key(1, t2)), taskOf(key(2, t1)), taskOf(key(3, t2))

	v3 := vsOf(3, TypeTCP, rsOf(4, t2))
	v3.HealthCheck.Interval = 20
	v1 := vsOf(1, TypeTCP, rsOf(1, t1), rsOf(2, t2))
	v1.RealServers[0].Weight = 7
	cfg2 := cfgOf(t, v3, v1, vsOf(4, TypeTCP, rsOf(5, t1)))
	if err := m.Sync(cfg2, srvs2.get); err != nil {
		t.Fatal(err)
	}

	var ids []int
	for _, v := range m.Status() {
		ids = append(ids, v.ID)
	}
	if !slices.Equal(ids, []int{3, 1, 4}) {
		t.Errorf("services %v, want [3 1 4]", ids)
	}
	if taskOf(key(1, t1)) != kept1 || taskOf(key(1, t2)) != kept2 {
		t.Error("the checks of the kept service were replaced")
	}
	if c := taskOf(key(3, t2)); c == nil || c == changed || !stopped(changed) {
		t.Error("the changed check was not replaced")
	}
	if taskOf(key(2, t1)) != nil || !stopped(gone) {
		t.Error("the removed service's check still runs")
	}
	if n, s := sizes(); n != 4 || s != 4 {
		t.Errorf("%d checks and %d real servers, want 4 and 4", n, s)
	}
	// The changed check keeps its health until its first result.
	if rs, _ := findRS(m, 3, 4); rs.Status != StatusUp {
		t.Errorf("changed check: %s, want Up kept", rs.Status)
	}
	// The data plane's new servers of the kept service get its health.
	testkit.Eventually(t, 5*time.Second, func() bool {
		return srvs2.get(key(1, t1)).Health() == backend.HealthUp && srvs2.get(key(1, t2)).Health() == backend.HealthUp
	}, "health written to the new servers")

	// Passive reports: the removed service's real server is unknown, the
	// added one's is checked.
	waitRS(t, m, 4, 5, StatusUp, 10*time.Second)
	m.ReportFailure(key(2, t1), "refused")
	m.ReportFailure(key(2, t1), "refused")
	m.ReportFailure(key(4, t1), "refused")
	m.ReportFailure(key(4, t1), "refused")
	if rs, _ := findRS(m, 4, 5); rs.Status != StatusDown {
		t.Errorf("added service after 2 passive failures: %s, want Down", rs.Status)
	}
	if rs, _ := findRS(m, 1, 1); rs.Status != StatusUp {
		t.Errorf("kept service: %s, want Up", rs.Status)
	}

	// The same configuration again changes nothing.
	k3 := taskOf(key(3, t2))
	if err := m.Sync(cfg2, srvs2.get); err != nil {
		t.Fatal(err)
	}
	if taskOf(key(3, t2)) != k3 || taskOf(key(1, t1)) != kept1 {
		t.Error("an unchanged configuration replaced checks")
	}
	if n, s := sizes(); n != 4 || s != 4 {
		t.Errorf("%d checks and %d real servers, want 4 and 4", n, s)
	}

	// New global timers change every check.
	cfg3 := cfgOf(t, v3, v1, vsOf(4, TypeTCP, rsOf(5, t1)))
	cfg3.Options.Health.RetryCount = 5
	if err := m.Sync(cfg3, srvs2.get); err != nil {
		t.Fatal(err)
	}
	if taskOf(key(1, t1)) == kept1 || taskOf(key(4, t1)).spec.Timers.RetryCount != 5 {
		t.Error("new global timers kept the old checks")
	}
	if n, s := sizes(); n != 4 || s != 4 {
		t.Errorf("%d checks and %d real servers, want 4 and 4", n, s)
	}
}

// TestSyncRepeatedIDs syncs a configuration whose service IDs repeat (not
// validated): nothing is reused, a real server repeated across the
// services is found, and a later valid configuration replaces it whole.
func TestSyncRepeatedIDs(t *testing.T) {
	s1 := startTCP(t, "127.0.0.63")
	t1 := targetOf(s1)
	other := Target{Address: "127.0.0.64", Port: t1.Port}
	m := newMonitor(t, Options{Unit: 50 * time.Millisecond, PassiveFailures: 2})
	var srvs servers
	sizes := func() (tasks, servers int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.tasks), len(m.servers)
	}
	dup := &config.Config{Options: config.DefaultOptions(), VirtualServices: []config.VirtualService{
		vsOf(1, TypeTCP, rsOf(1, t1)), vsOf(1, TypeTCP, rsOf(2, t1)),
	}}
	if err := m.Sync(dup, srvs.get); err == nil {
		t.Error("a real server repeated across services with one ID was not found")
	}
	twice := &config.Config{Options: config.DefaultOptions(), VirtualServices: []config.VirtualService{
		vsOf(1, TypeTCP, rsOf(1, t1)), vsOf(1, TypeTCP, rsOf(2, other)),
	}}
	if err := m.Sync(twice, srvs.get); err != nil {
		t.Fatal(err)
	}
	if n, s := sizes(); n != 2 || s != 2 {
		t.Errorf("%d checks and %d real servers, want 2 and 2", n, s)
	}
	if err := m.Sync(cfgOf(t, vsOf(1, TypeTCP, rsOf(1, t1))), srvs.get); err != nil {
		t.Fatal(err)
	}
	if n, s := sizes(); n != 1 || s != 1 {
		t.Errorf("%d checks and %d real servers, want 1 and 1", n, s)
	}
	waitRS(t, m, 1, 1, StatusUp, 10*time.Second)
	if st := m.Status(); len(st) != 1 {
		t.Errorf("%d services, want 1", len(st))
	}
}
