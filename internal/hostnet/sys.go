package hostnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNS runs fn on an OS thread in the managed namespace (on the calling
// goroutine's own thread when it is the process's). Sockets fn opens stay
// in the namespace. A thread whose namespace cannot be restored is ended.
func (m *Manager) inNS(fn func() error) error {
	if m.ns < 0 {
		return fn()
	}
	return inNamespace(m.ns, fn)
}

func inNamespace(ns netns.NsHandle, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("reading the thread's namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("entering the namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// the thread stays locked: it ends with this goroutine
			done <- errors.Join(ferr, fmt.Errorf("leaving the namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

func sysctlPath(name string) string {
	return "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
}

func (m *Manager) readSysctl(name string) (string, error) {
	var v string
	err := m.inNS(func() error {
		b, err := os.ReadFile(sysctlPath(name))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

func (m *Manager) writeSysctl(name, v string) error {
	return m.inNS(func() error {
		return os.WriteFile(sysctlPath(name), []byte(v+"\n"), 0o644)
	})
}

func (m *Manager) ensureSysctl(w, old *item) (*item, func() error, error) {
	cur, err := m.readSysctl(w.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("sysctl %s: %w", w.Name, err)
	}
	if cur == w.Value {
		return old, nil, nil
	}
	if err := m.writeSysctl(w.Name, w.Value); err != nil {
		return nil, nil, fmt.Errorf("sysctl %s=%s: %w", w.Name, w.Value, err)
	}
	m.log.Info("sysctl set", "name", w.Name, "value", w.Value, "was", cur)
	rec := *w
	rec.Prev = cur
	if old != nil {
		rec.Prev = old.Prev
	}
	return &rec, func() error { return m.writeSysctl(w.Name, cur) }, nil
}

// fileState is what a file was: absent, a symbolic link, or content.
type fileState struct {
	absent  bool
	link    string
	content string
}

func readFileState(path string) (fileState, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fileState{absent: true}, nil
	}
	if err != nil {
		return fileState{}, err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		t, err := os.Readlink(path)
		return fileState{link: t}, err
	}
	b, err := os.ReadFile(path)
	return fileState{content: string(b)}, err
}

// writeAtomic replaces path with content (a new file renamed over it;
// written in place where path is a mount point, as in containers).
func writeAtomic(path, content string, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".fulcrum-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EXDEV) {
			err = os.WriteFile(path, []byte(content), mode)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// restoreFile puts a file back as it was.
func restoreFile(path, content string, absent bool, link string) error {
	switch {
	case absent:
		err := os.Remove(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	case link != "":
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return os.Symlink(link, path)
	}
	return writeAtomic(path, content, 0o644)
}

func (m *Manager) ensureResolv(w, old *item) (*item, func() error, error) {
	cur, err := readFileState(w.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", w.Name, err)
	}
	if !cur.absent && cur.link == "" && cur.content == w.Value {
		return old, nil, nil
	}
	if err := writeAtomic(w.Name, w.Value, 0o644); err != nil {
		return nil, nil, fmt.Errorf("writing %s: %w", w.Name, err)
	}
	m.log.Info("resolver file written", "file", w.Name)
	rec := *w
	rec.Prev, rec.PrevAbsent, rec.PrevLink = cur.content, cur.absent, cur.link
	if old != nil {
		rec.Prev, rec.PrevAbsent, rec.PrevLink = old.Prev, old.PrevAbsent, old.PrevLink
	}
	return &rec, func() error { return restoreFile(w.Name, cur.content, cur.absent, cur.link) }, nil
}

// errForeignUTS refuses a host name for a manager of another network
// namespace: the host name belongs to the UTS namespace, which that
// namespace does not have, so setting it would rename the machine.
var errForeignUTS = errors.New("the host name belongs to the process's UTS namespace, not to the network namespace this manager was given (Options.NetNS): it is set only by a manager of its own namespace")

func (m *Manager) ensureHostname(w, old *item) (*item, func() error, error) {
	if m.ns >= 0 {
		return nil, nil, errForeignUTS
	}
	cur, err := os.Hostname()
	if err != nil {
		return nil, nil, fmt.Errorf("reading the host name: %w", err)
	}
	if cur == w.Value {
		return old, nil, nil
	}
	if err := unix.Sethostname([]byte(w.Value)); err != nil {
		return nil, nil, fmt.Errorf("setting the host name: %w", err)
	}
	m.log.Info("host name set", "name", w.Value, "was", cur)
	rec := *w
	rec.Prev = cur
	if old != nil {
		rec.Prev = old.Prev
	}
	return &rec, func() error { return unix.Sethostname([]byte(cur)) }, nil
}
