package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketTemplates holds imported application templates: name → document.
var bucketTemplates = []byte("templates")

func init() { allBuckets = append(allBuckets, bucketTemplates) }

// Templates returns every imported template document by name.
func (s *Store) Templates() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTemplates).ForEach(func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	return out, nil
}

// PutTemplate stores a template document under name, replacing any.
func (s *Store) PutTemplate(name string, doc []byte) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("put template: bad name %q", name)
	}
	err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTemplates).Put([]byte(name), doc)
	})
	if err != nil {
		return fmt.Errorf("put template %q: %w", name, err)
	}
	return nil
}

// DeleteTemplate removes the template called name, or returns an error
// wrapping ErrNotFound.
func (s *Store) DeleteTemplate(name string) error {
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTemplates)
		if b.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete template %q: %w", name, err)
	}
	return nil
}
