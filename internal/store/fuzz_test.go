package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzRestore feeds arbitrary bytes to Restore: it must never panic, and
// when it fails it must leave the store as it was. Inputs that decode as a
// backup document are tried a second time with a correct checksum, so that
// the fuzzer also reaches the checks behind the checksum.
func FuzzRestore(f *testing.F) {
	s, err := Open(f.TempDir(), Options{MaxRevisions: 5})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	// Durability is not under test here; without fsync the fuzzer (and its
	// minimizer) run many times more inputs.
	s.db.NoSync = true
	populate(f, s, 2)
	backup := backupBytes(f, s)
	plain := gunzip(f, backup)
	for _, seed := range [][]byte{
		backup,
		plain,
		nil,
		[]byte("{}"),
		[]byte(`{"format":"fulcrum-backup","version":1,"checksum":"00"}`),
		[]byte{0x1f, 0x8b},
		gzipBytes(f, []byte(`{"format":"fulcrum-backup"}`)),
		reseal(f, plain, func(d *backupDoc) { d.Users = json.RawMessage(`[]`) }),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		restoreOrNothing(t, s, data)
		var d backupDoc
		if json.Unmarshal(data, &d) != nil {
			return
		}
		sum, err := d.checksum()
		if err != nil {
			return
		}
		d.Checksum, _ = json.Marshal(sum)
		sealed, err := json.Marshal(&d)
		if err != nil {
			return
		}
		restoreOrNothing(t, s, sealed)
	})
}

// restoreOrNothing restores data into s and checks that a refusal changed
// nothing and that a success made the current revision valid.
func restoreOrNothing(t *testing.T, s *Store, data []byte) {
	t.Helper()
	before := snap(t, s)
	r, err := s.Restore(bytes.NewReader(data), Change{User: "fuzz"})
	if err != nil {
		if !errors.Is(err, ErrBadBackup) {
			t.Fatalf("Restore failed without refusing the backup: %v", err)
		}
		if !snap(t, s).equal(before) {
			t.Fatalf("refused Restore (%v) changed the store", err)
		}
		return
	}
	if err := r.Config.Validate(); err != nil {
		t.Fatalf("Restore accepted an invalid configuration: %v", err)
	}
	after := snap(t, s)
	if after.cur.Revision != before.cur.Revision+1 || after.cur.Change != r.Change {
		t.Fatalf("Restore made revision %d, current is %d (was %d)", r.Revision, after.cur.Revision, before.cur.Revision)
	}
}
