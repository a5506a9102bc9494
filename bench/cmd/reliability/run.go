package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/attack"
	"github.com/fulcrum-lb/fulcrum/bench/internal/host"
)

// runner carries what the cases need.
type runner struct {
	e   *env
	log *slog.Logger
}

func run(ctx context.Context, o options, log *slog.Logger) (err error) {
	root, err := host.RepoRoot()
	if err != nil {
		return err
	}
	started := time.Now().UTC()
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results", "reliability-"+started.Format("20060102T150405Z"))
	}
	logs := filepath.Join(o.out, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	tmp, err := os.MkdirTemp("", "fulcrum-reliability-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	e := &env{o: o, tmp: tmp, logs: logs, fdLimit: host.RaiseNoFile()}
	var px []*proxy
	defer func() {
		for _, x := range px {
			x.stop()
		}
		if e.kill != nil {
			e.kill.stopAll()
		}
		if e.web != nil {
			e.web.Close()
		}
		_ = os.RemoveAll(tmp)
	}()
	if slices.Contains(o.proxies, "haproxy") {
		if _, err := exec.LookPath("haproxy"); err != nil {
			return fmt.Errorf("haproxy is missing (bench/reliability.sh installs it as root, or use -proxies fulcrum)")
		}
	}
	if e.self, err = os.Executable(); err != nil {
		return fmt.Errorf("own path: %w", err)
	}
	log.Info("building fulcrum", "tmp", tmp)
	if e.fulcrum, err = fulcrumBinary(ctx, root, tmp, o.proxyCPU); err != nil {
		return err
	}
	if e.cert, err = attack.WriteCert(tmp); err != nil {
		return err
	}
	if e.web, err = attack.StartBackend(fmt.Sprintf("127.0.0.1:%d", e.port(1)), attack.ModeHTTP); err != nil {
		return err
	}
	reset, err := attack.StartBackend(fmt.Sprintf("127.0.0.1:%d", e.port(4)), attack.ModeReset)
	if err != nil {
		return err
	}
	defer reset.Close()
	hang, err := attack.StartBackend(fmt.Sprintf("127.0.0.1:%d", e.port(5)), attack.ModeHang)
	if err != nil {
		return err
	}
	defer hang.Close()
	echo, err := attack.StartBackend(fmt.Sprintf("127.0.0.1:%d", e.port(6)), attack.ModeEcho)
	if err != nil {
		return err
	}
	defer echo.Close()
	uecho, err := attack.StartUDPEcho(fmt.Sprintf("127.0.0.1:%d", e.port(7)))
	if err != nil {
		return err
	}
	defer uecho.Close()
	e.kill = &backendProcs{self: e.self, logs: logs, ports: []int{e.port(11), e.port(12), e.port(13)}, cmds: map[int]*exec.Cmd{}}
	for _, p := range e.kill.ports {
		if err := e.kill.start(ctx, p); err != nil {
			return err
		}
	}
	for _, name := range o.proxies {
		log.Info("starting proxy", "proxy", name)
		var x *proxy
		switch name {
		case "fulcrum":
			x, err = startFulcrum(ctx, e, e.layout(0, reset.Port(), hang.Port(), echo.Port(), uecho.Port()))
		case "haproxy":
			x, err = startHAProxy(ctx, e, e.layout(1, reset.Port(), hang.Port(), echo.Port(), uecho.Port()))
		}
		if err != nil {
			return err
		}
		px = append(px, x)
		if err := verify(ctx, x); err != nil {
			return err
		}
	}
	res := &results{Started: started.Format(time.RFC3339), Proxies: o.proxies, Machine: machineInfo(ctx, e.fulcrum),
		Settings: map[string]any{"duration_s": o.duration.Seconds(), "idle_timeout_s": o.idleTimeout, "body_timeout_s": o.bodyTimeout,
			"header_timeout_s": o.headerTimeout, "legit_rate": o.legitRate, "proxy_cpu": o.proxyCPU, "load_cpu": o.loadCPU,
			"open_file_limit": e.fdLimit}}
	r := &runner{e: e, log: log}
	for _, c := range cases() {
		if len(o.only) > 0 && !slices.Contains(o.only, c.name) {
			continue
		}
		cr := caseResult{Name: c.name, What: c.what, Acceptance: c.acceptance, Issue: 14}
		if c.issue != 0 {
			cr.Issue = c.issue
		}
		for _, x := range px {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var cl *cell
			if why := c.notFor[x.name]; why != "" {
				cl = &cell{Proxy: x.name, Status: "n/a: " + why}
			} else {
				log.Info("case", "case", c.name, "proxy", x.name)
				cl, err = c.run(ctx, r, x)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if err != nil {
					log.Warn("case failed", "case", c.name, "proxy", x.name, "err", err)
					cl = &cell{Proxy: x.name, Status: "failed: " + err.Error()}
				}
				cl.Proxy = x.name
				if c.restartAfter || x.pid() == 0 || !alive(x.pid()) {
					log.Info("restarting", "proxy", x.name)
					if err := x.restart(ctx); err != nil {
						return fmt.Errorf("restart %s after %s: %w", x.name, c.name, err)
					}
				}
			}
			cr.Cells = append(cr.Cells, cl)
			time.Sleep(500 * time.Millisecond)
		}
		res.Cases = append(res.Cases, cr)
		if err := writeResults(o.out, res, false); err != nil { // keep what is done
			return err
		}
	}
	res.Machine.LoadAfter = host.LoadAvg()
	res.Finished = time.Now().UTC().Format(time.RFC3339)
	return writeResults(o.out, res, true)
}

func alive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// verify checks that the proxy answers on its HTTP, HTTPS (HTTP/2) and TCP
// listeners before anything is measured.
func verify(ctx context.Context, x *proxy) error {
	c := attack.H2Client(5 * time.Second)
	defer attack.CloseIdle(c)
	if err := attack.Get(c, fmt.Sprintf("https://127.0.0.1:%d/", x.l.H2))(ctx); err != nil {
		return fmt.Errorf("verify %s over HTTP/2: %w", x.name, err)
	}
	h := attack.H1Client(5 * time.Second)
	defer attack.CloseIdle(h)
	for _, p := range []int{x.l.HTTP, x.l.RST, x.l.Kill} {
		if err := attack.Get(h, fmt.Sprintf("http://127.0.0.1:%d/", p))(ctx); err != nil {
			return fmt.Errorf("verify %s on port %d: %w", x.name, p, err)
		}
	}
	if err := attack.TCPProbe(fmt.Sprintf("127.0.0.1:%d", x.l.TCP), 5*time.Second)(ctx); err != nil {
		return fmt.Errorf("verify %s layer 4: %w", x.name, err)
	}
	return nil
}

// machine describes where the figures were taken.
type machine struct {
	NProc      int               `json:"nproc"`
	Kernel     string            `json:"kernel"`
	CPU        string            `json:"cpu"`
	LoadBefore string            `json:"load_before"`
	LoadAfter  string            `json:"load_after"`
	Versions   map[string]string `json:"versions"`
}

func machineInfo(ctx context.Context, fulcrum string) machine {
	// runtime.NumCPU counts the CPUs of the affinity mask: the driver is
	// pinned to one.
	m := machine{NProc: runtime.NumCPU(), LoadBefore: host.LoadAvg(), Versions: map[string]string{}}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.NProc = strings.Count(string(b), "\nprocessor\t") + 1
	}
	if out, err := exec.CommandContext(ctx, "uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	for name, argv := range map[string][]string{"fulcrum": {fulcrum, "version"}, "haproxy": {"haproxy", "-v"}, "go": {"go", "version"}} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, _ := exec.CommandContext(cctx, argv[0], argv[1:]...).CombinedOutput()
		cancel()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if line == "" {
			line = "?"
		}
		m.Versions[name] = line
	}
	return m
}
