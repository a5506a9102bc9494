package main

import (
	"math"
	"strconv"
	"testing"
	"time"
)

const wrkOK = `Running 1s test @ http://127.0.0.1:27110/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.81ms    1.84ms  10.33ms   85.15%
    Req/Sec    46.39k     8.56k   61.93k    80.00%
  Latency Distribution
     50%  806.00us
     75%    2.27ms
     90%    4.80ms
     99%    8.81ms
  46099 requests in 1.00s, 7.52MB read
Requests/sec:  46038.23
Transfer/sec:      7.51MB
`

const wrkErrors = `Running 1s test @ http://127.0.0.1:27110/
  1 threads and 64 connections
  Latency Distribution
     50%    1.50ms
     75%    2.27ms
     90%    4.80ms
     99%     1.20s
  2000 requests in 2.00s, 7.52MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 10
Requests/sec:  1000.00
`

const h2loadOK = `finished in 1.01s, 25543.00 req/s, 3.07MB/s
requests: 25543 total, 26055 started, 25543 done, 25543 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 25543 2xx, 0 3xx, 0 4xx, 0 5xx
`

const h2loadErrors = `finished in 2.00s, 1000.00 req/s, 3.07MB/s
requests: 2000 total, 2010 started, 2000 done, 1990 succeeded, 10 failed, 2 errored, 1 timeout
status codes: 1985 2xx, 0 3xx, 0 4xx, 5 5xx
`

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		name     string
		out      string
		requests int64
		errors   int64
		seconds  float64
		p50, p99 float64
		detail   string
	}{
		{"clean", wrkOK, 46099, 0, 1, 806, 8810, ""},
		{"errors", wrkErrors, 1990, 20, 2, 1500, 1.2e6, "socket errors: connect 1, read 2, write 3, timeout 4; 10 non-2xx/3xx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseWrk(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if s.Requests != tc.requests || s.Errors != tc.errors || !near(s.Seconds, tc.seconds) ||
				!near(s.P50us, tc.p50) || !near(s.P99us, tc.p99) || s.ErrorsAt != tc.detail {
				t.Errorf("got %+v", s)
			}
			if !near(s.RPS, float64(tc.requests)/tc.seconds) {
				t.Errorf("rps %v", s.RPS)
			}
		})
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("a failed wrk run parsed")
	}
}

func TestParseH2load(t *testing.T) {
	for _, tc := range []struct {
		name             string
		out              string
		requests, errors int64
		seconds          float64
	}{
		{"clean", h2loadOK, 25543, 0, 1.01},
		{"errors", h2loadErrors, 1985, 18, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseH2load(tc.out)
			if err != nil {
				t.Fatal(err)
			}
			if s.Requests != tc.requests || s.Errors != tc.errors || !near(s.Seconds, tc.seconds) {
				t.Errorf("got %+v", s)
			}
		})
	}
	if _, err := parseH2load("no servers\n"); err == nil {
		t.Error("a failed h2load run parsed")
	}
}

func TestH2loadPercentiles(t *testing.T) {
	log := ""
	for i := 1; i <= 100; i++ {
		log += "1796044451000000\t200\t" + strconv.Itoa(i) + "\n"
	}
	p50, p99 := h2loadPercentiles(log)
	if p50 != 51 || p99 != 100 {
		t.Errorf("p50 %v p99 %v", p50, p99)
	}
	if p50, p99 := h2loadPercentiles(""); p50 != 0 || p99 != 0 {
		t.Errorf("empty log: %v %v", p50, p99)
	}
}

func TestProcParsers(t *testing.T) {
	stat := "4242 (nginx: worker (x)) S 1 4242 4242 0 -1 4194624 300 0 0 0 1234 567 0 0 20 0 1 0 100 1000 200"
	if got, err := parseStatTicks(stat); err != nil || got != 1801 {
		t.Errorf("ticks %v %v", got, err)
	}
	if _, err := parseStatTicks("4242 (x) S 1"); err == nil {
		t.Error("short stat parsed")
	}
	status := "Name:\thaproxy\nVmHWM:\t   30720 kB\nVmRSS:\t   29000 kB\n"
	for _, tc := range []struct {
		field string
		want  int64
		ok    bool
	}{{"VmHWM", 30720, true}, {"VmRSS", 29000, true}, {"VmSwap", 0, false}} {
		got, err := parseStatus(status, tc.field)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: %v %v", tc.field, got, err)
		}
	}
}

func TestSummariseAndRatios(t *testing.T) {
	clk := clkTck
	r := rowResult{Kind: kindRequests, Cells: []*cell{
		{Proxy: "fulcrum", Samples: []sample{
			{Requests: 1000, RPS: 100, CPUTicks: int64(clk)},
			{Requests: 3000, RPS: 300, CPUTicks: int64(clk)},
			{Requests: 2000, RPS: 200, CPUTicks: int64(clk), Errors: 2, ErrorsAt: "2 non-2xx/3xx"},
		}},
		{Proxy: "haproxy", Samples: []sample{{Requests: 1000, RPS: 100, CPUTicks: int64(clk) / 2}}},
		{Proxy: "caddy", Status: "n/a"},
	}}
	for _, c := range r.Cells {
		c.summarise(r.Kind)
	}
	r.ratios()
	f, h := r.Cells[0], r.Cells[1]
	if f.Count != 6000 || f.Errors != 2 || f.PerS != 200 || !near(f.CPUus, 500) {
		t.Errorf("fulcrum %+v", f)
	}
	if !near(h.CPUus, 500) || !near(f.VsHAProxy, 1) || !near(h.VsHAProxy, 1) || r.Cells[2].VsHAProxy != 0 {
		t.Errorf("ratios %v %v", f.VsHAProxy, h.VsHAProxy)
	}
}

func TestIdleConns(t *testing.T) {
	for _, tc := range []struct{ limit, want int }{
		{1 << 20, 10000}, {65536, 10000}, {20000, 10000}, {12000, 10000}, {11000, 9000}, {4096, 2000}, {1024, 1000},
	} {
		if got := idleConns(tc.limit); got != tc.want {
			t.Errorf("idleConns(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}

func TestSecondsFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{{"3", 3 * time.Second, true}, {"2500ms", 2500 * time.Millisecond, true}, {"soon", 0, false}} {
		var d time.Duration
		err := (*secondsFlag)(&d).Set(tc.in)
		if (err == nil) != tc.ok || d != tc.want {
			t.Errorf("%q: %v %v", tc.in, d, err)
		}
	}
}
