package main

// The control-plane cases of issue 15: password guessing across source
// addresses, a flood of bad API keys against the audit log,
// unauthenticated large bodies on the LoadMaster-compatible API, and a
// forged restore. The attacks are bench/attack's Run functions, which the
// fast subset (test/reliability/admin_test.go) runs too, with the same
// acceptance (their Acceptable methods).

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/attack"
)

// adminPassword is bal's password in every Fulcrum the suite starts
// (fulcrumproc.Start's password argument in proxies.go and crash.go).
const adminPassword = "reliability passphrase"

// Ports (offsets from -base-port) of the admin planes of the cases'
// own Fulcrums.
const (
	portGuessing = 95
	portAudit    = 96
	portRestore  = 97
	portMarker   = 191 // the disabled service audit-flood creates
)

// The source addresses of the control-plane cases: each attack takes a
// /16 of 127.0.0.0/8 of its own, the real administrator fixed ones.
var (
	realAdminGuessing = net.IPv4(127, 2, 0, 1)
	realAdminAudit    = net.IPv4(127, 2, 0, 2)
	malloryProbe      = net.IPv4(127, 4, 0, 1)
)

// guessObserve is how long admin-guessing goes on after the first guess
// refused early; guessMax is when it ends if none is (at least
// -duration).
const (
	guessObserve = 40 * time.Second
	guessMax     = 60 * time.Second
)

// adminProc starts a Fulcrum of the case's own (the guessing case locks
// bal out of new addresses; the others change users or the audit log)
// with an API client authenticated by an API key.
func (r *runner) adminProc(ctx context.Context, name string, port int) (*crashProc, *attack.AdminAPI, error) {
	p, err := startCrashProc(ctx, r.e.fulcrum, filepath.Join(r.e.tmp, name), r.e.port(port))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: own fulcrum: %w", name, err)
	}
	api := attack.NewAdminAPI(p.p.AdminAddr, attack.AdminUser, adminPassword, nil)
	if err := api.UseNewKey(ctx, "reliability "+name); err != nil {
		api.Close()
		p.stop()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, api, nil
}

// verdictFrom sets the cell's verdict and notes why it failed.
func verdictFrom(c *cell, ok bool, why string) {
	c.verdict(ok)
	if !ok {
		c.note("not met: %s", why)
	}
}

func caseAdminGuessing(ctx context.Context, r *runner, _ *proxy) (*cell, error) {
	c := &cell{}
	p, api, err := r.adminProc(ctx, "admin-guessing", portGuessing)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	defer api.Close()
	res, err := attack.RunGuessing(ctx, attack.GuessConfig{Addr: p.p.AdminAddr, User: attack.AdminUser, Password: adminPassword,
		Workers: 4, PerSource: 3, Window: r.window(), Observe: guessObserve, MaxWindow: max(r.window(), guessMax),
		Sources: attack.NewSources(3), AdminSource: realAdminGuessing, AdminEvery: time.Second, PID: p.p.Pid()})
	if err != nil {
		return nil, err
	}
	c.add("attack seconds", res.WindowS)
	c.add("source addresses", res.Sources)
	c.add("guesses sent", res.Sent)
	c.add("guesses answered", res.Answered)
	c.add("evaluated (401: password compared)", res.Evaluated)
	c.add("evaluated in the second half", res.EvaluatedSecondHalf)
	c.add("last evaluated at s", res.LastEvaluatedS)
	c.add("refused early (429/423/403)", res.Refused)
	c.add("first refused at s", res.FirstRefusedS)
	c.add("Retry-After min s", res.RetryAfterMin)
	c.add("Retry-After max s", res.RetryAfterMax)
	c.add("last Retry-After s", res.LastRetryAfter)
	c.add("answers", res.Statuses)
	c.add("cut at the end", res.Unanswered)
	c.add("errors", res.Errors)
	if len(res.ErrorKinds) > 0 {
		c.add("error kinds", res.ErrorKinds)
	}
	c.add("401 after ms, p50", res.EvalP50ms)
	c.add("401 after ms, p99", res.EvalP99ms)
	c.add("Fulcrum CPU s during the attack", res.CPUSeconds)
	if res.Evaluated > 0 && res.CPUSeconds >= 0 {
		c.add("Fulcrum CPU s per evaluated guess", res.CPUSeconds/float64(res.Evaluated))
	}
	c.add("evaluated per second", float64(res.Evaluated)/res.WindowS)
	c.add("guesses evaluated per 10 min (extrapolated)", res.PerTenMinutes)
	c.add("real admin before", res.AdminBefore)
	c.add("real admin during", res.AdminDuring)
	c.add("real admin after", res.AdminAfter)
	if len(res.AdminErrors) > 0 {
		c.add("real admin errors", res.AdminErrors)
	}
	c.add("real admin login ms, p50", res.AdminP50ms)
	c.add("real admin login ms, max", res.AdminMaxMs)
	c.add("real admin locked out", res.AdminLockedOut())
	ok, why := res.Acceptable()
	verdictFrom(c, ok, why)
	return c, nil
}

func caseAuditFlood(ctx context.Context, r *runner, _ *proxy) (*cell, error) {
	c := &cell{}
	p, api, err := r.adminProc(ctx, "audit-flood", portAudit)
	if err != nil {
		return nil, err
	}
	defer func() { p.stop() }()
	defer api.Close()
	// Stopped and started again after the flood, so that the entries it
	// defers (aggregated failures) are in the log when it is read.
	settle := func(ctx context.Context) error {
		p.stop()
		np, err := startCrashProc(ctx, r.e.fulcrum, filepath.Join(r.e.tmp, "audit-flood"), r.e.port(portAudit))
		if err != nil {
			return fmt.Errorf("restart: %w", err)
		}
		p = np
		return nil
	}
	res, err := attack.RunAuditFlood(ctx, attack.AuditFloodConfig{API: api, Password: adminPassword, Workers: 32, PerSource: 3,
		Window: r.window(), Sources: attack.NewSources(5), AdminSource: realAdminAudit, MarkerPort: r.e.port(portMarker), Settle: settle})
	if err != nil {
		return nil, err
	}
	c.add("flood seconds", res.WindowS)
	c.add("source addresses", res.Sources)
	c.add("bad keys sent", res.Sent)
	c.add("bad keys answered", res.Answered)
	c.add("bad keys answered per second", res.AttemptsPerSecond())
	c.add("answers", res.Statuses)
	c.add("errors", res.Errors)
	if len(res.ErrorKinds) > 0 {
		c.add("error kinds", res.ErrorKinds)
	}
	c.add("audit entries of the flood (failures, lockouts)", res.FloodEntries)
	c.add("audit entries per second", res.EntriesPerSecond())
	if res.FloodEntries > 0 {
		c.add("bad keys per audit entry", float64(res.Answered)/float64(res.FloodEntries))
		c.add("minutes to flush 100,000 entries at this rate", 100000/res.EntriesPerSecond()/60)
	}
	c.add("audit entries appended in all", res.SeqAdded)
	c.add("entries in the log newer than the flood's start", res.InLog)
	c.add("by action", res.ByAction)
	c.add("read after a restart (deferred entries written)", res.Settled)
	if res.Sample != nil {
		c.note("newest entry of the flood: %s %q from %s: %s", res.Sample.Action, res.Sample.User, res.Sample.RemoteAddr, res.Sample.Detail)
	}
	c.add("login entry kept", res.LoginKept)
	c.add("change entry kept", res.ChangeKept)
	ok, why := res.Acceptable()
	verdictFrom(c, ok, why)
	return c, nil
}

func caseUnauthBodies(ctx context.Context, r *runner, x *proxy) (*cell, error) {
	c := &cell{}
	// Basic for the three calls: a key would add to the keys of bal, of
	// which the suite's own is one.
	api := attack.NewAdminAPI(x.fulcrum.AdminAddr, attack.AdminUser, adminPassword, nil)
	defer api.Close()
	res, err := attack.RunUnauthBodies(ctx, attack.BodiesConfig{API: api, PID: x.pid(), Conns: 25, Size: 16 << 20,
		Sources: attack.NewSources(6), SampleEvery: 100 * time.Millisecond, AfterWait: time.Duration(r.e.o.idleTimeout) * time.Second})
	if err != nil {
		return nil, err
	}
	if !res.APIWasEnabled {
		c.note("the LoadMaster API was enabled for the case and disabled again")
	}
	for _, rd := range res.Rounds {
		c.Rows = append(c.Rows, map[string]any{"name": rd.Name, "sent": rd.Sent, "answers": rd.Statuses, "no answer": rd.NoAnswer,
			"MiB written": float64(rd.BytesSent) / (1 << 20), "seconds": rd.Seconds, "peak RSS MiB": float64(rd.PeakKiB) / 1024})
	}
	c.add("RSS before, KiB", res.BeforeKiB)
	c.add("RSS peak, KiB", res.PeakKiB)
	c.add("RSS growth at the peak, MiB", float64(res.GrowthKiB())/1024)
	c.add("RSS after, KiB", res.AfterKiB)
	c.add("RSS after ÷ before", float64(res.AfterKiB)/float64(max(res.BeforeKiB, 1)))
	c.add("memory came back (≤ 1.2×)", res.CameBack())
	c.add("seconds waited for it", res.AfterWaitS)
	c.add("RSS samples", res.Samples)
	ok, why := res.Acceptable()
	verdictFrom(c, ok, why)
	return c, nil
}

func caseForgedRestore(ctx context.Context, r *runner, _ *proxy) (*cell, error) {
	c := &cell{}
	p, api, err := r.adminProc(ctx, "forged-restore", portRestore)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	defer api.Close()
	res, err := attack.RunForgedRestore(ctx, api, "mallory", malloryProbe)
	if err != nil {
		return nil, err
	}
	c.add("backup bytes", res.BackupBytes)
	for _, s := range res.Steps {
		c.Rows = append(c.Rows, map[string]any{"name": s.Name, "status": s.Status, "committed": s.Committed, "signature": s.Signature,
			"names mallory": s.NamesUser, "names her key": s.NamesKey, "message": s.Message})
		c.add(s.Name+": status", s.Status)
	}
	pv := res.Step(attack.StepPreview)
	c.add("preview names mallory", pv.NamesUser)
	c.add("preview names her key", pv.NamesKey)
	c.add("mallory in GET /users", res.UserListed)
	c.add("mallory's password answered", res.PasswordStatus)
	c.add("mallory's API key answered", res.KeyStatus)
	ok, why := res.Acceptable()
	verdictFrom(c, ok, why)
	return c, nil
}
