// Package fulcrumproc runs `fulcrum serve` for the load tools under
// bench/cmd: it starts the process in a data directory, applies a
// configuration file with `fulcrum apply`, calls the REST API over the
// admin plane's own TLS certificate, reads the process's resident set
// size and stops it.
package fulcrumproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a running `fulcrum serve`.
type Process struct {
	// Cmd is the running command.
	Cmd *exec.Cmd
	// DataDir is the process's data directory.
	DataDir string
	// AdminAddr is the host:port of its admin plane.
	AdminAddr string

	bin      string
	password string
	exited   chan struct{}
}

// Start runs `bin serve` with its data directory and log file in dir,
// its admin plane on 127.0.0.1:adminPort and the administrator bal's
// password set to password, and waits (at most 20 s) until it opens its
// console socket.
func Start(ctx context.Context, bin, dir string, adminPort int, password string) (*Process, error) {
	p := &Process{
		DataDir:   filepath.Join(dir, "data"),
		AdminAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		bin:       bin,
		password:  password,
		exited:    make(chan struct{}),
	}
	logPath := filepath.Join(dir, "fulcrum.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	p.Cmd = exec.Command(bin, "serve", "--data-dir", p.DataDir, "--admin-addr", p.AdminAddr, "--log-level", "warn")
	p.Cmd.Env = append(os.Environ(), "FULCRUM_ADMIN_PASSWORD="+password)
	p.Cmd.Stdout, p.Cmd.Stderr = logFile, logFile
	if err := p.Cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start fulcrum: %w", err)
	}
	go func() {
		_ = p.Cmd.Wait()
		_ = logFile.Close()
		close(p.exited)
	}()
	sock := filepath.Join(p.DataDir, "fulcrum.sock")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return p, nil
		}
		select {
		case <-p.exited:
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("fulcrum exited: %s", LastLines(out, 10))
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("wait for fulcrum: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, errors.New("fulcrum did not open its console socket within 20 s")
		}
	}
}

// Pid returns the process ID.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Stop ends the process: SIGTERM, then SIGKILL after 5 s. It may be
// called more than once.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.exited
	}
}

// Apply runs `fulcrum apply -f file` against the process's data
// directory (through its console socket).
func (p *Process) Apply(ctx context.Context, file string) error {
	out, err := exec.CommandContext(ctx, p.bin, "apply", "--data-dir", p.DataDir, "-f", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fulcrum apply: %w: %s", err, LastLines(out, 5))
	}
	return nil
}

// RSSKiB returns the resident set size (VmRSS) of process pid in KiB, or
// 0 when it cannot be read.
func RSSKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// RSSMiB returns the resident set size of process pid in MiB, rounded to
// one decimal, or 0 when it cannot be read.
func RSSMiB(pid int) float64 { return math.Round(float64(RSSKiB(pid))/1024*10) / 10 }

// LastLines returns at most the n last lines of b, joined with " | ".
func LastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}
