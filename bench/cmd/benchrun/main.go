// Command benchrun runs Fulcrum's side-by-side benchmark suite: Fulcrum,
// HAProxy, nginx and Caddy with equivalent configurations (least connection
// over three real servers, keep-alive to them, TLS offload with one ECDSA
// P-256 certificate, X-Forwarded-For added), each pinned to CPU 0, with the
// real servers and load generators pinned to CPU 1, all on 127.0.0.1.
// Every row runs against every proxy interleaved for -rounds rounds; the
// proxy's CPU time comes from /proc/<pid>/stat. It writes a Markdown report
// (also printed), results.json and Fulcrum's CPU and allocation profiles
// into bench/results/<UTC time>/. See bench/README.md.
//
//	go run ./bench/cmd/benchrun [-rounds 3] [-duration 5s] [-only http-small,l4-small] [-proxies fulcrum,haproxy]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/internal/host"
)

// options are the command's flags.
type options struct {
	rounds      int
	duration    time.Duration
	only        []string
	proxies     []string
	out         string
	basePort    int
	proxyCPU    int
	loadCPU     int
	noProfiles  bool
	skipFulcrum bool // skip the Fulcrum-only tools
	toolTimeout time.Duration
}

func main() {
	var o options
	var only, proxies string
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds per row (1-20)")
	o.duration = 5 * time.Second
	flag.Var((*secondsFlag)(&o.duration), "duration", "length of one run, 1s-5m (a Go duration or plain seconds)")
	flag.StringVar(&only, "only", "", "comma-separated rows to run (default: all)")
	flag.StringVar(&proxies, "proxies", strings.Join(allProxies, ","), "comma-separated proxies to compare")
	flag.StringVar(&o.out, "out", "", "results directory (default bench/results/<UTC date-time>)")
	flag.IntVar(&o.basePort, "base-port", 27000, "first of the ports used (base+1 … base+140)")
	flag.IntVar(&o.proxyCPU, "proxy-cpu", 0, "CPU the proxies are pinned to")
	flag.IntVar(&o.loadCPU, "load-cpu", 1, "CPU the backends and load generators are pinned to")
	flag.BoolVar(&o.noProfiles, "no-profiles", false, "skip the extra Fulcrum runs that take pprof profiles")
	flag.BoolVar(&o.skipFulcrum, "skip-fulcrum-only", false, "skip the Fulcrum-only tools (applyload, persistload)")
	flag.DurationVar(&o.toolTimeout, "tool-timeout", 10*time.Minute, "bound on each Fulcrum-only tool")
	rerender := flag.String("report", "", "only write report.md again from DIR/results.json (after a change to the report)")
	flag.Parse()
	if *rerender != "" {
		if err := reReport(*rerender); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := o.check(only, proxies); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		stop()
		os.Exit(1)
	}
}

// reReport reads dir/results.json, draws every figure again from the
// samples and writes the report: what a change to the report's code shows
// of a run already made.
func reReport(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var res results
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, "results.json"), err)
	}
	for _, r := range res.Rows {
		for i, c := range r.Cells {
			fresh := &cell{Proxy: c.Proxy, Status: c.Status, Samples: c.Samples, PeakRSSKiB: c.PeakRSSKiB}
			fresh.summarise(r.Kind)
			r.Cells[i] = fresh
		}
		r.ratios()
	}
	return writeResults(dir, &res)
}

func (o *options) check(only, proxies string) error {
	if o.rounds < 1 || o.rounds > 20 {
		return errors.New("-rounds must be 1-20")
	}
	if o.duration < time.Second || o.duration > 5*time.Minute {
		return errors.New("-duration must be 1s-5m")
	}
	if o.basePort < 1024 || o.basePort > 65000 {
		return errors.New("-base-port must be 1024-65000")
	}
	names := map[string]bool{}
	for _, r := range rows() {
		names[r.name] = true
	}
	for _, n := range splitList(only) {
		if !names[n] {
			return fmt.Errorf("-only: unknown row %q", n)
		}
		o.only = append(o.only, n)
	}
	for _, n := range splitList(proxies) {
		if !slices.Contains(allProxies, n) {
			return fmt.Errorf("-proxies: unknown proxy %q (have %s)", n, strings.Join(allProxies, ", "))
		}
		o.proxies = append(o.proxies, n)
	}
	if len(o.proxies) == 0 {
		return errors.New("-proxies: none")
	}
	// keep the canonical order
	slices.SortFunc(o.proxies, func(a, b string) int {
		return slices.Index(allProxies, a) - slices.Index(allProxies, b)
	})
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func run(ctx context.Context, o options, log *slog.Logger) (err error) {
	root, err := host.RepoRoot()
	if err != nil {
		return err
	}
	started := time.Now().UTC()
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results", started.Format("20060102T150405Z"))
	}
	logs := filepath.Join(o.out, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(o.out, "profiles"), 0o755); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	tmp, err := os.MkdirTemp("", "fulcrum-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	ps := &procs{log: log}
	defer func() {
		ps.stopAll()
		_ = os.RemoveAll(tmp)
		if err != nil {
			err = fmt.Errorf("%w (logs in %s)", err, logs)
		}
	}()
	fdLimit := raiseNoFile(log)
	if err := checkPrograms(o); err != nil {
		return err
	}

	mach := machineInfo(ctx)
	log.Info("building", "tmp", tmp)
	e := &env{l: layout{base: o.basePort}, tmp: tmp, logs: logs, cpu: o.proxyCPU, ps: ps, bin: map[string]string{}, fdLimit: fdLimit}
	for _, b := range []string{"fulcrum", "backend", "tcpload"} {
		path := "./bench/cmd/" + b
		if b == "fulcrum" {
			path = "./cmd/fulcrum"
		}
		if err := goBuild(ctx, root, tmp, b, path, e.logPath("build")); err != nil {
			return err
		}
		e.bin[b] = filepath.Join(tmp, b)
	}
	tools := map[string]string{"wrk": "wrk", "h2load": "h2load", "tcpload": e.bin["tcpload"]}
	missing := map[string]string{}
	for _, t := range []string{"tlsload", "idleload", "applyload", "persistload"} {
		if _, err := os.Stat(filepath.Join(root, "bench", "cmd", t)); err != nil {
			missing[t] = "tool missing (bench/cmd/" + t + " does not exist)"
			continue
		}
		if err := goBuild(ctx, root, tmp, t, "./bench/cmd/"+t, e.logPath("build")); err != nil {
			missing[t] = "tool missing (bench/cmd/" + t + " does not build; see logs/build.log)"
			log.Warn("tool does not build", "tool", t, "err", err)
			continue
		}
		tools[t] = filepath.Join(tmp, t)
	}
	mach.Versions = versions(ctx, e.bin["fulcrum"])

	if e.cert, e.key, e.certKey, err = writeCert(tmp); err != nil {
		return err
	}
	log.Info("starting backends")
	if err := startBackends(ctx, e, o.loadCPU); err != nil {
		return err
	}
	var px []*proxy
	for _, name := range o.proxies {
		log.Info("starting proxy", "proxy", name)
		x, err := startProxy(ctx, e, name, "")
		if err != nil {
			return err
		}
		px = append(px, x)
	}
	for _, x := range px {
		if err := verify(ctx, e, x); err != nil {
			return err
		}
	}
	log.Info("all proxies answer through all listeners with X-Forwarded-For")

	r := &runner{e: e, loadCPU: o.loadCPU, duration: o.duration, tools: tools, idleConns: idleConns(fdLimit)}
	res := &results{Started: started.Format(time.RFC3339), Rounds: o.rounds, Duration: o.duration.String(),
		ProxyCPU: o.proxyCPU, LoadCPU: o.loadCPU, Machine: mach, Proxies: o.proxies}
	for _, rw := range rows() {
		if len(o.only) > 0 && !slices.Contains(o.only, rw.name) {
			continue
		}
		if err := measureRow(ctx, r, rw, px, missing, res, log); err != nil {
			return err
		}
	}

	if !o.noProfiles && slices.Contains(o.proxies, "fulcrum") {
		if err := profileFulcrum(ctx, r, o, px, missing, res, log); err != nil {
			if ctx.Err() != nil {
				return err
			}
			log.Warn("no profiles", "err", err)
			res.ProfilesNote = "profiles not taken: " + err.Error()
		}
	}
	// The Fulcrum-only tools start what they need themselves: stop the
	// proxies and real servers so that they have the machine to themselves.
	ps.stopAll()
	if !o.skipFulcrum {
		res.FulcrumOnly = fulcrumOnly(ctx, o, e, tools, missing, log)
	} else {
		res.FulcrumOnlyNote = "skipped (-skip-fulcrum-only)"
	}
	res.Machine.LoadAfter = host.LoadAvg()
	res.Finished = time.Now().UTC().Format(time.RFC3339)
	return writeResults(o.out, res)
}

// measureRow runs one row: rounds × proxies, interleaved.
func measureRow(ctx context.Context, r *runner, rw row, px []*proxy, missing map[string]string, res *results, log *slog.Logger) error {
	rr := rowResult{Name: rw.name, What: rw.what, Kind: rw.kind}
	if rw.kind == kindIdle && r.idleConns != 10000 {
		rr.What = fmt.Sprintf("%d idle HTTP keep-alive client connections (one GET / each): idleload -conns %d — not 10,000: "+
			"the open-file limit is %d", r.idleConns, r.idleConns, r.e.fdLimit)
	}
	cells := map[string]*cell{}
	for _, x := range px {
		c := &cell{Proxy: x.name}
		switch {
		case rw.l4 && x.noL4 != "":
			c.Status = x.noL4
		case missing[rw.tool] != "":
			c.Status = missing[rw.tool]
		default:
			c.HWMReset = resetPeak(x.p.pid())
		}
		cells[x.name] = c
	}
	for round := 1; round <= res.Rounds; round++ {
		for _, x := range px {
			c := cells[x.name]
			if c.Status != "" {
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !x.p.alive() {
				return fmt.Errorf("%s exited during %s:\n%s", x.name, rw.name, tail(r.e.logPath(x.name), 2000))
			}
			before, err := cpuTicks(x.p.pid())
			if err != nil {
				return err
			}
			s, err := rw.run(ctx, r, x)
			after, cerr := cpuTicks(x.p.pid())
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil || cerr != nil {
				c.Status = "failed: " + errors.Join(err, cerr).Error()
				log.Warn("run failed", "row", rw.name, "proxy", x.name, "round", round, "err", errors.Join(err, cerr))
				continue
			}
			s.CPUTicks = after - before
			c.Samples = append(c.Samples, s)
			log.Info("run", "row", rw.name, "proxy", x.name, "round", round, "count", s.Requests, "per_s", int64(s.RPS),
				"errors", s.Errors, "cpu_s", float64(s.CPUTicks)/clkTck)
			time.Sleep(300 * time.Millisecond)
		}
	}
	for _, x := range px {
		c := cells[x.name]
		if len(c.Samples) > 0 {
			c.PeakRSSKiB, _ = memKiB(x.p.pid(), "VmHWM")
		}
		c.summarise(rw.kind)
		rr.Cells = append(rr.Cells, c)
	}
	rr.ratios()
	res.Rows = append(res.Rows, rr)
	return nil
}

// profileFulcrum restarts Fulcrum with --pprof-listen (same data directory,
// so the same configuration) and takes a CPU and an allocation profile of
// one more run of each row. These runs are not in the figures.
func profileFulcrum(ctx context.Context, r *runner, o options, px []*proxy, missing map[string]string, res *results, log *slog.Logger) error {
	var fx *proxy
	for _, x := range px {
		if x.name == "fulcrum" {
			fx = x
		}
	}
	fx.p.stop()
	pa := fmt.Sprintf("127.0.0.1:%d", r.e.l.pprof())
	nx, err := startProxy(ctx, r.e, "fulcrum", pa)
	if err != nil {
		return fmt.Errorf("fulcrum with pprof: %w", err)
	}
	*fx = *nx
	secs := r.secs()
	for _, rw := range rows() {
		if len(o.only) > 0 && !slices.Contains(o.only, rw.name) || missing[rw.tool] != "" {
			continue
		}
		log.Info("profiling fulcrum", "row", rw.name)
		dir := filepath.Join(o.out, "profiles")
		type got struct {
			name string
			err  error
		}
		ch := make(chan got, 2)
		for _, p := range []struct{ name, url string }{
			{rw.name + ".cpu.pprof", "http://" + pa + "/debug/pprof/profile?seconds=" + secs},
			{rw.name + ".allocs.pprof", "http://" + pa + "/debug/pprof/allocs?seconds=" + secs},
		} {
			go func() { ch <- got{p.name, fetch(ctx, p.url, filepath.Join(dir, p.name), r.timeout())} }()
		}
		time.Sleep(200 * time.Millisecond)
		_, rerr := rw.run(ctx, r, fx)
		for range 2 {
			g := <-ch
			if g.err != nil {
				log.Warn("profile", "file", g.name, "err", g.err)
				continue
			}
			res.Profiles = append(res.Profiles, "profiles/"+g.name)
		}
		if rerr != nil {
			log.Warn("profile run failed", "row", rw.name, "err", rerr)
		}
	}
	return nil
}

// fulcrumOnly runs applyload and persistload once each (not interleaved:
// they measure Fulcrum alone) and keeps their JSON objects verbatim.
func fulcrumOnly(ctx context.Context, o options, e *env, tools, missing map[string]string, log *slog.Logger) []toolResult {
	var out []toolResult
	for _, t := range []string{"applyload", "persistload"} {
		tr := toolResult{Tool: t}
		if missing[t] != "" {
			tr.Status = missing[t]
			out = append(out, tr)
			continue
		}
		log.Info("running Fulcrum-only tool", "tool", t)
		got, err := runTool(ctx, o.toolTimeout, -1, e.logPath(t), tools[t], "-fulcrum", e.bin["fulcrum"])
		var obj map[string]any
		if err == nil {
			err = lastJSON(got, &obj)
		}
		if err != nil {
			last := strings.TrimSpace(tail(e.logPath(t), 300))
			tr.Status = "failed: " + err.Error() + "; its output ends: " + strings.ReplaceAll(last, "\n", " ")
		} else {
			tr.Status = "ok"
			tr.Fields = obj
		}
		out = append(out, tr)
	}
	return out
}

func goBuild(ctx context.Context, root, tmp, name, pkg, logPath string) error {
	args := []string{"-C", root, "build", "-o", filepath.Join(tmp, name)}
	if pkg == "./cmd/fulcrum" {
		// The report names the commit measured (with "+changes" for a tree
		// that differs from it).
		args = append(args, "-ldflags", "-X main.commit="+host.CommitOf(root))
	}
	if _, err := runTool(ctx, 5*time.Minute, -1, logPath, append([]string{"go"}, append(args, pkg)...)...); err != nil {
		return fmt.Errorf("build %s: %w\n%s", pkg, err, tail(logPath, 3000))
	}
	return nil
}

// checkPrograms says which programs are missing (bench/run.sh installs them).
func checkPrograms(o options) error {
	need := []string{"taskset", "wrk", "h2load", "go", "getconf"}
	for _, p := range o.proxies {
		switch p {
		case "haproxy", "nginx", "caddy":
			need = append(need, p)
		}
	}
	if !slices.Contains(o.proxies, "nginx") {
		need = append(need, "nginx") // the HTTP real servers
	}
	var missing []string
	for _, n := range need {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing programs: %s (bench/run.sh installs them as root)", strings.Join(missing, ", "))
	}
	if slices.Contains(o.proxies, "nginx") {
		if _, err := os.Stat("/usr/lib/nginx/modules/ngx_stream_module.so"); err != nil {
			return errors.New("nginx's stream module is missing (Debian package libnginx-mod-stream)")
		}
	}
	return nil
}

// raiseNoFile raises the open-file limit (host.RaiseNoFile) and warns
// when it is too low for 10,000 idle connections.
func raiseNoFile(log *slog.Logger) int {
	n := host.RaiseNoFile()
	if c := idleConns(n); c < 10000 {
		log.Warn("open-file limit is low for 10,000 idle connections; idle-10k opens fewer", "limit", n, "conns", c)
	}
	return n
}

// idleConns is how many idle connections idle-10k opens: 10,000, or fewer
// when the open-file limit would not let a proxy (one descriptor per idle
// client connection, plus its listeners and kept server connections) or
// idleload hold them.
func idleConns(fdLimit int) int {
	return max(1000, min(10000, (fdLimit-2000)/1000*1000))
}

// secondsFlag is a duration flag that also takes plain seconds ("3").
type secondsFlag time.Duration

func (f *secondsFlag) String() string { return time.Duration(*f).String() }

func (f *secondsFlag) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		*f = secondsFlag(time.Duration(n) * time.Second)
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("not seconds or a duration: %w", err)
	}
	*f = secondsFlag(d)
	return nil
}
