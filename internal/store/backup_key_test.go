package store

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// forge edits a plain backup as an attacker would: an administrator "eve"
// with a cheap bcrypt hash and an API key "backdoor" for her are added,
// and the checksum is recomputed. keepSignature leaves the original
// signature in place (which then no longer matches); otherwise it is
// removed.
func forge(t testing.TB, plain []byte, keepSignature bool) []byte {
	t.Helper()
	return reseal(t, plain, func(d *backupDoc) {
		d.Users = editJSON(t, d.Users, func(v any) any {
			return append(v.([]any), map[string]any{"name": "eve", "role": "admin", "passwordHash": cheapHash(t),
				"created": t0, "passwordChanged": t0})
		})
		d.APIKeys = editJSON(t, d.APIKeys, func(v any) any {
			return append(v.([]any), map[string]any{"id": "backdoor", "user": "eve", "hash": strings.Repeat("ef", 32), "created": t0})
		})
		if !keepSignature {
			d.Signature = nil
		}
	})
}

// TestForgedBackupRefused: a backup edited to add an administrator and an
// API key, with its checksum recomputed, is not restored without an
// explicit permission; with it, a dry run names the user and the key; its
// users are refused for their cheap hash, and its configuration alone can
// be restored.
func TestForgedBackupRefused(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	populate(t, s, 2)
	plain := gunzip(t, backupBytes(t, s))
	before := snap(t, s)

	for _, tc := range []struct {
		name          string
		keepSignature bool
		want          string
	}{
		{"signature kept", true, "signature does not match its content"},
		{"signature removed", false, "the backup is not signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forged := forge(t, plain, tc.keepSignature)
			for _, o := range []RestoreOptions{{}, {Accounts: true}, {DryRun: true}, {DryRun: true, Accounts: true}} {
				_, _, err := s.RestoreWith(bytes.NewReader(forged), Change{User: "mallory"}, o)
				if !errors.Is(err, ErrBadBackup) || !errors.Is(err, ErrUntrustedBackup) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%+v: RestoreWith = %v, want a refusal saying %q", o, err, tc.want)
				}
			}
			if !snap(t, s).equal(before) {
				t.Fatal("a refused restore changed the store")
			}

			// With the explicit permission, a dry run shows what it would do.
			rev, plan, err := s.RestoreWith(bytes.NewReader(forged), Change{}, RestoreOptions{AllowUnsigned: true, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if rev.Revision != before.cur.Revision || plan.AccountsRestored {
				t.Errorf("dry run: revision %d, plan %+v", rev.Revision, plan)
			}
			wantSig := SignatureUnsigned
			if tc.keepSignature {
				wantSig = SignatureInvalid
			}
			if plan.Backup.Signature != wantSig {
				t.Errorf("signature %q, want %q", plan.Backup.Signature, wantSig)
			}
			if !containsChange(plan.Users, AccountChange{Name: "eve", Role: "admin", Change: AccountAdded}) {
				t.Errorf("dry run does not name the added user: %+v", plan.Users)
			}
			if !containsChange(plan.APIKeys, AccountChange{Name: "backdoor", User: "eve", Change: AccountAdded}) {
				t.Errorf("dry run does not name the added key: %+v", plan.APIKeys)
			}
			if !snap(t, s).equal(before) {
				t.Fatal("a dry run changed the store")
			}
			js, _ := json.Marshal(plan)
			if bytes.Contains(js, []byte("$2a$")) || bytes.Contains(js, []byte("efefef")) {
				t.Errorf("the plan shows hashes: %s", js)
			}

			// Its users are refused: eve's hash is too cheap.
			_, _, err = s.RestoreWith(bytes.NewReader(forged), Change{}, RestoreOptions{AllowUnsigned: true, Accounts: true})
			if !errors.Is(err, ErrBadBackup) || !strings.Contains(err.Error(), `user "eve"`) || !strings.Contains(err.Error(), "bcrypt cost 4") {
				t.Errorf("users with a cheap hash: %v", err)
			}
			if !snap(t, s).equal(before) {
				t.Fatal("a refused restore changed the store")
			}
		})
	}

	// Its configuration alone, explicitly allowed, restores and leaves
	// the accounts alone; the summary says how it was accepted.
	r, plan, err := s.RestoreWith(bytes.NewReader(forge(t, plain, false)), Change{User: "bal"}, RestoreOptions{AllowUnsigned: true})
	if err != nil {
		t.Fatal(err)
	}
	after := snap(t, s)
	if !sameJSON(after.users, before.users) || !sameJSON(after.keys, before.keys) {
		t.Error("a configuration-only restore changed the accounts")
	}
	if _, err := s.User("eve"); !errors.Is(err, ErrNotFound) {
		t.Errorf("eve was restored: %v", err)
	}
	if !strings.HasPrefix(r.Summary, "restore from unsigned backup of revision 2") || !strings.Contains(r.Summary, "accepted unverified") ||
		!strings.HasSuffix(r.Summary, "users and API keys kept") || plan.AccountsRestored {
		t.Errorf("summary %q", r.Summary)
	}
}

// TestRestoreSignedSameInstall: a backup of this installation restores
// without options, answers a real diff and, when asked, brings back the
// accounts as they were.
func TestRestoreSignedSameInstall(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	populate(t, s, 2)
	backup := backupBytes(t, s)
	want := snap(t, s)
	mustCommit(t, s, 2) // revisions 3 and 4
	if err := s.DeleteUser("ops"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUser(config.User{Name: "newbie", Role: config.RoleOperator}); err != nil {
		t.Fatal(err)
	}

	// Dry run: nothing changes, the answer says what would.
	rev, plan, err := s.RestoreWith(bytes.NewReader(backup), Change{}, RestoreOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rev.Revision != 4 || len(plan.Diff) == 0 || plan.Backup.Signature != SignatureOwn || plan.Backup.Revision != 2 {
		t.Fatalf("dry run: revision %d, plan %+v", rev.Revision, plan)
	}
	if cur, _ := s.Current(); cur.Revision != 4 {
		t.Fatalf("a dry run committed revision %d", cur.Revision)
	}
	wantUsers := []AccountChange{
		{Name: "newbie", Role: "operator", Change: AccountRemoved},
		{Name: "ops", Role: "operator", Change: AccountAdded},
	}
	wantKeys := []AccountChange{{Name: "ci", User: "ops", Change: AccountAdded}}
	if !sameJSON(plan.Users, wantUsers) || !sameJSON(plan.APIKeys, wantKeys) {
		t.Errorf("accounts: %+v %+v", plan.Users, plan.APIKeys)
	}

	// Configuration only (the default).
	r, err := s.Restore(bytes.NewReader(backup), Change{User: "bal"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Revision != 5 || !config.Equal(r.Config, want.cur.Config) {
		t.Errorf("Restore = %+v", r.Change)
	}
	if _, err := s.User("newbie"); err != nil {
		t.Errorf("a configuration-only restore removed a user: %v", err)
	}
	for _, w := range []string{"restore from backup of revision 2 made ", "configuration change", "users and API keys kept"} {
		if !strings.Contains(r.Summary, w) {
			t.Errorf("summary %q lacks %q", r.Summary, w)
		}
	}

	// Accounts too.
	r, plan, err = s.RestoreWith(bytes.NewReader(backup), Change{User: "bal"}, RestoreOptions{Accounts: true})
	if err != nil {
		t.Fatal(err)
	}
	got := snap(t, s)
	if !sameJSON(got.users, want.users) || !sameJSON(got.keys, want.keys) {
		t.Errorf("accounts after restore: %+v %+v", got.users, got.keys)
	}
	if len(plan.Diff) != 0 || !plan.AccountsRestored {
		t.Errorf("plan %+v", plan)
	}
	for _, w := range []string{"configuration unchanged", "users replaced: removed newbie (operator), added ops (operator)", `API keys replaced: added "ci" (user ops)`} {
		if !strings.Contains(r.Summary, w) {
			t.Errorf("summary %q lacks %q", r.Summary, w)
		}
	}
}

// TestBackupKeyExportImport: a backup of another installation is refused
// until its key is imported, and again after the key is removed.
func TestBackupKeyExportImport(t *testing.T) {
	a := openT(t, t.TempDir(), Options{})
	populate(t, a, 1)
	b := openT(t, t.TempDir(), Options{})
	backup := backupBytes(t, a)
	text, id, err := a.BackupKey()
	if err != nil {
		t.Fatal(err)
	}
	if again, _, _ := a.BackupKey(); again != text || !strings.HasPrefix(text, "fulcrum-backup-key-1:") || len(id) != 16 {
		t.Fatalf("BackupKey = %q %q", text, id)
	}

	_, err = b.Restore(bytes.NewReader(backup), Change{})
	if !errors.Is(err, ErrUntrustedBackup) || !strings.Contains(err.Error(), "signed by key "+id) {
		t.Fatalf("foreign backup: %v", err)
	}
	if _, err := b.ImportBackupKey(text + "\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ImportBackupKey(text); err != nil { // twice: nothing more
		t.Fatal(err)
	}
	keys, err := b.BackupKeys()
	if err != nil || len(keys) != 2 || !keys[0].Own || keys[1] != (BackupKeyInfo{ID: id}) {
		t.Fatalf("BackupKeys = %+v, %v", keys, err)
	}
	_, plan, err := b.RestoreWith(bytes.NewReader(backup), Change{}, RestoreOptions{})
	if err != nil || plan.Backup.Signature != SignatureTrusted || plan.Backup.SignedBy != id {
		t.Fatalf("trusted backup: %+v, %v", plan, err)
	}
	if err := b.RemoveBackupKey(id); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Restore(bytes.NewReader(backup), Change{}); !errors.Is(err, ErrUntrustedBackup) {
		t.Fatalf("backup of a removed key: %v", err)
	}

	// Refusals.
	ownText, ownID, _ := b.BackupKey()
	if info, err := b.ImportBackupKey(ownText); err != nil || !info.Own || info.ID != ownID {
		t.Errorf("import of the own key: %+v, %v", info, err)
	}
	if err := b.RemoveBackupKey(ownID); err == nil || !strings.Contains(err.Error(), "own signing key") {
		t.Errorf("removing the own key: %v", err)
	}
	if err := b.RemoveBackupKey("0123456789abcdef"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing an unknown key: %v", err)
	}
	for _, bad := range []string{"", "hello", "fulcrum-backup-key-1:", "fulcrum-backup-key-1:!!!", "fulcrum-backup-key-1:" + strings.Repeat("A", 44)} {
		if _, err := b.ImportBackupKey(bad); err == nil {
			t.Errorf("ImportBackupKey(%q) succeeded", bad)
		} else if len(bad) > 25 && strings.Contains(err.Error(), bad[21:]) {
			t.Errorf("the error repeats the key: %v", err)
		}
	}
	for i := range MaxTrustedBackupKeys {
		other := openT(t, t.TempDir(), Options{})
		text, _, err := other.BackupKey()
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.ImportBackupKey(text)
		if i < MaxTrustedBackupKeys && err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		_ = other.Close()
	}
	other := openT(t, t.TempDir(), Options{})
	text, _, _ = other.BackupKey()
	if _, err := b.ImportBackupKey(text); err == nil || !strings.Contains(err.Error(), "remove one first") {
		t.Errorf("key beyond the maximum: %v", err)
	}
}

// TestVersion1Backup: a backup of an older Fulcrum (version 1, never
// signed) is unsigned: refused by default, restored when allowed.
func TestVersion1Backup(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	populate(t, s, 1)
	v1 := reseal(t, gunzip(t, backupBytes(t, s)), func(d *backupDoc) {
		d.Version = json.RawMessage(`1`)
		d.Signature = nil
	})
	if _, err := s.Restore(bytes.NewReader(v1), Change{}); !errors.Is(err, ErrUntrustedBackup) || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("version 1: %v", err)
	}
	_, plan, err := s.RestoreWith(bytes.NewReader(v1), Change{}, RestoreOptions{AllowUnsigned: true})
	if err != nil || plan.Backup.Version != 1 || plan.Backup.Signature != SignatureUnsigned {
		t.Fatalf("version 1 allowed: %+v, %v", plan, err)
	}
}

// TestSignatureCoversEveryField: changing any field of the payload, with
// the checksum recomputed, breaks the signature; so does a signature of
// another key under this installation's key ID.
func TestSignatureCoversEveryField(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	populate(t, s, 1)
	plain := gunzip(t, backupBytes(t, s))
	for name, edit := range map[string]func(d *backupDoc){
		"created":  func(d *backupDoc) { d.Created = mustQuote(t0.Format(time.RFC3339)) },
		"revision": func(d *backupDoc) { d.Revision = json.RawMessage(`7`) },
		"config": func(d *backupDoc) {
			d.Config = editJSON(t, d.Config, func(v any) any { v.(map[string]any)["virtualServices"] = []any{}; return v })
		},
		"users": func(d *backupDoc) {
			d.Users = editJSON(t, d.Users, func(v any) any { v.([]any)[2].(map[string]any)["role"] = "admin"; return v })
		},
		"apiKeys": func(d *backupDoc) {
			d.APIKeys = editJSON(t, d.APIKeys, func(v any) any { v.([]any)[0].(map[string]any)["user"] = "bal"; return v })
		},
		"other key": func(d *backupDoc) {
			p, _ := d.payload()
			sig := sign(randomKey(t), p)
			_, sig.Key, _ = s.BackupKey()
			d.Signature, _ = json.Marshal(sig)
		},
		"malformed signature": func(d *backupDoc) { d.Signature = json.RawMessage(`"yes"`) },
	} {
		_, plan, err := s.RestoreWith(bytes.NewReader(reseal(t, plain, edit)), Change{}, RestoreOptions{DryRun: true, AllowUnsigned: true})
		if err != nil || plan.Backup.Signature != SignatureInvalid {
			t.Errorf("%s: %+v, %v", name, plan, err)
		}
	}
}

// containsChange reports whether list holds c.
func containsChange(list []AccountChange, c AccountChange) bool {
	return slices.ContainsFunc(list, func(x AccountChange) bool { return sameJSON([]AccountChange{x}, []AccountChange{c}) })
}

// randomKey is a signing key of no installation.
func randomKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, backupKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// sameJSON compares two lists by their JSON, treating nil and empty alike.
func sameJSON[T any](a, b []T) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	return bytes.Equal(aj, bj)
}
