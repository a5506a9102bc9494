package control

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newController(t *testing.T) (*Controller, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	c, err := New(st, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

var alice = Actor{User: "alice", Source: SourceAPI, RemoteAddr: "127.0.0.9"}

func addVS(port int) func(*config.Config) error {
	return func(c *config.Config) error {
		c.VirtualServices = append(c.VirtualServices, config.VirtualService{Address: "127.0.0.2", Port: port,
			RealServers: []config.RealServer{{Address: "127.0.0.3", Port: 9000 + port}}})
		return nil
	}
}

func TestApplyCommitsRevisions(t *testing.T) {
	c, st := newController(t)
	var seen []uint64
	c.Subscribe(func(s *Snapshot) { seen = append(seen, s.Revision) })
	res, err := c.Apply(Change{Actor: alice, Mutate: addVS(80)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Committed || res.Snapshot.Revision != 1 || res.Snapshot.Config.VirtualServices[0].ID != 1 {
		t.Fatalf("result %+v", res)
	}
	if res.Snapshot.Change.User != "alice" || res.Snapshot.Change.Source != "api" || res.Snapshot.Change.RemoteAddr != "127.0.0.9" {
		t.Errorf("change %+v", res.Snapshot.Change)
	}
	if s := res.Snapshot.Change.Summary; s != "+ virtualServices[id=1]; + virtualServices[id=1].realServers[id=1]" {
		t.Errorf("summary %q", s)
	}
	// A change that changes nothing makes no revision.
	res, err = c.Apply(Change{Actor: alice, Mutate: func(*config.Config) error { return nil }})
	if err != nil || res.Committed || res.Snapshot.Revision != 1 {
		t.Errorf("no-op change: %+v %v", res, err)
	}
	// Dry run: a diff, no revision.
	res, err = c.Apply(Change{Actor: alice, Mutate: addVS(81), DryRun: true})
	if err != nil || res.Committed || len(res.Diff) == 0 || c.Current().Revision != 1 {
		t.Errorf("dry run: %+v %v", res, err)
	}
	if len(seen) != 1 || seen[0] != 1 {
		t.Errorf("subscribers saw %v", seen)
	}
	cur, err := st.Current()
	if err != nil || cur.Revision != 1 || !config.Equal(cur.Config, c.Current().Config) {
		t.Errorf("store holds revision %d: %v", cur.Revision, err)
	}
}

func TestApplyRefusals(t *testing.T) {
	c, _ := newController(t)
	if _, err := c.Apply(Change{Actor: alice, Mutate: addVS(80)}); err != nil {
		t.Fatal(err)
	}
	before := c.Current()
	tests := []struct {
		name  string
		ch    Change
		check func(error) bool
	}{
		{"invalid", Change{Mutate: func(c *config.Config) error {
			c.VirtualServices[0].RealServers[0].Port = 70000
			c.VirtualServices[0].Schedule = "nope"
			return nil
		}}, func(err error) bool {
			es, ok := config.IsErrors(err)
			return ok && len(es) == 2 && strings.Contains(es.Error(), "virtualServices[0].realServers[0].port: must be 1-65535, got 70000")
		}},
		{"stale base", Change{Base: 0, CheckBase: true, Mutate: addVS(81)}, func(err error) bool {
			var ce *store.ConflictError
			return errors.As(err, &ce) && ce.Current == 1 && ce.Base == 0
		}},
		{"mutate error", Change{Mutate: func(*config.Config) error { return ErrNotFound }}, func(err error) bool {
			return errors.Is(err, ErrNotFound)
		}},
		{"mutation of a copy only", Change{Mutate: func(c *config.Config) error {
			c.VirtualServices[0].Port = 0 // invalid: must not leak into the current snapshot
			return nil
		}}, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Apply(tt.ch)
			if !tt.check(err) {
				t.Errorf("unexpected error %v", err)
			}
			if after := c.Current(); after != before || after.Config.VirtualServices[0].Port != 80 {
				t.Errorf("snapshot changed by a refused change")
			}
		})
	}
	if _, err := c.Apply(Change{Base: 1, CheckBase: true, Mutate: addVS(81)}); err != nil {
		t.Errorf("change on the current base refused: %v", err)
	}
}

// TestConcurrentChanges checks that changes are serialised: N goroutines
// each add a service; all land, with distinct IDs and consecutive revisions.
func TestConcurrentChanges(t *testing.T) {
	c, st := newController(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := c.Apply(Change{Actor: alice, Mutate: addVS(100 + i)}); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cur := c.Current()
	if cur.Revision != n || len(cur.Config.VirtualServices) != n {
		t.Fatalf("revision %d with %d services", cur.Revision, len(cur.Config.VirtualServices))
	}
	ids := map[int]bool{}
	for _, v := range cur.Config.VirtualServices {
		ids[v.ID] = true
	}
	if len(ids) != n {
		t.Errorf("ids not distinct: %v", ids)
	}
	hist, err := st.History(0, 100)
	if err != nil || len(hist) != n {
		t.Errorf("history %d entries: %v", len(hist), err)
	}
}

func TestSummarize(t *testing.T) {
	a := config.Default()
	b := a.Clone()
	b.Options.SNAT = true
	if got := Summarize(config.Diff(a, b)); got != "~ options.snat: false -> true" {
		t.Errorf("got %q", got)
	}
	if got := Summarize(nil); got != "no changes" {
		t.Errorf("got %q", got)
	}
	for i := 0; i < 30; i++ {
		b.VirtualServices = append(b.VirtualServices, config.VirtualService{ID: i + 1, Address: "127.0.0.1", Port: i + 1})
	}
	got := Summarize(config.Diff(a, b))
	if len(got) > 260 || !strings.Contains(got, "more") {
		t.Errorf("long summary %q", got)
	}
}

// TestIDsNeverReused checks that a deleted service's ID is not given to
// the next new one, even after a restart.
func TestIDsNeverReused(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(st, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{80, 81} {
		if _, err := c.Apply(Change{Mutate: addVS(p)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Apply(Change{Mutate: func(cfg *config.Config) error { cfg.DeleteVirtualService(2); return nil }}); err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	st, err = store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err = New(st, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Apply(Change{Mutate: addVS(82)})
	if err != nil {
		t.Fatal(err)
	}
	if v := res.Snapshot.Config.VirtualServices[1]; v.ID != 3 || v.RealServers[0].ID != 3 {
		t.Errorf("new service got id %d (real server %d), want 3 and 3", v.ID, v.RealServers[0].ID)
	}
}
