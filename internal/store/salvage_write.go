package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeSalvaged writes set as a new store file at out, with an audit entry
// saying what was salvaged, through a temporary file that is checked
// before it is renamed to out.
func writeSalvaged(set *salvageSet, r *SalvageReport, out string) error {
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".salvage-tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	defer os.Remove(tmp) // fails harmlessly after the rename
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	detail := fmt.Sprintf("store salvaged from %s (%s): %d revisions (%d-%d), %d users, %d API keys, %d audit entries",
		r.Source, "transaction "+fmt.Sprint(r.Transaction), r.Revisions, r.OldestRevision, r.NewestRevision, r.Users, r.APIKeys, r.AuditEntries)
	if len(r.Lost) > 0 {
		detail += "; not readable: " + strings.Join(r.Lost, "; ")
	}
	if len(detail) > 2000 {
		detail = detail[:2000] + "…"
	}
	err = db.Update(func(tx *bolt.Tx) error {
		names := slices.Sorted(maps.Keys(set.buckets))
		for _, b := range allBuckets {
			if !slices.Contains(names, string(b)) {
				names = append(names, string(b))
			}
		}
		for _, name := range names {
			b, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return fmt.Errorf("bucket %q: %w", name, err)
			}
			b.FillPercent = 0.9 // written in key order, read mostly
			for _, k := range slices.Sorted(maps.Keys(set.buckets[name])) {
				if err := b.Put([]byte(k), set.buckets[name][k]); err != nil {
					return fmt.Errorf("bucket %q: %w", name, err)
				}
			}
			if err := b.SetSequence(set.seqs[name]); err != nil {
				return err
			}
		}
		audit := tx.Bucket(bucketAudit)
		seq, err := audit.NextSequence()
		if err != nil {
			return err
		}
		doc, err := json.Marshal(AuditEntry{Seq: seq, Time: time.Now().UTC(), Source: "cli", Action: "salvage",
			Detail: detail, Success: true})
		if err != nil {
			return err
		}
		return audit.Put(u64(seq), doc)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rep, err := check(tmp, CheckOptions{}, false) // the records were checked already
	if err != nil {
		return fmt.Errorf("check the new file: %w", err)
	}
	if rep.Damaged() {
		return fmt.Errorf("the new file does not pass its check: %s", strings.Join(rep.Problems, "; "))
	}
	if err := os.Link(tmp, out); err != nil { // fails if out appeared meanwhile
		return err
	}
	return syncDir(filepath.Dir(out))
}
