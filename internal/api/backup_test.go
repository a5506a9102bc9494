package api

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// forgedKey is the secret of the API key a forged backup adds.
const forgedKey = "fk_bad0bad0bad0bad0_forgedforgedforgedforged"

// unzip returns the JSON of a backup.
func unzip(t *testing.T, b []byte) []byte {
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

// editBackup decodes a plain backup, lets edit change its fields and
// recomputes the checksum as the format describes it (SHA-256 of the
// compacted payload fields), as someone editing a backup by hand would.
func editBackup(t *testing.T, plain []byte, edit func(m map[string]json.RawMessage)) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(plain, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	var payload bytes.Buffer
	payload.WriteByte('{')
	for i, name := range []string{"format", "version", "created", "revision", "config", "users", "apiKeys"} {
		if i > 0 {
			payload.WriteByte(',')
		}
		payload.WriteString(`"` + name + `":`)
		if v, ok := m[name]; ok {
			if err := json.Compact(&payload, v); err != nil {
				t.Fatal(err)
			}
		} else {
			payload.WriteString("null")
		}
	}
	payload.WriteByte('}')
	sum := sha256.Sum256(payload.Bytes())
	m["checksum"], _ = json.Marshal(hex.EncodeToString(sum[:]))
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// forgeBackup adds the administrator "eve" (password "forged password",
// bcrypt cost 4) and an API key for her to a plain backup.
func forgeBackup(t *testing.T, plain []byte) []byte {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("forged password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return editBackup(t, plain, func(m map[string]json.RawMessage) {
		var users, keys []map[string]any
		_ = json.Unmarshal(m["users"], &users)
		_ = json.Unmarshal(m["apiKeys"], &keys)
		users = append(users, map[string]any{"name": "eve", "role": "admin", "passwordHash": string(hash),
			"created": "2026-01-01T00:00:00Z", "passwordChanged": "2026-01-01T00:00:00Z"})
		sum := sha256.Sum256([]byte(forgedKey))
		keys = append(keys, map[string]any{"id": "bad0bad0bad0bad0", "user": "eve", "hash": hex.EncodeToString(sum[:]),
			"created": "2026-01-01T00:00:00Z"})
		m["users"], _ = json.Marshal(users)
		m["apiKeys"], _ = json.Marshal(keys)
	})
}

// TestRestoreForgedBackup: a backup edited to add an administrator with a
// cheap hash and an API key, checksum recomputed, does not grant access:
// it is refused; allowed explicitly, a dry run names the user and the key;
// its users are refused for the cheap hash; its configuration alone
// restores without them.
func TestRestoreForgedBackup(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, http.StatusCreated)
	b := e.must(req{method: "GET", path: "/api/v1/backup"}, http.StatusOK)
	forged := string(forgeBackup(t, unzip(t, b.body)))
	rev := e.ctl.Current().Revision
	eveCannot := func() {
		t.Helper()
		if r := e.do(req{method: "GET", path: "/api/v1/users", user: "eve", pass: "forged password"}); r.status != http.StatusUnauthorized {
			t.Fatalf("eve's password: status %d", r.status)
		}
		if r := e.do(req{method: "GET", path: "/api/v1/users", noAuth: true, header: map[string]string{"Authorization": "Bearer " + forgedKey}}); r.status != http.StatusUnauthorized {
			t.Fatalf("eve's API key: status %d", r.status)
		}
	}

	for _, q := range []string{"", "?users=true", "?dryRun=true", "?users=true&dryRun=true"} {
		r := e.do(req{method: "POST", path: "/api/v1/restore" + q, body: forged, contentType: "application/octet-stream"})
		if r.status != http.StatusForbidden || !bytes.Contains(r.body, []byte("signature does not match")) || !bytes.Contains(r.body, []byte("allowUnsigned=true")) {
			t.Errorf("restore%s: %d %s", q, r.status, r.body)
		}
	}
	if e.ctl.Current().Revision != rev {
		t.Fatal("a refused restore changed the configuration")
	}
	eveCannot()

	// Explicitly allowed, a dry run names what it would add.
	var plan restoreResult
	e.must(req{method: "POST", path: "/api/v1/restore?allowUnsigned=true&dryRun=true&users=false", body: forged, contentType: "application/gzip"},
		http.StatusOK).json(t, &plan)
	if plan.Committed || plan.Revision != rev || plan.Backup.Signature != "invalid" || plan.AccountsRestored {
		t.Errorf("dry run: %+v", plan)
	}
	if len(plan.Users) != 1 || plan.Users[0].Name != "eve" || plan.Users[0].Change != "added" || plan.Users[0].Role != "admin" {
		t.Errorf("dry run users: %+v", plan.Users)
	}
	if len(plan.APIKeys) != 1 || plan.APIKeys[0].Name != "bad0bad0bad0bad0" || plan.APIKeys[0].User != "eve" {
		t.Errorf("dry run keys: %+v", plan.APIKeys)
	}
	if !strings.Contains(plan.Summary, "accepted unverified") || !strings.Contains(plan.Summary, "users and API keys kept") {
		t.Errorf("dry run summary %q", plan.Summary)
	}

	// Its users: refused for eve's cheap hash.
	r := e.must(req{method: "POST", path: "/api/v1/restore?allowUnsigned=true&users=true", body: forged, contentType: "application/gzip"}, http.StatusBadRequest)
	if !bytes.Contains(r.body, []byte(`user \"eve\"`)) || !bytes.Contains(r.body, []byte("bcrypt cost 4")) {
		t.Errorf("users with a cheap hash: %s", r.body)
	}
	eveCannot()

	// Its configuration only: restored, and eve is still nobody.
	e.must(req{method: "DELETE", path: "/api/v1/virtual-services/1"}, http.StatusOK)
	var res restoreResult
	e.must(req{method: "POST", path: "/api/v1/restore?allowUnsigned=true", body: forged, contentType: "application/gzip"}, http.StatusOK).json(t, &res)
	if !res.Committed || res.Revision != rev+2 || len(e.ctl.Current().Config.VirtualServices) != 1 || res.AccountsRestored {
		t.Errorf("configuration-only restore: %+v", res)
	}
	eveCannot()

	// The audit says what was refused and what was restored.
	var audit auditList
	e.must(req{method: "GET", path: "/api/v1/audit?limit=100"}, http.StatusOK).json(t, &audit)
	want := map[string]bool{"signature does not match": false, "bcrypt cost 4": false, "accepted unverified": false}
	for _, a := range audit.Entries {
		for w := range want {
			if a.Action == "restore" && strings.Contains(a.Detail, w) && a.Success == (w == "accepted unverified") {
				want[w] = true
			}
		}
	}
	for w, found := range want {
		if !found {
			t.Errorf("no restore audit entry saying %q: %+v", w, audit.Entries)
		}
	}
}

// TestRestoreAnswersChanges: a restore of this installation's backup
// answers the real diff and the accounts it replaced, and the audit entry
// lists them.
func TestRestoreAnswersChanges(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, http.StatusCreated)
	// A user whose hash is as costly as a restore requires of a user it
	// adds (the test's administrator has a cheap one, which a restore
	// keeps because it is already hers).
	hash, err := bcrypt.GenerateFromPassword([]byte("a long passphrase 123"), store.MinBcryptCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutUser(config.User{Name: "ops", Role: config.RoleOperator, PasswordHash: string(hash)}); err != nil {
		t.Fatal(err)
	}
	b := e.must(req{method: "GET", path: "/api/v1/backup"}, http.StatusOK)
	e.must(req{method: "PATCH", path: "/api/v1/virtual-services/1", body: `{"nickname":"changed"}`}, http.StatusOK)
	e.must(req{method: "DELETE", path: "/api/v1/users/ops"}, http.StatusNoContent)

	var res restoreResult
	e.must(req{method: "POST", path: "/api/v1/restore", body: string(b.body), contentType: "application/gzip"}, http.StatusOK).json(t, &res)
	if len(res.Diff) != 1 || res.Diff[0].Path != "virtualServices[id=1].nickname" || res.Backup.Signature != "own" || res.AccountsRestored {
		t.Errorf("restore: %+v", res)
	}
	if len(res.Users) != 1 || res.Users[0].Name != "ops" || res.Users[0].Change != "added" {
		t.Errorf("users that users=true would restore: %+v", res.Users)
	}
	if r := e.do(req{method: "GET", path: "/api/v1/users/ops"}); r.status != http.StatusNotFound {
		t.Errorf("ops came back without users=true: %d", r.status)
	}

	e.must(req{method: "POST", path: "/api/v1/restore?users=true", body: string(b.body), contentType: "application/gzip"}, http.StatusOK).json(t, &res)
	if len(res.Diff) != 0 || !res.AccountsRestored || len(res.Users) != 1 {
		t.Errorf("restore of users: %+v", res)
	}
	e.must(req{method: "GET", path: "/api/v1/users/ops"}, http.StatusOK)
	var audit auditList
	e.must(req{method: "GET", path: "/api/v1/audit?limit=5"}, http.StatusOK).json(t, &audit)
	found := false
	for _, a := range audit.Entries {
		found = found || (a.Action == "restore" && a.Success && strings.Contains(a.Detail, "users replaced: added ops (operator)"))
	}
	if !found {
		t.Errorf("no audit entry naming the restored user: %+v", audit.Entries)
	}
	if r := e.do(req{method: "POST", path: "/api/v1/restore?users=maybe", body: string(b.body), contentType: "application/gzip"}); r.status != http.StatusBadRequest {
		t.Errorf("users=maybe: %d", r.status)
	}
}

// TestRestoreRefusesNonsenseMetadata: the field is named.
func TestRestoreRefusesNonsenseMetadata(t *testing.T) {
	e := newEnv(t)
	b := e.must(req{method: "GET", path: "/api/v1/backup"}, http.StatusOK)
	plain := unzip(t, b.body)
	for field, value := range map[string]string{"revision": `18446744073709551615`, "created": `"2999-01-01T00:00:00Z"`} {
		bad := editBackup(t, plain, func(m map[string]json.RawMessage) { m[field] = json.RawMessage(value) })
		r := e.do(req{method: "POST", path: "/api/v1/restore?allowUnsigned=true", body: string(bad), contentType: "application/json"})
		if r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte("bad field "+field)) {
			t.Errorf("%s %s: %d %s", field, value, r.status, r.body)
		}
	}
}

// TestBackupKeys: export needs an administrator; another installation
// that imports the key restores the backups it signed, until the key is
// removed.
func TestBackupKeys(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	a.must(req{method: "POST", path: "/api/v1/users", body: `{"name":"ops","password":"a long passphrase 123","role":"operator"}`}, http.StatusCreated)
	a.must(req{method: "GET", path: "/api/v1/backup/key", user: "ops", pass: "a long passphrase 123"}, http.StatusForbidden)
	a.must(req{method: "POST", path: "/api/v1/backup/keys", user: "ops", pass: "a long passphrase 123", body: `{"key":"x"}`}, http.StatusForbidden)
	backup := string(a.must(req{method: "GET", path: "/api/v1/backup"}, http.StatusOK).body)

	r := b.must(req{method: "POST", path: "/api/v1/restore", body: backup, contentType: "application/gzip"}, http.StatusForbidden)
	if !bytes.Contains(r.body, []byte("does not know")) {
		t.Errorf("foreign backup: %s", r.body)
	}
	var key backupKeyExport
	a.must(req{method: "GET", path: "/api/v1/backup/key"}, http.StatusOK).json(t, &key)
	if !strings.HasPrefix(key.Key, "fulcrum-backup-key-1:") || len(key.ID) != 16 {
		t.Fatalf("exported %+v", key)
	}
	body, _ := json.Marshal(backupKeyExport{Key: key.Key})
	b.must(req{method: "POST", path: "/api/v1/backup/keys", body: string(body)}, http.StatusCreated)
	b.must(req{method: "POST", path: "/api/v1/backup/keys", body: `{"key":"fulcrum-backup-key-1:short"}`}, http.StatusBadRequest)
	var list backupKeyList
	b.must(req{method: "GET", path: "/api/v1/backup/keys"}, http.StatusOK).json(t, &list)
	if len(list.Keys) != 2 || !list.Keys[0].Own || list.Keys[1].ID != key.ID {
		t.Errorf("keys %+v", list.Keys)
	}
	var res restoreResult
	b.must(req{method: "POST", path: "/api/v1/restore", body: backup, contentType: "application/gzip"}, http.StatusOK).json(t, &res)
	if res.Backup.Signature != "trusted" || res.Backup.SignedBy != key.ID {
		t.Errorf("trusted restore: %+v", res.Backup)
	}
	b.must(req{method: "DELETE", path: "/api/v1/backup/keys/" + key.ID}, http.StatusNoContent)
	b.must(req{method: "DELETE", path: "/api/v1/backup/keys/" + key.ID}, http.StatusNotFound)
	b.must(req{method: "DELETE", path: "/api/v1/backup/keys/" + list.Keys[0].ID}, http.StatusBadRequest)
	b.must(req{method: "POST", path: "/api/v1/restore", body: backup, contentType: "application/gzip"}, http.StatusForbidden)

	var audit auditList
	a.must(req{method: "GET", path: "/api/v1/audit?limit=20"}, http.StatusOK).json(t, &audit)
	exported := false
	for _, e := range audit.Entries {
		exported = exported || (e.Action == "backup-key-export" && strings.Contains(e.Detail, key.ID))
	}
	if !exported {
		t.Error("the export is not audited")
	}
}
