package console

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// ErrUntrusted is wrapped by the errors of Connect that refuse a data
// directory or console socket that another user could have put there.
var ErrUntrusted = errors.New("refusing to use the console")

// trusted reports whether a user ID may own the data directory and the
// console socket, and run the server: root or the user running the CLI.
func trusted(uid int) bool { return uid == 0 || uid == os.Geteuid() }

// untrusted words a refusal.
func untrusted(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUntrusted, fmt.Sprintf(format, args...))
}

// checkDataDir refuses a data directory that others than root and the
// caller could have written to: whoever can write there can replace the
// console socket, and read what the CLI sends to it (a new password).
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil // Connect says what is missing
	}
	if !fi.IsDir() {
		return untrusted("%s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return untrusted("data directory %s is writable by others than its owner (mode %04o): anyone could have replaced its console socket; "+
			"make it private (chmod 700 %s) and check what it holds", dir, perm, dir)
	}
	if uid, ok := fileOwner(fi); ok && !trusted(uid) {
		return untrusted("data directory %s belongs to user id %d, neither root nor you (%d): run this command as that user", dir, uid, os.Geteuid())
	}
	return nil
}

// checkSocket checks, before anything is sent to it, that the console
// socket is a socket that root or the caller made and that no one else
// can write to.
func checkSocket(path string, fi fs.FileInfo) error {
	if fi.Mode().Type() != fs.ModeSocket {
		return untrusted("%s is not a socket (%v): remove it if no fulcrum server runs on this data directory", path, fi.Mode().Type())
	}
	if uid, ok := fileOwner(fi); ok && !trusted(uid) {
		return untrusted("console socket %s belongs to user id %d, neither root nor you (%d): another user may have replaced it; "+
			"nothing was sent to it. Stop fulcrum, remove the socket and check who can write to the data directory", path, uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return untrusted("console socket %s is writable by others than its owner (mode %04o): it is not the one fulcrum makes (0600); "+
			"nothing was sent to it. Stop fulcrum and remove the socket", path, perm)
	}
	return nil
}

// dialConsole connects to the console socket and checks that the process
// listening on it runs as root or as the caller (where the system tells),
// so that a socket swapped after checkSocket is refused before a request
// is written.
func dialConsole(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("console socket %s: not a unix connection", path)
	}
	uid, known, err := peerUID(uc)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("console socket %s: who is listening: %w", path, err)
	}
	if known && !trusted(uid) {
		_ = c.Close()
		return nil, untrusted("the process listening on %s runs as user id %d, neither root nor you (%d): nothing was sent to it. "+
			"Stop fulcrum, remove the socket and check who can write to the data directory", path, uid, os.Geteuid())
	}
	return c, nil
}

// fileOwner returns the user ID owning a file, where the system has one.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
