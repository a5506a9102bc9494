package attack

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/internal/host"
)

// RSSKiB returns the resident set size (VmRSS) of process pid in KiB,
// summed with its direct children (HAProxy's workers in master-worker
// mode), or 0 when it cannot be read.
func RSSKiB(pid int) int64 {
	v := statusField(pid, "VmRSS")
	for _, c := range host.Children(pid) {
		v += statusField(c, "VmRSS")
	}
	return v
}

// FDs returns the number of open descriptors of process pid and its
// direct children (/proc/PID/fd), or -1 when it cannot be read.
func FDs(pid int) int {
	n := countFDs(pid)
	if n < 0 {
		return -1
	}
	for _, c := range host.Children(pid) {
		if m := countFDs(c); m > 0 {
			n += m
		}
	}
	return n
}

func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

func statusField(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		return v
	}
	return 0
}

// Latency summarises the latencies of a set of requests.
type Latency struct {
	// Count is the number of requests that got an answer.
	Count int `json:"count"`
	// Errors is the number of requests that failed (socket errors,
	// timeouts, unexpected status).
	Errors int `json:"errors"`
	// ErrorKinds counts the errors by kind.
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// P50ms, P99ms and MaxMs are percentiles of the answered requests in
	// milliseconds.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// ErrP50ms and ErrMaxMs are how long the failed requests took to
	// fail, when Steady measured them.
	ErrP50ms float64 `json:"err_p50_ms,omitempty"`
	ErrMaxMs float64 `json:"err_max_ms,omitempty"`
}

// Summarise computes a Latency from durations and error kinds.
func Summarise(lat []time.Duration, errs map[string]int) Latency {
	l := Latency{Count: len(lat), ErrorKinds: errs}
	for _, n := range errs {
		l.Errors += n
	}
	if len(lat) == 0 {
		return l
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	l.P50ms = ms(Percentile(s, 50))
	l.P99ms = ms(Percentile(s, 99))
	l.MaxMs = ms(s[len(s)-1])
	return l
}

// Percentile returns the p-th percentile (nearest rank) of sorted.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// Ms converts a duration to milliseconds with two decimals.
func Ms(d time.Duration) float64 { return ms(d) }

// ErrKind names an error for counting: the last part of its text, so that
// errors differing only by address count together.
func ErrKind(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}
