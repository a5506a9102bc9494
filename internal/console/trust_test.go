package console

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// nobody is the user ID of another, unprivileged user.
const nobody = 65534

// fakeServer listens on path like a console server and counts what it is
// sent.
type fakeServer struct {
	ln       net.Listener
	accepted atomic.Int64
	received atomic.Int64
}

func listenFake(t *testing.T, path string) *fakeServer {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepted.Add(1)
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				n, _ := io.Copy(io.Discard, c)
				f.received.Add(n)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return f
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, and this test needs root to make files of another user")
		}
		t.Skip("needs root to make files of another user")
	}
}

// TestConnectRefusesLooseDataDir: a data directory others can write to is
// refused before anything is opened or sent.
func TestConnectRefusesLooseDataDir(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o770, 0o722} {
		dir := t.TempDir()
		f := listenFake(t, filepath.Join(dir, socketName))
		if err := os.Chmod(filepath.Join(dir, socketName), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Connect(dir)
		if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Errorf("mode %o: Connect = %v", mode, err)
		}
		if f.accepted.Load() != 0 {
			t.Errorf("mode %o: the socket was connected to", mode)
		}
	}
}

// TestConnectRefusesForeignSocket: a socket another user owns, one with a
// loose mode, or something else than a socket is not talked to.
func TestConnectRefusesForeignSocket(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string) *fakeServer
		want  string
	}{
		{"loose mode", func(t *testing.T, path string) *fakeServer {
			f := listenFake(t, path)
			if err := os.Chmod(path, 0o666); err != nil {
				t.Fatal(err)
			}
			return f
		}, "writable by others than its owner (mode 0666)"},
		{"group writable", func(t *testing.T, path string) *fakeServer {
			f := listenFake(t, path)
			if err := os.Chmod(path, 0o620); err != nil {
				t.Fatal(err)
			}
			return f
		}, "(mode 0620)"},
		{"another user's", func(t *testing.T, path string) *fakeServer {
			needRoot(t)
			f := listenFake(t, path)
			if err := os.Chown(path, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}, fmt.Sprintf("belongs to user id %d", nobody)},
		{"not a socket", func(t *testing.T, path string) *fakeServer {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return nil
		}, "is not a socket"},
		{"a symbolic link", func(t *testing.T, path string) *fakeServer {
			other := filepath.Join(t.TempDir(), "real.sock")
			f := listenFake(t, other)
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
			return f
		}, "is not a socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, socketName)
			f := tc.setup(t, path)
			if err := os.WriteFile(filepath.Join(dir, "fulcrum.db"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Connect(dir)
			if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Connect = %v, want a refusal saying %q", err, tc.want)
			}
			if f != nil && f.accepted.Load() != 0 {
				t.Error("the socket was connected to")
			}
		})
	}
	t.Run("data directory of another user", func(t *testing.T) {
		needRoot(t)
		dir := t.TempDir()
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		if _, err := Connect(dir); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "belongs to user id") {
			t.Errorf("Connect = %v", err)
		}
	})
}

// TestConnectTrustsOwnSocket: the console socket as fulcrum makes it is
// used.
func TestConnectTrustsOwnSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, socketName)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "hello") }),
		ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c, err := Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body, _, err := c.Do("GET", "/", nil, "", nil)
	if err != nil || string(body) != "hello" || !c.Live {
		t.Fatalf("Do = %q, %v (live %v)", body, err, c.Live)
	}
}

// TestConnectRefusesSocketOfAnotherUser: a socket made by a process of
// another user and moved into the data directory is refused even when its
// file looks right (owner root, mode 0600): the process listening on it
// is not root nor the caller (SO_PEERCRED). That process receives nothing.
func TestConnectRefusesSocketOfAnotherUser(t *testing.T) {
	needRoot(t)
	// The hostile server is this test binary run as another user, from a
	// directory that user may enter.
	shared, err := os.MkdirTemp("", "fulcrum-hostile-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shared)
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(shared, "hostile.test")
	if err := copyFile(exe, bin); err != nil {
		t.Fatal(err)
	}
	hostile := filepath.Join(shared, "hostile.sock")
	cmd := exec.Command(bin, "-test.run=^TestHostileSocketHelper$")
	cmd.Dir = shared
	cmd.Env = append(os.Environ(), "FULCRUM_HOSTILE_SOCKET="+hostile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("hostile server: %q %v", lines.Text(), lines.Err())
	}

	dir := t.TempDir()
	sock := filepath.Join(dir, socketName)
	if err := os.Rename(hostile, sock); err != nil {
		t.Fatal(err)
	}
	// As it is: owned by the other user.
	if _, err := Connect(dir); !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), fmt.Sprintf("belongs to user id %d", nobody)) {
		t.Errorf("socket of another user: %v", err)
	}
	// Disguised as root's: the listening process gives it away.
	if err := os.Chown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Connect(dir)
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), fmt.Sprintf("runs as user id %d", nobody)) {
		t.Errorf("disguised socket: %v", err)
	}
	_ = stdin.Close()
	if !lines.Scan() || lines.Text() != "received 0 bytes" {
		t.Errorf("hostile server: %q %v", lines.Text(), lines.Err())
	}
}

// TestHostileSocketHelper is the hostile server of
// TestConnectRefusesSocketOfAnotherUser: it listens on
// $FULCRUM_HOSTILE_SOCKET, says "ready", and when its standard input
// closes says how many bytes it was sent.
func TestHostileSocketHelper(t *testing.T) {
	path := os.Getenv("FULCRUM_HOSTILE_SOCKET")
	if path == "" {
		t.Skip("helper process only")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	var received atomic.Int64
	var readers sync.WaitGroup
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			readers.Go(func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				n, _ := io.Copy(io.Discard, c)
				received.Add(n)
			})
		}
	}()
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	// Let the readers finish (each within its 500 ms deadline).
	_ = ln.Close()
	<-accepting
	readers.Wait()
	fmt.Printf("received %d bytes\n", received.Load())
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
