package store

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
)

// netGen is the network settings of network revision n.
func netGen(n uint64) *netcfg.Network {
	return &netcfg.Network{
		Hostname: fmt.Sprintf("lb%d", n),
		Interfaces: []netcfg.Interface{{
			Name:      "eth0",
			Addresses: []string{fmt.Sprintf("10.0.%d.5/24", n%250)},
		}},
		ConfirmSeconds: 30,
	}
}

func mustCommitNetwork(t testing.TB, s *Store, n int, confirmed bool) {
	t.Helper()
	for range n {
		cur, err := s.NetworkCurrent()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitNetwork(cur.Revision, Change{User: "bal", Source: "api", Summary: "net"}, netGen(cur.Revision+1), confirmed); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNetworkRevisions commits, confirms and reads network revisions:
// numbered on their own, apart from the configuration's revisions.
func TestNetworkRevisions(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})

	cur, err := s.NetworkCurrent()
	if err != nil || cur.Revision != 0 || !cur.Confirmed || !cur.Network.Empty() {
		t.Fatalf("fresh store: network revision %+v, %v; want 0, empty, confirmed", cur, err)
	}
	if r, err := s.NetworkRevision(0); err != nil || !r.Network.Empty() || !r.Confirmed {
		t.Fatalf("NetworkRevision(0) = %+v, %v", r, err)
	}
	mustCommit(t, s, 3) // configuration revisions do not number network ones

	r1, err := s.CommitNetwork(0, Change{User: "bal", Source: "api", Summary: "first"}, netGen(1), true)
	if err != nil || r1.Revision != 1 || !r1.Confirmed || r1.Time.IsZero() {
		t.Fatalf("CommitNetwork: %+v, %v", r1, err)
	}
	r2, err := s.CommitNetwork(1, Change{User: "bal", Source: "api", Summary: "second"}, netGen(2), false)
	if err != nil || r2.Revision != 2 || r2.Confirmed {
		t.Fatalf("CommitNetwork unconfirmed: %+v, %v", r2, err)
	}
	var conflict *ConflictError
	if _, err := s.CommitNetwork(1, Change{}, netGen(9), true); !errors.As(err, &conflict) || conflict.Base != 1 || conflict.Current != 2 {
		t.Fatalf("stale base: %v, want a conflict 1 → 2", err)
	}
	if _, err := s.CommitNetwork(2, Change{}, nil, true); err == nil {
		t.Fatal("CommitNetwork of nil settings succeeded")
	}

	cur, err = s.NetworkCurrent()
	if err != nil || cur.Revision != 2 || cur.Confirmed || cur.Network.Hostname != "lb2" || cur.Summary != "second" {
		t.Fatalf("current: %+v, %v", cur, err)
	}
	conf, err := s.NetworkConfirmed()
	if err != nil || conf.Revision != 1 || conf.Network.Hostname != "lb1" {
		t.Fatalf("newest confirmed: %+v, %v; want revision 1", conf, err)
	}
	if err := s.ConfirmNetwork(2); err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmNetwork(7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ConfirmNetwork(7) = %v, want ErrNotFound", err)
	}
	if _, err := s.NetworkRevision(7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NetworkRevision(7) = %v, want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, Options{})
	cur, err = s.NetworkCurrent()
	if err != nil || cur.Revision != 2 || !cur.Confirmed {
		t.Fatalf("after reopen: %+v, %v; want revision 2 confirmed", cur, err)
	}
	h, err := s.NetworkHistory(0, 0)
	if err != nil || len(h) != 2 || h[0].Summary != "second" || h[1].Summary != "first" {
		t.Fatalf("NetworkHistory: %+v, %v", h, err)
	}
	if h, err := s.NetworkHistory(2, 10); err != nil || len(h) != 1 || h[0].Revision != 1 {
		t.Fatalf("NetworkHistory(before 2): %+v, %v", h, err)
	}
	if h, err := s.History(0, 10); err != nil || len(h) != 3 {
		t.Fatalf("configuration history: %d entries, %v; want 3", len(h), err)
	}
}

// TestNetworkPruning keeps the newest MaxRevisions network revisions and
// the newest confirmed one, which a rollback needs.
func TestNetworkPruning(t *testing.T) {
	s := openT(t, t.TempDir(), Options{MaxRevisions: 5})
	mustCommitNetwork(t, s, 3, true)   // 1-3 confirmed
	mustCommitNetwork(t, s, 7, false)  // 4-10 unconfirmed
	h, err := s.NetworkHistory(0, 100) // 6-10 and 3
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, c := range h {
		got = append(got, c.Revision)
	}
	if fmt.Sprint(got) != "[10 9 8 7 6 3]" {
		t.Fatalf("revisions kept %v, want [10 9 8 7 6 3]", got)
	}
	if conf, err := s.NetworkConfirmed(); err != nil || conf.Revision != 3 {
		t.Fatalf("newest confirmed %+v, %v; want 3", conf, err)
	}
	mustCommitNetwork(t, s, 1, true) // 11 confirmed: 3 may go
	if _, err := s.NetworkRevision(3); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revision 3 after a newer confirmed one: %v, want pruned", err)
	}
}

// TestNetworkBucketOnOldFile opens a file written before network
// revisions existed (it lacks their bucket): the bucket is created.
func TestNetworkBucketOnOldFile(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustCommit(t, s, 1)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketNetwork) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(filepath.Join(dir, FileName), CheckOptions{})
	if err != nil || r.Damaged() {
		t.Fatalf("check of a file without the network bucket: %+v, %v", r, err)
	}
	s = openT(t, dir, Options{})
	if cur, err := s.NetworkCurrent(); err != nil || cur.Revision != 0 {
		t.Fatalf("NetworkCurrent: %+v, %v", cur, err)
	}
	mustCommitNetwork(t, s, 1, true)
}

// TestNetworkNotInBackup: network revisions are node-local, so a backup
// holds none and a restore leaves them as they are.
func TestNetworkNotInBackup(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	mustCommit(t, s, 1)
	mustCommitNetwork(t, s, 1, true)
	var backup bytes.Buffer
	if err := s.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	mustCommitNetwork(t, s, 1, true)
	if _, err := s.Restore(bytes.NewReader(backup.Bytes()), Change{User: "bal", Source: "cli"}); err != nil {
		t.Fatal(err)
	}
	cur, err := s.NetworkCurrent()
	if err != nil || cur.Revision != 2 || cur.Network.Hostname != "lb2" {
		t.Fatalf("network after a restore: %+v, %v; want revision 2 untouched", cur, err)
	}
}

// TestNetworkCheckAndSalvage: check counts and checks every network
// record, and salvage copies the readable ones and reports a damaged one.
func TestNetworkCheckAndSalvage(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustCommit(t, s, 2)
	if err := s.PutUser(config.User{Name: "bal", Role: config.RoleAdmin, PasswordHash: "$2a$10$bal"}); err != nil {
		t.Fatal(err)
	}
	mustCommitNetwork(t, s, 4, true)
	path := filepath.Join(dir, FileName)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Check(path, CheckOptions{})
	if err != nil || r.Damaged() || r.NetworkRevisions != 4 {
		t.Fatalf("check: %d network revisions, problems %q, %v; want 4, none", r.NetworkRevisions, r.Problems, err)
	}
	out := filepath.Join(t.TempDir(), FileName)
	sr, err := Salvage(path, out, SalvageOptions{})
	if err != nil || sr.NetworkRevisions != 4 || len(sr.Lost) != 0 {
		t.Fatalf("salvage: %+v, %v; want 4 network revisions, nothing lost", sr, err)
	}
	s2 := openT(t, filepath.Dir(out), Options{})
	if cur, err := s2.NetworkCurrent(); err != nil || cur.Revision != 4 || cur.Network.Hostname != "lb4" {
		t.Fatalf("salvaged current network revision: %+v, %v", cur, err)
	}
	_ = s2.Close()

	// A record that does not name its own number is damage.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNetwork).Put(u64(3), []byte(`{"revision":9,"network":{},"confirmed":true}`))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	r, err = Check(path, CheckOptions{})
	if err != nil || !r.Damaged() || !strings.Contains(strings.Join(r.Problems, "\n"), "network revision 3") {
		t.Fatalf("check of a damaged network record: problems %q, %v", r.Problems, err)
	}
	if r.NetworkRevisions != 3 {
		t.Errorf("check counts %d readable network revisions, want 3", r.NetworkRevisions)
	}
	out = filepath.Join(t.TempDir(), FileName)
	sr, err = Salvage(path, out, SalvageOptions{})
	if err != nil || sr.NetworkRevisions != 3 || !strings.Contains(strings.Join(sr.Lost, "\n"), "network revision 3") {
		t.Fatalf("salvage of a damaged network record: %+v, %v", sr, err)
	}
	s3 := openT(t, filepath.Dir(out), Options{})
	if h, err := s3.NetworkHistory(0, 10); err != nil || len(h) != 3 {
		t.Fatalf("salvaged network history: %+v, %v; want 3 entries", h, err)
	}
}
