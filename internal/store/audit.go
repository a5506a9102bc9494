package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditEntry is one record of the audit log.
type AuditEntry struct {
	// Seq numbers the entries; it only ever grows, also across pruning and
	// restarts.
	Seq uint64 `json:"seq"`
	// Time is when the action happened.
	Time time.Time `json:"time"`
	// User is the user who acted, if known.
	User string `json:"user"`
	// Source is where the action came from, as in Change.Source.
	Source string `json:"source"`
	// RemoteAddr is the client address the action came from, if any.
	RemoteAddr string `json:"remoteAddr"`
	// Action names what was done, e.g. "login" or "commit".
	Action string `json:"action"`
	// Detail says more about it.
	Detail string `json:"detail"`
	// Success is false for refused or failed actions.
	Success bool `json:"success"`
}

// AppendAudit adds e to the audit log and returns it as stored: with the
// next sequence number and, if e.Time is zero, the current time. Entries
// beyond Options.MaxAudit are pruned, oldest first.
func (s *Store) AppendAudit(e AuditEntry) (AuditEntry, error) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
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
		if seq > uint64(s.opts.MaxAudit) {
			return deleteBelow(b, seq-uint64(s.opts.MaxAudit)+1)
		}
		return nil
	})
	if err != nil {
		return AuditEntry{}, fmt.Errorf("append audit entry: %w", err)
	}
	return e, nil
}

// Audit returns the audit entries with a sequence number below before (all
// if before is 0), newest first, at most limit of them; limit <= 0 means
// 100.
func (s *Store) Audit(before uint64, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	out := []AuditEntry{}
	err := s.view(func(tx *bolt.Tx) error {
		return walkBack(tx.Bucket(bucketAudit), before, func(k, v []byte) (bool, error) {
			var e AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return false, fmt.Errorf("audit entry %d: %w: %v", binary.BigEndian.Uint64(k), errCorruptValue, err)
			}
			out = append(out, e)
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	return out, nil
}

// MaxSecretSize is the largest secret Secret makes, in bytes.
const MaxSecretSize = 4096

// Secret returns the installation secret called name, size random bytes
// made with crypto/rand when it is first asked for and the same bytes ever
// after. Asking for an existing secret with another size is an error.
func (s *Store) Secret(name string, size int) ([]byte, error) {
	if name == "" || len(name) > 256 {
		return nil, fmt.Errorf("secret %q: name must be 1-256 bytes", name)
	}
	if size <= 0 || size > MaxSecretSize {
		return nil, fmt.Errorf("secret %q: size must be 1-%d bytes, got %d", name, MaxSecretSize, size)
	}
	var out []byte
	lookup := func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketSecrets).Get([]byte(name)); v != nil {
			if len(v) != size {
				return fmt.Errorf("stored secret has %d bytes, asked for %d", len(v), size)
			}
			out = bytes.Clone(v)
		}
		return nil
	}
	if err := s.view(lookup); err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	if out != nil {
		return out, nil
	}
	fresh := make([]byte, size)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	err := s.update(func(tx *bolt.Tx) error {
		if err := lookup(tx); err != nil || out != nil {
			return err // made by a concurrent call meanwhile
		}
		out = fresh
		return tx.Bucket(bucketSecrets).Put([]byte(name), fresh)
	})
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	return bytes.Clone(out), nil
}
