// Command reliability is Fulcrum's reliability suite (issue 14): it
// replays attacks and faults against Fulcrum and, where they apply,
// HAProxy in the same run — HTTP/2 rapid reset and SETTINGS, PING and
// CONTINUATION floods, a spoofed UDP flood, stalled uploads, real servers
// killed, resetting or hanging, configuration changes under load,
// slowloris, slow POST, the smuggling corpora, 10k idle connections,
// oversized heads and kill -9 of Fulcrum during API writes — and, against
// Fulcrum's admin plane (issue 15), password guessing across source
// addresses, a flood of bad API keys on the audit log, unauthenticated
// large bodies and a forged restore; it writes results.json and report.md
// into bench/results/reliability-<UTC time>/.
// See bench/README.md.
//
//	go run ./bench/cmd/reliability [-only rapid-reset,floods] [-proxies fulcrum,haproxy] [-duration 10s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command's flags.
type options struct {
	only          []string
	proxies       []string
	duration      time.Duration
	out           string
	basePort      int
	proxyCPU      int
	loadCPU       int
	idleTimeout   int
	bodyTimeout   int
	headerTimeout int
	legitRate     int
	udpNoFile     int
	udpSources    int
	slowConns     int
	idleConns     int
	crashRuns     int
}

var allProxies = []string{"fulcrum", "haproxy"}

func main() {
	if handled, err := subcommand(os.Args[1:]); handled {
		if err != nil {
			fmt.Fprintln(os.Stderr, "reliability:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var only, proxies string
	flag.StringVar(&only, "only", "", "comma-separated cases to run (default: all; see -list)")
	flag.StringVar(&proxies, "proxies", strings.Join(allProxies, ","), "comma-separated proxies: fulcrum, haproxy")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each attack window (2s-5m)")
	flag.StringVar(&o.out, "out", "", "results directory (default bench/results/reliability-<UTC date-time>)")
	flag.IntVar(&o.basePort, "base-port", 28000, "first of the ports used (base+1 … base+200 on 127.0.0.1)")
	flag.IntVar(&o.proxyCPU, "proxy-cpu", 0, "CPU the proxies are pinned to (-1: not pinned)")
	flag.IntVar(&o.loadCPU, "load-cpu", 1, "CPU the driver, attackers and real servers are pinned to (-1: not pinned)")
	flag.IntVar(&o.idleTimeout, "idle-timeout", 20, "the services' idle timeout, seconds")
	flag.IntVar(&o.bodyTimeout, "body-timeout", 3, "Fulcrum's http.bodyTimeout, seconds")
	flag.IntVar(&o.headerTimeout, "header-timeout", 10, "http.headerTimeout (HAProxy: timeout http-request), seconds")
	flag.IntVar(&o.legitRate, "legit-rate", 200, "requests per second of the legitimate client")
	flag.IntVar(&o.udpNoFile, "udp-nofile", 4096, "Fulcrum's open-file limit during udp-flood (0: unchanged)")
	flag.IntVar(&o.udpSources, "udp-sources", 20000, "spoofed source addresses of udp-flood")
	flag.IntVar(&o.slowConns, "slow-conns", 1000, "connections of slowloris (slow-post opens a fifth)")
	flag.IntVar(&o.idleConns, "idle-conns", 10000, "connections of idle-10k")
	flag.IntVar(&o.crashRuns, "crash-runs", 20, "kill -9 iterations of crash-atomicity")
	list := flag.Bool("list", false, "list the cases and exit")
	flag.Parse()
	if *list {
		for _, c := range cases() {
			fmt.Printf("%-16s %s\n", c.name, c.what)
		}
		return
	}
	if err := o.check(only, proxies); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.Exit(2)
	}
	if pinSelf(o.loadCPU) {
		return // unreachable: pinSelf execs
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		stop()
		os.Exit(1)
	}
}

func (o *options) check(only, proxies string) error {
	if o.duration < 2*time.Second || o.duration > 5*time.Minute {
		return errors.New("-duration must be 2s-5m")
	}
	if o.basePort < 1024 || o.basePort > 65000 {
		return errors.New("-base-port must be 1024-65000")
	}
	if o.idleTimeout < 5 || o.idleTimeout > 600 || o.bodyTimeout < 1 || o.bodyTimeout >= o.idleTimeout ||
		o.headerTimeout < 1 || o.headerTimeout > 300 {
		return errors.New("-idle-timeout must be 5-600, -body-timeout 1 to below it, -header-timeout 1-300")
	}
	if o.legitRate < 1 || o.legitRate > 10000 || o.udpSources < 1 || o.udpSources > 1000000 ||
		o.slowConns < 1 || o.slowConns > 50000 || o.idleConns < 1 || o.idleConns > 100000 || o.crashRuns < 1 || o.crashRuns > 1000 {
		return errors.New("a count flag is out of range")
	}
	names := map[string]bool{}
	for _, c := range cases() {
		names[c.name] = true
	}
	for _, n := range splitList(only) {
		if !names[n] {
			return fmt.Errorf("-only: unknown case %q (see -list)", n)
		}
		o.only = append(o.only, n)
	}
	for _, n := range splitList(proxies) {
		if !slices.Contains(allProxies, n) {
			return fmt.Errorf("-proxies: unknown proxy %q", n)
		}
		if !slices.Contains(o.proxies, n) {
			o.proxies = append(o.proxies, n)
		}
	}
	if len(o.proxies) == 0 {
		return errors.New("-proxies: none")
	}
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

// pinSelf re-executes the driver under taskset on the load CPU (once), so
// that it, its attackers and its real servers stay off the proxies' CPU.
// It returns false when nothing is to be done.
func pinSelf(cpu int) bool {
	if cpu < 0 || os.Getenv("RELIABILITY_PINNED") != "" {
		return false
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return false
	}
	self, err := os.Executable()
	if err != nil {
		return false
	}
	env := append(os.Environ(), "RELIABILITY_PINNED=1")
	args := append([]string{"taskset", "-c", strconv.Itoa(cpu), self}, os.Args[1:]...)
	err = syscall.Exec(ts, args, env)
	fmt.Fprintln(os.Stderr, "reliability: not pinned:", err)
	return false
}
