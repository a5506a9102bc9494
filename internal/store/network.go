package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
)

// bucketNetwork holds the node's network revisions: revision → the JSON
// of a NetRevision (its change record, the settings and whether it was
// confirmed). They are node-local: apart from the service configuration's
// revisions, numbered on their own, and never in a backup.
var bucketNetwork = []byte("network")

func init() { allBuckets = append(allBuckets, bucketNetwork) }

// NetRevision is one stored generation of the node's network settings
// with the change that made it.
type NetRevision struct {
	Change
	// Network is the settings of this revision; never nil.
	Network *netcfg.Network `json:"network"`
	// Confirmed is true once the change was confirmed (or was made
	// without a confirm window); an unconfirmed revision is rolled back
	// when its window ends, or at the next start.
	Confirmed bool `json:"confirmed"`
}

// NetworkCurrent returns the current network revision. Before the first
// network change that is revision 0: empty settings, confirmed.
func (s *Store) NetworkCurrent() (NetRevision, error) {
	var r NetRevision
	err := s.view(func(tx *bolt.Tx) error {
		k, v := tx.Bucket(bucketNetwork).Cursor().Last()
		if k == nil {
			r = emptyNetRevision()
			return nil
		}
		var err error
		r, err = decodeNetRevision(k, v)
		return err
	})
	if err != nil {
		return NetRevision{}, fmt.Errorf("read current network revision: %w", err)
	}
	return r, nil
}

// NetworkConfirmed returns the newest confirmed network revision: the
// settings an unconfirmed change is rolled back to. Revision 0 (empty
// settings) when none is stored.
func (s *Store) NetworkConfirmed() (NetRevision, error) {
	r := emptyNetRevision()
	err := s.view(func(tx *bolt.Tx) error {
		return walkBack(tx.Bucket(bucketNetwork), 0, func(k, v []byte) (bool, error) {
			nr, err := decodeNetRevision(k, v)
			if err != nil {
				return false, err
			}
			if nr.Confirmed {
				r = nr
				return false, nil
			}
			return true, nil
		})
	})
	if err != nil {
		return NetRevision{}, fmt.Errorf("read confirmed network revision: %w", err)
	}
	return r, nil
}

// NetworkRevision returns network revision n, or an error wrapping
// ErrNotFound if it never existed or has been pruned. Revision 0 is the
// empty settings.
func (s *Store) NetworkRevision(n uint64) (NetRevision, error) {
	if n == 0 {
		return emptyNetRevision(), nil
	}
	var r NetRevision
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketNetwork).Get(u64(n))
		if v == nil {
			return ErrNotFound
		}
		var err error
		r, err = decodeNetRevision(u64(n), v)
		return err
	})
	if err != nil {
		return NetRevision{}, fmt.Errorf("read network revision %d: %w", n, err)
	}
	return r, nil
}

// CommitNetwork stores n as the next network revision with the change
// ch, in one transaction, confirmed or not. base is the network revision
// the change was prepared against; if it is no longer the current one,
// CommitNetwork returns a bare *ConflictError and changes nothing.
// ch.Revision is ignored and ch.Time, if zero, is set to now. Revisions
// beyond Options.MaxRevisions are pruned, oldest first, except the newest
// confirmed one. CommitNetwork does not validate n.
func (s *Store) CommitNetwork(base uint64, ch Change, n *netcfg.Network, confirmed bool) (NetRevision, error) {
	if n == nil {
		return NetRevision{}, errors.New("commit network: no settings")
	}
	var out NetRevision
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNetwork)
		var cur uint64
		if k, _ := b.Cursor().Last(); len(k) == 8 {
			cur = binary.BigEndian.Uint64(k)
		}
		if cur != base {
			return &ConflictError{Base: base, Current: cur}
		}
		ch.Revision = cur + 1
		if ch.Time.IsZero() {
			ch.Time = time.Now().UTC()
		}
		out = NetRevision{Change: ch, Network: n.Clone(), Confirmed: confirmed}
		doc, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode network revision: %w", err)
		}
		if err := b.Put(u64(ch.Revision), doc); err != nil {
			return fmt.Errorf("store network revision %d: %w", ch.Revision, err)
		}
		return s.pruneNetwork(b, ch.Revision)
	})
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		return NetRevision{}, conflict
	}
	if err != nil {
		return NetRevision{}, fmt.Errorf("commit network: %w", err)
	}
	return out, nil
}

// pruneNetwork deletes the network revisions older than the newest
// Options.MaxRevisions (newest is the newest), keeping the newest
// confirmed one, which a rollback needs.
func (s *Store) pruneNetwork(b *bolt.Bucket, newest uint64) error {
	if newest <= uint64(s.opts.MaxRevisions) {
		return nil
	}
	keep := newest - uint64(s.opts.MaxRevisions) + 1
	var confirmed uint64
	err := walkBack(b, 0, func(k, v []byte) (bool, error) {
		nr, err := decodeNetRevision(k, v)
		if err != nil {
			return false, err
		}
		if nr.Confirmed {
			confirmed = nr.Revision
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("prune network revisions: %w", err)
	}
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.First(); len(k) == 8 && binary.BigEndian.Uint64(k) < keep; k, _ = c.Next() {
		if binary.BigEndian.Uint64(k) != confirmed {
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("prune network revisions: %w", err)
		}
	}
	return nil
}

// ConfirmNetwork marks network revision rev confirmed. It returns an
// error wrapping ErrNotFound if rev is not stored.
func (s *Store) ConfirmNetwork(rev uint64) error {
	if rev == 0 {
		return nil // the empty settings are confirmed by nature
	}
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNetwork)
		v := b.Get(u64(rev))
		if v == nil {
			return ErrNotFound
		}
		nr, err := decodeNetRevision(u64(rev), v)
		if err != nil {
			return err
		}
		if nr.Confirmed {
			return nil
		}
		nr.Confirmed = true
		doc, err := json.Marshal(nr)
		if err != nil {
			return fmt.Errorf("encode network revision: %w", err)
		}
		return b.Put(u64(rev), doc)
	})
	if err != nil {
		return fmt.Errorf("confirm network revision %d: %w", rev, err)
	}
	return nil
}

// NetworkHistory returns the changes of the stored network revisions
// older than before, newest first, at most limit of them. before 0 means
// from the newest; limit <= 0 means 100.
func (s *Store) NetworkHistory(before uint64, limit int) ([]Change, error) {
	if limit <= 0 {
		limit = 100
	}
	out := []Change{}
	err := s.view(func(tx *bolt.Tx) error {
		return walkBack(tx.Bucket(bucketNetwork), before, func(k, v []byte) (bool, error) {
			nr, err := decodeNetRevision(k, v)
			if err != nil {
				return false, err
			}
			out = append(out, nr.Change)
			return len(out) < limit, nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read network history: %w", err)
	}
	return out, nil
}

// emptyNetRevision is network revision 0: no settings, confirmed.
func emptyNetRevision() NetRevision {
	return NetRevision{Network: &netcfg.Network{}, Confirmed: true}
}

// decodeNetRevision decodes the stored network revision v under key k,
// checking that it names its own number.
func decodeNetRevision(k, v []byte) (NetRevision, error) {
	if len(k) != 8 {
		return NetRevision{}, fmt.Errorf("network revision key of %d bytes: %w", len(k), errCorruptValue)
	}
	n := binary.BigEndian.Uint64(k)
	var nr NetRevision
	if err := json.Unmarshal(v, &nr); err != nil {
		return NetRevision{}, fmt.Errorf("network revision %d: %w: %v", n, errCorruptValue, err)
	}
	if nr.Revision != n || nr.Network == nil {
		return NetRevision{}, fmt.Errorf("network revision %d: %w: it says revision %d", n, errCorruptValue, nr.Revision)
	}
	return nr, nil
}
