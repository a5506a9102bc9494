package appliance

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestAccessLogSettings: the Writer follows options.logging.accessLog (a
// file that cannot be opened is an err event, and the previous file is
// kept), lines of an l4 service with accessLog reach the file, and
// ReopenLogs moves the next ones to a new file after a rename.
func TestAccessLogSettings(t *testing.T) {
	dir := t.TempDir()
	a, err := Start(Options{DataDir: filepath.Join(dir, "data"), AdminAddr: "127.0.0.1:0", AdminPassword: "correct horse battery",
		BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	apply := func(mutate func(c *config.Config)) {
		t.Helper()
		_, err := a.Control.Apply(control.Change{Actor: control.Actor{User: "test", Source: control.SourceSystem}, Summary: "access log",
			Mutate: func(c *config.Config) error { mutate(c); return nil }})
		if err != nil {
			t.Fatal(err)
		}
	}
	logFile := filepath.Join(dir, "access.log")
	apply(func(c *config.Config) { c.Options.Logging.AccessLog.File = logFile })
	if _, err := os.Stat(logFile); err != nil {
		t.Fatalf("the file was not opened: %v", err)
	}
	apply(func(c *config.Config) { c.Options.Logging.AccessLog.File = filepath.Join(dir, "no-such-dir", "x.log") })
	list := a.Events.List(events.Filter{MaxSeverity: events.Err, Kind: events.KindSystem}, 10)
	if len(list) == 0 || !strings.Contains(list[0].Message, "options.logging.accessLog.file") {
		t.Fatalf("no err event naming the field: %+v", list)
	}

	backend := testkit.StartTCP(t, "127.0.0.1", func(c net.Conn) { _, _ = io.WriteString(c, "hi\n") }) // then closed
	vip := testkit.FreePort(t, "127.0.0.1")
	apply(func(c *config.Config) {
		c.VirtualServices = []config.VirtualService{{Address: "127.0.0.1", Port: vip, AccessLog: true, NickName: "logged",
			HealthCheck: config.HealthCheck{Type: "none"},
			RealServers: []config.RealServer{{Address: "127.0.0.1", Port: backend.Port()}}}}
	})
	connect := func() {
		t.Helper()
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(vip)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(c); err != nil || string(b) != "hi\n" {
			t.Fatalf("through the service: %q %v", b, err)
		}
		c.Close()
	}
	lines := func(f string) int {
		b, _ := os.ReadFile(f)
		return strings.Count(string(b), "\n")
	}
	connect()
	testkit.Eventually(t, 10*time.Second, func() bool { return lines(logFile) == 1 }, "the line in the kept file")
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	if err := a.ReopenLogs(); err != nil {
		t.Fatal(err)
	}
	connect()
	testkit.Eventually(t, 10*time.Second, func() bool { return lines(logFile) == 1 }, "the line in the new file")
	if n := lines(logFile + ".1"); n != 1 {
		t.Errorf("the rotated file has %d lines, want 1", n)
	}
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), `"vsName":"logged"`) {
		t.Errorf("line %s", b)
	}
}
