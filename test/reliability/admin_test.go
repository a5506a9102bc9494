package reliability

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/attack"
)

// The control-plane cases of issue 15, each against a Fulcrum of its own
// and with the driver's attack code (bench/attack/admin.go); the
// acceptance bounds are attack's (Acceptable). They run one after the
// other, not in parallel, so that the guessing rate and the memory figures
// are the server's, not the machine's load.

// adminFulcrum starts a Fulcrum with one layer-4 service and returns it
// with an API client authenticated by an API key.
func adminFulcrum(t *testing.T) (*fulcrum, *attack.AdminAPI) {
	t.Helper()
	echo := backend(t, attack.ModeEcho)
	l := attack.Layout{TCP: freePorts(t, 1)[0], Echo: echo.Port(), IdleTimeout: idleTimeout, BodyTimeout: bodyTimeout,
		HeaderTimeout: headerTimeout}
	f := startFulcrum(t, l)
	api := attack.NewAdminAPI(f.adminAddr, attack.AdminUser, f.password, nil)
	t.Cleanup(api.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := api.UseNewKey(ctx, "reliability admin tests"); err != nil {
		t.Fatal(err)
	}
	return f, api
}

// restart stops f (SIGTERM, as a service manager would) and starts it
// again on the same data directory and admin address; startFulcrum's
// cleanup stops the new process.
func (f *fulcrum) restart(t *testing.T) {
	t.Helper()
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
	}
	_ = os.Remove(filepath.Join(f.dataDir, "fulcrum.sock"))
	f.cmd = exec.Command(binary, "serve", "--data-dir", f.dataDir, "--admin-addr", f.adminAddr, "--log-level", "warn")
	f.cmd.Env = append(os.Environ(), "FULCRUM_ADMIN_PASSWORD="+f.password)
	f.cmd.Stdout, f.cmd.Stderr = f.out, f.out
	f.done = make(chan struct{})
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, done := f.cmd, f.done
	go func() { _ = cmd.Wait(); close(done) }()
	waitPort(t, f.adminAddr)
}

// TestAdminGuessingAcrossAddresses guesses bal's password from a new
// source address every 3 guesses, 4 at once, for 5 s and on until 10 s
// after the server first refuses a guess early (when none is refused
// within 20 s, it ends then), while the real administrator, who logged in
// from a fixed address before, logs in every second. Issue 15: a
// per-account budget across all sources keeps the guesses evaluated far
// below the ~3,800 per 10 minutes measured (at most 200, extrapolated at
// the pace the server sets at the end: attack.GuessesPerTenMinutes), and
// the real administrator is never locked out.
func TestAdminGuessingAcrossAddresses(t *testing.T) {
	f, _ := adminFulcrum(t)
	r, err := attack.RunGuessing(context.Background(), attack.GuessConfig{Addr: f.adminAddr, User: attack.AdminUser,
		Password: f.password, Workers: 4, PerSource: 3, Window: 5 * time.Second, Observe: 10 * time.Second, MaxWindow: 20 * time.Second, Sources: attack.NewSources(3),
		AdminSource: net.IPv4(127, 2, 0, 1), AdminEvery: time.Second, PID: f.pid()})
	t.Logf("%+v", r)
	if err != nil {
		t.Fatal(err)
	}
	if r.Answered == 0 {
		t.Fatalf("no guess was answered: %+v", r)
	}
	t.Logf("%d guesses from %d addresses in %.1f s: %d evaluated (401; the last at %.1f s), %d refused early (from %.1f s; Retry-After %d-%d s, the last %d s), statuses %v; "+
		"extrapolated %.0f guesses evaluated per 10 minutes; server CPU %.2f s; real administrator before %d, during %v, after %d",
		r.Sent, r.Sources, r.WindowS, r.Evaluated, r.LastEvaluatedS, r.Refused, r.FirstRefusedS, r.RetryAfterMin, r.RetryAfterMax,
		r.LastRetryAfter, r.Statuses, r.PerTenMinutes, r.CPUSeconds, r.AdminBefore, r.AdminDuring, r.AdminAfter)
	if ok, why := r.Acceptable(); !ok {
		t.Errorf("password guessing across addresses (issue 15: ≤ %d evaluated per 10 minutes, real administrator never locked out): %s",
			attack.MaxGuessesPerTenMinutes, why)
	}
}

// TestAdminAuditFlood sends bad API keys from a new source address every
// 3 keys for 6 s, after the administrator logged in and changed the
// configuration, then restarts Fulcrum (so that the entries it defers are
// written) and reads the audit log back. Issue 15: failures are
// aggregated (at most 5 audit entries a second, however fast they come)
// and the login and change entries stay in the log.
func TestAdminAuditFlood(t *testing.T) {
	f, api := adminFulcrum(t)
	r, err := attack.RunAuditFlood(context.Background(), attack.AuditFloodConfig{API: api, Password: f.password,
		Workers: 32, PerSource: 3, Window: 6 * time.Second, Sources: attack.NewSources(5), AdminSource: net.IPv4(127, 2, 0, 2),
		MarkerPort: freePorts(t, 1)[0], Settle: func(context.Context) error { f.restart(t); return nil }})
	t.Logf("%+v", r)
	if err != nil {
		t.Fatal(err)
	}
	if r.Answered == 0 {
		t.Fatalf("no bad key was answered: %+v", r)
	}
	t.Logf("%d bad keys answered (%.0f/s) from %d addresses: %d audit entries of the flood (%.1f/s; %d appended in all, by action %v); login kept %v, change kept %v",
		r.Answered, r.AttemptsPerSecond(), r.Sources, r.FloodEntries, r.EntriesPerSecond(), r.SeqAdded, r.ByAction, r.LoginKept, r.ChangeKept)
	if r.Sample != nil {
		t.Logf("newest: %+v", *r.Sample)
	}
	if ok, why := r.Acceptable(); !ok {
		t.Errorf("audit flood (issue 15: aggregated, ≤ %d entries a second, logins and changes kept): %s", attack.MaxAuditPerSecond, why)
	}
}

// TestAdminUnauthenticatedBodies enables the LoadMaster API and sends 25
// concurrent 16 MiB POSTs without credentials to /accessv2, then 25 to
// /access/addvs as forms. Issue 15: authentication comes before the body,
// so RSS grows by at most 64 MiB (the issue measured +1.6 GB) and comes
// back within 1.2× afterwards.
func TestAdminUnauthenticatedBodies(t *testing.T) {
	f, api := adminFulcrum(t)
	r, err := attack.RunUnauthBodies(context.Background(), attack.BodiesConfig{API: api, PID: f.pid(), Conns: 25, Size: 16 << 20,
		Sources: attack.NewSources(6), SampleEvery: 100 * time.Millisecond, AfterWait: 8 * time.Second})
	t.Logf("%+v", r)
	if err != nil {
		t.Fatal(err)
	}
	for _, round := range r.Rounds {
		t.Logf("%s: %d sent, answers %v, no answer %v, %d MiB written, %.2f s, peak RSS %d MiB",
			round.Name, round.Sent, round.Statuses, round.NoAnswer, round.BytesSent>>20, round.Seconds, round.PeakKiB>>10)
		if len(round.Statuses) == 0 {
			t.Fatalf("%s: no request was answered (%v): the attack did not reach the server", round.Name, round.NoAnswer)
		}
	}
	t.Logf("RSS before %d KiB, peak %d KiB (+%d MiB), after %d KiB (%.1f s later)", r.BeforeKiB, r.PeakKiB, r.GrowthKiB()>>10, r.AfterKiB, r.AfterWaitS)
	if ok, why := r.Acceptable(); !ok {
		t.Errorf("unauthenticated large bodies (issue 15: ≤ %d MiB growth, back within 1.2×): %s", attack.MaxBodyGrowthKiB>>10, why)
	}
}

// TestAdminForgedRestore downloads a backup, adds an administrator
// mallory with a bcrypt hash of cost 4 and an API key, recomputes the
// checksum and restores it. Issue 15: the forged backup is refused
// without the explicit parameter (signature kept or removed), the preview
// names what it would add, and mallory never gets in.
func TestAdminForgedRestore(t *testing.T) {
	_, api := adminFulcrum(t)
	r, err := attack.RunForgedRestore(context.Background(), api, "mallory", net.IPv4(127, 4, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Steps {
		t.Logf("%-50s %d committed=%v signature=%q names mallory=%v her key=%v: %s", s.Name, s.Status, s.Committed, s.Signature,
			s.NamesUser, s.NamesKey, s.Message)
	}
	t.Logf("mallory listed %v, her password answered %d, her key %d", r.UserListed, r.PasswordStatus, r.KeyStatus)
	if ok, why := r.Acceptable(); !ok {
		t.Errorf("forged restore (issue 15: refused without allowUnsigned, mallory never gets in): %s", why)
	}
	if p := r.Step(attack.StepPreview); p.Status != 200 || !p.NamesUser || !p.NamesKey {
		t.Errorf("the preview of the forged backup (allowUnsigned, dryRun) answered %d naming mallory %v and her key %v: %s (issue 15: it shows the users and keys it would replace by name)",
			p.Status, p.NamesUser, p.NamesKey, p.Message)
	}
}
