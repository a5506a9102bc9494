package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Keys in the meta bucket holding the highest virtual-service and
// real-server IDs ever committed.
var (
	keyMaxVSID = []byte("maxVSID")
	keyMaxRSID = []byte("maxRSID")
)

// raiseHighWater records the highest IDs of cfg if they exceed those seen
// before, so that an ID is never handed to a new object after the object
// that had it was deleted (a script holding "vs=4" must not change someone
// else's service).
func raiseHighWater(tx *bolt.Tx, cfg *config.Config) error {
	vs, rs := 0, 0
	cfg.Walk(func(v, _ *config.VirtualService) {
		vs = max(vs, v.ID)
		for _, r := range v.RealServers {
			rs = max(rs, r.ID)
		}
	})
	meta := tx.Bucket(bucketMeta)
	for _, kv := range []struct {
		key []byte
		val int
	}{{keyMaxVSID, vs}, {keyMaxRSID, rs}} {
		if uint64(kv.val) > readU64(meta.Get(kv.key)) {
			if err := meta.Put(kv.key, u64(uint64(kv.val))); err != nil {
				return fmt.Errorf("record highest id: %w", err)
			}
		}
	}
	return nil
}

func readU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// IDHighWater returns the highest virtual-service and real-server IDs ever
// committed; new objects get IDs above them.
func (s *Store) IDHighWater() (vs, rs int, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		vs, rs = int(readU64(meta.Get(keyMaxVSID))), int(readU64(meta.Get(keyMaxRSID)))
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read highest ids: %w", err)
	}
	return vs, rs, nil
}
