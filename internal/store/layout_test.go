package store

import (
	"bytes"
	"encoding/binary"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// TestLayout1Upgrade checks that a file written under layout 1 (revisions
// as plain indented JSON) opens, is marked layout 2, and that its old
// revisions read, back up and roll forward as before next to new,
// compressed ones.
func TestLayout1Upgrade(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	populate(t, s, 2)
	// Rewrite the file as layout 1 wrote it.
	err = s.db.Update(func(tx *bolt.Tx) error {
		for n := uint64(1); n <= 2; n++ {
			doc, err := config.EncodeJSON(gen(n))
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketConfigs).Put(u64(n), doc); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyLayout, u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, Options{})
	var layout uint64
	_ = s.db.View(func(tx *bolt.Tx) error {
		layout = binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keyLayout))
		return nil
	})
	if layout != layoutVersion {
		t.Fatalf("layout %d after open, want %d", layout, layoutVersion)
	}
	for n := uint64(1); n <= 2; n++ {
		r, err := s.Revision(n)
		if err != nil {
			t.Fatal(err)
		}
		if !config.Equal(r.Config, gen(n)) {
			t.Fatalf("revision %d differs after the upgrade", n)
		}
	}
	var backup bytes.Buffer
	if err := s.Backup(&backup); err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, 1) // revision 3, compressed
	r, err := s.Revision(3)
	if err != nil || !config.Equal(r.Config, gen(3)) {
		t.Fatalf("revision 3: %v", err)
	}
	var raw []byte
	_ = s.db.View(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketConfigs).Get(u64(3)))
		return nil
	})
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		t.Fatal("revision 3 is not stored compressed")
	}
	r, err = s.Restore(&backup, Change{User: "bal", Source: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	if !config.Equal(r.Config, gen(2)) {
		t.Fatal("restore of a backup of a layout-1 revision differs")
	}
}

// TestUnpackRefusesDamage checks that a damaged compressed configuration
// is reported as a malformed record.
func TestUnpackRefusesDamage(t *testing.T) {
	doc, err := packConfig(gen(4))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{doc[:len(doc)/2], append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{0}, 20)...)} {
		if _, err := decodeConfig(bad); err == nil {
			t.Error("a damaged configuration decoded")
		}
	}
}
