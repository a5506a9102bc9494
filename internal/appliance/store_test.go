package appliance

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/store/storetest"
)

const testPassword = "correct horse battery"

// makeInstall starts Fulcrum once in a new data directory, as a first
// start does (store, install marker, admin certificate, administrator),
// stops it, and gives the store 60 revisions, some with 150 real servers
// per service (so that their pages overflow). It returns the directory.
func makeInstall(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	a, err := Start(Options{DataDir: dir, AdminAddr: "127.0.0.1:0", AdminPassword: testPassword, BcryptCost: bcrypt.MinCost,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	for n := uint64(1); n <= 60; n++ {
		if _, err := st.Commit(n-1, store.Change{User: "bal", Source: "cli", Summary: fmt.Sprint(n)}, revisionConfig(n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// revisionConfig is a valid configuration that differs with n.
func revisionConfig(n uint64) *config.Config {
	c := config.Default()
	nrs := 2
	if n%7 == 3 {
		nrs = 150
	}
	vs := config.VirtualService{ID: 1, NickName: fmt.Sprintf("rev %d", n), Address: "127.0.0.1", Port: int(n) + 1000}
	for j := range nrs {
		vs.RealServers = append(vs.RealServers, config.RealServer{ID: 1000 + j, Address: fmt.Sprintf("127.0.0.%d", j%250+1), Port: 2000 + j, Weight: 100})
	}
	c.VirtualServices = append(c.VirtualServices, vs)
	c.SetDefaults()
	return c
}

// TestStartRefusesDamagedStore runs the start-up path over a store file
// damaged in each of the 13 ways of issue 15: Start must refuse with one
// error naming the file and the ways out, without a panic, without
// starting afresh (no new administrator) and without changing the file.
func TestStartRefusesDamagedStore(t *testing.T) {
	pristine := makeInstall(t)
	for _, d := range storetest.Damages(15) {
		t.Run(d.Name, func(t *testing.T) {
			dir := storetest.CopyDir(t, pristine)
			path := filepath.Join(dir, store.FileName)
			if err := d.Apply(path); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			a, err := func() (a *Appliance, err error) {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("Start panicked: %v", r)
						err = fmt.Errorf("panic: %v", r)
					}
				}()
				return Start(Options{DataDir: dir, AdminAddr: "127.0.0.1:0", Out: &out, BcryptCost: bcrypt.MinCost,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			}()
			if err == nil {
				cur := a.Control.Current().Revision
				_ = a.Close()
				t.Fatalf("Start accepted the damaged store and serves revision %d; it said:\n%s", cur, out.String())
			}
			msg := err.Error()
			for _, want := range []string{path, "--reinitialise", "restore a backup"} {
				if !strings.Contains(msg, want) {
					t.Errorf("the error lacks %q: %s", want, msg)
				}
			}
			if d.Name != "empty file" && !strings.Contains(msg, "fulcrum store check") {
				t.Errorf("the error does not point to fulcrum store check: %s", msg)
			}
			if strings.Contains(out.String(), "Created administrator") {
				t.Errorf("Start made a new administrator:\n%s", out.String())
			}
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(before, after) {
				t.Errorf("the store file was changed (%v)", err)
			}
			if _, err := os.Stat(filepath.Join(dir, SocketName)); err == nil {
				t.Error("the console socket was left behind")
			}
		})
	}
}

// TestStartReinitialise starts afresh on purpose over an emptied store:
// a new administrator, revision 0, and the old file kept aside.
func TestStartReinitialise(t *testing.T) {
	dir := makeInstall(t)
	path := filepath.Join(dir, store.FileName)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	a, err := Start(Options{DataDir: dir, AdminAddr: "127.0.0.1:0", Out: &out, BcryptCost: bcrypt.MinCost, Reinitialise: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Control.Current().Revision != 0 {
		t.Errorf("revision %d after reinitialising", a.Control.Current().Revision)
	}
	for _, want := range []string{"Started afresh", "kept as " + path + ".damaged-", `Created administrator "bal"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("Start did not say %q:\n%s", want, out.String())
		}
	}
	kept, _ := filepath.Glob(path + ".damaged-*")
	if len(kept) != 1 {
		t.Fatalf("kept files: %v", kept)
	}
	if !slices.Contains(store.InstallFiles(), admin.CertFile) || !slices.Contains(store.InstallFiles(), admin.KeyFile) {
		t.Errorf("store.InstallFiles() = %v lacks the admin certificate or key", store.InstallFiles())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (the logger).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDamagedPageWhileServing damages a page of revisions under a running
// server: reading those revisions through the API answers 500 with a
// reason (naming the revision, not the file) and logs it; before, the
// connection dropped without an answer or a log line.
func TestDamagedPageWhileServing(t *testing.T) {
	dir := storetest.CopyDir(t, makeInstall(t))
	var logs syncBuffer
	a, err := Start(Options{DataDir: dir, AdminAddr: "127.0.0.1:0", BcryptCost: bcrypt.MinCost,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := storetest.Damages(3)[12].Apply(filepath.Join(dir, store.FileName)); err != nil { // random bytes on a data page
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	failed := 0
	for n := 1; n <= 60; n++ {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/revisions/%d", a.AdminURL(), n), nil)
		req.SetBasicAuth("bal", testPassword)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("revision %d: no answer: %v", n, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusInternalServerError:
			failed++
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, fmt.Sprintf("revision %d", n)) ||
				!strings.Contains(e.Error, "damaged") {
				t.Errorf("revision %d: 500 without a reason naming it: %s", n, body)
			}
			if strings.Contains(string(body), dir) {
				t.Errorf("revision %d: the answer names the file: %s", n, body)
			}
		default:
			t.Errorf("revision %d: status %d: %s", n, resp.StatusCode, body)
		}
	}
	if failed == 0 {
		t.Fatal("no revision read failed: the damage was not met")
	}
	if !strings.Contains(logs.String(), "damaged") {
		t.Errorf("the failures were not logged:\n%s", logs.String())
	}
	t.Logf("%d of 60 revisions answered 500", failed)
}
