package control

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// fakeDataPlane records the configurations it is given and refuses those
// refuse names.
type fakeDataPlane struct {
	mu      sync.Mutex
	refuse  func(*config.Config) error
	running *config.Config
	seen    []*config.Config
}

func (d *fakeDataPlane) Apply(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, cfg)
	if d.refuse != nil {
		if err := d.refuse(cfg); err != nil {
			return err
		}
	}
	d.running = cfg
	return nil
}

func (d *fakeDataPlane) state() (running *config.Config, seen int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running, len(d.seen)
}

// failingCommit is a store whose restores fail at the commit.
type failingCommit struct {
	*store.Store
	err error
}

func (s failingCommit) CommitRestore(uint64, store.Change, *store.PreparedRestore) (store.Revision, *store.RestorePlan, error) {
	return store.Revision{}, nil, s.err
}

// restoreFixture makes a store whose backup holds one service (port 80)
// and users alice and bob, then moves the store on: a second service
// (port 81), and user bob removed. It returns the store and the backup.
func restoreFixture(t *testing.T) (*store.Store, []byte) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := st.PutUser(config.User{Name: u, Role: config.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := New(st, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(Change{Actor: alice, Mutate: addVS(80)}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := st.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(Change{Actor: alice, Mutate: addVS(81)}); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteUser("bob"); err != nil {
		t.Fatal(err)
	}
	return st, buf.Bytes()
}

func userNames(t *testing.T, st *store.Store) []string {
	t.Helper()
	users, err := st.Users()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	slices.Sort(names)
	return names
}

// TestRestoreRefusedByDataPlane restores a backup the data plane refuses:
// nothing is stored (neither the configuration nor the users), and the
// current snapshot is still the one that runs.
func TestRestoreRefusedByDataPlane(t *testing.T) {
	st, backup := restoreFixture(t)
	dp := &fakeDataPlane{}
	c, err := New(st, dp, quiet)
	if err != nil {
		t.Fatal(err)
	}
	before := c.Current()
	refusal := errors.New("port 80 in use")
	dp.refuse = func(cfg *config.Config) error {
		if len(cfg.VirtualServices) == 1 {
			return refusal
		}
		return nil
	}
	snap, _, err := c.RestoreWith(bytes.NewReader(backup), alice, store.RestoreOptions{Accounts: true})
	var rtErr *RuntimeError
	if !errors.As(err, &rtErr) || !errors.Is(err, refusal) || snap != nil {
		t.Fatalf("restore refused by the data plane: snapshot %v, error %v; want a *RuntimeError", snap, err)
	}
	running, seen := dp.state()
	if c.Current() != before || running != before.Config || seen != 2 {
		t.Errorf("current revision %d, data plane runs the current one: %v (%d configurations seen)",
			c.Current().Revision, running == before.Config, seen)
	}
	cur, err := st.Current()
	if err != nil || cur.Revision != before.Revision || len(cur.Config.VirtualServices) != 2 {
		t.Errorf("store at revision %d with %d services (%v), want %d and 2", cur.Revision, len(cur.Config.VirtualServices), err, before.Revision)
	}
	if got := userNames(t, st); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("users %v after a refused restore, want [alice]", got)
	}
	// Restore with the old one (wrapped in Restore) refuses too.
	if _, err := c.Restore(bytes.NewReader(backup), alice); !errors.As(err, &rtErr) {
		t.Errorf("Restore: %v, want a *RuntimeError", err)
	}
}

// TestRestoreCommitFailsRollsBack restores a backup the data plane takes
// but the store cannot commit: the data plane goes back to the current
// configuration and nothing changes.
func TestRestoreCommitFailsRollsBack(t *testing.T) {
	st, backup := restoreFixture(t)
	dp := &fakeDataPlane{}
	full := errors.New("disk full")
	c, err := New(failingCommit{Store: st, err: full}, dp, quiet)
	if err != nil {
		t.Fatal(err)
	}
	before := c.Current()
	if _, _, err := c.RestoreWith(bytes.NewReader(backup), alice, store.RestoreOptions{Accounts: true}); !errors.Is(err, full) {
		t.Fatalf("restore with a failing commit: %v, want %v", err, full)
	}
	running, seen := dp.state()
	if seen != 3 || running != before.Config {
		t.Errorf("data plane saw %d configurations and runs the current one: %v; want 3 (start, backup, back)", seen, running == before.Config)
	}
	if dp.seen[1] == before.Config || len(dp.seen[1].VirtualServices) != 1 {
		t.Errorf("the data plane was not given the backup's configuration first")
	}
	if c.Current() != before {
		t.Errorf("current snapshot changed to revision %d", c.Current().Revision)
	}
	if got := userNames(t, st); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("users %v, want [alice]", got)
	}
}

// TestRestoreThroughWritePath restores a backup the data plane takes: one
// new revision holds its configuration, the users are the backup's, the
// data plane runs it and subscribers see it; a dry run changes nothing.
func TestRestoreThroughWritePath(t *testing.T) {
	st, backup := restoreFixture(t)
	dp := &fakeDataPlane{}
	c, err := New(st, dp, quiet)
	if err != nil {
		t.Fatal(err)
	}
	before := c.Current()
	var notified []uint64
	c.Subscribe(func(s *Snapshot) { notified = append(notified, s.Revision) })

	snap, plan, err := c.RestoreWith(bytes.NewReader(backup), alice, store.RestoreOptions{Accounts: true, DryRun: true})
	if err != nil || snap != before || len(plan.Diff) == 0 {
		t.Fatalf("dry run: %v, snapshot unchanged %v, plan %+v", err, snap == before, plan)
	}
	if _, seen := dp.state(); seen != 1 || len(notified) != 0 {
		t.Errorf("a dry run reached the data plane (%d) or subscribers (%v)", seen, notified)
	}

	snap, plan, err = c.RestoreWith(bytes.NewReader(backup), alice, store.RestoreOptions{Accounts: true})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Revision != before.Revision+1 || c.Current() != snap || len(snap.Config.VirtualServices) != 1 || !plan.AccountsRestored {
		t.Errorf("restored snapshot %d with %d services, current %d", snap.Revision, len(snap.Config.VirtualServices), c.Current().Revision)
	}
	if snap.Change.User != "alice" || snap.Change.Summary == "" {
		t.Errorf("change %+v", snap.Change)
	}
	if running, _ := dp.state(); running != snap.Config {
		t.Error("the data plane does not run the restored configuration")
	}
	cur, err := st.Current()
	if err != nil || cur.Revision != snap.Revision || !config.Equal(cur.Config, snap.Config) {
		t.Errorf("store at revision %d: %v", cur.Revision, err)
	}
	if got := userNames(t, st); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("users %v, want the backup's [alice bob]", got)
	}
	if !slices.Equal(notified, []uint64{snap.Revision}) {
		t.Errorf("subscribers saw %v", notified)
	}
}
