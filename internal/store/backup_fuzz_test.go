package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzRestoreUnverified is FuzzRestore for a restore that accepts an
// unsigned backup and restores its users and API keys: the content checks
// behind the signature are reached by every input with a correct
// checksum. It must never panic, a refusal must change nothing, a dry run
// must change nothing, and a success must leave a valid configuration and
// at least one administrator.
func FuzzRestoreUnverified(f *testing.F) {
	s, err := Open(f.TempDir(), Options{MaxRevisions: 5})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Close() })
	s.db.NoSync = true // durability is not under test here
	populate(f, s, 2)
	plain := gunzip(f, backupBytes(f, s))
	for _, seed := range [][]byte{
		plain,
		forge(f, plain, false),
		forge(f, plain, true),
		reseal(f, plain, func(d *backupDoc) { d.Revision = json.RawMessage(`18446744073709551615`) }),
		reseal(f, plain, func(d *backupDoc) { d.Created = json.RawMessage(`"2999-01-01T00:00:00Z"`) }),
		reseal(f, plain, func(d *backupDoc) { d.Signature = json.RawMessage(`{"key":"x","hmac":"00"}`) }),
	} {
		f.Add(seed)
	}
	o := RestoreOptions{AllowUnsigned: true, Accounts: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d backupDoc
		if json.Unmarshal(data, &d) == nil {
			if sum, err := d.checksum(); err == nil {
				d.Checksum, _ = json.Marshal(sum)
				if sealed, err := json.Marshal(&d); err == nil {
					data = sealed
				}
			}
		}
		before := snap(t, s)
		dry := o
		dry.DryRun = true
		if _, _, err := s.RestoreWith(bytes.NewReader(data), Change{User: "fuzz"}, dry); err != nil && !errors.Is(err, ErrBadBackup) {
			t.Fatalf("dry run failed without refusing the backup: %v", err)
		}
		if !snap(t, s).equal(before) {
			t.Fatal("a dry run changed the store")
		}
		r, _, err := s.RestoreWith(bytes.NewReader(data), Change{User: "fuzz"}, o)
		if err != nil {
			if !errors.Is(err, ErrBadBackup) {
				t.Fatalf("restore failed without refusing the backup: %v", err)
			}
			if !snap(t, s).equal(before) {
				t.Fatalf("refused restore (%v) changed the store", err)
			}
			return
		}
		if err := r.Config.Validate(); err != nil {
			t.Fatalf("restore accepted an invalid configuration: %v", err)
		}
		after := snap(t, s)
		admin := false
		for _, u := range after.users {
			admin = admin || u.Role == "admin"
		}
		if !admin || after.cur.Revision != before.cur.Revision+1 {
			t.Fatalf("after restore: revision %d (was %d), users %+v", after.cur.Revision, before.cur.Revision, after.users)
		}
	})
}
