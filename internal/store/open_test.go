package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/store/storetest"
)

// TestDamageErrors checks the types of Open's errors over the 13 kinds of
// damage: a *MissingError (ErrNoStore) for the empty file, a *DamageError
// (ErrDamaged) for the others, and with Reinitialise a fresh store with
// the damaged file kept aside, byte for byte.
func TestDamageErrors(t *testing.T) {
	pristine := makeInstall(t)
	for _, d := range storetest.Damages(15) {
		t.Run(d.Name, func(t *testing.T) {
			dir := storetest.CopyDir(t, pristine)
			path := filepath.Join(dir, FileName)
			if err := d.Apply(path); err != nil {
				t.Fatal(err)
			}
			damaged, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(dir, Options{})
			var de *DamageError
			var me *MissingError
			switch {
			case d.Name == "empty file":
				if !errors.As(err, &me) || !errors.Is(err, ErrNoStore) || !me.Empty || me.Path != path {
					t.Fatalf("Open = %v, want a *MissingError", err)
				}
			case !errors.As(err, &de) || !errors.Is(err, ErrDamaged) || de.Path != path || len(de.Problems) == 0:
				t.Fatalf("Open = %v, want a *DamageError", err)
			}

			s, err := Open(dir, Options{Reinitialise: true})
			if err != nil {
				t.Fatalf("Open with Reinitialise: %v", err)
			}
			defer s.Close()
			r := s.Report()
			if !r.Reinitialised || r.SetAside == "" || filepath.Dir(r.SetAside) != dir ||
				!strings.HasPrefix(filepath.Base(r.SetAside), FileName+".damaged-") {
				t.Fatalf("Report = %+v", r)
			}
			kept, err := os.ReadFile(r.SetAside)
			if err != nil || !bytes.Equal(kept, damaged) {
				t.Fatalf("the damaged file was not kept as it was (%v)", err)
			}
			if cur, err := s.Current(); err != nil || cur.Revision != 0 {
				t.Errorf("Current = %d, %v; want revision 0", cur.Revision, err)
			}
			a, err := s.Audit(0, 10)
			if err != nil || len(a) != 1 || a[0].Action != "reinitialise" || !strings.Contains(a[0].Detail, filepath.Base(r.SetAside)) {
				t.Errorf("audit = %+v, %v; want the reinitialisation", a, err)
			}
		})
	}
}

func TestInstallMarker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.Report().InstallID
	if len(id) != 32 {
		t.Errorf("install ID %q", id)
	}
	mustCommit(t, s, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if m := readMarker(dir); m.InstallID != id || m.Created.IsZero() {
		t.Fatalf("marker %+v, want install %s", m, id)
	}
	if fi, err := os.Stat(filepath.Join(dir, MarkerName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("marker: %v %v", fi, err)
	}
	path := filepath.Join(dir, FileName)

	// A missing store in a directory with evidence of an install is refused.
	moved := filepath.Join(t.TempDir(), "kept.db")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	var me *MissingError
	if !errors.As(err, &me) || me.Empty || me.Path != path || !errors.Is(err, ErrNoStore) {
		t.Fatalf("Open without the store file = %v", err)
	}
	for _, want := range []string{path, "missing", MarkerName, "--reinitialise", "restore a backup", "fulcrum store salvage"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Fatal("the refused Open created a store file")
	}

	// The admin certificate alone is evidence too.
	certOnly := t.TempDir()
	if err := os.WriteFile(filepath.Join(certOnly, "admin-cert.pem"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(certOnly, Options{}); !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), "admin-cert.pem") {
		t.Errorf("Open beside an admin certificate = %v", err)
	}

	// An empty file without evidence is the first start, cut short.
	bare := t.TempDir()
	if err := os.WriteFile(filepath.Join(bare, FileName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(bare, Options{})
	if err != nil {
		t.Fatalf("Open of an empty file in a new directory: %v", err)
	}
	_ = s.Close()

	// Reinitialise on a healthy store opens it as it is.
	if err := os.Rename(moved, path); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{Reinitialise: true})
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Current(); cur.Revision != 2 || s.Report().Reinitialised {
		t.Errorf("Reinitialise on a healthy store: revision %d, report %+v", cur.Revision, s.Report())
	}
	// An install of an older Fulcrum has no marker: it gets one with the
	// store's ID.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, MarkerName)); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{})
	if m := readMarker(dir); m.InstallID != id || s.Report().InstallID != id {
		t.Errorf("marker rewritten as %+v, want install %s", m, id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reinitialise on a missing store keeps the install's ID.
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{Reinitialise: true})
	if r := s.Report(); !r.Reinitialised || r.SetAside != "" || r.InstallID != id {
		t.Errorf("Report = %+v", r)
	}
}

// TestReinitialiseLocked checks that a store held by another process is
// neither reinitialised nor moved.
func TestReinitialiseLocked(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustCommit(t, s, 1)
	_, err := Open(dir, Options{Reinitialise: true, LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("Open = %v, want ErrLocked", err)
	}
	if cur, err := s.Current(); err != nil || cur.Revision != 1 {
		t.Fatalf("the store changed under its holder: %d %v", cur.Revision, err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, FileName+".damaged-*"))
	if len(matches) != 0 {
		t.Fatalf("files set aside: %v", matches)
	}
}
