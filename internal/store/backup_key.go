package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Backup signatures.
//
// Every backup written by Backup is signed with the installation's backup
// signing key: 32 random bytes made when first needed and kept in the
// store's secrets bucket, which no backup holds. The signature is the
// HMAC-SHA256, under that key, of signatureContext followed by the payload
// byte string the checksum covers (see BackupFormat), so it covers every
// field of the backup but the checksum and itself. It is written as
//
//	"signature": {"key": "<key ID>", "hmac": "<64 hex digits>"}
//
// where the key ID (16 hex digits) names the key without revealing it.
//
// Restore accepts a backup signed by this installation's key, or by a key
// imported with ImportBackupKey (the key of another installation, exported
// there with BackupKey, so that an administrator can move backups between
// installations on purpose). Anything else — unsigned, signed by an
// unknown key, or with a signature that does not match — is refused unless
// RestoreOptions.AllowUnsigned is set.
const (
	// backupKeySecret is the name of the installation's signing key in
	// the secrets bucket.
	backupKeySecret = "backup-signing-key"
	// trustedKeyPrefix prefixes, in the secrets bucket, the key ID of an
	// imported key.
	trustedKeyPrefix = "backup-trusted-key:"
	// backupKeySize is the size of a signing key in bytes.
	backupKeySize = 32
	// backupKeyText prefixes an exported key.
	backupKeyText = "fulcrum-backup-key-1:"
	// signatureContext is put before the payload in the HMAC, so that a
	// signature made for backups means nothing elsewhere.
	signatureContext = "fulcrum-backup-signature-1\x00"
	// MaxTrustedBackupKeys is the number of keys ImportBackupKey keeps.
	MaxTrustedBackupKeys = 32
)

// How a backup is signed, as reported in BackupInfo.Signature.
const (
	// SignatureOwn: signed by this installation's key.
	SignatureOwn = "own"
	// SignatureTrusted: signed by a key imported with ImportBackupKey.
	SignatureTrusted = "trusted"
	// SignatureUnsigned: the backup has no signature (made by an older
	// Fulcrum, or with the signature removed).
	SignatureUnsigned = "unsigned"
	// SignatureUnknownKey: signed by a key this installation does not know
	// (another installation's).
	SignatureUnknownKey = "unknown-key"
	// SignatureInvalid: the signature names a known key but does not
	// match: the backup was changed after it was signed.
	SignatureInvalid = "invalid"
)

// ErrUntrustedBackup is wrapped (with ErrBadBackup) by the error of a
// restore refused because the backup is not signed by this installation
// or a trusted key, and RestoreOptions.AllowUnsigned was not given.
var ErrUntrustedBackup = errors.New("backup not signed by this installation")

// ErrBadBackupKey is wrapped by the errors of ImportBackupKey and
// RemoveBackupKey that refuse the request (a malformed key, too many keys,
// removing the own key), as opposed to failures of the store.
var ErrBadBackupKey = errors.New("backup key refused")

// BackupKeyInfo describes a key that backups are checked against.
type BackupKeyInfo struct {
	// ID names the key (16 hex digits); a signed backup carries it.
	ID string `json:"id"`
	// Own is true for this installation's signing key, false for an
	// imported (trusted) one.
	Own bool `json:"own"`
}

// backupSignature is the "signature" field of a backup.
type backupSignature struct {
	Key  string `json:"key"`
	HMAC string `json:"hmac"`
}

// keyID names a signing key: the first 8 bytes of a SHA-256 of it, hex.
func keyID(key []byte) string {
	h := sha256.New()
	h.Write([]byte("fulcrum-backup-key-id\x00"))
	h.Write(key)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// sign returns the signature of payload under key.
func sign(key, payload []byte) backupSignature {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signatureContext))
	m.Write(payload)
	return backupSignature{Key: keyID(key), HMAC: hex.EncodeToString(m.Sum(nil))}
}

// backupKeys are the keys a restore checks signatures against.
type backupKeys struct {
	own     []byte
	trusted map[string][]byte // by key ID
}

// verify says how raw, the "signature" field of a backup with the given
// payload, signs it, and the key ID it names.
func (k *backupKeys) verify(raw json.RawMessage, payload []byte) (state, id string) {
	if len(raw) == 0 || string(raw) == "null" {
		return SignatureUnsigned, ""
	}
	var sig backupSignature
	if decodeStrict(raw, &sig) != nil || sig.Key == "" || sig.HMAC == "" {
		return SignatureInvalid, ""
	}
	if len(sig.Key) > 64 || !printable(sig.Key) {
		return SignatureInvalid, ""
	}
	key, state := k.own, SignatureOwn
	if sig.Key != keyID(k.own) {
		key, state = k.trusted[sig.Key], SignatureTrusted
	}
	if key == nil {
		return SignatureUnknownKey, sig.Key
	}
	want := sign(key, payload)
	got, err := hex.DecodeString(sig.HMAC)
	if err != nil || !hmac.Equal(got, mustHex(want.HMAC)) {
		return SignatureInvalid, sig.Key
	}
	return state, sig.Key
}

func mustHex(s string) []byte {
	b, _ := hex.DecodeString(s) // only called on hex.EncodeToString output
	return b
}

// signingKey returns the installation's signing key, making it on first
// use.
func (s *Store) signingKey() ([]byte, error) {
	key, err := s.Secret(backupKeySecret, backupKeySize)
	if err != nil {
		return nil, fmt.Errorf("backup signing key: %w", err)
	}
	return key, nil
}

// loadBackupKeys reads the signing key and the trusted keys.
func (s *Store) loadBackupKeys() (*backupKeys, error) {
	own, err := s.signingKey()
	if err != nil {
		return nil, err
	}
	k := &backupKeys{own: own, trusted: map[string][]byte{}}
	err = s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSecrets).Cursor()
		prefix := []byte(trustedKeyPrefix)
		for name, v := c.Seek(prefix); name != nil && bytes.HasPrefix(name, prefix); name, v = c.Next() {
			if len(v) == backupKeySize {
				k.trusted[string(name[len(prefix):])] = bytes.Clone(v)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trusted backup keys: %w", err)
	}
	return k, nil
}

// BackupKey returns this installation's backup signing key as text, for
// ImportBackupKey on another installation, and its ID. Whoever holds the
// text can sign backups that installation trusts: treat it as a password.
func (s *Store) BackupKey() (text string, id string, err error) {
	key, err := s.signingKey()
	if err != nil {
		return "", "", err
	}
	return backupKeyText + base64.RawURLEncoding.EncodeToString(key), keyID(key), nil
}

// ImportBackupKey adds a key exported by BackupKey on another installation
// to the keys whose backups Restore trusts, and returns its description.
// Importing this installation's own key, or a key already imported,
// changes nothing. At most MaxTrustedBackupKeys keys are kept; the error
// of a malformed key says so without repeating it.
func (s *Store) ImportBackupKey(text string) (BackupKeyInfo, error) {
	text = strings.TrimSpace(text)
	enc, ok := strings.CutPrefix(text, backupKeyText)
	if !ok {
		return BackupKeyInfo{}, fmt.Errorf("import backup key: %w: not a Fulcrum backup key (one starts with %q)", ErrBadBackupKey, backupKeyText)
	}
	key, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(key) != backupKeySize {
		return BackupKeyInfo{}, fmt.Errorf("import backup key: %w: damaged key (expected 43 base64url characters after the prefix)", ErrBadBackupKey)
	}
	own, err := s.signingKey()
	if err != nil {
		return BackupKeyInfo{}, fmt.Errorf("import backup key: %w", err)
	}
	id := keyID(key)
	if hmac.Equal(own, key) {
		return BackupKeyInfo{ID: id, Own: true}, nil
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		name := []byte(trustedKeyPrefix + id)
		if b.Get(name) != nil {
			return nil
		}
		n := 0
		c := b.Cursor()
		prefix := []byte(trustedKeyPrefix)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		if n >= MaxTrustedBackupKeys {
			return fmt.Errorf("%w: already %d imported keys: remove one first", ErrBadBackupKey, n)
		}
		return b.Put(name, key)
	})
	if err != nil {
		return BackupKeyInfo{}, fmt.Errorf("import backup key: %w", err)
	}
	return BackupKeyInfo{ID: id}, nil
}

// BackupKeys lists this installation's signing key first, then the
// imported keys by ID.
func (s *Store) BackupKeys() ([]BackupKeyInfo, error) {
	k, err := s.loadBackupKeys()
	if err != nil {
		return nil, err
	}
	out := []BackupKeyInfo{{ID: keyID(k.own), Own: true}}
	for _, id := range slices.Sorted(maps.Keys(k.trusted)) {
		out = append(out, BackupKeyInfo{ID: id})
	}
	return out, nil
}

// RemoveBackupKey forgets an imported key, so that backups signed with it
// are no longer trusted. The installation's own key cannot be removed; an
// unknown ID gives an error wrapping ErrNotFound.
func (s *Store) RemoveBackupKey(id string) error {
	own, err := s.signingKey()
	if err != nil {
		return fmt.Errorf("remove backup key %q: %w", id, err)
	}
	if id == keyID(own) {
		return fmt.Errorf("remove backup key %q: %w: it is this installation's own signing key", id, ErrBadBackupKey)
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		name := []byte(trustedKeyPrefix + id)
		if id == "" || b.Get(name) == nil {
			return ErrNotFound
		}
		return b.Delete(name)
	})
	if err != nil {
		return fmt.Errorf("remove backup key %q: %w", id, err)
	}
	return nil
}
