package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/internal/host"
)

// procs is the set of long-running processes the driver started; stopAll
// ends every one of them (by process group) so that nothing outlives a run.
type procs struct {
	mu   sync.Mutex
	list []*proc
	log  *slog.Logger
}

// proc is one long-running child process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// start runs argv pinned to cpu with taskset, in its own process group,
// its output going to logPath.
func (ps *procs) start(name string, cpu int, env []string, logPath string, argv ...string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	args := append([]string{"-c", strconv.Itoa(cpu)}, argv...)
	cmd := exec.Command("taskset", args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// No GOMAXPROCS from the caller: a Go proxy takes its parallelism from
	// the affinity mask, as it would in production.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: lf}
	go func() { _ = cmd.Wait(); close(p.done) }()
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	ps.log.Debug("started", "name", name, "pid", cmd.Process.Pid)
	return p, nil
}

// pid is the process's id (taskset execs the program, so it is the program's).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop ends the process's group: SIGTERM, then SIGKILL after 5 s.
func (p *proc) stop() {
	if !p.alive() {
		_ = p.log.Close()
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	_ = p.log.Close()
}

// stopAll stops every process started, newest first.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}

// runTool runs a bounded command pinned to cpu (cpu < 0: not pinned) and
// returns its standard output; standard error is appended to logPath.
func runTool(ctx context.Context, timeout time.Duration, cpu int, logPath string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if cpu >= 0 {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out strings.Builder
	cmd.Stdout = &out
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("%s: %w", argv[0], err)
	}
	defer lf.Close()
	fmt.Fprintf(lf, "$ %s\n", strings.Join(argv, " "))
	cmd.Stderr = lf
	err = cmd.Run()
	fmt.Fprintf(lf, "%s\n", out.String())
	if err != nil {
		if ctx.Err() != nil {
			return out.String(), fmt.Errorf("%s: %w (bounded to %s)", strings.Join(argv, " "), ctx.Err(), timeout)
		}
		return out.String(), fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return out.String(), nil
}

// clkTck is the kernel's clock tick (USER_HZ) used by /proc/<pid>/stat.
var clkTck = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}()

// cpuTicks returns utime+stime of pid and of its children (an nginx master's
// workers), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	t, err := ownTicks(pid)
	if err != nil {
		return 0, err
	}
	for _, c := range host.Children(pid) {
		if ct, err := ownTicks(c); err == nil {
			t += ct
		}
	}
	return t, nil
}

func ownTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	return parseStatTicks(string(b))
}

// parseStatTicks returns utime+stime from the text of /proc/<pid>/stat.
func parseStatTicks(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: %w", err)
	}
	return u + s, nil
}

// memKiB returns a field of /proc/<pid>/status in KiB (VmRSS, VmHWM), summed
// with the process's children.
func memKiB(pid int, field string) (int64, error) {
	v, err := ownMem(pid, field)
	if err != nil {
		return 0, err
	}
	for _, c := range host.Children(pid) {
		if cv, err := ownMem(c, field); err == nil {
			v += cv
		}
	}
	return v, nil
}

func ownMem(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("memory of %d: %w", pid, err)
	}
	return parseStatus(string(b), field)
}

// parseStatus returns the value in KiB of field ("VmRSS") in the text of
// /proc/<pid>/status.
func parseStatus(status, field string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// resetPeak resets VmHWM of pid and its children (Linux ≥ 4.0, root), so
// that the peak is that of one row. It reports whether that worked.
func resetPeak(pid int) bool {
	ok := true
	for _, p := range append([]int{pid}, host.Children(pid)...) {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p), []byte("5"), 0); err != nil {
			ok = false
		}
	}
	return ok
}

// waitPort waits until something accepts on addr, the process dies or the
// time is up.
func waitPort(ctx context.Context, addr string, p *proc, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p != nil && !p.alive() {
			return fmt.Errorf("%s exited (see its log)", p.name)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, limit)
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
