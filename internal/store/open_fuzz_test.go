package store

import (
	"bytes"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/store/storetest"
)

// FuzzOpenStore feeds damaged store files to the start-up path (Open, as
// appliance.Start calls it, in a data directory that holds an install). It
// must never panic or crash; a file it refuses must be refused with an
// error naming the file and be left unchanged; and a file it accepts must
// then be readable — every revision, user, key, audit entry — and writable
// without meeting damage that the start-up check should have found.
//
// The seeds are real store files, whole and damaged the 13 ways of
// TestDamagedStore. Inputs whose meta pages have bbolt's magic number are
// also tried with their meta checksums made right, so that the fuzzer
// reaches past the checksum into the pages the meta pages point to.
func FuzzOpenStore(f *testing.F) {
	for _, revisions := range []int{3, 12} {
		dir := filepath.Join(f.TempDir(), "seed")
		s, err := Open(dir, Options{noSync: true})
		if err != nil {
			f.Fatal(err)
		}
		fillStore(f, s, revisions)
		if err := s.Close(); err != nil {
			f.Fatal(err)
		}
		path := filepath.Join(dir, FileName)
		whole, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		// Without the unused space bbolt keeps at the end of the file, so
		// that the fuzzer mutates pages that matter.
		if l, err := storetest.ReadLayout(path); err == nil {
			whole = whole[:l.HighWater*uint64(l.PageSize)]
		}
		f.Add(whole)
		for _, d := range storetest.Damages(uint64(revisions)) {
			if err := os.WriteFile(path, whole, 0o600); err != nil {
				f.Fatal(err)
			}
			if err := d.Apply(path); err != nil {
				continue // too small a store for this damage (no page of its own for "configs")
			}
			b, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, file []byte) {
		openDamaged(t, file)
		if sealed, ok := resealMeta(file); ok {
			openDamaged(t, sealed)
		}
	})
}

// openDamaged opens file as the store of an install and checks that Open
// either refuses it cleanly or gives a store that works.
func openDamaged(t *testing.T, file []byte) {
	t.Helper()
	dir := t.TempDir()
	marker := `{"format":"fulcrum-install","installID":"fuzz"}`
	if err := os.WriteFile(filepath.Join(dir, MarkerName), []byte(marker), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{noSync: true, CheckTime: time.Minute})
	if err != nil {
		if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNoStore) && !strings.Contains(err.Error(), "unsupported store layout") {
			t.Fatalf("Open refused the file with an error that is not damage: %v", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("the error does not name the file: %v", err)
		}
		if after, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(after, file) {
			t.Fatalf("the refused Open changed the file (%v)", rerr)
		}
		return
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	damaged := func(what string, err error) {
		t.Helper()
		if errors.Is(err, ErrDamaged) {
			t.Fatalf("Open accepted the file, then %s met damage: %v", what, err)
		}
	}
	cur, err := s.Current()
	damaged("Current", err)
	h, err := s.History(0, 10000)
	damaged("History", err)
	for _, c := range h {
		_, err := s.Revision(c.Revision)
		damaged("Revision", err)
	}
	_, err = s.Users()
	damaged("Users", err)
	_, err = s.APIKeys()
	damaged("APIKeys", err)
	_, err = s.Audit(0, 100000)
	damaged("Audit", err)
	_, err = s.Templates()
	damaged("Templates", err)
	_, _, err = s.IDHighWater()
	damaged("IDHighWater", err)
	_, err = s.Commit(cur.Revision, Change{User: "fuzz"}, gen(1))
	damaged("Commit", err)
	_, err = s.AppendAudit(AuditEntry{Action: "fuzz"})
	damaged("AppendAudit", err)
}

// resealMeta returns file with the checksums of its meta pages (at the
// page size each one names) made right, if any has bbolt's magic number.
func resealMeta(file []byte) ([]byte, bool) {
	out := bytes.Clone(file)
	changed := false
	fix := func(off int) int {
		if off+pageHeaderSize+metaFieldsSize > len(out) {
			return 0
		}
		f := out[off+pageHeaderSize:]
		if ne.Uint32(f) != boltMagic {
			return 0
		}
		h := fnv.New64a()
		_, _ = h.Write(f[:metaSumSize])
		if sum := h.Sum64(); ne.Uint64(f[metaSumSize:]) != sum {
			ne.PutUint64(f[metaSumSize:], sum)
			changed = true
		}
		return int(ne.Uint32(f[8:]))
	}
	if ps := fix(0); ps > 0 && ps < len(out) {
		fix(ps)
	} else {
		fix(4096)
	}
	return out, changed
}
