package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Row kinds: what the driver computes from a row's samples.
const (
	kindRequests   = "requests"   // requests/s, latency, CPU µs per request
	kindBulk       = "bulk"       // as requests, plus Gbit/s and CPU µs per MiB
	kindHandshakes = "handshakes" // handshakes per proxy CPU-second (higher is better)
	kindIdle       = "idle"       // RSS per idle connection
)

// row is one scenario of the suite.
type row struct {
	name string
	what string
	kind string
	l4   bool   // layer 4: Caddy has none
	tool string // load generator needed (a program or a bench/cmd tool)
	// run performs one measured run against addr and returns its sample
	// (without the CPU figures, which the driver takes).
	run func(ctx context.Context, r *runner, x *proxy) (sample, error)
}

// sample is what one run of one row against one proxy measured.
type sample struct {
	Requests int64   `json:"requests"` // requests, transfers, handshakes or connections
	Errors   int64   `json:"errors"`
	ErrorsAt string  `json:"error_detail,omitempty"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"per_s"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	CPUTicks int64   `json:"cpu_ticks"`
	// Resumed counts resumed handshakes (tls-resume).
	Resumed int64 `json:"resumed,omitempty"`
	// RSSBeforeKiB and RSSHeldKiB are the proxy's VmRSS before and while
	// holding idle connections (idle-10k).
	RSSBeforeKiB int64 `json:"rss_before_kib,omitempty"`
	RSSHeldKiB   int64 `json:"rss_held_kib,omitempty"`
}

// runner carries what the rows need.
type runner struct {
	e        *env
	loadCPU  int
	duration time.Duration
	tools    map[string]string // tool → binary, or "" when missing
	// idleConns is the number of connections of idle-10k.
	idleConns int
}

func (r *runner) secs() string { return strconv.Itoa(int(r.duration.Round(time.Second).Seconds())) }

func (r *runner) timeout() time.Duration { return r.duration + 60*time.Second }

// rows is the suite, in the order it runs and is reported.
func rows() []row {
	wrk := func(conns int, scheme string, k int, path string) func(context.Context, *runner, *proxy) (sample, error) {
		return func(ctx context.Context, r *runner, x *proxy) (sample, error) {
			url := fmt.Sprintf("%s://%s%s", scheme, x.addr(r.e.l, k), path)
			out, err := runTool(ctx, r.timeout(), r.loadCPU, r.e.logPath("load"), "wrk", "-t1",
				"-c"+strconv.Itoa(conns), "-d"+r.secs()+"s", "--latency", url)
			if err != nil {
				return sample{}, err
			}
			return parseWrk(out)
		}
	}
	tcpload := func(flags ...string) func(context.Context, *runner, *proxy) (sample, error) {
		return func(ctx context.Context, r *runner, x *proxy) (sample, error) {
			argv := append([]string{r.tools["tcpload"], "-addr", x.addr(r.e.l, portL4), "-duration", r.duration.String()}, flags...)
			out, err := runTool(ctx, r.timeout(), r.loadCPU, r.e.logPath("load"), argv...)
			if err != nil {
				return sample{}, err
			}
			var t struct {
				Requests int64   `json:"requests"`
				Errors   int64   `json:"errors"`
				Seconds  float64 `json:"seconds"`
				RPS      float64 `json:"rps"`
				P50      float64 `json:"p50_us"`
				P99      float64 `json:"p99_us"`
			}
			if err := lastJSON(out, &t); err != nil {
				return sample{}, fmt.Errorf("tcpload: %w", err)
			}
			s := sample{Requests: t.Requests, Errors: t.Errors, Seconds: t.Seconds, RPS: t.RPS, P50us: t.P50, P99us: t.P99}
			if t.Errors > 0 {
				s.ErrorsAt = fmt.Sprintf("%d connection/IO errors", t.Errors)
			}
			return s, nil
		}
	}
	tlsload := func(mode string) func(context.Context, *runner, *proxy) (sample, error) {
		return func(ctx context.Context, r *runner, x *proxy) (sample, error) {
			out, err := runTool(ctx, r.timeout(), r.loadCPU, r.e.logPath("load"), r.tools["tlsload"],
				"-addr", x.addr(r.e.l, portHTTPS), "-mode", mode, "-conns", "16", "-duration", r.duration.String(), "-sni", "bench.example")
			if err != nil {
				return sample{}, err
			}
			var t struct {
				Ops     int64   `json:"ops"`
				Errors  int64   `json:"errors"`
				OpsPerS float64 `json:"ops_per_s"`
				P50     float64 `json:"p50_us"`
				P99     float64 `json:"p99_us"`
				Resumed int64   `json:"resumed"`
			}
			if err := lastJSON(out, &t); err != nil {
				return sample{}, fmt.Errorf("tlsload: %w", err)
			}
			s := sample{Requests: t.Ops, Errors: t.Errors, RPS: t.OpsPerS, P50us: t.P50, P99us: t.P99, Resumed: t.Resumed}
			if t.OpsPerS > 0 {
				s.Seconds = float64(t.Ops) / t.OpsPerS
			}
			if t.Errors > 0 {
				s.ErrorsAt = fmt.Sprintf("%d failed operations", t.Errors)
			}
			if mode == "resume" && t.Ops > 0 && t.Resumed < t.Ops/2 {
				s.ErrorsAt = strings.TrimPrefix(s.ErrorsAt+"; ", "; ") + fmt.Sprintf("only %d of %d resumed", t.Resumed, t.Ops)
			}
			return s, nil
		}
	}
	return []row{
		// idle-10k runs first, while the proxies' memory pools are fresh:
		// its first round is the cost of an idle connection in a process
		// that has not grown its pools yet.
		{name: "idle-10k", kind: kindIdle, tool: "idleload", run: runIdle,
			what: "10,000 idle HTTP keep-alive client connections (one GET / each): idleload -conns 10000"},
		{name: "http-small", kind: kindRequests, tool: "wrk", run: wrk(64, "http", portHTTP, "/"),
			what: "HTTP/1.1 keep-alive, small answer: wrk -t1 -c64 GET /"},
		{name: "http-1MiB", kind: kindBulk, tool: "wrk", run: wrk(8, "http", portHTTP, "/1m"),
			what: "HTTP/1.1 keep-alive, 1 MiB answers: wrk -t1 -c8 GET /1m"},
		{name: "https-small", kind: kindRequests, tool: "wrk", run: wrk(64, "https", portHTTPS, "/"),
			what: "HTTPS (TLS offload) keep-alive, small answer: wrk -t1 -c64 GET /"},
		{name: "h2", kind: kindRequests, tool: "h2load", run: runH2load,
			what: "HTTP/2 over TLS (ALPN h2), multiplexed: h2load -t1 -c16 -m32 GET /"},
		{name: "l4-small", kind: kindRequests, l4: true, tool: "tcpload", run: tcpload("-conns", "50", "-size", "64"),
			what: "layer-4 TCP, 50 kept connections, 64-byte answers: tcpload -conns 50 -size 64"},
		{name: "l4-newconn", kind: kindRequests, l4: true, tool: "tcpload", run: tcpload("-conns", "20", "-size", "64", "-newconn"),
			what: "layer-4 TCP, a new connection per 64-byte request: tcpload -conns 20 -size 64 -newconn"},
		{name: "l4-1MiB", kind: kindBulk, l4: true, tool: "tcpload", run: tcpload("-conns", "4", "-size", "1048576"),
			what: "layer-4 TCP, 4 kept connections, 1 MiB answers: tcpload -conns 4 -size 1048576"},
		{name: "tls-full", kind: kindHandshakes, tool: "tlsload", run: tlsload("full"),
			what: "full TLS handshake + GET / + close per operation: tlsload -mode full -conns 16"},
		{name: "tls-resume", kind: kindHandshakes, tool: "tlsload", run: tlsload("resume"),
			what: "resumed TLS handshake + GET / + close per operation: tlsload -mode resume -conns 16"},
	}
}

func runH2load(ctx context.Context, r *runner, x *proxy) (sample, error) {
	logFile := filepath.Join(r.e.tmp, "h2load.log")
	_ = os.Remove(logFile)
	defer os.Remove(logFile)
	out, err := runTool(ctx, r.timeout(), r.loadCPU, r.e.logPath("load"), "h2load", "-t1", "-c16", "-m32",
		"-D", r.secs(), "--log-file", logFile, fmt.Sprintf("https://%s/", x.addr(r.e.l, portH2)))
	if err != nil {
		return sample{}, err
	}
	s, err := parseH2load(out)
	if err != nil {
		return s, err
	}
	b, err := os.ReadFile(logFile)
	if err != nil {
		return s, fmt.Errorf("h2load log: %w", err)
	}
	s.P50us, s.P99us = h2loadPercentiles(string(b))
	return s, nil
}

// runIdle opens 10,000 idle connections through the proxy with idleload and
// samples the proxy's VmRSS before and while they are held.
func runIdle(ctx context.Context, r *runner, x *proxy) (sample, error) {
	before, err := memKiB(x.p.pid(), "VmRSS")
	if err != nil {
		return sample{}, err
	}
	hold := max(r.duration, 5*time.Second)
	ctx, cancel := context.WithTimeout(ctx, hold+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "taskset", "-c", strconv.Itoa(r.loadCPU), r.tools["idleload"],
		"-addr", x.addr(r.e.l, portHTTP), "-conns", strconv.Itoa(r.idleConns), "-hold", hold.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	lf, err := os.OpenFile(r.e.logPath("load"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return sample{}, fmt.Errorf("idleload: %w", err)
	}
	defer lf.Close()
	fmt.Fprintf(lf, "$ %s\n", strings.Join(cmd.Args, " "))
	cmd.Stderr = lf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return sample{}, fmt.Errorf("idleload: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return sample{}, fmt.Errorf("idleload: %w", err)
	}
	sc := bufio.NewScanner(stdout)
	var s sample
	var t struct {
		Open   int64 `json:"open"`
		Errors int64 `json:"errors"`
	}
	var perr error
	if sc.Scan() {
		perr = json.Unmarshal(sc.Bytes(), &t)
		if perr == nil {
			select {
			case <-time.After(2 * time.Second):
			case <-ctx.Done():
			}
			s.RSSHeldKiB, perr = memKiB(x.p.pid(), "VmRSS")
		}
	} else {
		perr = errors.New("idleload printed nothing")
	}
	for sc.Scan() { // drain until it exits
	}
	werr := cmd.Wait()
	if perr != nil {
		return s, fmt.Errorf("idleload: %w", errors.Join(perr, werr))
	}
	if werr != nil {
		return s, fmt.Errorf("idleload: %w", werr)
	}
	s.Requests, s.Errors, s.RSSBeforeKiB = t.Open, t.Errors, before
	if t.Errors > 0 {
		s.ErrorsAt = fmt.Sprintf("%d connections failed", t.Errors)
	}
	time.Sleep(time.Second) // let the proxy close them
	return s, nil
}

// lastJSON decodes the last line of out that is a JSON object into v.
func lastJSON(out string, v any) error {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "{") {
			return json.Unmarshal([]byte(l), v)
		}
	}
	return fmt.Errorf("no JSON object in output %q", out)
}

var (
	reWrkTotal   = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m|h)`)
	reWrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\s*$`)
	reWrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reWrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// unitSeconds is the length of a wrk/h2load time unit in seconds.
func unitSeconds(u string) float64 {
	switch u {
	case "us":
		return 1e-6
	case "ms":
		return 1e-3
	case "m":
		return 60
	case "h":
		return 3600
	}
	return 1
}

// parseWrk reads the report of `wrk --latency`.
func parseWrk(out string) (sample, error) {
	m := reWrkTotal.FindStringSubmatch(out)
	if m == nil {
		return sample{}, fmt.Errorf("wrk: no request count in %q", out)
	}
	var s sample
	s.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	d, _ := strconv.ParseFloat(m[2], 64)
	s.Seconds = d * unitSeconds(m[3])
	for _, p := range reWrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		v *= unitSeconds(p[3]) * 1e6
		if p[1] == "50" {
			s.P50us = v
		} else {
			s.P99us = v
		}
	}
	var detail []string
	if e := reWrkSockErr.FindStringSubmatch(out); e != nil {
		var n int64
		for _, f := range e[1:] {
			v, _ := strconv.ParseInt(f, 10, 64)
			n += v
		}
		s.Errors += n
		detail = append(detail, fmt.Sprintf("socket errors: connect %s, read %s, write %s, timeout %s", e[1], e[2], e[3], e[4]))
	}
	if e := reWrkNon2xx.FindStringSubmatch(out); e != nil {
		v, _ := strconv.ParseInt(e[1], 10, 64)
		s.Errors += v
		s.Requests -= v
		detail = append(detail, fmt.Sprintf("%d non-2xx/3xx", v))
	}
	s.ErrorsAt = strings.Join(detail, "; ")
	if s.Seconds > 0 {
		s.RPS = float64(s.Requests) / s.Seconds
	}
	return s, nil
}

var (
	reH2Finished = regexp.MustCompile(`finished in ([\d.]+)(us|ms|s|m),`)
	reH2Requests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	reH2Status   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
)

// parseH2load reads h2load's report; succeeded requests with a 2xx status
// count, the rest are errors.
func parseH2load(out string) (sample, error) {
	f := reH2Finished.FindStringSubmatch(out)
	q := reH2Requests.FindStringSubmatch(out)
	st := reH2Status.FindStringSubmatch(out)
	if f == nil || q == nil || st == nil {
		return sample{}, fmt.Errorf("h2load: unexpected report %q", out)
	}
	num := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	var s sample
	d, _ := strconv.ParseFloat(f[1], 64)
	s.Seconds = d * unitSeconds(f[2])
	s.Requests = num(st[1])
	failed, errored, timeout := num(q[5]), num(q[6]), num(q[7])
	non2xx := num(st[2]) + num(st[3]) + num(st[4])
	s.Errors = failed + errored + timeout + non2xx
	if s.Seconds > 0 {
		s.RPS = float64(s.Requests) / s.Seconds
	}
	if s.Errors > 0 {
		s.ErrorsAt = fmt.Sprintf("%d failed, %d errored, %d timeout, %d non-2xx", failed, errored, timeout, non2xx)
	}
	return s, nil
}

// h2loadPercentiles returns the 50th and 99th percentile request times in
// µs from h2load's --log-file (start, status, duration in µs per line).
func h2loadPercentiles(log string) (p50, p99 float64) {
	var d []float64
	for _, line := range strings.Split(log, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		if v, err := strconv.ParseFloat(f[2], 64); err == nil {
			d = append(d, v)
		}
	}
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}
