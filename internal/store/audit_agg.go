package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditFailureShareDivisor sets the failure share of the audit log:
// AppendAuditEntry keeps at most Options.MaxAudit/AuditFailureShareDivisor
// failure entries (20,000 of the default 100,000).
const AuditFailureShareDivisor = 5

// Index buckets of AppendAuditEntry: ordinal (8 bytes, from the bucket's
// sequence) → the audit entry's sequence number (8 bytes), oldest first.
// They are derived state: entries they do not list are pruned by sequence
// number as AppendAudit does.
var (
	bucketAuditFailures = []byte("auditFailures") // failure entries
	bucketAuditOthers   = []byte("auditOthers")   // every other entry
)

// AppendAuditEntry adds e to the audit log like AppendAudit, but prunes by
// shares so that failures cannot push out the rest: failure is true for
// entries an unauthenticated client can cause at will (failed and refused
// logins, lockouts), of which at most MaxAudit/AuditFailureShareDivisor
// are kept, oldest pruned first; all entries together are at most
// MaxAudit, of which the oldest, failure or not, is pruned first. So the
// newest MaxAudit minus the failure share of the other entries (logins,
// changes) are always kept, however many failures are appended. Entries
// appended with AppendAudit (by an older version) are pruned by sequence
// number, as AppendAudit prunes them.
func (s *Store) AppendAuditEntry(e AuditEntry, failure bool) (AuditEntry, error) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	maxN := uint64(s.opts.MaxAudit)
	failShare := maxN / AuditFailureShareDivisor
	if failShare == 0 {
		failShare = 1
	}
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		fails, err := tx.CreateBucketIfNotExists(bucketAuditFailures)
		if err != nil {
			return err
		}
		others, err := tx.CreateBucketIfNotExists(bucketAuditOthers)
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		doc, err := json.Marshal(e)
		if err != nil {
			return err
		}
		if err := b.Put(u64(seq), doc); err != nil {
			return err
		}
		idx := others
		if failure {
			idx = fails
		}
		ord, err := idx.NextSequence()
		if err != nil {
			return err
		}
		if err := idx.Put(u64(ord), u64(seq)); err != nil {
			return err
		}
		if failure {
			for indexLen(fails) > failShare {
				if err := pruneOldest(b, fails); err != nil {
					return err
				}
			}
		}
		for indexLen(fails)+indexLen(others) > maxN {
			older := others
			if f, o := oldestSeq(fails), oldestSeq(others); f != 0 && (o == 0 || f < o) {
				older = fails
			}
			if err := pruneOldest(b, older); err != nil {
				return err
			}
		}
		// Entries neither index lists are older than every entry they do
		// list: prune them as AppendAudit would.
		if seq > maxN {
			bound := seq - maxN + 1
			for _, first := range []uint64{oldestSeq(fails), oldestSeq(others)} {
				if first != 0 && first < bound {
					bound = first
				}
			}
			return deleteBelow(b, bound)
		}
		return nil
	})
	if err != nil {
		return AuditEntry{}, fmt.Errorf("append audit entry: %w", err)
	}
	return e, nil
}

// indexLen returns the number of entries of an index bucket: its
// ordinals are contiguous, since entries are only removed from the front.
func indexLen(idx *bolt.Bucket) uint64 {
	k, _ := idx.Cursor().First()
	if len(k) != 8 {
		return 0
	}
	return idx.Sequence() - binary.BigEndian.Uint64(k) + 1
}

// oldestSeq returns the audit sequence number of an index's oldest entry,
// or 0 when it is empty.
func oldestSeq(idx *bolt.Bucket) uint64 {
	_, v := idx.Cursor().First()
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// pruneOldest deletes an index's oldest entry and the audit entry it
// lists.
func pruneOldest(audit, idx *bolt.Bucket) error {
	k, v := idx.Cursor().First()
	if k == nil {
		return nil
	}
	if len(v) == 8 {
		if err := audit.Delete(v); err != nil {
			return err
		}
	}
	return idx.Delete(k)
}
