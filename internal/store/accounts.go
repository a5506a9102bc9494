package store

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Limits of API key fields.
const (
	// MaxAPIKeyID is the longest API key ID, in bytes.
	MaxAPIKeyID = 128
	// MaxAPIKeyDescription is the longest API key description, in characters.
	MaxAPIKeyDescription = 128
)

// Users returns every user, sorted by name.
func (s *Store) Users() ([]config.User, error) {
	out := []config.User{}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = readUsers(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	return out, nil
}

// User returns the user called name, or an error wrapping ErrNotFound.
func (s *Store) User(name string) (config.User, error) {
	var u config.User
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketUsers).Get([]byte(name))
		if v == nil || name == "" {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("%w: %v", errCorruptValue, err)
		}
		return nil
	})
	if err != nil {
		return config.User{}, fmt.Errorf("read user %q: %w", name, err)
	}
	return u, nil
}

// PutUser adds u or replaces the user of the same name. u must pass
// config.ValidateUser; the error then holds config.Errors.
func (s *Store) PutUser(u config.User) error {
	if err := config.ValidateUser(u); err != nil {
		return fmt.Errorf("put user %q: %w", u.Name, err)
	}
	doc, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("put user %q: %w", u.Name, err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsers).Put([]byte(u.Name), doc)
	})
	if err != nil {
		return fmt.Errorf("put user %q: %w", u.Name, err)
	}
	return nil
}

// DeleteUser deletes the user called name together with its API keys, in
// one transaction, so that a user created later under the same name does
// not inherit them. It returns an error wrapping ErrNotFound if there is no
// such user.
func (s *Store) DeleteUser(name string) error {
	err := s.update(func(tx *bolt.Tx) error {
		users := tx.Bucket(bucketUsers)
		if name == "" || users.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		if err := users.Delete([]byte(name)); err != nil {
			return err
		}
		keys, err := readAPIKeys(tx)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.User == name {
				if err := tx.Bucket(bucketAPIKeys).Delete([]byte(k.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	return nil
}

// APIKeys returns every API key, sorted by Created (then ID).
func (s *Store) APIKeys() ([]config.APIKey, error) {
	var out []config.APIKey
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = readAPIKeys(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read api keys: %w", err)
	}
	return out, nil
}

// PutAPIKey adds k or replaces the key with the same ID. The key's user must
// exist (else the error wraps ErrNotFound); the ID must be 1-128 printable
// bytes and the description at most 128 characters.
func (s *Store) PutAPIKey(k config.APIKey) error {
	if err := validateAPIKey(k); err != nil {
		return fmt.Errorf("put api key %q: %w", k.ID, err)
	}
	doc, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("put api key %q: %w", k.ID, err)
	}
	err = s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketUsers).Get([]byte(k.User)) == nil {
			return fmt.Errorf("user %q: %w", k.User, ErrNotFound)
		}
		return tx.Bucket(bucketAPIKeys).Put([]byte(k.ID), doc)
	})
	if err != nil {
		return fmt.Errorf("put api key %q: %w", k.ID, err)
	}
	return nil
}

// DeleteAPIKey deletes the API key with the given ID, or returns an error
// wrapping ErrNotFound.
func (s *Store) DeleteAPIKey(id string) error {
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPIKeys)
		if id == "" || b.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete api key %q: %w", id, err)
	}
	return nil
}

// validateAPIKey checks the fields the store relies on.
func validateAPIKey(k config.APIKey) error {
	var es config.Errors
	switch {
	case k.ID == "":
		es = append(es, config.FieldError{Path: "id", Message: "required"})
	case len(k.ID) > MaxAPIKeyID || !printable(k.ID):
		es = append(es, config.FieldError{Path: "id", Message: fmt.Sprintf("must be 1-%d printable bytes", MaxAPIKeyID)})
	}
	if k.User == "" {
		es = append(es, config.FieldError{Path: "user", Message: "required"})
	}
	if utf8.RuneCountInString(k.Description) > MaxAPIKeyDescription {
		es = append(es, config.FieldError{Path: "description", Message: fmt.Sprintf("at most %d characters", MaxAPIKeyDescription)})
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r <= 0x20 || r == 0x7f })
}

func readUsers(tx *bolt.Tx) ([]config.User, error) {
	out := []config.User{}
	err := tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
		var u config.User
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("user %q: %w: %v", k, errCorruptValue, err)
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b config.User) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func readAPIKeys(tx *bolt.Tx) ([]config.APIKey, error) {
	out := []config.APIKey{}
	err := tx.Bucket(bucketAPIKeys).ForEach(func(k, v []byte) error {
		var key config.APIKey
		if err := json.Unmarshal(v, &key); err != nil {
			return fmt.Errorf("api key %q: %w: %v", k, errCorruptValue, err)
		}
		out = append(out, key)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b config.APIKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}
