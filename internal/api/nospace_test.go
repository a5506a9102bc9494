package api

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestFullDisk507 fills a small tmpfs that holds the store through the API
// (it needs root to mount one): the change that does not fit is answered
// 507 with a message that names the condition but not the store file's
// path, and the revision it left is the one before.
func TestFullDisk507(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs (CI runs as root): %v", err)
		}
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	e := newEnvIn(t, dir)
	t.Cleanup(func() { // after newEnvIn's cleanup has closed the store
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	var full resp
	for i := range 4000 {
		// Names that do not compress, so that each revision takes room.
		body := fmt.Sprintf(`{"address":"127.0.0.2","port":%d,"protocol":"tcp","nickname":"svc-%s","realServers":[{"address":"127.0.0.3","port":80}]}`,
			1000+i, rand.Text())
		r := e.do(req{method: "POST", path: "/api/v1/virtual-services", body: body})
		if r.status == http.StatusCreated {
			continue
		}
		full = r
		break
	}
	if full.status != http.StatusInsufficientStorage {
		t.Fatalf("the change that did not fit: %d %s, want 507", full.status, full.body)
	}
	if !strings.Contains(string(full.body), "no space left") || strings.Contains(string(full.body), dir) || strings.Contains(string(full.body), "fulcrum.db") {
		t.Errorf("507's message should name the condition and no path: %s", full.body)
	}
	t.Logf("507: %s", full.body)
	cur, err := e.st.Current()
	if err != nil {
		t.Fatal(err)
	}
	got := e.must(req{method: "GET", path: "/api/v1/config"}, http.StatusOK)
	if etag := got.header.Get("ETag"); etag != fmt.Sprintf(`"%d"`, cur.Revision) {
		t.Errorf("after the full disk: ETag %s, store at revision %d", etag, cur.Revision)
	}
}
