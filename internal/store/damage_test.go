package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store/storetest"
)

// makeInstall makes a data directory holding a store with history: 60
// revisions (some with 150 real servers per service, so that the configs
// bucket spans several pages and overflow pages), users, API keys and audit
// entries. It returns the directory; the store is closed.
func makeInstall(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	fillStore(t, s, 60)
	return dir
}

// fillStore commits revisions, puts users and keys and appends audit
// entries.
func fillStore(t testing.TB, s *Store, revisions int) {
	t.Helper()
	mustCommit(t, s, revisions)
	created := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, u := range []config.User{
		{Name: "bal", Role: config.RoleAdmin, PasswordHash: "$2a$10$bal", Created: created, PasswordChanged: created},
		{Name: "ops", Role: config.RoleOperator, PasswordHash: "$2a$10$ops", Created: created, PasswordChanged: created},
	} {
		if err := s.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutAPIKey(config.APIKey{ID: "ci", User: "ops", Hash: strings.Repeat("ab", 32), Created: created}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret("persist-cookie", 32); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := s.AppendAudit(AuditEntry{User: "bal", Action: "login", Detail: fmt.Sprint(i), Success: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// openRecovering is Open, with a panic turned into a test failure.
func openRecovering(t *testing.T, dir string) (s *Store, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("Open panicked: %v", r)
			s, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	return Open(dir, Options{LockTimeout: 100 * time.Millisecond})
}

// TestDamagedStore opens a store file damaged in each of the 13 ways of
// issue 15 (truncations, empty file, wrong file type, zeroed and random
// pages at the root, the freelist, each meta page and a data page). Each
// must be refused with an error that names the file and what to do,
// without a panic, and without changing the file: a damaged store never
// becomes a fresh install or a half-working one.
func TestDamagedStore(t *testing.T) {
	pristine := makeInstall(t)
	for _, d := range storetest.Damages(15) {
		t.Run(d.Name, func(t *testing.T) {
			dir := storetest.CopyDir(t, pristine)
			path := filepath.Join(dir, FileName)
			if err := d.Apply(path); err != nil {
				t.Fatalf("damage: %v", err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := openRecovering(t, dir)
			if err == nil {
				cur, cerr := s.Current()
				_ = s.Close()
				t.Fatalf("Open accepted the damaged file (current revision %d, %v)", cur.Revision, cerr)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if !strings.Contains(msg, path) {
				t.Errorf("the error does not name the file %s", path)
			}
			wants := []string{"--reinitialise", "backup"} // the two ways out
			if d.Name != "empty file" {
				wants = append(wants, "fulcrum store check", "fulcrum store salvage") // and a way to see and save what is left
			}
			for _, want := range wants {
				if !strings.Contains(msg, want) {
					t.Errorf("the error does not say %q", want)
				}
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("the store file is gone: %v", err)
			}
			if !bytes.Equal(before, after) {
				t.Error("the refused Open changed the store file")
			}
		})
	}
}

// TestDamageWhileServing damages the pages of an open store under it (the
// file is mapped shared, so bbolt sees the change at once), as a failing
// disk would: every read must come back, those of the revisions on the
// damaged page with an error naming the revision, none with a panic.
func TestDamageWhileServing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"random bytes on a data page", func(t *testing.T, path string) {
			d := storetest.Damages(7)[12]
			if err := d.Apply(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"zeroed data page", func(t *testing.T, path string) {
			if err := storetest.Damages(7)[11].Apply(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"file cut to a quarter", func(t *testing.T, path string) {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, fi.Size()/4/4096*4096); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := storetest.CopyDir(t, makeInstall(t))
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tc.damage(t, filepath.Join(dir, FileName))
			failed := 0
			for n := uint64(1); n <= 60; n++ {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("Revision(%d) panicked: %v", n, r)
						}
					}()
					_, err := s.Revision(n)
					if err != nil {
						failed++
						if !strings.Contains(err.Error(), fmt.Sprintf("revision %d", n)) {
							t.Errorf("Revision(%d): error without the revision's number: %v", n, err)
						}
						if strings.Contains(err.Error(), dir) {
							t.Errorf("Revision(%d): error with the file's path: %v", n, err)
						}
					}
				}()
			}
			if failed == 0 {
				t.Error("no read failed: the damage was not met")
			}
			t.Logf("%d of 60 revisions unreadable", failed)
			for name, read := range map[string]func() error{
				"History": func() error { _, err := s.History(0, 1000); return err },
				"Users":   func() error { _, err := s.Users(); return err },
				"APIKeys": func() error { _, err := s.APIKeys(); return err },
				"Audit":   func() error { _, err := s.Audit(0, 1000); return err },
				"Commit": func() error {
					cur, err := s.Current()
					if err != nil {
						return err
					}
					_, err = s.Commit(cur.Revision, Change{User: "bal"}, gen(cur.Revision+1))
					return err
				},
			} {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("%s panicked: %v", name, r)
						}
					}()
					if err := read(); err != nil {
						t.Logf("%s: %v", name, err)
					}
				}()
			}
		})
	}
}
