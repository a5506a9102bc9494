package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/attack"
	"github.com/fulcrum-lb/fulcrum/bench/internal/fulcrumproc"
	"github.com/fulcrum-lb/fulcrum/bench/internal/host"
)

// proxy is one proxy under test.
type proxy struct {
	name string
	l    attack.Layout
	// pid returns the process to measure (0 when not running).
	pid  func() int
	stop func()
	// restart stops and starts the proxy again with the same
	// configuration.
	restart func(ctx context.Context) error
	// fulcrum is the running Fulcrum (nil for HAProxy).
	fulcrum *fulcrumproc.Process
	api     *fulcrumproc.Client
	// statsSock is HAProxy's admin socket.
	statsSock string
}

// env is what the proxies and cases share.
type env struct {
	o       options
	tmp     string
	logs    string
	fulcrum string // binary (a wrapper pinning it when pinned)
	self    string // this program, for the helper subcommands
	cert    attack.Cert
	fdLimit int
	web     *attack.Backend // the real server of the web services
	kill    *backendProcs   // the real servers killed by backend-kill
}

func (e *env) port(off int) int { return e.o.basePort + off }

// layout is the listeners of proxy i (0 Fulcrum, 1 HAProxy).
func (e *env) layout(i int, reset, hang, echo, udpEcho int) attack.Layout {
	b := 100 + 20*i
	l := attack.Layout{HTTP: e.port(b), H2: e.port(b + 1), TCP: e.port(b + 2), RST: e.port(b + 4), Hang: e.port(b + 5),
		Kill: e.port(b + 6), Backends: []int{e.web.Port()}, KillBackends: e.kill.ports, Reset: reset, Hanging: hang, Echo: echo,
		IdleTimeout: e.o.idleTimeout, BodyTimeout: e.o.bodyTimeout, HeaderTimeout: e.o.headerTimeout, Cert: e.cert}
	if i == 0 {
		l.UDP = e.port(b + 3)
		l.UDPEcho = udpEcho
	}
	return l
}

// fulcrumBinary builds cmd/fulcrum into tmp and, when pinning, writes a
// wrapper that execs it under taskset (fulcrumproc runs `BIN serve` and
// `BIN apply`; taskset execs, so the pid is Fulcrum's).
func fulcrumBinary(ctx context.Context, root, tmp string, cpu int) (string, error) {
	bin := filepath.Join(tmp, "fulcrum")
	out, err := exec.CommandContext(ctx, "go", "-C", root, "build", "-ldflags", "-X main.commit="+host.CommitOf(root), "-o", bin, "./cmd/fulcrum").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build fulcrum: %w\n%s", err, out)
	}
	if cpu < 0 {
		return bin, nil
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return bin, nil //nolint:nilerr // not pinned: run it as is
	}
	wrapper := filepath.Join(tmp, "fulcrum-pinned")
	script := fmt.Sprintf("#!/bin/sh\nexec %s -c %d %s \"$@\"\n", ts, cpu, bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("fulcrum wrapper: %w", err)
	}
	return wrapper, nil
}

func startFulcrum(ctx context.Context, e *env, l attack.Layout) (*proxy, error) {
	dir := filepath.Join(e.tmp, "fulcrum-run")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fulcrum: %w", err)
	}
	x := &proxy{name: "fulcrum", l: l}
	start := func(ctx context.Context, apply bool) error {
		p, err := fulcrumproc.Start(ctx, e.fulcrum, dir, e.port(99), "reliability passphrase")
		if err != nil {
			return err
		}
		x.fulcrum = p
		if apply {
			doc, err := attack.FulcrumConfig(l)
			if err != nil {
				return err
			}
			path := filepath.Join(dir, "config.json")
			if err := os.WriteFile(path, doc, 0o600); err != nil {
				return fmt.Errorf("fulcrum config: %w", err)
			}
			if err := p.Apply(ctx, path); err != nil {
				return err
			}
		}
		if x.api, err = p.Client(); err != nil {
			return err
		}
		if err := waitPort(ctx, p.AdminAddr, 20*time.Second); err != nil {
			return err
		}
		if err := x.api.UseAPIKey(ctx, "reliability suite"); err != nil {
			return err
		}
		return waitListeners(ctx, l)
	}
	x.pid = func() int {
		if x.fulcrum == nil {
			return 0
		}
		return x.fulcrum.Pid()
	}
	x.stop = func() {
		if x.fulcrum != nil {
			x.fulcrum.Stop()
		}
	}
	x.restart = func(ctx context.Context) error {
		x.stop()
		_ = os.Remove(filepath.Join(dir, "data", "fulcrum.sock"))
		return start(ctx, false)
	}
	if err := start(ctx, true); err != nil {
		x.stop()
		return nil, fmt.Errorf("fulcrum: %w (log: %s)", err, filepath.Join(dir, "fulcrum.log"))
	}
	return x, nil
}

func startHAProxy(ctx context.Context, e *env, l attack.Layout) (*proxy, error) {
	dir := filepath.Join(e.tmp, "haproxy")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	x := &proxy{name: "haproxy", l: l, statsSock: filepath.Join(dir, "admin.sock")}
	cfg := attack.HAProxyConfig(l, max(e.fdLimit/2-100, 12000))
	cfg = insertGlobal(cfg, fmt.Sprintf("    stats socket %s mode 600 level admin\n", x.statsSock))
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("haproxy config: %w", err)
	}
	var mu sync.Mutex
	var cmd *exec.Cmd
	var done chan struct{}
	start := func(ctx context.Context) error {
		argv := []string{"haproxy", "-db", "-f", path}
		if e.o.proxyCPU >= 0 {
			argv = append([]string{"taskset", "-c", strconv.Itoa(e.o.proxyCPU)}, argv...)
		}
		lf, err := os.Create(filepath.Join(e.logs, "haproxy.log"))
		if err != nil {
			return fmt.Errorf("haproxy: %w", err)
		}
		c := exec.Command(argv[0], argv[1:]...)
		c.Stdout, c.Stderr = lf, lf
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := c.Start(); err != nil {
			_ = lf.Close()
			return fmt.Errorf("haproxy: %w", err)
		}
		d := make(chan struct{})
		go func() { _ = c.Wait(); _ = lf.Close(); close(d) }()
		mu.Lock()
		cmd, done = c, d
		mu.Unlock()
		return waitListeners(ctx, l)
	}
	x.pid = func() int {
		mu.Lock()
		defer mu.Unlock()
		if cmd == nil {
			return 0
		}
		return cmd.Process.Pid
	}
	x.stop = func() {
		mu.Lock()
		c, d := cmd, done
		mu.Unlock()
		if c == nil {
			return
		}
		select {
		case <-d:
			return
		default:
		}
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		select {
		case <-d:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-d
		}
	}
	x.restart = func(ctx context.Context) error { x.stop(); return start(ctx) }
	if err := start(ctx); err != nil {
		x.stop()
		return nil, err
	}
	return x, nil
}

// insertGlobal adds lines at the end of the global section.
func insertGlobal(cfg, lines string) string {
	i := len("global\n")
	for j := i; j < len(cfg); {
		k := j
		for k < len(cfg) && cfg[k] != '\n' {
			k++
		}
		if j < len(cfg) && cfg[j] != ' ' {
			return cfg[:j] + lines + cfg[j:]
		}
		j = k + 1
	}
	return cfg + lines
}

// haproxyCmd sends one command to HAProxy's admin socket.
func haproxyCmd(sock, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("haproxy socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		return "", fmt.Errorf("haproxy socket: %w", err)
	}
	b := make([]byte, 4096)
	n, _ := c.Read(b)
	return string(b[:n]), nil
}

// waitListeners waits until the layout's TCP listeners accept.
func waitListeners(ctx context.Context, l attack.Layout) error {
	for _, p := range []int{l.HTTP, l.H2, l.TCP, l.RST, l.Hang, l.Kill} {
		if p == 0 {
			continue
		}
		if err := waitPort(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), 20*time.Second); err != nil {
			return err
		}
	}
	return nil
}

func waitPort(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, limit)
}

// backendProcs are real servers in processes of their own (this program's
// `backend` subcommand), which backend-kill kills with SIGKILL.
type backendProcs struct {
	self  string
	logs  string
	ports []int
	mu    sync.Mutex
	cmds  map[int]*exec.Cmd
}

func (b *backendProcs) start(ctx context.Context, port int) error {
	c := exec.Command(b.self, "backend", "-mode", "http", "-listen", fmt.Sprintf("127.0.0.1:%d", port))
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		return fmt.Errorf("backend %d: %w", port, err)
	}
	b.mu.Lock()
	b.cmds[port] = c
	b.mu.Unlock()
	go func() { _ = c.Wait() }()
	return waitPort(ctx, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
}

// kill9 kills the backend on port with SIGKILL.
func (b *backendProcs) kill9(port int) {
	b.mu.Lock()
	c := b.cmds[port]
	delete(b.cmds, port)
	b.mu.Unlock()
	if c != nil {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
}

func (b *backendProcs) stopAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p, c := range b.cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		delete(b.cmds, p)
	}
}
