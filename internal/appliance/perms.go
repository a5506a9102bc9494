package appliance

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// privateFiles are the files of the data directory that hold secrets:
// the store (password hashes, API key hashes, private keys, installation
// secrets) and the admin plane's private key.
var privateFiles = []string{store.FileName, admin.KeyFile}

// CheckDataDir checks the data directory as Start does (see
// checkPermissions), for the commands that open the store themselves
// (fulcrum setup).
func CheckDataDir(dir string, log *slog.Logger) error { return checkPermissions(dir, log) }

// checkPermissions checks the data directory before Fulcrum uses it.
//
// A directory that others can write to is refused, with the command that
// fixes it: whoever can write there can replace the console socket (and
// read the passwords that `fulcrum passwd` sends to it), the store or the
// admin plane's key. So is a directory owned by another user than the one
// running Fulcrum or root, since its owner can loosen it at any time.
// Files holding secrets (the store, admin-key.pem) that the group or others
// can read or write are made private (mode 0600) with a warning in the
// log: that is always safe, and the only reader Fulcrum needs is itself.
// A directory that does not exist yet is left to be created (mode 0700).
func checkPermissions(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("data directory %s is writable by %s (mode %04o): anyone who can write there can replace the console socket, "+
			"the store or the admin key; make it private with: chmod 700 %s", dir, writers(perm), perm, shellQuote(dir))
	}
	if uid, ok := owner(fi); ok && uid != 0 && uid != os.Geteuid() {
		return fmt.Errorf("data directory %s belongs to user id %d, not to the user running fulcrum (%d) or root: its owner can open it to others at any time; "+
			"run fulcrum as its owner, or: chown %d %s", dir, uid, os.Geteuid(), os.Geteuid(), shellQuote(dir))
	}
	for _, name := range privateFiles {
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return fmt.Errorf("%s is accessible to %s (mode %04o) and cannot be made private: %w; fix it with: chmod 600 %s",
					path, accessors(perm), perm, err, shellQuote(path))
			}
			log.Warn("made a file holding secrets private: it was accessible to "+accessors(perm),
				"file", path, "was", fmt.Sprintf("%04o", perm), "now", "0600")
		}
	}
	return nil
}

// owner returns the user ID owning a file, where the system has one.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// writers names who besides the owner may write, by a mode.
func writers(perm fs.FileMode) string {
	switch {
	case perm&0o022 == 0o022:
		return "its group and others"
	case perm&0o002 != 0:
		return "others"
	}
	return "its group"
}

// accessors names who besides the owner may read or write, by a mode.
func accessors(perm fs.FileMode) string {
	switch {
	case perm&0o070 != 0 && perm&0o007 != 0:
		return "its group and others"
	case perm&0o007 != 0:
		return "others"
	}
	return "its group"
}

// shellQuote quotes a path for a command line when it needs it.
func shellQuote(s string) string {
	for _, r := range s {
		if !(r == '/' || r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
