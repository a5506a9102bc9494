package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// The 10,000-real-server benchmark runs its listeners in a helper process
// (this test binary started again with helperEnv set), so that the CPU
// time measured is the Monitor's alone.
const helperEnv = "FULCRUM_HEALTH_HELPER_LISTENERS"

// helperMain serves as the helper process when helperEnv holds a number of
// listeners: it opens them on 127.0.2.1, 127.0.2.2, ..., prints their
// addresses on one line, answers every connection with a minimal HTTP
// response, and exits when its standard input closes. It reports false
// in a normal test run.
func helperMain() bool {
	n, err := strconv.Atoi(os.Getenv(helperEnv))
	if err != nil || n <= 0 {
		return false
	}
	var addrs []string
	for i := range n {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.2.%d:0", 1+i%250))
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					b := make([]byte, 512)
					if n, _ := c.Read(b); n > 0 {
						_, _ = c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
					}
				}()
			}
		}()
	}
	fmt.Println(strings.Join(addrs, " "))
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
	return true
}

// startHelper starts the listeners' process and returns their targets.
func startHelper(b *testing.B, n int) []Target {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("helper: %v", err)
	}
	var out []Target
	for _, a := range strings.Fields(line) {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		out = append(out, Target{Address: host, Port: p})
	}
	if len(out) != n {
		b.Fatalf("helper gave %d listeners, want %d", len(out), n)
	}
	return out
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkMonitor10k checks 10,000 real servers (100 services of 100
// real servers over 100 listeners of a helper process) every 9 s, with
// LoadMaster's real timers, and reports the Monitor's CPU use over a
// window of FULCRUM_HEALTH_BENCH_WINDOW (default 27 s, three intervals)
// after the first checks. Run it with -benchtime 1x.
func BenchmarkMonitor10k(b *testing.B) {
	for _, typ := range []string{TypeTCP, TypeHTTP} {
		b.Run(typ, func(b *testing.B) { benchMonitor(b, typ, 100, 100) })
	}
}

func benchMonitor(b *testing.B, typ string, services, perService int) {
	window := 27 * time.Second
	if d, err := time.ParseDuration(os.Getenv("FULCRUM_HEALTH_BENCH_WINDOW")); err == nil {
		window = d
	}
	targets := startHelper(b, perService)
	c := &config.Config{Options: config.DefaultOptions()}
	id := 0
	for s := range services {
		v := config.VirtualService{ID: s + 1, Address: "127.0.1.1", Port: 1000 + s, HealthCheck: config.HealthCheck{Type: typ}}
		for _, tg := range targets {
			id++
			v.RealServers = append(v.RealServers, config.RealServer{ID: id, Address: tg.Address, Port: tg.Port})
		}
		c.VirtualServices = append(c.VirtualServices, v)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	m := New(Options{Logger: quiet})
	defer m.Close()
	start := time.Now()
	if err := m.Sync(c, nil); err != nil {
		b.Fatal(err)
	}
	checks := func() (n, up int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, t := range m.tasks {
			n += t.checks
			if t.lastUp {
				up++
			}
		}
		return n, up
	}
	testkit.EventuallyState(b, 2*time.Minute, func() (bool, string) {
		n, up := checks()
		return up == services*perService, fmt.Sprintf("%d checks, %d real servers Up", n, up)
	}, "every real server Up")
	ramp := time.Since(start)
	n0, _ := checks()
	user0, sys0 := cpuTime()
	t0 := time.Now()
	b.ResetTimer()
	time.Sleep(window)
	b.StopTimer()
	elapsed := time.Since(t0)
	user1, sys1 := cpuTime()
	user, sys := user1-user0, sys1-sys0
	cpu := user + sys
	n1, up := checks()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	pct := 100 * cpu.Seconds() / elapsed.Seconds()
	rate := float64(n1-n0) / elapsed.Seconds()
	b.ReportMetric(pct, "%cpu")
	b.ReportMetric(rate, "checks/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(n1-n0, 1)), "µs-cpu/check")
	b.ReportMetric(float64(ms.HeapInuse-min(ms.HeapInuse, before.HeapInuse))/(1<<20), "heap-MB")
	b.ReportMetric(rssMB(), "rss-MB")
	b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
	b.Logf("%d real servers (%s): first checks of all in %v; over %v: %d checks (%.0f/s), CPU %v (user %v, system %v) "+
		"= %.2f%% of one core, %d Up, heap in use %.1f MB, RSS %.1f MB, %d goroutines", services*perService, typ,
		ramp.Round(time.Millisecond), elapsed.Round(time.Millisecond), n1-n0, rate, cpu.Round(time.Millisecond),
		user.Round(time.Millisecond), sys.Round(time.Millisecond), pct, up,
		float64(ms.HeapInuse)/(1<<20), rssMB(), runtime.NumGoroutine())
}

// BenchmarkFlapFullLength is the flap test at full length: a
// health endpoint alternating 200/503 every 0.7 s for 60 s, checked with
// LoadMaster's timers (interval 9 s, 2 retries), with rise 2 and, for
// comparison, rise 1. It reports the checks made and the transitions they
// caused. Run it with -benchtime 1x.
func BenchmarkFlapFullLength(b *testing.B) {
	for _, rise := range []int{2, 1} {
		b.Run("rise"+strconv.Itoa(rise), func(b *testing.B) {
			res := runFlap(b, time.Second, 60*time.Second, rise)
			b.ReportMetric(float64(res.checks), "checks")
			b.ReportMetric(float64(res.transitions), "transitions")
			b.Logf("60 s of 0.7 s flapping, rise %d: %d checks, %d transitions", rise, res.checks, res.transitions)
		})
	}
}

// BenchmarkCheck measures one check of each kind against a local server.
func BenchmarkCheck(b *testing.B) {
	cert, _ := selfSigned(b, "127.0.0.50")
	h := startHTTP(b, "127.0.0.50", nil)
	hs := startHTTP(b, "127.0.0.50", &cert)
	tcp := startTCP(b, "127.0.0.50")
	smtp := startLine(b, "127.0.0.50", smtpProto, nil)
	ldap := startLDAP(b, "127.0.0.50")
	dns := startDNS(b, "127.0.0.50")
	for _, tc := range []struct {
		name string
		p    Params
		tg   Target
	}{
		{"tcp", Params{Type: TypeTCP}, targetOf(tcp)},
		{"http", Params{Type: TypeHTTP}, h.target()},
		{"https", Params{Type: TypeHTTPS}, hs.target()},
		{"smtp", Params{Type: TypeSMTP}, smtp.target()},
		{"ldap", Params{Type: TypeLDAP}, ldap.target()},
		{"dns", Params{Type: TypeDNS}, dns.target()},
		{"icmp", Params{Type: TypeICMP}, Target{Address: "127.0.0.1"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := NewChecker(tc.p)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r := c.Check(ctx, tc.tg)
				cancel()
				if !r.Up {
					b.Skipf("%s", r.Reason)
				}
			}
		})
	}
}
