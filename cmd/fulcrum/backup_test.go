package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
)

// runCLI runs the CLI with args and returns its output and error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// install makes a data directory with an administrator whose password
// hash has the given bcrypt cost, and returns it.
func install(t *testing.T, cost int) string {
	t.Helper()
	dir := t.TempDir()
	a, err := appliance.Start(appliance.Options{DataDir: dir, AdminAddr: "127.0.0.1:0", AdminPassword: "correct horse battery",
		BcryptCost: cost, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// forgeFile adds an administrator with a cheap hash and an API key to a
// backup file and recomputes its checksum (the signature no longer
// matches), as an attacker editing a backup would.
func forgeFile(t *testing.T, in, out string) {
	t.Helper()
	b, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(plain, &m); err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("forged password"), bcrypt.MinCost)
	var users, keys []map[string]any
	_ = json.Unmarshal(m["users"], &users)
	_ = json.Unmarshal(m["apiKeys"], &keys)
	users = append(users, map[string]any{"name": "eve", "role": "admin", "passwordHash": string(hash), "created": "2026-01-01T00:00:00Z"})
	keys = append(keys, map[string]any{"id": "bad0bad0bad0bad0", "user": "eve", "hash": strings.Repeat("ab", 32), "created": "2026-01-01T00:00:00Z"})
	m["users"], _ = json.Marshal(users)
	m["apiKeys"], _ = json.Marshal(keys)
	var payload bytes.Buffer
	payload.WriteString("{")
	for i, f := range []string{"format", "version", "created", "revision", "config", "users", "apiKeys"} {
		if i > 0 {
			payload.WriteString(",")
		}
		payload.WriteString(`"` + f + `":`)
		_ = json.Compact(&payload, m[f])
	}
	payload.WriteString("}")
	sum := sha256.Sum256(payload.Bytes())
	m["checksum"], _ = json.Marshal(hex.EncodeToString(sum[:]))
	forged, _ := json.Marshal(m)
	if err := os.WriteFile(out, forged, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupRestoreCLI: backup and restore from the console, with the
// store opened in-process and through a running server's socket; a forged
// backup is refused, shown with --dry-run --allow-unsigned; a backup of
// another installation restores after its key is imported.
func TestBackupRestoreCLI(t *testing.T) {
	dir := install(t, 10) // a restore of its users elsewhere needs a hash of cost 10 or more
	file := filepath.Join(t.TempDir(), "b.json.gz")
	if out, err := runCLI(t, "backup", "--data-dir", dir, "-o", file); err != nil {
		t.Fatalf("backup: %v %s", err, out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	out, err := runCLI(t, "restore", "--data-dir", dir, "--dry-run", file)
	if err != nil || !strings.Contains(out, "signed by this installation") || !strings.Contains(out, "Dry run: nothing restored") {
		t.Fatalf("restore --dry-run: %v\n%s", err, out)
	}
	out, err = runCLI(t, "restore", "--data-dir", dir, file)
	if err != nil || !strings.Contains(out, "Restored the configuration as revision 1") || !strings.Contains(out, "No server is running") {
		t.Fatalf("restore: %v\n%s", err, out)
	}

	forged := filepath.Join(t.TempDir(), "forged.json")
	forgeFile(t, file, forged)
	out, err = runCLI(t, "restore", "--data-dir", dir, "--users", forged)
	if err == nil || !strings.Contains(err.Error(), "signature does not match") || !strings.Contains(err.Error(), "--allow-unsigned") {
		t.Fatalf("forged: %v\n%s", err, out)
	}
	out, err = runCLI(t, "restore", "--data-dir", dir, "--dry-run", "--allow-unsigned", forged)
	for _, want := range []string{"does NOT match", "Users kept (--users replaces them):", "  + eve (admin)", `  + "bad0bad0bad0bad0" (user eve)`} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("restore --dry-run --allow-unsigned: %v, output lacks %q:\n%s", err, want, out)
		}
	}
	if _, err := runCLI(t, "restore", "--data-dir", dir, "--allow-unsigned", "--users", forged); err == nil || !strings.Contains(err.Error(), "bcrypt cost 4") {
		t.Errorf("forged users: %v", err)
	}

	// Another installation, running: refused until the key is imported.
	other := install(t, bcrypt.MinCost)
	a, err := appliance.Start(appliance.Options{DataDir: other, AdminAddr: "127.0.0.1:0", BcryptCost: bcrypt.MinCost,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := runCLI(t, "restore", "--data-dir", other, file); err == nil || !strings.Contains(err.Error(), "does not know") {
		t.Fatalf("foreign backup: %v", err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if out, err := runCLI(t, "backup", "key", "export", "--data-dir", dir, "-o", keyFile); err != nil || !strings.Contains(out, "Wrote backup key") {
		t.Fatalf("export: %v %s", err, out)
	}
	if out, err := runCLI(t, "backup", "key", "import", "--data-dir", other, keyFile); err != nil || !strings.Contains(out, "now trusted") {
		t.Fatalf("import: %v %s", err, out)
	}
	if out, err := runCLI(t, "backup", "key", "list", "--data-dir", other); err != nil || strings.Count(out, "\n") != 2 {
		t.Fatalf("list: %v %s", err, out)
	}
	out, err = runCLI(t, "restore", "--data-dir", other, "--users", file)
	if err != nil || !strings.Contains(out, "signed by the trusted key") || !strings.Contains(out, "Restored the configuration, users and API keys as revision") ||
		strings.Contains(out, "No server is running") {
		t.Fatalf("restore of a trusted backup: %v\n%s", err, out)
	}
	if a.Control.Current().Revision != 1 {
		t.Errorf("running server at revision %d", a.Control.Current().Revision)
	}
}
