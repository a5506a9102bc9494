package store

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

var t0 = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

// populate gives s revisions, users and API keys.
func populate(t testing.TB, s *Store, revisions int) {
	t.Helper()
	mustCommit(t, s, revisions)
	users := []config.User{
		{Name: "bal", Role: config.RoleAdmin, PasswordHash: "$2a$10$bal", Created: t0, PasswordChanged: t0},
		{Name: "ops", Role: config.RoleOperator, PasswordHash: "$2a$10$ops", Created: t0.Add(time.Hour), PasswordChanged: t0.Add(2 * time.Hour)},
		{Name: "view", Role: config.RoleReadOnly, Created: t0},
	}
	for _, u := range users {
		if err := s.PutUser(u); err != nil {
			t.Fatal(err)
		}
	}
	keys := []config.APIKey{
		{ID: "ci", User: "ops", Hash: strings.Repeat("ab", 32), Description: "CI <&> \u2028 deploys", Created: t0.Add(3 * time.Hour)},
		{ID: "mon", User: "view", Hash: strings.Repeat("cd", 32), Created: t0.Add(4 * time.Hour), LastUsed: t0.Add(5 * time.Hour)},
	}
	for _, k := range keys {
		if err := s.PutAPIKey(k); err != nil {
			t.Fatal(err)
		}
	}
}

func backupBytes(t testing.TB, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// snapshot is what a refused restore must leave unchanged.
type snapshot struct {
	cur   Revision
	users []config.User
	keys  []config.APIKey
	hist  []Change
}

func snap(t testing.TB, s *Store) snapshot {
	t.Helper()
	cur, err := s.Current()
	if err != nil {
		t.Fatal(err)
	}
	users, err := s.Users()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.APIKeys()
	if err != nil {
		t.Fatal(err)
	}
	hist, err := s.History(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{cur, users, keys, hist}
}

func (a snapshot) equal(b snapshot) bool {
	return a.cur.Change == b.cur.Change && config.Equal(a.cur.Config, b.cur.Config) &&
		reflect.DeepEqual(a.users, b.users) && reflect.DeepEqual(a.keys, b.keys) && reflect.DeepEqual(a.hist, b.hist)
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	src := openT(t, t.TempDir(), Options{})
	populate(t, src, 12)
	cfg := gen(12)
	cfg.VirtualServices[0].NickName = "a<b>&c \u2028 é"
	if _, err := src.Commit(12, Change{Summary: "html"}, cfg); err != nil {
		t.Fatal(err)
	}
	want := snap(t, src)
	backup := backupBytes(t, src)
	if len(backup) < 2 || backup[0] != 0x1f || backup[1] != 0x8b {
		t.Fatal("backup is not gzip-compressed")
	}
	var head struct {
		Format    string `json:"format"`
		Version   int    `json:"version"`
		Revision  uint64 `json:"revision"`
		Created   time.Time
		Checksum  string `json:"checksum"`
		Signature struct {
			Key  string `json:"key"`
			HMAC string `json:"hmac"`
		} `json:"signature"`
	}
	if err := json.Unmarshal(gunzip(t, backup), &head); err != nil {
		t.Fatal(err)
	}
	_, srcKeyID, err := src.BackupKey()
	if err != nil {
		t.Fatal(err)
	}
	if head.Format != "fulcrum-backup" || head.Version != 2 || head.Revision != 13 || len(head.Checksum) != 64 ||
		time.Since(head.Created) > time.Minute || head.Signature.Key != srcKeyID || len(head.Signature.HMAC) != 64 {
		t.Errorf("backup head = %+v", head)
	}

	for _, tc := range []struct {
		name string
		data []byte
	}{{"gzip", backup}, {"plain JSON", gunzip(t, backup)}} {
		t.Run(tc.name, func(t *testing.T) {
			dst := openT(t, t.TempDir(), Options{})
			trust(t, dst, src) // moving a backup between installations on purpose
			r, plan, err := dst.RestoreWith(bytes.NewReader(tc.data), Change{User: "bal", Source: "wui"}, RestoreOptions{Accounts: true})
			if err != nil {
				t.Fatal(err)
			}
			wantSummary := fmt.Sprintf("restore from backup of revision 13 made %s signed by trusted key %s: ",
				head.Created.UTC().Format(time.RFC3339), srcKeyID)
			if r.Revision != 1 || !strings.HasPrefix(r.Summary, wantSummary) || r.User != "bal" || r.Source != "wui" {
				t.Errorf("Restore = %+v, want summary %q...", r.Change, wantSummary)
			}
			if plan.Backup.Signature != SignatureTrusted || plan.Backup.SignedBy != srcKeyID || !plan.AccountsRestored ||
				len(plan.Diff) == 0 || len(plan.Users) != 3 || len(plan.APIKeys) != 2 {
				t.Errorf("plan = %+v", plan)
			}
			got := snap(t, dst)
			if !config.Equal(got.cur.Config, want.cur.Config) || got.cur.Config.VirtualServices[0].NickName != cfg.VirtualServices[0].NickName {
				t.Error("restored configuration differs")
			}
			if !reflect.DeepEqual(got.users, want.users) {
				t.Errorf("users = %+v, want %+v", got.users, want.users)
			}
			if !reflect.DeepEqual(got.keys, want.keys) {
				t.Errorf("keys = %+v, want %+v", got.keys, want.keys)
			}
			// A backup of the restored store restores again, where its
			// key is trusted.
			trust(t, src, dst)
			if _, err := src.Restore(bytes.NewReader(backupBytes(t, dst)), Change{Summary: "back"}); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Restoring into the source keeps its history.
	h, err := src.History(0, 0)
	if err != nil || len(h) != 15 || h[0].Summary != "back" || h[0].Revision != 15 {
		t.Errorf("history after restores: %d entries, %v", len(h), err)
	}
}

// trust makes dst trust the backups of src.
func trust(t testing.TB, dst, src *Store) {
	t.Helper()
	text, id, err := src.BackupKey()
	if err != nil {
		t.Fatal(err)
	}
	info, err := dst.ImportBackupKey(text)
	if err != nil || info.ID != id || info.Own {
		t.Fatalf("ImportBackupKey = %+v, %v", info, err)
	}
}

func TestRestoreReplacesAccounts(t *testing.T) {
	src := openT(t, t.TempDir(), Options{})
	populate(t, src, 1)
	backup := backupBytes(t, src)

	dst := openT(t, t.TempDir(), Options{})
	mustCommit(t, dst, 3)
	if err := dst.PutUser(config.User{Name: "other", Role: config.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if err := dst.PutAPIKey(config.APIKey{ID: "old", User: "other"}); err != nil {
		t.Fatal(err)
	}
	r, _, err := dst.RestoreWith(bytes.NewReader(backup), Change{Summary: "mine"}, RestoreOptions{AllowUnsigned: true, Accounts: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Revision != 4 || r.Summary != "mine" || !config.Equal(r.Config, gen(1)) {
		t.Errorf("Restore = %+v", r.Change)
	}
	if _, err := dst.User("other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old user survived: %v", err)
	}
	keys, _ := dst.APIKeys()
	if len(keys) != 2 || keys[0].ID != "ci" {
		t.Errorf("keys = %+v", keys)
	}
	if h, _ := dst.History(0, 0); len(h) != 4 {
		t.Errorf("history has %d entries, want 4", len(h))
	}
}

func TestBackupOfFreshStore(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	// No users: the configuration restores, the users cannot.
	b := backupBytes(t, s)
	_, _, err := s.RestoreWith(bytes.NewReader(b), Change{}, RestoreOptions{Accounts: true})
	if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), "no user with role admin") {
		t.Fatalf("Restore = %v", err)
	}
	r, err := s.Restore(bytes.NewReader(b), Change{})
	if err != nil || r.Revision != 1 || !config.Equal(r.Config, config.Default()) {
		t.Fatalf("Restore = %+v, %v", r, err)
	}
	if err := s.PutUser(config.User{Name: "bal", Role: config.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	r, _, err = s.RestoreWith(bytes.NewReader(backupBytes(t, s)), Change{}, RestoreOptions{Accounts: true})
	if err != nil || r.Revision != 2 || !config.Equal(r.Config, config.Default()) {
		t.Fatalf("Restore = %+v, %v", r, err)
	}
}

// reseal decodes a plain backup, lets edit change it and returns it with a
// correct checksum.
func reseal(t testing.TB, plain []byte, edit func(d *backupDoc)) []byte {
	t.Helper()
	var d backupDoc
	if err := json.Unmarshal(plain, &d); err != nil {
		t.Fatal(err)
	}
	edit(&d)
	sum, err := d.checksum()
	if err != nil {
		t.Fatal(err)
	}
	d.Checksum, _ = json.Marshal(sum)
	out, err := json.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// editJSON decodes raw into a generic value, lets edit change it and
// encodes it again.
func editJSON(t testing.TB, raw json.RawMessage, edit func(v any) any) json.RawMessage {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(edit(v))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestRestoreRefusals(t *testing.T) {
	src := openT(t, t.TempDir(), Options{})
	populate(t, src, 3)
	backup := backupBytes(t, src)
	plain := gunzip(t, backup)

	flip := func(b []byte, find string) []byte {
		out := bytes.Clone(b)
		i := bytes.Index(out, []byte(find))
		if i < 0 {
			t.Fatalf("%q not in backup", find)
		}
		out[i] ^= 0x01
		return out
	}
	// A gzip bomb: 65 concatenated members of 1 MiB of zeros each, which
	// gzip readers decompress as one stream.
	bomb := bytes.Repeat(gzipBytes(t, make([]byte, 1<<20)), MaxBackupSize>>20+1)

	tests := []struct {
		name   string
		data   io.Reader
		want   []string
		fields bool // the error holds config.Errors
	}{
		{"empty", strings.NewReader(""), []string{"not a Fulcrum backup: empty file"}, false},
		{"white space", strings.NewReader(" \n"), []string{"not a Fulcrum backup: empty file"}, false},
		{"garbage", strings.NewReader("\x00\x01garbage"), []string{"not a Fulcrum backup"}, false},
		{"YAML", strings.NewReader("format: fulcrum-backup\n"), []string{"not a Fulcrum backup"}, false},
		{"JSON array", strings.NewReader("[1,2,3]"), []string{"not a Fulcrum backup: expected an object, got array"}, false},
		{"trailing data", bytes.NewReader(append(bytes.Clone(plain), "{}"...)), []string{"not a Fulcrum backup"}, false},
		{"truncated gzip", bytes.NewReader(backup[:len(backup)/2]), []string{"not a Fulcrum backup: damaged gzip data"}, false},
		{"gzip of garbage", bytes.NewReader(gzipBytes(t, []byte("hello"))), []string{"not a Fulcrum backup"}, false},
		{"foreign JSON", strings.NewReader(`{"hello": "world"}`), []string{"foreign file", "format is missing"}, false},
		{"other format", bytes.NewReader(bytes.Replace(plain, []byte(`"fulcrum-backup"`), []byte(`"kemp-backup"`), 1)), []string{"foreign file", `"kemp-backup"`}, false},
		{"version 3", bytes.NewReader(bytes.Replace(plain, []byte(`"version": 2`), []byte(`"version": 3`), 1)), []string{"unknown backup version 3"}, false},
		{"version 0", bytes.NewReader(bytes.Replace(plain, []byte(`"version": 2`), []byte(`"version": 0`), 1)), []string{"unknown backup version 0"}, false},
		{"version string", bytes.NewReader(bytes.Replace(plain, []byte(`"version": 2`), []byte(`"version": "2"`), 1)), []string{"unknown backup version"}, false},
		{"signature in version 1", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Version = json.RawMessage(`1`) })), []string{`corrupted: unknown field "signature"`}, false},
		{"flipped byte in config", bytes.NewReader(flip(plain, "rev 3 service")), []string{"corrupted", "checksum mismatch"}, false},
		{"flipped byte in users", bytes.NewReader(flip(plain, "$2a$10$ops")), []string{"corrupted"}, false},
		{"flipped byte gzip", bytes.NewReader(gzipBytes(t, flip(plain, "operator"))), []string{"corrupted"}, false},
		{"missing checksum", bytes.NewReader(func() []byte {
			b := reseal(t, plain, func(d *backupDoc) {})
			var m map[string]json.RawMessage
			_ = json.Unmarshal(b, &m)
			delete(m, "checksum")
			out, _ := json.Marshal(m)
			return out
		}()), []string{"corrupted: no checksum"}, false},
		{"unknown field", bytes.NewReader(bytes.Replace(plain, []byte(`"version": 2`), []byte(`"version": 2, "extra": true`), 1)), []string{`corrupted: unknown field "extra"`}, false},
		{"field name in other case", bytes.NewReader(bytes.Replace(plain, []byte(`"config":`), []byte(`"Config":`), 1)), []string{`unknown field "Config"`}, false},
		{"invalid config", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.Config = editJSON(t, d.Config, func(v any) any {
				vs := v.(map[string]any)["virtualServices"].([]any)[0].(map[string]any)
				vs["port"] = 70000
				vs["schedule"] = "random"
				return v
			})
		})), []string{"invalid configuration", "virtualServices[0].port: must be 1-65535, got 70000", "virtualServices[0].schedule"}, true},
		{"unknown config field", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.Config = editJSON(t, d.Config, func(v any) any { v.(map[string]any)["bogus"] = 1; return v })
		})), []string{"invalid configuration", "bogus: unknown field"}, true},
		{"config not an object", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Config = json.RawMessage(`[1]`) })), []string{"invalid configuration"}, true},
		{"no config", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Config = nil })), []string{"no configuration"}, false},
		{"no admin", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.Users = editJSON(t, d.Users, func(v any) any {
				for _, u := range v.([]any) {
					if u.(map[string]any)["role"] == "admin" {
						u.(map[string]any)["role"] = "operator"
					}
				}
				return v
			})
		})), []string{"no user with role admin"}, false},
		{"no users", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Users = json.RawMessage(`[]`); d.APIKeys = nil })), []string{"no user with role admin"}, false},
		{"invalid user", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.Users = editJSON(t, d.Users, func(v any) any { v.([]any)[1].(map[string]any)["name"] = "Not Valid"; return v })
		})), []string{"invalid user", "users[1].name"}, true},
		{"duplicate user", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.Users = editJSON(t, d.Users, func(v any) any { return append(v.([]any), v.([]any)[0]) })
		})), []string{`user "bal" twice`}, false},
		{"users wrong type", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Users = json.RawMessage(`{"bal":1}`) })), []string{"bad field users: expected a list, got object"}, false},
		{"unknown user field", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.Users = editJSON(t, d.Users, func(v any) any { v.([]any)[0].(map[string]any)["root"] = true; return v })
		})), []string{"bad field users", "root"}, false},
		{"key of unknown user", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.APIKeys = editJSON(t, d.APIKeys, func(v any) any { v.([]any)[0].(map[string]any)["user"] = "ghost"; return v })
		})), []string{`user "ghost"`}, false},
		{"key without id", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.APIKeys = editJSON(t, d.APIKeys, func(v any) any { v.([]any)[0].(map[string]any)["id"] = ""; return v })
		})), []string{"invalid API key", "apiKeys[0].id"}, true},
		{"bad created", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Created = json.RawMessage(`"yesterday"`) })), []string{"bad field created"}, false},
		{"no created", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Created = nil })), []string{"bad field created"}, false},
		{"bad revision", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Revision = json.RawMessage(`-1`) })), []string{"bad field revision: expected a non-negative whole number, got number -1"}, false},
		{"revision 2^64-1", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Revision = json.RawMessage(`18446744073709551615`) })),
			[]string{"bad field revision: 18446744073709551615 is out of range (at most 9007199254740991)"}, false},
		{"revision 2^53", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Revision = json.RawMessage(`9007199254740992`) })), []string{"bad field revision", "out of range"}, false},
		{"revision 2^64", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Revision = json.RawMessage(`18446744073709551616`) })), []string{"bad field revision"}, false},
		{"created in 2999", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Created = json.RawMessage(`"2999-01-01T00:00:00Z"`) })),
			[]string{"bad field created: 2999-01-01T00:00:00Z is in the future"}, false},
		{"created in an hour", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Created = mustQuote(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)) })),
			[]string{"bad field created", "in the future"}, false},
		{"created in 1970", bytes.NewReader(reseal(t, plain, func(d *backupDoc) { d.Created = json.RawMessage(`"1970-01-01T00:00:01Z"`) })),
			[]string{"bad field created: 1970-01-01T00:00:01Z is before any Fulcrum existed"}, false},
		{"cheap bcrypt hash", bytes.NewReader(reseal(t, plain, func(d *backupDoc) {
			d.Users = editJSON(t, d.Users, func(v any) any {
				v.([]any)[1].(map[string]any)["passwordHash"] = cheapHash(t)
				return v
			})
		})), []string{`user "ops"`, "bcrypt cost 4, below the minimum 10"}, false},
		{"too large", io.LimitReader(zeros{}, MaxBackupSize+10), []string{"larger than 64 MiB"}, false},
		{"gzip bomb", bytes.NewReader(bomb), []string{"larger than 64 MiB uncompressed"}, false},
	}

	dst := openT(t, t.TempDir(), Options{})
	populate(t, dst, 2)
	if err := dst.PutUser(config.User{Name: "local", Role: config.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	before := snap(t, dst)
	// The content checks hold whatever the signature, and when users are
	// restored too.
	all := RestoreOptions{AllowUnsigned: true, Accounts: true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := dst.RestoreWith(tc.data, Change{User: "bal"}, all)
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			if !errors.Is(err, ErrBadBackup) {
				t.Errorf("error %q does not wrap ErrBadBackup", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, ok := config.IsErrors(err); ok != tc.fields {
				t.Errorf("config.IsErrors = %v, want %v (%v)", ok, tc.fields, err)
			}
			if !snap(t, dst).equal(before) {
				t.Error("a refused restore changed the store")
			}
		})
	}
	// The unmodified backup, resealed, is accepted: the edits above are
	// what made the others fail.
	if _, _, err := dst.RestoreWith(bytes.NewReader(reseal(t, plain, func(*backupDoc) {})), Change{}, all); err != nil {
		t.Fatalf("resealed backup refused: %v", err)
	}
}

// errReader fails after some bytes.
type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), r.n)
	clear(p[:n])
	r.n -= n
	return n, nil
}

func TestRestoreReadError(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	_, err := s.Restore(&errReader{n: 100}, Change{})
	if err == nil || errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("Restore = %v", err)
	}
}

func TestChecksumIgnoresWhitespace(t *testing.T) {
	src := openT(t, t.TempDir(), Options{})
	populate(t, src, 2)
	plain := gunzip(t, backupBytes(t, src))
	var compact bytes.Buffer
	if err := json.Compact(&compact, plain); err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, plain, "\t", "\t\t"); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{compact.Bytes(), indented.Bytes()} {
		if _, err := src.Restore(bytes.NewReader(b), Change{}); err != nil {
			t.Errorf("Restore: %v", err)
		}
	}
}

// cheapHash is a real bcrypt hash of cost 4, as a forger would make it.
func cheapHash(t testing.TB) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("forged password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
