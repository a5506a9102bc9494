package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestAccessLogRotation sets accessLog on a layer-4 service and an access
// log file, makes connections from two clients while the file is renamed
// and SIGHUP sent (as logrotate's postrotate does), and finds every
// connection's line, once, across the renamed file and the new one.
func TestAccessLogRotation(t *testing.T) {
	s := serve(t)
	backend := echoBackend(t)
	vip := freePort(t)
	logFile := s.logFile(t)
	doc := fmt.Sprintf(`options:
  logging:
    accessLog:
      file: %s
      format: json
virtualServices:
- address: 127.0.0.1
  port: %d
  nickname: logged
  accessLog: true
  realServers:
  - address: 127.0.0.1
    port: %d
`, logFile, vip, backend)
	s.apply(t, doc)

	const clients, perClient = 2, 100
	var (
		mu     sync.Mutex
		seen   = map[string]bool{} // client address of each connection
		done   atomic.Int64
		failed atomic.Value
		wg     sync.WaitGroup
	)
	deadline := time.Now().Add(60 * time.Second)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perClient && time.Now().Before(deadline); i++ {
				conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", vip), 5*time.Second)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				msg := fmt.Sprintf("c%d-%d", c, i)
				fmt.Fprintln(conn, msg)
				got, err := bufio.NewReader(conn).ReadString('\n')
				local := conn.LocalAddr().String()
				conn.Close()
				if err != nil || got != "echo: "+msg+"\n" {
					failed.Store(fmt.Sprintf("%s: %q %v", msg, got, err))
					return
				}
				mu.Lock()
				seen[local] = true
				mu.Unlock()
				done.Add(1)
			}
		}()
	}
	// Rotate halfway through, under load.
	testkit.Eventually(t, 30*time.Second, func() bool { return done.Load() >= clients*perClient/2 || failed.Load() != nil }, "half the connections")
	// ... once their lines are in the file (written within 200 ms).
	testkit.Eventually(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Count(string(b), "\n") >= clients*perClient/2
	}, "the first half's lines written")
	rotated := logFile + ".1"
	if err := os.Rename(logFile, rotated); err != nil {
		t.Fatal(err)
	}
	if err := s.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return strings.Contains(s.p.output(), "logs reopened") }, "SIGHUP logged")
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatalf("a connection failed: %v", f)
	}
	// Connections made after the reopen go to the new file.
	const after = 5
	for i := range after {
		if got := roundTrip(t, vip, fmt.Sprint("after-", i)); got != fmt.Sprint("echo: after-", i) {
			t.Fatalf("through the VS: %q", got)
		}
	}

	// Every connection's line, once, across both files (flushed within
	// 200 ms of the last).
	var lines []string
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		lines = nil
		for _, f := range []string{rotated, logFile} {
			b, err := os.ReadFile(f)
			if err != nil {
				return false, err.Error()
			}
			if len(b) > 0 {
				lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
			}
		}
		return len(lines) >= len(seen)+after, fmt.Sprintf("%d lines for %d connections", len(lines), len(seen)+after)
	}, "every connection logged")
	if len(seen) != clients*perClient {
		t.Fatalf("%d connections made, want %d", len(seen), clients*perClient)
	}
	inRotated := 0
	if b, _ := os.ReadFile(rotated); len(b) > 0 {
		inRotated = strings.Count(string(b), "\n")
	}
	if inRotated < clients*perClient/2 || len(lines)-inRotated < after {
		t.Errorf("%d of %d lines in the rotated file: want the %d before the rename there and the %d after the reopen in the new file",
			inRotated, len(lines), clients*perClient/2, after)
	}
	extra := 0 // lines of the connections made after the reopen
	for _, l := range lines {
		var v struct {
			Client, VSName, Server, Termination string
			Kind                                string
			BytesIn, BytesOut                   int64
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("incomplete line %q: %v", l, err)
		}
		if seen[v.Client] {
			delete(seen, v.Client)
		} else if extra++; extra > after {
			t.Fatalf("line of an unknown or repeated connection: %s", l)
		}
		if v.Kind != "tcp" || v.VSName != "logged" || v.Server != fmt.Sprintf("127.0.0.1:%d", backend) || v.BytesIn == 0 || v.BytesOut == 0 {
			t.Errorf("line %s", l)
		}
	}
	if len(seen) != 0 {
		t.Errorf("%d connections without a line", len(seen))
	}
	t.Logf("%d connections, %d lines in the rotated file, %d in the new one", len(lines), inRotated, len(lines)-inRotated)
}

// apply makes doc (YAML) the configuration of s with `fulcrum apply`.
func (s *stack) apply(t *testing.T, doc string) {
	t.Helper()
	file := filepath.Join(s.dir, "lb.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, rc := run(t, s.dir, "", "apply", "-f", file, "--data-dir", s.dataDir); rc != 0 {
		t.Fatalf("apply: %d\n%s", rc, out)
	}
}

// logFile returns the path of an access log file in a directory of its
// own under s's directory.
func (s *stack) logFile(t *testing.T) string {
	t.Helper()
	f := filepath.Join(s.dir, "logs", "access.log")
	if err := os.MkdirAll(filepath.Dir(f), 0o750); err != nil {
		t.Fatal(err)
	}
	return f
}
