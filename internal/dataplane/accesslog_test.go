package dataplane

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestAccessLogFollowsTheSetting: an Engine with a Writer logs the
// connections of an l4 service while its accessLog is on and a file is
// set, and stops when either goes; the status says why it does not log.
func TestAccessLogFollowsTheSetting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w := accesslog.New(accesslog.Options{Logger: quiet})
	defer w.Close()
	e := New(Options{Logger: quiet, AccessLog: w})
	t.Cleanup(func() { e.Close() })
	a := startTag(t, "a")
	port := testkit.FreePort(t, "127.0.0.1")
	build := func(on bool, file string) *config.Config {
		vs := vsOf(1, "127.0.0.1", port, rsOf(11, a, 1))
		vs.HealthCheck.Type, vs.AccessLog, vs.NickName = "none", on, "web"
		c := conf(t, vs)
		c.Options.Logging.AccessLog.File = file
		if err := w.Configure(c.Options.Logging.AccessLog, nil); err != nil {
			t.Fatal(err)
		}
		return c
	}
	addr := hostPort("127.0.0.1", port)
	steps := []struct {
		on     bool
		file   string
		logged bool
		note   string
	}{
		{on: true, file: path, logged: true},
		{on: false, file: path},
		{on: true, file: "", note: NoAccessLogDestination},
		{on: true, file: path, logged: true},
	}
	want := 0
	for i, s := range steps {
		mustApply(t, e, build(s.on, s.file))
		if tag, err := askOnce(addr); err != nil || tag != "a" {
			t.Fatalf("step %d: %q %v", i, tag, err)
		}
		if s.logged {
			want++
		}
		st := e.Status()[0]
		if s.note != "" && !strings.Contains(st.Reason, s.note) || s.note == "" && strings.Contains(st.Reason, "accessLog") {
			t.Errorf("step %d: status reason %q, want note %q", i, st.Reason, s.note)
		}
		testkit.Eventually(t, 10*time.Second, func() bool { return e.proxy.Active() == 0 }, "connection ended")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != want {
		t.Fatalf("%d lines, want %d: %q", len(lines), want, b)
	}
	for _, l := range lines {
		var v struct {
			VS       int    `json:"vs"`
			VSName   string `json:"vsName"`
			Frontend string `json:"frontend"`
			ServerID int    `json:"serverId"`
			BytesIn  int64  `json:"bytesIn"`
			BytesOut int64  `json:"bytesOut"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		if v.VS != 1 || v.VSName != "web" || v.Frontend != addr || v.ServerID != 11 || v.BytesIn != int64(len("hello\n")) || v.BytesOut != int64(len("a hello\n")) {
			t.Errorf("line %s", l)
		}
	}
}
