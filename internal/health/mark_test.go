package health

import (
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// TestSyncPlanMarks syncs with the packet marks of a network plan: each
// check carries its service's mark (a SubVS without one its parent's), a
// Sync with the same marks keeps every check, a changed mark of a
// service or of a SubVS restarts the checks of that service's tree alone,
// and Sync (no marks) takes them off.
func TestSyncPlanMarks(t *testing.T) {
	// Nothing listens: the checks' outcome does not matter here, the
	// specs they run with do. The interval is long: no check is repeated.
	t1, t2, t3 := closedTarget(t, "127.0.0.71"), closedTarget(t, "127.0.0.72"), closedTarget(t, "127.0.0.73")
	m := newMonitor(t, Options{})
	parent := config.VirtualService{ID: 2, Address: "127.0.1.1", Port: 1002, Type: "http", SubVSs: []config.VirtualService{
		{ID: 21, NickName: "a", HealthCheck: config.HealthCheck{Type: TypeTCP}, RealServers: []config.RealServer{rsOf(211, t2)}},
		{ID: 22, NickName: "b", HealthCheck: config.HealthCheck{Type: TypeTCP}, RealServers: []config.RealServer{rsOf(221, t3)}},
	}}
	one := vsOf(1, TypeTCP, rsOf(11, t1))
	for _, v := range []*config.VirtualService{&one, &parent.SubVSs[0], &parent.SubVSs[1]} {
		v.HealthCheck.Interval = 900
	}
	cfg := cfgOf(t, one, parent)
	keys := []backend.Key{
		{VS: 1, Address: t1.Address, Port: t1.Port},
		{VS: 21, Address: t2.Address, Port: t2.Port},
		{VS: 22, Address: t3.Address, Port: t3.Port},
	}
	tasks := func() []*task {
		m.mu.Lock()
		defer m.mu.Unlock()
		out := make([]*task, len(keys))
		for i, k := range keys {
			out[i] = m.tasks[k]
			if out[i] == nil {
				t.Fatalf("no check of %v", k)
			}
		}
		return out
	}
	marksOf := func(ts []*task) [3]uint32 {
		return [3]uint32{ts[0].spec.Target.Mark, ts[1].spec.Target.Mark, ts[2].spec.Target.Mark}
	}
	planMarks := func(byID map[int]uint32) func(int) uint32 {
		return func(id int) uint32 { return byID[id] }
	}
	var srvs servers
	steps := []struct {
		name  string
		marks func(int) uint32 // nil: Sync
		want  [3]uint32
		kept  [3]bool // which checks go on from the previous step
	}{
		{"first sync: SubVS 21 takes its parent's mark, 22 has its own", planMarks(map[int]uint32{1: 0x10000, 2: 0x10001, 22: 0x10002}),
			[3]uint32{0x10000, 0x10001, 0x10002}, [3]bool{}},
		{"the same marks keep every check", planMarks(map[int]uint32{1: 0x10000, 2: 0x10001, 22: 0x10002}),
			[3]uint32{0x10000, 0x10001, 0x10002}, [3]bool{true, true, true}},
		{"the parent's mark changes: its SubVS without one follows", planMarks(map[int]uint32{1: 0x10000, 2: 0x10003, 22: 0x10002}),
			[3]uint32{0x10000, 0x10003, 0x10002}, [3]bool{true, false, true}},
		{"a SubVS's own mark goes: it takes its parent's", planMarks(map[int]uint32{1: 0x10000, 2: 0x10003}),
			[3]uint32{0x10000, 0x10003, 0x10003}, [3]bool{true, true, false}},
		{"Sync: no marks", nil, [3]uint32{}, [3]bool{}},
		{"Sync again keeps them", nil, [3]uint32{}, [3]bool{true, true, true}},
		{"a mark on the first service alone", planMarks(map[int]uint32{1: 0x10004}),
			[3]uint32{0x10004, 0, 0}, [3]bool{false, true, true}},
	}
	var prev []*task
	for _, st := range steps {
		var err error
		if st.marks == nil {
			err = m.Sync(cfg, srvs.get)
		} else {
			err = m.SyncPlan(cfg, srvs.get, st.marks)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		cur := tasks()
		if got := marksOf(cur); got != st.want {
			t.Errorf("%s: marks %#x, want %#x", st.name, got, st.want)
		}
		for i := range cur {
			if kept := prev != nil && cur[i] == prev[i]; kept != st.kept[i] {
				t.Errorf("%s: check of %v kept=%v, want %v", st.name, keys[i], kept, st.kept[i])
			}
		}
		prev = cur
	}
}
