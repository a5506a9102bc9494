package store

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// crashDirEnv tells the test binary to run as the writer process of
// TestCrashSafety, on the store in the directory it names.
const crashDirEnv = "FULCRUM_STORE_CRASH_WRITER_DIR"

// Writer options; the verifier uses the same.
var crashOpts = Options{LockTimeout: 5 * time.Second, MaxRevisions: 50, MaxAudit: 200}

// TestCrashWriterHelper is not a test: it is the writer process that
// TestCrashSafety starts and kills. It opens the store, prints "ready" and
// then commits gen(n) as revision n in a tight loop, printing "committed n"
// after each commit returned, until it is killed (or gives up after 15 s, in
// case its parent died).
func TestCrashWriterHelper(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process of TestCrashSafety")
	}
	s, err := Open(dir, crashOpts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		cur, err := s.Current()
		if err != nil {
			fmt.Fprintln(os.Stderr, "writer: current:", err)
			os.Exit(3)
		}
		n := cur.Revision + 1
		ch := Change{User: "crash", Source: "system", Summary: strconv.FormatUint(n, 10)}
		if _, err := s.Commit(cur.Revision, ch, gen(n)); err != nil {
			fmt.Fprintln(os.Stderr, "writer: commit:", err)
			os.Exit(3)
		}
		fmt.Printf("committed %d\n", n)
		// Network revisions up to n, each committed unconfirmed and then
		// confirmed, as the controller does (a kill may have left them
		// behind).
		for {
			nc, err := s.NetworkCurrent()
			if err != nil {
				fmt.Fprintln(os.Stderr, "writer: network current:", err)
				os.Exit(3)
			}
			if nc.Revision >= n {
				break
			}
			m := nc.Revision + 1
			nch := Change{User: "crash", Source: "system", Summary: strconv.FormatUint(m, 10)}
			if _, err := s.CommitNetwork(nc.Revision, nch, netGen(m), false); err != nil {
				fmt.Fprintln(os.Stderr, "writer: commit network:", err)
				os.Exit(3)
			}
			if err := s.ConfirmNetwork(m); err != nil {
				fmt.Fprintln(os.Stderr, "writer: confirm network:", err)
				os.Exit(3)
			}
		}
		if _, err := s.AppendAudit(AuditEntry{Action: "commit", Detail: strconv.FormatUint(n, 10), Success: true}); err != nil {
			fmt.Fprintln(os.Stderr, "writer: audit:", err)
			os.Exit(3)
		}
	}
	os.Exit(4)
}

// TestCrashSafety kills a writer process at random moments and checks after
// each kill that the store opens intact with the last committed revision (or
// a later one) and nothing half-written.
//
// SIGKILL loses what the process had not yet handed to the kernel; it does
// not lose the page cache, so this proves atomicity under process crashes,
// not durability under power loss (which rests on bbolt's fsync).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a writer process 200 times")
	}
	const (
		iterations = 200
		budget     = 120 * time.Second
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	dir := t.TempDir()
	start := time.Now()
	var prev, prevAudit uint64
	var commits int
	for i := range iterations {
		if time.Since(start) > budget {
			t.Fatalf("crash test took longer than %v after %d kills", budget, i)
		}
		reported, n := runWriterAndKill(t, dir, rng)
		commits += n
		cur, auditSeq := verifyAfterCrash(t, dir, i)
		if cur < prev {
			t.Fatalf("kill %d: revision went backwards: %d after %d", i, cur, prev)
		}
		if cur < reported {
			t.Fatalf("kill %d: revision %d was reported committed but the store has %d", i, reported, cur)
		}
		if auditSeq < prevAudit {
			t.Fatalf("kill %d: audit sequence went backwards: %d after %d", i, auditSeq, prevAudit)
		}
		prev, prevAudit = cur, auditSeq
	}
	if prev == 0 {
		t.Fatal("the writer never committed anything")
	}
	t.Logf("%d kills in %v; %d commits reported, final revision %d", iterations, time.Since(start).Round(time.Millisecond), commits, prev)
}

// runWriterAndKill starts a writer on dir, kills it at a random moment and
// returns the highest revision it reported committed and how many commits it
// reported.
func runWriterAndKill(t *testing.T, dir string, rng *rand.Rand) (reported uint64, commits int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriterHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	handle := func(line string) {
		if rest, ok := strings.CutPrefix(line, "committed "); ok {
			n, err := strconv.ParseUint(rest, 10, 64)
			if err != nil {
				t.Errorf("writer printed %q", line)
			}
			reported = max(reported, n)
			commits++
		}
	}
	kill := func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Errorf("kill: %v", err)
		}
		for line := range lines { // commits reported before it died count
			handle(line)
		}
		err := cmd.Wait()
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("writer ended by itself (%v): %s", err, stderr.String())
		}
	}

	timeout := time.After(20 * time.Second)
	ready := false
	for !ready {
		select {
		case line, ok := <-lines:
			if !ok {
				kill()
				t.Fatal("writer exited before it was ready")
			}
			ready = line == "ready"
		case <-timeout:
			kill()
			t.Fatal("writer not ready after 20 s")
		}
	}
	if rng.IntN(2) == 0 {
		// Kill after a random delay.
		deadline := time.After(time.Duration(rng.IntN(40_001)) * time.Microsecond)
	wait:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break wait
				}
				handle(line)
			case <-deadline:
				break wait
			}
		}
	} else {
		// Kill after a random number of commits.
		want := rng.IntN(30)
		for commits < want {
			select {
			case line, ok := <-lines:
				if !ok {
					kill()
					t.Fatal("writer exited early")
				}
				handle(line)
			case <-timeout:
				kill()
				t.Fatalf("writer made only %d commits in 20 s", commits)
			}
		}
	}
	kill()
	return reported, commits
}

// verifyAfterCrash opens the store in dir and checks it thoroughly. It
// returns the current revision and the newest audit sequence number.
func verifyAfterCrash(t *testing.T, dir string, kill int) (rev, auditSeq uint64) {
	t.Helper()
	s, err := Open(dir, crashOpts)
	if err != nil {
		t.Fatalf("kill %d: open: %v", kill, err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatalf("kill %d: close: %v", kill, err)
		}
	}()
	err = s.db.View(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: Check's goroutine sends them all
			if first == nil {
				first = err
			}
		}
		return first
	})
	if err != nil {
		t.Fatalf("kill %d: bbolt check: %v", kill, err)
	}
	cur, err := s.Current()
	if err != nil {
		t.Fatalf("kill %d: Current: %v", kill, err)
	}
	if err := cur.Config.Validate(); err != nil {
		t.Fatalf("kill %d: revision %d invalid: %v", kill, cur.Revision, err)
	}
	if cur.Revision == 0 {
		// Killed before its first commit: a new store's revision 0 is the
		// default configuration.
		if !config.Equal(cur.Config, config.Default()) {
			t.Fatalf("kill %d: revision 0 is not the default configuration", kill)
		}
		return 0, 0
	}
	if !config.Equal(cur.Config, gen(cur.Revision)) {
		t.Fatalf("kill %d: revision %d does not hold gen(%d)", kill, cur.Revision, cur.Revision)
	}
	if cur.Summary != strconv.FormatUint(cur.Revision, 10) {
		t.Fatalf("kill %d: revision %d has the change of %q", kill, cur.Revision, cur.Summary)
	}
	verifyNetworkAfterCrash(t, s, kill, cur.Revision)
	h, err := s.History(0, 0)
	if err != nil {
		t.Fatalf("kill %d: History: %v", kill, err)
	}
	if want := min(cur.Revision, uint64(crashOpts.MaxRevisions)); uint64(len(h)) != want {
		t.Fatalf("kill %d: history has %d entries, want %d", kill, len(h), want)
	}
	if h[0] != cur.Change {
		t.Fatalf("kill %d: newest history entry %+v, current %+v", kill, h[0], cur.Change)
	}
	for i, c := range h {
		if c.Revision != cur.Revision-uint64(i) || c.Summary != strconv.FormatUint(c.Revision, 10) {
			t.Fatalf("kill %d: history[%d] = %+v", kill, i, c)
		}
	}
	oldest := h[len(h)-1].Revision
	r, err := s.Revision(oldest)
	if err != nil || !config.Equal(r.Config, gen(oldest)) {
		t.Fatalf("kill %d: oldest revision %d: %v", kill, oldest, err)
	}
	audit, err := s.Audit(0, 0)
	if err != nil {
		t.Fatalf("kill %d: Audit: %v", kill, err)
	}
	for i, e := range audit {
		if i > 0 && e.Seq != audit[i-1].Seq-1 {
			t.Fatalf("kill %d: audit sequence has a gap: %d after %d", kill, e.Seq, audit[i-1].Seq)
		}
		if n, err := strconv.ParseUint(e.Detail, 10, 64); err != nil || n > cur.Revision {
			t.Fatalf("kill %d: audit entry %+v beyond revision %d", kill, e, cur.Revision)
		}
	}
	if len(audit) > 0 {
		auditSeq = audit[0].Seq
	}
	return cur.Revision, auditSeq
}

// verifyNetworkAfterCrash checks the network revisions after a kill: the
// current one is whole (its settings and change), not ahead of the
// configuration's revision rev, and the history holds the newest
// MaxRevisions with at most the current one unconfirmed.
func verifyNetworkAfterCrash(t *testing.T, s *Store, kill int, rev uint64) {
	t.Helper()
	nc, err := s.NetworkCurrent()
	if err != nil {
		t.Fatalf("kill %d: NetworkCurrent: %v", kill, err)
	}
	if nc.Revision > rev {
		t.Fatalf("kill %d: network revision %d with configuration revision %d", kill, nc.Revision, rev)
	}
	if nc.Revision == 0 {
		return
	}
	if !reflect.DeepEqual(nc.Network, netGen(nc.Revision)) || nc.Summary != strconv.FormatUint(nc.Revision, 10) {
		t.Fatalf("kill %d: network revision %d holds %+v, %q", kill, nc.Revision, nc.Network, nc.Summary)
	}
	h, err := s.NetworkHistory(0, 0)
	if err != nil {
		t.Fatalf("kill %d: NetworkHistory: %v", kill, err)
	}
	if want := min(nc.Revision, uint64(crashOpts.MaxRevisions)); uint64(len(h)) != want {
		t.Fatalf("kill %d: network history has %d entries, want %d", kill, len(h), want)
	}
	if conf, err := s.NetworkConfirmed(); err != nil || conf.Revision+1 < nc.Revision {
		t.Fatalf("kill %d: newest confirmed network revision %d (%v) with %d current", kill, conf.Revision, err, nc.Revision)
	}
}
