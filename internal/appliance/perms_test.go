package appliance

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

func permOptions(dir string, log io.Writer) Options {
	return Options{DataDir: dir, AdminAddr: "127.0.0.1:0", AdminPassword: "correct horse battery", BcryptCost: bcrypt.MinCost,
		Logger: slog.New(slog.NewTextHandler(log, nil))}
}

// TestStartRefusesWritableDataDir: a data directory others can write to
// is refused with the command that fixes it, before anything is opened or
// created in it.
func TestStartRefusesWritableDataDir(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o770, 0o707, 0o777 | os.ModeSticky} {
		dir := t.TempDir()
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		a, err := Start(permOptions(dir, io.Discard))
		if err == nil {
			_ = a.Close()
			t.Fatalf("mode %v: started", mode)
		}
		for _, want := range []string{"data directory " + dir + " is writable by", "chmod 700 " + dir} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("mode %v: error %q lacks %q", mode, err, want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, store.FileName)); !os.IsNotExist(err) {
			t.Errorf("mode %v: the store was created: %v", mode, err)
		}
	}
	// Readable by others, but not writable: accepted.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a, err := Start(permOptions(dir, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
}

// TestStartMakesSecretFilesPrivate: a store and an admin key that others
// can read are made private (0600), with a warning.
func TestStartMakesSecretFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	a, err := Start(permOptions(dir, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(dir, store.FileName), filepath.Join(dir, admin.KeyFile)}
	for _, f := range files {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	a, err = Start(permOptions(dir, &log))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", f, fi.Mode().Perm())
		}
		if !strings.Contains(log.String(), "file="+f) || !strings.Contains(log.String(), "was=0644") {
			t.Errorf("no warning about %s:\n%s", f, log.String())
		}
	}
	if !strings.Contains(log.String(), "level=WARN") {
		t.Errorf("not a warning:\n%s", log.String())
	}
}

// TestStartRefusesDataDirOfAnotherUser: a data directory owned by another
// (unprivileged) user is refused: its owner can open it to others.
func TestStartRefusesDataDirOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, and this test needs root to give a directory to another user")
		}
		t.Skip("needs root to give a directory to another user")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	a, err := Start(permOptions(dir, io.Discard))
	if err == nil {
		_ = a.Close()
		t.Fatal("started")
	}
	if !strings.Contains(err.Error(), "belongs to user id 65534") || !strings.Contains(err.Error(), "chown 0 "+dir) {
		t.Errorf("error %q", err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"/var/lib/fulcrum": "/var/lib/fulcrum", "/tmp/my data": "'/tmp/my data'", "/tmp/it's": `'/tmp/it'\''s'`} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}
