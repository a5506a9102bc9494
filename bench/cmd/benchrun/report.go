package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// results is everything one run of the suite measured (results.json).
type results struct {
	Started         string       `json:"started"`
	Finished        string       `json:"finished"`
	Rounds          int          `json:"rounds"`
	Duration        string       `json:"duration_per_run"`
	ProxyCPU        int          `json:"proxy_cpu"`
	LoadCPU         int          `json:"load_cpu"`
	Proxies         []string     `json:"proxies"`
	Machine         machine      `json:"machine"`
	Rows            []rowResult  `json:"rows"`
	Profiles        []string     `json:"profiles,omitempty"`
	ProfilesNote    string       `json:"profiles_note,omitempty"`
	FulcrumOnly     []toolResult `json:"fulcrum_only,omitempty"`
	FulcrumOnlyNote string       `json:"fulcrum_only_note,omitempty"`
}

// rowResult is one row: a cell per proxy.
type rowResult struct {
	Name  string  `json:"name"`
	What  string  `json:"what"`
	Kind  string  `json:"kind"`
	Cells []*cell `json:"cells"`
}

// cell is one proxy in one row: the samples of its rounds and the figures
// drawn from them.
type cell struct {
	Proxy string `json:"proxy"`
	// Status is empty when measured, else why not ("n/a …", "tool
	// missing …", "failed: …").
	Status      string   `json:"status,omitempty"`
	Samples     []sample `json:"samples,omitempty"`
	Count       int64    `json:"count"`
	Errors      int64    `json:"errors"`
	ErrorDetail []string `json:"error_detail,omitempty"`
	PerS        float64  `json:"per_s_median"`
	P50us       float64  `json:"p50_us_median"`
	P99us       float64  `json:"p99_us_median"`
	// CPUus is the proxy's CPU µs per request (per MiB for bulk rows, per
	// handshake for handshake rows): all rounds' CPU ÷ all rounds' count.
	CPUus float64 `json:"cpu_us_per_unit"`
	// Gbps is the median throughput of bulk rows (1 MiB per request).
	Gbps float64 `json:"gbit_per_s_median,omitempty"`
	// PerCPUSecond is handshakes per second of proxy CPU (handshake rows).
	PerCPUSecond float64 `json:"per_cpu_second,omitempty"`
	Resumed      int64   `json:"resumed,omitempty"`
	// KiBPerConn is the median RSS growth per idle connection (idle rows);
	// KiBPerConnFirst that of the first round, in a fresh process.
	KiBPerConn      float64 `json:"kib_per_conn_median,omitempty"`
	KiBPerConnFirst float64 `json:"kib_per_conn_first_round,omitempty"`
	// KiBPerConnLater is the median of the rounds after the first.
	KiBPerConnLater float64 `json:"kib_per_conn_later_rounds,omitempty"`
	PeakRSSKiB      int64   `json:"peak_rss_kib"`
	// HWMReset says whether VmHWM was reset at the start of the row (else
	// the peak is over the process's life so far).
	HWMReset bool `json:"peak_reset_per_row"`
	// VsHAProxy is the ratio of the row's main figure to HAProxy's (CPU per
	// unit; handshakes per CPU-second; KiB per connection).
	VsHAProxy float64 `json:"vs_haproxy,omitempty"`
	VsNginx   float64 `json:"vs_nginx,omitempty"`
}

// toolResult is the output of a Fulcrum-only tool.
type toolResult struct {
	Tool   string         `json:"tool"`
	Status string         `json:"status"`
	Fields map[string]any `json:"fields,omitempty"`
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarise computes a cell's figures from its samples.
func (c *cell) summarise(kind string) {
	if len(c.Samples) == 0 {
		return
	}
	var ticks int64
	var perS, p50, p99, gbps, kib []float64
	for _, s := range c.Samples {
		c.Count += s.Requests
		c.Errors += s.Errors
		c.Resumed += s.Resumed
		ticks += s.CPUTicks
		if s.ErrorsAt != "" {
			c.ErrorDetail = append(c.ErrorDetail, s.ErrorsAt)
		}
		perS, p50, p99 = append(perS, s.RPS), append(p50, s.P50us), append(p99, s.P99us)
		if s.Seconds > 0 {
			gbps = append(gbps, float64(s.Requests)*(1<<20)*8/s.Seconds/1e9)
		}
		if s.Requests > 0 {
			kib = append(kib, float64(s.RSSHeldKiB-s.RSSBeforeKiB)/float64(s.Requests))
		}
	}
	c.PerS, c.P50us, c.P99us = median(perS), median(p50), median(p99)
	cpuSec := float64(ticks) / clkTck
	if c.Count > 0 {
		c.CPUus = cpuSec * 1e6 / float64(c.Count)
	}
	switch kind {
	case kindBulk:
		c.Gbps = median(gbps)
	case kindHandshakes:
		if cpuSec > 0 {
			c.PerCPUSecond = float64(c.Count) / cpuSec
		}
	case kindIdle:
		c.KiBPerConn = median(kib)
		if len(kib) > 0 {
			c.KiBPerConnFirst = kib[0]
		}
		if len(kib) > 1 {
			c.KiBPerConnLater = median(kib[1:])
		}
	}
}

// main returns the figure compared across proxies.
func (c *cell) main(kind string) float64 {
	switch kind {
	case kindHandshakes:
		return c.PerCPUSecond
	case kindIdle:
		// The first round, in fresh processes: later rounds reuse memory
		// the proxy kept from it and understate what a connection costs.
		return c.KiBPerConnFirst
	}
	return c.CPUus
}

// ratios fills VsHAProxy (and VsNginx for bulk rows).
func (r *rowResult) ratios() {
	ref := func(name string) float64 {
		for _, c := range r.Cells {
			if c.Proxy == name && c.Status == "" {
				return c.main(r.Kind)
			}
		}
		return 0
	}
	h, n := ref("haproxy"), ref("nginx")
	for _, c := range r.Cells {
		if c.Status != "" {
			continue
		}
		if h > 0 {
			c.VsHAProxy = c.main(r.Kind) / h
		}
		if n > 0 && r.Kind == kindBulk {
			c.VsNginx = c.main(r.Kind) / n
		}
	}
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func ratio(v float64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", v)
}

// ratio3 is ratio with three decimals, for the goal table: a verdict
// must not hang on a rounded figure.
func ratio3(v float64) string { return fmt.Sprintf("%.3f×", v) }

func mib(kib int64) string { return fmt.Sprintf("%.1f", float64(kib)/1024) }

func (c *cell) errorsText() string {
	if c.Errors == 0 && len(c.ErrorDetail) == 0 {
		return "0"
	}
	return fmt.Sprintf("**%d** (%s)", c.Errors, strings.Join(c.ErrorDetail, "; "))
}

func table(b *strings.Builder, head []string, rows [][]string) {
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
}

// markdown renders the report.
func (res *results) markdown() string {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "# Fulcrum side-by-side benchmark, %s\n\n", res.Started)
	fmt.Fprintf(&b, "%d rounds × %s per run, proxies interleaved in each round (%s); each proxy pinned to CPU %d, "+
		"backends and load generators to CPU %d; 127.0.0.1 only.\n\n", res.Rounds, res.Duration,
		strings.Join(res.Proxies, ", "), res.ProxyCPU, res.LoadCPU)
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), kernel %s; load average before %s, after %s.\n\n", m.NProc, m.CPU, m.Kernel, m.LoadBefore, m.LoadAfter)
	var names []string
	for k := range m.Versions {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(&b, "- %s: `%s`\n", k, m.Versions[k])
	}
	b.WriteString("\nMedians over the rounds for rates and latencies; CPU figures are the proxy's utime+stime over all " +
		"rounds ÷ all requests of those rounds; ratios are to HAProxy in this run (CPU: lower is better; " +
		"handshakes per CPU-second: higher is better). Peak RSS is VmHWM during the row.\n")
	for _, r := range res.Rows {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", r.Name, r.What)
		var head []string
		switch r.Kind {
		case kindRequests:
			head = []string{"proxy", "req/s", "p50 µs", "p99 µs", "CPU µs/req", "vs HAProxy", "peak RSS MiB", "errors"}
		case kindBulk:
			head = []string{"proxy", "MiB/s", "Gbit/s", "p50 µs", "p99 µs", "CPU µs/MiB", "vs HAProxy", "vs nginx", "peak RSS MiB", "errors"}
		case kindHandshakes:
			head = []string{"proxy", "handshakes/s", "p50 µs", "p99 µs", "CPU µs/handshake", "handshakes per CPU-s", "vs HAProxy (higher is better)", "resumed", "peak RSS MiB", "errors"}
		case kindIdle:
			head = []string{"proxy", "open", "RSS before MiB", "RSS held MiB", "KiB per idle conn (round 1, fresh process)", "vs HAProxy", "later rounds KiB per conn (median; memory kept from round 1)", "peak RSS MiB", "errors"}
		}
		var rows [][]string
		for _, c := range r.Cells {
			if c.Status != "" {
				row := []string{c.Proxy, c.Status}
				for len(row) < len(head) {
					row = append(row, "")
				}
				rows = append(rows, row)
				continue
			}
			switch r.Kind {
			case kindRequests:
				rows = append(rows, []string{c.Proxy, f0(c.PerS), f0(c.P50us), f0(c.P99us), f2(c.CPUus), ratio(c.VsHAProxy), mib(c.PeakRSSKiB), c.errorsText()})
			case kindBulk:
				rows = append(rows, []string{c.Proxy, f0(c.PerS), f2(c.Gbps), f0(c.P50us), f0(c.P99us), f1(c.CPUus), ratio(c.VsHAProxy), ratio(c.VsNginx), mib(c.PeakRSSKiB), c.errorsText()})
			case kindHandshakes:
				rows = append(rows, []string{c.Proxy, f0(c.PerS), f0(c.P50us), f0(c.P99us), f1(c.CPUus), f0(c.PerCPUSecond), ratio(c.VsHAProxy), fmt.Sprint(c.Resumed), mib(c.PeakRSSKiB), c.errorsText()})
			case kindIdle:
				first := c.Samples[0]
				later := "–"
				if len(c.Samples) > 1 {
					later = f1(c.KiBPerConnLater)
				}
				rows = append(rows, []string{c.Proxy, fmt.Sprint(c.Count / int64(len(c.Samples))), mib(first.RSSBeforeKiB), mib(first.RSSHeldKiB),
					f1(c.KiBPerConnFirst), ratio(c.VsHAProxy), later, mib(c.PeakRSSKiB), c.errorsText()})
			}
		}
		table(&b, head, rows)
	}
	res.goals(&b)
	b.WriteString("\n## Fulcrum only (run once each, not interleaved)\n\n")
	if res.FulcrumOnlyNote != "" {
		b.WriteString(res.FulcrumOnlyNote + "\n")
	}
	for _, t := range res.FulcrumOnly {
		fmt.Fprintf(&b, "- `%s`: %s\n", t.Tool, t.Status)
		var keys []string
		for k := range t.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, _ := json.Marshal(t.Fields[k])
			fmt.Fprintf(&b, "  - `%s`: `%s`\n", k, v)
		}
	}
	if res.ProfilesNote != "" {
		fmt.Fprintf(&b, "\n## Fulcrum profiles\n\n%s\n", res.ProfilesNote)
	}
	if len(res.Profiles) > 0 {
		b.WriteString("\n## Fulcrum profiles\n\nTaken during one extra run per row after the measured rounds (Fulcrum restarted with " +
			"`--pprof-listen`; not in the figures above). Read with `go tool pprof -top FILE`.\n\n")
		for _, p := range res.Profiles {
			fmt.Fprintf(&b, "- [%s](%s)\n", p, p)
		}
	}
	return b.String()
}

// goals compares Fulcrum with the goals.
func (res *results) goals(b *strings.Builder) {
	get := func(row, proxy string) *cell {
		for _, r := range res.Rows {
			if r.Name != row {
				continue
			}
			for _, c := range r.Cells {
				if c.Proxy == proxy && c.Status == "" {
					return c
				}
			}
		}
		return nil
	}
	var rows [][]string
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	for _, g := range []struct{ row, goal string }{
		{"http-small", "CPU per request ≤ 1.0× HAProxy"},
		{"l4-small", "CPU per request ≤ 1.0× HAProxy"},
		{"https-small", "CPU per request ≤ 1.0× HAProxy"},
		{"http-1MiB", "CPU per MiB ≤ nginx's"},
		{"tls-full", "handshakes per CPU-second ≥ HAProxy"},
		{"idle-10k", "≤ 16 KiB RSS per idle connection"},
		// Rows without a goal of their own in the issue, held to its aim:
		// at or below HAProxy on every row.
		{"h2", "(every row) CPU per request ≤ 1.0× HAProxy"},
		{"l4-newconn", "(every row) CPU per request ≤ 1.0× HAProxy"},
		{"l4-1MiB", "(every row) CPU per MiB ≤ 1.0× HAProxy"},
		{"tls-resume", "(every row) handshakes per CPU-second ≥ HAProxy"},
	} {
		f := get(g.row, "fulcrum")
		if f == nil {
			rows = append(rows, []string{g.row, g.goal, "not measured", ""})
			continue
		}
		switch g.row {
		case "http-1MiB":
			if f.VsNginx == 0 {
				rows = append(rows, []string{g.row, g.goal, "no nginx figure", ""})
				continue
			}
			rows = append(rows, []string{g.row, g.goal, ratio3(f.VsNginx) + " nginx", verdict(f.VsNginx <= 1)})
		case "tls-full", "tls-resume":
			if f.VsHAProxy == 0 {
				rows = append(rows, []string{g.row, g.goal, "no HAProxy figure", ""})
				continue
			}
			rows = append(rows, []string{g.row, g.goal, ratio3(f.VsHAProxy) + " HAProxy", verdict(f.VsHAProxy >= 1)})
		case "idle-10k":
			rows = append(rows, []string{g.row, g.goal, f1(f.KiBPerConnFirst) + " KiB (fresh process)", verdict(f.KiBPerConnFirst <= 16)})
		default:
			if f.VsHAProxy == 0 {
				rows = append(rows, []string{g.row, g.goal, "no HAProxy figure", ""})
				continue
			}
			rows = append(rows, []string{g.row, g.goal, ratio3(f.VsHAProxy) + " HAProxy", verdict(f.VsHAProxy <= 1)})
		}
	}
	rows = append(rows, res.applyGoal(verdict))
	b.WriteString("\n## Fulcrum against the goals (issue 10)\n\n")
	table(b, []string{"row", "goal", "Fulcrum", ""}, rows)
}

// applyGoal is the goal row of the configuration change, from applyload's
// fields: the 99th percentile of the time a change took to take effect,
// and the failed requests of the load meanwhile.
func (res *results) applyGoal(verdict func(bool) string) []string {
	row := []string{"config apply", "1,000 VSs: one change ≤ 50 ms to take effect, 0 failed requests"}
	for _, t := range res.FulcrumOnly {
		if t.Tool != "applyload" {
			continue
		}
		p50, ok1 := t.Fields["effect_ms_p50"].(float64)
		p99, ok2 := t.Fields["effect_ms_p99"].(float64)
		failed, ok3 := t.Fields["failed_requests"].(float64)
		if t.Status != "ok" || !ok1 || !ok2 || !ok3 {
			return append(row, "applyload: "+t.Status, "")
		}
		return append(row, fmt.Sprintf("%.1f ms median, %.1f ms p99, %.0f failed", p50, p99, failed), verdict(p99 <= 50 && failed == 0))
	}
	return append(row, "not measured", "")
}

// writeResults writes report.md and results.json and prints the report.
func writeResults(dir string, res *results) error {
	md := res.markdown()
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(md), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	j, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	fmt.Println(md)
	fmt.Printf("\nresults in %s\n", dir)
	return nil
}
