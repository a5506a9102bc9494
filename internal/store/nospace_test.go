package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestClassifyWriteError(t *testing.T) {
	path := "/var/lib/fulcrum/fulcrum.db"
	for _, tc := range []struct {
		err     error
		noSpace bool
	}{
		{&fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}, true},
		{&fs.PathError{Op: "write", Path: path, Err: syscall.EDQUOT}, true},
		{fmt.Errorf("file resize error: %s", &fs.PathError{Op: "truncate", Path: path, Err: syscall.ENOSPC}), true}, // bbolt flattens
		{&fs.PathError{Op: "write", Path: path, Err: syscall.EIO}, false},
		{errors.New("other"), false},
	} {
		err := classifyWriteError(tc.err)
		if errors.Is(err, ErrNoSpace) != tc.noSpace {
			t.Errorf("classifyWriteError(%v) = %v", tc.err, err)
		}
		if tc.noSpace && strings.Contains(err.Error(), path) {
			t.Errorf("the message names the file: %v", err)
		}
	}
	if classifyWriteError(nil) != nil {
		t.Error("classifyWriteError(nil) != nil")
	}
}

// TestFullDisk fills a small tmpfs (it needs root to mount one) and checks
// that the write that does not fit fails with ErrNoSpace, a message
// without the file's path, and changes nothing.
func TestFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var last Revision
	for i := range 10000 {
		cur, err := s.Current()
		if err != nil {
			t.Fatal(err)
		}
		last = cur
		_, err = s.Commit(cur.Revision, Change{User: "bal"}, gen(cur.Revision*7+3)) // 150 real servers each
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("commit %d on a full disk: %v, want ErrNoSpace", i, err)
		}
		if strings.Contains(err.Error(), dir) {
			t.Errorf("the error names the file: %v", err)
		}
		t.Logf("commit %d: %v", i, err)
		break
	}
	if last.Revision == 0 {
		t.Fatal("nothing fitted")
	}
	if cur, err := s.Current(); err != nil || cur.Revision != last.Revision {
		t.Fatalf("after the failed write: revision %d, %v; want %d", cur.Revision, err, last.Revision)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}
