package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/store/storetest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// fulcrumBinary builds the fulcrum command once for the tests that run it.
func fulcrumBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fulcrum-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fulcrum")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestMain removes the binary built by the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// makeInstall starts Fulcrum once in a new data directory (as a first
// start does), stops it and commits 30 revisions.
func makeInstall(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	a, err := appliance.Start(appliance.Options{DataDir: dir, AdminAddr: "127.0.0.1:0", AdminPassword: "correct horse battery",
		BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for n := uint64(1); n <= 30; n++ {
		c := config.Default()
		vs := config.VirtualService{ID: 1, NickName: fmt.Sprintf("rev %d", n), Address: "127.0.0.1", Port: int(n) + 1000}
		for j := range 2 + int(n%7/3)*150 {
			vs.RealServers = append(vs.RealServers, config.RealServer{ID: 1000 + j, Address: "127.0.0.1", Port: 2000 + j})
		}
		c.VirtualServices = append(c.VirtualServices, vs)
		c.SetDefaults()
		if _, err := st.Commit(n-1, store.Change{User: "bal", Source: "cli"}, c); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// run runs the binary with args and returns its output and exit status.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runEnv(t, nil, args...)
}

// serve starts `fulcrum serve` and waits until it serves; stop sends
// SIGTERM and returns its exit status.
func serve(t *testing.T, args ...string) (out *lockedBuffer, stop func() int) {
	t.Helper()
	cmd := exec.Command(fulcrumBinary(t), append([]string{"serve", "--admin-addr", "127.0.0.1:0"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out = &lockedBuffer{}
	ready := make(chan bool, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "serving configuration revision") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("fulcrum serve ended before serving:\n%s\n%s", out, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("fulcrum serve not serving after 30 s:\n%s\n%s", out, stderr.String())
	}
	return out, func() int {
		// serve prints its "serving" line just before it installs its
		// signal handler: give it a moment, or SIGTERM kills it outright.
		time.Sleep(300 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		return 0
	}
}

// TestServeRefusesEmptyStore is issue 15's first defect end to end:
// `: > data/fulcrum.db; fulcrum serve --data-dir data` served revision 0
// with a new administrator; it must exit with an error naming the file and
// the ways out, and start afresh only with --reinitialise.
func TestServeRefusesEmptyStore(t *testing.T) {
	dir := makeInstall(t)
	path := filepath.Join(dir, store.FileName)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, "serve", "--data-dir", dir, "--admin-addr", "127.0.0.1:0")
	if code == 0 {
		t.Fatalf("fulcrum serve exited 0:\n%s\n%s", stdout, stderr)
	}
	if strings.Contains(stdout, "password") || strings.Contains(stdout, "serving") {
		t.Errorf("fulcrum serve started afresh:\n%s", stdout)
	}
	for _, want := range []string{"error: the store file " + path + " is empty", "--reinitialise", "restore a backup"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("more than one line on stderr:\n%s", stderr)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Errorf("the store file was changed: %v %v", fi, err)
	}

	out, stop := serve(t, "--data-dir", dir, "--reinitialise")
	if code := stop(); code != 0 {
		t.Errorf("fulcrum serve --reinitialise exited %d", code)
	}
	for _, want := range []string{"kept as " + path + ".damaged-", `Created administrator "bal"`, "serving configuration revision 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("fulcrum serve --reinitialise did not say %q:\n%s", want, out)
		}
	}
}

// TestStoreCheckAndSalvage runs `fulcrum store check` and `fulcrum store
// salvage` on a healthy store, a damaged one, a held one and none, and
// serves the salvaged store.
func TestStoreCheckAndSalvage(t *testing.T) {
	dir := makeInstall(t)
	path := filepath.Join(dir, store.FileName)
	stdout, stderr, code := run(t, "store", "check", "--data-dir", dir)
	if code != 0 || !strings.Contains(stdout, "No damage found.") || !strings.Contains(stdout, "30 revisions (1-30)") {
		t.Fatalf("check of a healthy store: exit %d\n%s\n%s", code, stdout, stderr)
	}

	if err := storetest.Damages(1)[12].Apply(path); err != nil { // random bytes on a data page
		t.Fatal(err)
	}
	damaged, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = run(t, "store", "check", "--data-dir", dir)
	if code != 1 || !strings.Contains(stdout, "Damaged:") || !strings.Contains(stdout, "fulcrum store salvage") ||
		!strings.Contains(stderr, "is damaged") {
		t.Fatalf("check of a damaged store: exit %d\n%s\n%s", code, stdout, stderr)
	}
	_, stderr, code = run(t, "serve", "--data-dir", dir, "--admin-addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "is damaged") || !strings.Contains(stderr, "fulcrum store check") {
		t.Fatalf("serve of a damaged store: exit %d\n%s", code, stderr)
	}

	salvaged := filepath.Join(t.TempDir(), "salvaged.db")
	stdout, stderr, code = run(t, "store", "salvage", "--data-dir", dir, "--out", salvaged)
	if code != 1 || !strings.Contains(stdout, "Could not be read:") || !strings.Contains(stdout, "revision") {
		t.Fatalf("salvage: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("salvage said:\n%s", stdout)
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, damaged) {
		t.Fatal("salvage changed the damaged file")
	}
	if _, stderr, code = run(t, "store", "salvage", "--data-dir", dir, "--out", salvaged); code != 2 || !strings.Contains(stderr, "exists") {
		t.Errorf("salvage over an existing file: exit %d %s", code, stderr)
	}
	if err := os.Rename(path, path+".damaged"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(salvaged, path); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code = run(t, "store", "check", "--data-dir", dir); code != 0 {
		t.Fatalf("check of the salvaged store: exit %d\n%s\n%s", code, stdout, stderr)
	}
	out, stop := serve(t, "--data-dir", dir)
	if !strings.Contains(out.String(), "serving configuration revision 30") {
		t.Errorf("the salvaged store does not serve revision 30:\n%s", out)
	}
	// While a server holds the store, check cannot run.
	if _, stderr, code = run(t, "store", "check", "--data-dir", dir); code != 2 || !strings.Contains(stderr, "running Fulcrum") {
		t.Errorf("check of a held store: exit %d %s", code, stderr)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
	// No store at all: the check cannot run.
	if _, stderr, code = run(t, "store", "check", "--data-dir", t.TempDir()); code != 2 {
		t.Errorf("check without a store: exit %d %s", code, stderr)
	}
}

// lockedBuffer is a buffer that one goroutine writes while another reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// WriteString appends s.
func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

// String returns what was written so far.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
