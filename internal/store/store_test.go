package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// gen returns the configuration of revision n used throughout the tests: a
// valid configuration that differs from one revision to the next, with
// n%5+1 services, and on some revisions 150 real servers per service so
// that transactions differ much in size.
func gen(n uint64) *config.Config {
	c := config.Default()
	c.Options.ConnTimeout = int(n%86400) + 1
	nvs := int(n%5) + 1
	nrs := int(n%3) + 2
	if n%7 == 3 {
		nrs = 150
	}
	for i := range nvs {
		vs := config.VirtualService{
			ID:       i + 1,
			NickName: fmt.Sprintf("rev %d service %d", n, i),
			Address:  fmt.Sprintf("127.0.0.%d", i+1),
			Port:     int(n%65535) + 1,
		}
		if n%2 == 0 {
			vs.NickName += " " + strings.Repeat("p", config.MaxNickName-len(vs.NickName)-1)
		}
		for j := range nrs {
			vs.RealServers = append(vs.RealServers, config.RealServer{
				ID:      (i+1)*1000 + j,
				Address: fmt.Sprintf("127.0.0.%d", j%250+1),
				Port:    1000 + j,
				Weight:  int((n+uint64(j))%65535) + 1,
			})
		}
		c.VirtualServices = append(c.VirtualServices, vs)
	}
	c.SetDefaults()
	return c
}

func TestGenIsValid(t *testing.T) {
	for n := range uint64(30) {
		if err := gen(n).Validate(); err != nil {
			t.Fatalf("gen(%d) invalid: %v", n, err)
		}
	}
	if config.Equal(gen(1), gen(2)) {
		t.Fatal("gen(1) == gen(2)")
	}
}

func openT(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustCommit(t testing.TB, s *Store, n int) {
	t.Helper()
	for range n {
		cur, err := s.Current()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Commit(cur.Revision, Change{User: "bal", Source: "cli"}, gen(cur.Revision+1)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFreshStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := openT(t, dir, Options{})
	if s.Path() != filepath.Join(dir, "fulcrum.db") {
		t.Errorf("Path = %q", s.Path())
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, s.Path(): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	cur, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}
	if cur.Revision != 0 || !config.Equal(cur.Config, config.Default()) {
		t.Errorf("Current = %d %+v, want 0 and the default", cur.Revision, cur.Config)
	}
	if r, err := s.Revision(0); err != nil || r.Revision != 0 || !config.Equal(r.Config, config.Default()) {
		t.Errorf("Revision(0) = %v, %v", r, err)
	}
	h, err := s.History(0, 0)
	if err != nil || h == nil || len(h) != 0 {
		t.Errorf("History = %#v, %v; want empty", h, err)
	}
	if u, err := s.Users(); err != nil || u == nil || len(u) != 0 {
		t.Errorf("Users = %#v, %v; want empty", u, err)
	}
	if k, err := s.APIKeys(); err != nil || k == nil || len(k) != 0 {
		t.Errorf("APIKeys = %#v, %v; want empty", k, err)
	}
	if a, err := s.Audit(0, 0); err != nil || a == nil || len(a) != 0 {
		t.Errorf("Audit = %#v, %v; want empty", a, err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file, Options{}); err == nil {
		t.Error("Open(file) succeeded")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Error("Open of a garbage file succeeded")
	}
}

func TestCommit(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	fixed := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		base     uint64
		ch       Change
		wantRev  uint64
		conflict bool
	}{
		{"first", 0, Change{User: "bal", Source: "wui", RemoteAddr: "192.0.2.1:5000", Summary: "one"}, 1, false},
		{"second with time", 1, Change{Revision: 99, Time: fixed, User: "bal", Source: "api", Summary: "two"}, 2, false},
		{"stale base", 1, Change{Summary: "stale"}, 0, true},
		{"base from the future", 7, Change{Summary: "future"}, 0, true},
		{"third", 2, Change{Source: "system", Summary: "three"}, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := s.Current()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r, err := s.Commit(tc.base, tc.ch, gen(tc.base+1))
			if tc.conflict {
				var ce *ConflictError
				if !errors.As(err, &ce) || ce.Base != tc.base || ce.Current != before.Revision {
					t.Fatalf("err = %v, want conflict", err)
				}
				want := fmt.Sprintf("revision conflict: change based on revision %d, current is %d", tc.base, before.Revision)
				if err.Error() != want {
					t.Errorf("message %q, want %q", err.Error(), want)
				}
				after, err := s.Current()
				if err != nil || after.Revision != before.Revision || !config.Equal(after.Config, before.Config) {
					t.Errorf("conflict changed the current revision: %d", after.Revision)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Revision != tc.wantRev || r.User != tc.ch.User || r.Summary != tc.ch.Summary || r.Source != tc.ch.Source {
				t.Errorf("Commit = %+v", r.Change)
			}
			if tc.ch.Time.IsZero() && (r.Time.Before(start.Add(-time.Second)) || r.Time.After(time.Now().Add(time.Second))) {
				t.Errorf("Time = %v, want now", r.Time)
			}
			if !tc.ch.Time.IsZero() && !r.Time.Equal(tc.ch.Time) {
				t.Errorf("Time = %v, want %v", r.Time, tc.ch.Time)
			}
			if !config.Equal(r.Config, gen(tc.base+1)) {
				t.Error("returned config differs")
			}
			cur, err := s.Current()
			if err != nil || cur.Revision != tc.wantRev || !config.Equal(cur.Config, gen(tc.base+1)) || cur.Change != r.Change {
				t.Errorf("Current = %+v, %v", cur.Change, err)
			}
			// The returned configuration is the caller's own.
			r.Config.VirtualServices = nil
			if again, _ := s.Current(); len(again.Config.VirtualServices) == 0 {
				t.Error("modifying a returned config changed the store")
			}
		})
	}
	if _, err := s.Commit(3, Change{}, nil); err == nil {
		t.Error("Commit(nil) succeeded")
	}
}

func TestCommitSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	cur, err := s.Current()
	if err != nil || cur.Revision != 4 || !config.Equal(cur.Config, gen(4)) {
		t.Fatalf("after reopen: %d, %v", cur.Revision, err)
	}
}

func TestConcurrentCommits(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < each; {
				cur, err := s.Current()
				if err != nil {
					errs <- err
					return
				}
				_, err = s.Commit(cur.Revision, Change{User: fmt.Sprint(w)}, gen(cur.Revision+1))
				var ce *ConflictError
				switch {
				case errors.As(err, &ce):
					continue // someone else was faster: retry on the new revision
				case err != nil:
					errs <- err
					return
				}
				done++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	cur, err := s.Current()
	if err != nil || cur.Revision != workers*each || !config.Equal(cur.Config, gen(cur.Revision)) {
		t.Fatalf("Current = %d, %v; want %d", cur.Revision, err, workers*each)
	}
}

func TestHistoryAndPruning(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxRevisions: 5})
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, 12)
	tests := []struct {
		before uint64
		limit  int
		want   []uint64
	}{
		{0, 0, []uint64{12, 11, 10, 9, 8}},
		{0, 2, []uint64{12, 11}},
		{12, 2, []uint64{11, 10}},
		{10, 100, []uint64{9, 8}},
		{9, -1, []uint64{8}},
		{8, 10, nil},
		{3, 10, nil},
		{1000, 1, []uint64{12}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("before=%d,limit=%d", tc.before, tc.limit), func(t *testing.T) {
			h, err := s.History(tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, c := range h {
				got = append(got, c.Revision)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("History = %v, want %v", got, tc.want)
			}
		})
	}
	for n := uint64(8); n <= 12; n++ {
		r, err := s.Revision(n)
		if err != nil || r.Revision != n || !config.Equal(r.Config, gen(n)) {
			t.Errorf("Revision(%d) = %d, %v", n, r.Revision, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A smaller limit takes effect with the next commit.
	s = openT(t, dir, Options{MaxRevisions: 1})
	mustCommit(t, s, 1)
	h, err := s.History(0, 0)
	if err != nil || len(h) != 1 || h[0].Revision != 13 {
		t.Fatalf("History = %+v, %v; want only 13", h, err)
	}
	if _, err := s.Revision(12); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revision(12) = %v, want ErrNotFound", err)
	}
}

func TestRevisionNotFound(t *testing.T) {
	s := openT(t, t.TempDir(), Options{MaxRevisions: 3})
	if _, err := s.Revision(1); !errors.Is(err, ErrNotFound) {
		t.Errorf("fresh Revision(1) = %v", err)
	}
	mustCommit(t, s, 5)
	for _, n := range []uint64{0, 1, 2, 6, 1 << 40} {
		_, err := s.Revision(n)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Revision(%d) = %v, want ErrNotFound", n, err)
		} else if !strings.Contains(err.Error(), fmt.Sprint(n)) {
			t.Errorf("Revision(%d) error %q lacks the number", n, err)
		}
	}
	for _, n := range []uint64{3, 4, 5} {
		if _, err := s.Revision(n); err != nil {
			t.Errorf("Revision(%d) = %v", n, err)
		}
	}
}

func TestUsers(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, name := range []string{"zoe", "bal", "mike"} {
		u := config.User{Name: name, Role: config.RoleOperator, PasswordHash: "$2a$hash-" + name, Created: created, PasswordChanged: created}
		if err := s.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	users, err := s.Users()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if fmt.Sprint(names) != "[bal mike zoe]" {
		t.Errorf("Users = %v, want sorted", names)
	}
	u, err := s.User("mike")
	if err != nil || u.PasswordHash != "$2a$hash-mike" || !u.Created.Equal(created) {
		t.Errorf("User(mike) = %+v, %v", u, err)
	}
	u.Role = config.RoleAdmin
	if err := s.PutUser(u); err != nil {
		t.Fatal(err)
	}
	if u2, _ := s.User("mike"); u2.Role != config.RoleAdmin {
		t.Errorf("replace: role %q", u2.Role)
	}
	for _, bad := range []config.User{{Name: "", Role: "admin"}, {Name: "Bad Name", Role: "admin"}, {Name: "ok", Role: "root"}} {
		err := s.PutUser(bad)
		if _, ok := config.IsErrors(err); !ok {
			t.Errorf("PutUser(%+v) = %v, want field errors", bad, err)
		}
	}
	for _, name := range []string{"nobody", ""} {
		if _, err := s.User(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("User(%q) = %v", name, err)
		}
		if err := s.DeleteUser(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteUser(%q) = %v", name, err)
		}
	}
	if err := s.DeleteUser("zoe"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User("zoe"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted user still there: %v", err)
	}
	if users, _ := s.Users(); len(users) != 2 {
		t.Errorf("%d users left, want 2", len(users))
	}
}

func TestAPIKeys(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	for _, name := range []string{"bal", "ops"} {
		if err := s.PutUser(config.User{Name: name, Role: config.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	keys := []config.APIKey{
		{ID: "k3", User: "bal", Hash: "h3", Created: t0.Add(3 * time.Hour)},
		{ID: "k1", User: "ops", Hash: "h1", Created: t0.Add(1 * time.Hour), Description: "ci <&> pipeline"},
		{ID: "k2", User: "bal", Hash: "h2", Created: t0.Add(2 * time.Hour), LastUsed: t0.Add(5 * time.Hour)},
	}
	for _, k := range keys {
		if err := s.PutAPIKey(k); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.APIKeys()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	if fmt.Sprint(ids) != "[k1 k2 k3]" {
		t.Errorf("APIKeys = %v, want sorted by Created", ids)
	}
	if got[0].Description != "ci <&> pipeline" || !got[1].LastUsed.Equal(t0.Add(5*time.Hour)) {
		t.Errorf("fields lost: %+v", got)
	}
	tests := []struct {
		name    string
		key     config.APIKey
		errIs   error
		wantErr bool
	}{
		{"unknown user", config.APIKey{ID: "k9", User: "ghost"}, ErrNotFound, true},
		{"no id", config.APIKey{User: "bal"}, nil, true},
		{"id with space", config.APIKey{ID: "a b", User: "bal"}, nil, true},
		{"long id", config.APIKey{ID: strings.Repeat("x", MaxAPIKeyID+1), User: "bal"}, nil, true},
		{"no user", config.APIKey{ID: "k9"}, nil, true},
		{"long description", config.APIKey{ID: "k9", User: "bal", Description: strings.Repeat("é", MaxAPIKeyDescription+1)}, nil, true},
		{"max description", config.APIKey{ID: "k9", User: "bal", Description: strings.Repeat("é", MaxAPIKeyDescription)}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.PutAPIKey(tc.key)
			if (err != nil) != tc.wantErr || (tc.errIs != nil && !errors.Is(err, tc.errIs)) {
				t.Errorf("PutAPIKey = %v", err)
			}
		})
	}
	if err := s.DeleteAPIKey("k9"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"k9", "", "nope"} {
		if err := s.DeleteAPIKey(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteAPIKey(%q) = %v", id, err)
		}
	}
	// Deleting a user takes its keys with it.
	if err := s.DeleteUser("bal"); err != nil {
		t.Fatal(err)
	}
	got, err = s.APIKeys()
	if err != nil || len(got) != 1 || got[0].ID != "k1" {
		t.Errorf("after DeleteUser: %+v, %v", got, err)
	}
}

func TestAudit(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxAudit: 10})
	if err != nil {
		t.Fatal(err)
	}
	fixed := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	for i := 1; i <= 25; i++ {
		e := AuditEntry{User: "bal", Source: "wui", RemoteAddr: "192.0.2.7", Action: "login", Detail: fmt.Sprint(i), Success: i%2 == 0}
		if i == 3 {
			e.Time = fixed
			e.Seq = 999 // ignored
		}
		got, err := s.AppendAudit(e)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != uint64(i) || got.Time.IsZero() || (i == 3 && !got.Time.Equal(fixed)) {
			t.Fatalf("AppendAudit #%d = %+v", i, got)
		}
	}
	tests := []struct {
		before uint64
		limit  int
		want   []uint64
	}{
		{0, 0, []uint64{25, 24, 23, 22, 21, 20, 19, 18, 17, 16}},
		{0, 3, []uint64{25, 24, 23}},
		{20, 3, []uint64{19, 18, 17}},
		{17, 100, []uint64{16}},
		{16, 100, nil},
	}
	for _, tc := range tests {
		got, err := s.Audit(tc.before, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
			if e.Detail != fmt.Sprint(e.Seq) || e.Success != (e.Seq%2 == 0) || e.Action != "login" {
				t.Errorf("entry %+v", e)
			}
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
			t.Errorf("Audit(%d, %d) = %v, want %v", tc.before, tc.limit, seqs, tc.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{MaxAudit: 10})
	e, err := s.AppendAudit(AuditEntry{Action: "restart"})
	if err != nil || e.Seq != 26 {
		t.Errorf("after reopen: seq %d, %v; want 26", e.Seq, err)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Secret("session", 32)
	if err != nil || len(a) != 32 {
		t.Fatalf("Secret = %x, %v", a, err)
	}
	b, err := s.Secret("csrf", 32)
	if err != nil || string(a) == string(b) {
		t.Fatalf("two secrets equal or %v", err)
	}
	a[0] ^= 0xff // the caller's copy
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	a2, err := s.Secret("session", 32)
	a[0] ^= 0xff
	if err != nil || string(a) != string(a2) {
		t.Errorf("secret changed across reopen: %x vs %x (%v)", a, a2, err)
	}
	for _, tc := range []struct {
		name string
		size int
	}{{"session", 64}, {"", 32}, {"x", 0}, {"x", -1}, {"x", MaxSecretSize + 1}, {strings.Repeat("n", 300), 8}} {
		if _, err := s.Secret(tc.name, tc.size); err == nil {
			t.Errorf("Secret(%q, %d) succeeded", tc.name, tc.size)
		}
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	start := time.Now()
	s2, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		_ = s2.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second Open took %v", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(dir, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := s3.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Current(); err == nil {
		t.Error("Current after Close succeeded")
	}
	if _, err := s.Commit(0, Change{}, gen(1)); err == nil {
		t.Error("Commit after Close succeeded")
	}
	if _, err := s.AppendAudit(AuditEntry{}); err == nil {
		t.Error("AppendAudit after Close succeeded")
	}
	if _, err := s.Secret("x", 8); err == nil {
		t.Error("Secret after Close succeeded")
	}
}
