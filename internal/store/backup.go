package store

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Backup file format.
//
// A backup is one JSON object, gzip-compressed when written by Backup:
//
//	{
//	  "format":    "fulcrum-backup",
//	  "version":   2,
//	  "created":   "2026-11-30T10:00:00Z",  // when the backup was made
//	  "revision":  12,                      // the revision backed up
//	  "config":    {...},                   // its configuration
//	  "users":     [...],                   // config.User, with password hashes
//	  "apiKeys":   [...],                   // config.APIKey, with key hashes
//	  "checksum":  "<64 hex digits>",
//	  "signature": {"key": "<16 hex digits>", "hmac": "<64 hex digits>"}
//	}
//
// The checksum is the hex-encoded SHA-256 of the byte string (the payload)
//
//	{"format":F,"version":V,"created":C,"revision":R,"config":G,"users":U,"apiKeys":K}
//
// with no spaces, where F, V, C, R, G, U and K are the values of those
// fields as they appear in the file with all insignificant white space
// removed (what encoding/json.Compact does, which changes nothing else) and
// an absent field counts as null. The checksum thus covers every byte of
// the payload as written, independently of how it is decoded, and does not
// depend on indentation. It guards against corruption, not tampering: the
// signature, an HMAC of the same payload under a key of the installation
// that no backup holds, guards against tampering (see backup_key.go).
//
// Version 1, written by older Fulcrums, is version 2 without the
// signature; it is read, as an unsigned backup.
const (
	// BackupFormat is the value of the "format" field of a backup.
	BackupFormat = "fulcrum-backup"
	// BackupVersion is the version of the backup format written; versions
	// 1 (unsigned) and 2 are read.
	BackupVersion = 2
	// MaxBackupSize is the largest backup Restore reads, compressed or not.
	MaxBackupSize = 64 << 20
)

// ErrBadBackup is wrapped by the errors Restore returns when it refuses a
// backup because of the backup's content (as opposed to a failure of the
// store); the refusal changes nothing.
var ErrBadBackup = errors.New("backup refused")

// backupDoc is a backup file. Every field is kept as raw JSON so that the
// checksum covers exactly what is in the file.
type backupDoc struct {
	Format   json.RawMessage `json:"format"`
	Version  json.RawMessage `json:"version"`
	Created  json.RawMessage `json:"created"`
	Revision json.RawMessage `json:"revision"`
	Config   json.RawMessage `json:"config"`
	Users    json.RawMessage `json:"users"`
	APIKeys  json.RawMessage `json:"apiKeys"`
	Checksum json.RawMessage `json:"checksum"`
	// Signature is absent from version 1 and from unsigned backups.
	Signature json.RawMessage `json:"signature,omitempty"`
}

// checksum returns the hex SHA-256 of the payload of d, as defined above.
func (d *backupDoc) checksum() (string, error) {
	p, err := d.payload()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:]), nil
}

// payload returns the byte string that the checksum and the signature of
// d cover, as defined above.
func (d *backupDoc) payload() ([]byte, error) {
	var b bytes.Buffer
	fields := []struct {
		name string
		val  json.RawMessage
	}{
		{"format", d.Format}, {"version", d.Version}, {"created", d.Created}, {"revision", d.Revision},
		{"config", d.Config}, {"users", d.Users}, {"apiKeys", d.APIKeys},
	}
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + f.name + `":`)
		if len(f.val) == 0 {
			b.WriteString("null")
		} else if err := json.Compact(&b, f.val); err != nil {
			return nil, fmt.Errorf("field %s: %w", f.name, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Backup writes the current revision's configuration, the users and the API
// keys, read in one transaction, to w as a gzip-compressed backup document
// (see BackupFormat), signed with the installation's backup signing key.
// The backup holds password and key hashes: keep it as safe as the
// appliance. Installation secrets, the signing key among them, are not
// included.
func (s *Store) Backup(w io.Writer) error {
	key, err := s.signingKey()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	var (
		n     uint64
		doc   []byte
		users []config.User
		keys  []config.APIKey
	)
	err = s.view(func(tx *bolt.Tx) error {
		n = currentNumber(tx)
		if n == 0 {
			var err error
			doc, err = config.EncodeJSON(config.Default())
			if err != nil {
				return err
			}
		} else {
			stored := tx.Bucket(bucketConfigs).Get(u64(n))
			if stored == nil {
				return fmt.Errorf("configuration of revision %d: %w", n, ErrNotFound)
			}
			var err error
			if doc, err = unpackConfig(stored); err != nil {
				return fmt.Errorf("configuration of revision %d: %w", n, err)
			}
		}
		var err error
		if users, err = readUsers(tx); err != nil {
			return err
		}
		keys, err = readAPIKeys(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if !json.Valid(doc) {
		return fmt.Errorf("backup: configuration of revision %d: %w", n, errCorruptValue)
	}
	d := backupDoc{Config: doc}
	for _, f := range []struct {
		dst *json.RawMessage
		v   any
	}{
		{&d.Format, BackupFormat}, {&d.Version, BackupVersion}, {&d.Created, time.Now().UTC()},
		{&d.Revision, n}, {&d.Users, users}, {&d.APIKeys, keys},
	} {
		if *f.dst, err = json.Marshal(f.v); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	payload, err := d.payload()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	sum := sha256.Sum256(payload)
	d.Checksum, _ = json.Marshal(hex.EncodeToString(sum[:])) // a hex string always encodes
	d.Signature, _ = json.Marshal(sign(key, payload))        // two strings always encode
	zw := gzip.NewWriter(w)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false) // keep raw fields byte for byte
	enc.SetIndent("", "  ")
	if err := enc.Encode(&d); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// refusal is an error refusing a backup; it wraps ErrBadBackup and the
// cause, if any.
type refusal struct {
	msg       string
	err       error
	untrusted bool // also wraps ErrUntrustedBackup
}

func (e *refusal) Error() string {
	if e.err == nil {
		return "restore refused: " + e.msg
	}
	return "restore refused: " + e.msg + ": " + e.err.Error()
}

func (e *refusal) Unwrap() []error {
	out := []error{ErrBadBackup}
	if e.untrusted {
		out = append(out, ErrUntrustedBackup)
	}
	if e.err != nil {
		out = append(out, e.err)
	}
	return out
}

func refuse(err error, format string, args ...any) error {
	return &refusal{msg: fmt.Sprintf(format, args...), err: err}
}

// restoreSet is the decoded, checked content of a backup.
type restoreSet struct {
	info  BackupInfo
	cfg   *config.Config // the configuration, validated
	doc   []byte         // cfg packed by packConfig
	users []config.User
	keys  []config.APIKey
}

// Bounds of a backup's metadata.
const (
	// maxBackupRevision is the largest revision a backup may name: the
	// largest integer a JSON number holds exactly everywhere (2^53-1).
	maxBackupRevision = 1<<53 - 1
	// maxClockSkew is how far in the future a backup may have been made,
	// for clocks that differ between installations.
	maxClockSkew = 10 * time.Minute
)

// backupEpoch is a date before which no Fulcrum made a backup.
var backupEpoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// checkTrusted refuses a backup not signed by this installation or a
// trusted key.
func checkTrusted(b BackupInfo) error {
	var why string
	switch b.Signature {
	case SignatureOwn, SignatureTrusted:
		return nil
	case SignatureUnsigned:
		why = "the backup is not signed (made by an older Fulcrum, or its signature was removed)"
	case SignatureUnknownKey:
		why = fmt.Sprintf("the backup is signed by key %s, which this installation does not know (another installation's: import its backup key to trust it)", b.SignedBy)
	default:
		why = "the backup's signature does not match its content: it was changed after it was signed"
	}
	return &refusal{untrusted: true, msg: why + "; restore it only if you know where it comes from, explicitly allowing an unverified backup, after a dry run shows what it changes"}
}

// checkAccounts refuses users that must not be installed: none of role
// admin (everyone would be locked out), or a password hash cheaper than
// minCost that the user does not already have (cur are the current
// users).
func checkAccounts(users, cur []config.User, minCost int) error {
	had := map[string]string{}
	for _, u := range cur {
		had[u.Name] = u.PasswordHash
	}
	admin := false
	for _, u := range users {
		admin = admin || u.Role == config.RoleAdmin
		if u.PasswordHash == "" || had[u.Name] == u.PasswordHash {
			continue
		}
		// A hash bcrypt cannot parse matches no password; one it parses is
		// used as it says.
		if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil && cost < minCost {
			return refuse(nil, "backup holds user %q with a password hash of bcrypt cost %d, below the minimum %d (a cheap hash is easy to crack): set that user's password again where the backup was made", u.Name, cost, minCost)
		}
	}
	if !admin {
		return refuse(nil, "backup holds no user with role %s: restoring its users would lock everyone out", config.RoleAdmin)
	}
	return nil
}

// replaceBucket empties the bucket name and fills it with n entries.
func replaceBucket(tx *bolt.Tx, name []byte, n int, entry func(i int) ([]byte, any)) error {
	if err := tx.DeleteBucket(name); err != nil {
		return err
	}
	b, err := tx.CreateBucket(name)
	if err != nil {
		return err
	}
	for i := range n {
		k, v := entry(i)
		doc, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := b.Put(k, doc); err != nil {
			return err
		}
	}
	return nil
}

// parseBackup decodes and checks a backup file completely, checking its
// signature against keys and its creation time against now.
func parseBackup(data []byte, keys *backupKeys, now time.Time) (*restoreSet, error) {
	if len(data) > MaxBackupSize {
		return nil, refuse(nil, "backup larger than %d MiB", MaxBackupSize>>20)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, refuse(nil, "not a Fulcrum backup: empty file")
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, refuse(err, "not a Fulcrum backup: damaged gzip data")
		}
		plain, err := io.ReadAll(io.LimitReader(zr, MaxBackupSize+1))
		if err != nil {
			return nil, refuse(err, "not a Fulcrum backup: damaged gzip data")
		}
		if len(plain) > MaxBackupSize {
			return nil, refuse(nil, "backup larger than %d MiB uncompressed", MaxBackupSize>>20)
		}
		data = plain
	}
	// Decoding into a map first matches field names exactly (a struct would
	// match them case-insensitively) and finds unknown fields.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, refuse(errors.New(describeJSONError(err)), "not a Fulcrum backup")
	}
	take := func(name string) json.RawMessage {
		v := fields[name]
		delete(fields, name)
		return v
	}
	d := backupDoc{
		Format: take("format"), Version: take("version"), Created: take("created"), Revision: take("revision"),
		Config: take("config"), Users: take("users"), APIKeys: take("apiKeys"), Checksum: take("checksum"),
	}
	var format string
	if json.Unmarshal(d.Format, &format) != nil || format != BackupFormat {
		return nil, refuse(nil, "foreign file: format is %s, not %q", shorten(d.Format), BackupFormat)
	}
	var version int
	if json.Unmarshal(d.Version, &version) != nil || version < 1 || version > BackupVersion {
		return nil, refuse(nil, "unknown backup version %s (this Fulcrum reads versions 1 to %d)", shorten(d.Version), BackupVersion)
	}
	if version >= 2 {
		d.Signature = take("signature")
	}
	if len(fields) > 0 {
		names := slices.Sorted(maps.Keys(fields))
		return nil, refuse(nil, "corrupted: unknown field %s", shorten(mustQuote(names[0])))
	}
	var stated string
	if json.Unmarshal(d.Checksum, &stated) != nil || stated == "" {
		return nil, refuse(nil, "corrupted: no checksum")
	}
	payload, err := d.payload()
	if err != nil {
		return nil, refuse(err, "corrupted")
	}
	sum := sha256.Sum256(payload)
	if !strings.EqualFold(stated, hex.EncodeToString(sum[:])) {
		return nil, refuse(nil, "corrupted: checksum mismatch")
	}

	set := &restoreSet{info: BackupInfo{Version: version}}
	set.info.Signature, set.info.SignedBy = keys.verify(d.Signature, payload)
	if err := json.Unmarshal(d.Created, &set.info.Created); err != nil {
		return nil, refuse(err, "bad field created")
	}
	switch created := set.info.Created; {
	case created.IsZero():
		return nil, refuse(nil, "bad field created: missing")
	case created.After(now.Add(maxClockSkew)):
		return nil, refuse(nil, "bad field created: %s is in the future (this machine's clock says %s)",
			created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case created.Before(backupEpoch):
		return nil, refuse(nil, "bad field created: %s is before any Fulcrum existed", created.UTC().Format(time.RFC3339))
	}
	if err := json.Unmarshal(d.Revision, &set.info.Revision); err != nil {
		return nil, refuse(errors.New(describeJSONError(err)), "bad field revision")
	}
	if set.info.Revision > maxBackupRevision {
		return nil, refuse(nil, "bad field revision: %d is out of range (at most %d)", set.info.Revision, uint64(maxBackupRevision))
	}
	cfg := &config.Config{}
	if len(d.Config) == 0 || string(d.Config) == "null" {
		return nil, refuse(nil, "backup holds no configuration")
	}
	if err := config.DecodeInto(d.Config, cfg); err != nil {
		return nil, refuse(err, "backup holds an invalid configuration")
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, refuse(err, "backup holds an invalid configuration")
	}
	set.cfg = cfg
	if set.doc, err = packConfig(cfg); err != nil {
		return nil, refuse(err, "backup holds an invalid configuration")
	}
	if set.users, err = decodeUsers(d.Users); err != nil {
		return nil, err
	}
	if set.keys, err = decodeKeys(d.APIKeys, set.users); err != nil {
		return nil, err
	}
	return set, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields.
func decodeStrict(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(describeJSONError(err))
	}
	return nil
}

func decodeUsers(raw json.RawMessage) ([]config.User, error) {
	var users []config.User
	if err := decodeStrict(raw, &users); err != nil {
		return nil, refuse(err, "bad field users")
	}
	seen := map[string]bool{}
	for i, u := range users {
		if err := config.ValidateUser(u); err != nil {
			return nil, refuse(prefixErrors(fmt.Sprintf("users[%d]", i), err), "backup holds an invalid user")
		}
		if seen[u.Name] {
			return nil, refuse(nil, "backup holds user %q twice", u.Name)
		}
		seen[u.Name] = true
	}
	return users, nil
}

func decodeKeys(raw json.RawMessage, users []config.User) ([]config.APIKey, error) {
	var keys []config.APIKey
	if err := decodeStrict(raw, &keys); err != nil {
		return nil, refuse(err, "bad field apiKeys")
	}
	seen := map[string]bool{}
	for i, k := range keys {
		if err := validateAPIKey(k); err != nil {
			return nil, refuse(prefixErrors(fmt.Sprintf("apiKeys[%d]", i), err), "backup holds an invalid API key")
		}
		if seen[k.ID] {
			return nil, refuse(nil, "backup holds API key %q twice", k.ID)
		}
		seen[k.ID] = true
		if !slices.ContainsFunc(users, func(u config.User) bool { return u.Name == k.User }) {
			return nil, refuse(nil, "backup holds API key %q of user %q, who is not in the backup", k.ID, k.User)
		}
	}
	return keys, nil
}

// prefixErrors puts prefix in front of the paths of config.Errors.
func prefixErrors(prefix string, err error) error {
	es, ok := config.IsErrors(err)
	if !ok {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	out := make(config.Errors, len(es))
	for i, e := range es {
		e.Path = prefix + "." + e.Path
		out[i] = e
	}
	return out
}

// describeJSONError words a decoding error without Go type names.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("expected %s, got %s", jsonKind(typ.Type), typ.Value)
		}
		return fmt.Sprintf("field %s: expected %s, got %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		if t == reflect.TypeFor[time.Time]() {
			return "a time string"
		}
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative whole number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "another value"
}

// mustQuote returns s as a JSON string.
func mustQuote(s string) json.RawMessage {
	b, _ := json.Marshal(s) // a string always encodes
	return b
}

// shorten renders a raw JSON value for an error message.
func shorten(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "missing"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return "malformed"
	}
	if r := []rune(b.String()); len(r) > 40 {
		return string(r[:40]) + "..."
	}
	return b.String()
}
