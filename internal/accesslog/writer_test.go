package accesslog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readLines returns the lines of the files, each checked to end in a line
// feed.
func readLines(t *testing.T, files ...string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			continue
		}
		if b[len(b)-1] != '\n' {
			t.Fatalf("%s does not end in a line feed: a line is incomplete", f)
		}
		out = append(out, strings.Split(string(b[:len(b)-1]), "\n")...)
	}
	return out
}

// TestWriterRotatesUnderLoad logs from concurrent producers at about
// 20,000 lines/s for about 2 s (at most 60,000 lines) while the file is
// renamed and reopened every 250 ms, and finds every line logged, whole
// and once, across the files.
func TestWriterRotatesUnderLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w := New(Options{})
	if err := w.Configure(config.AccessLog{File: path, Format: FormatJSON}, nil); err != nil {
		t.Fatal(err)
	}
	const producers, perBatch, maxLines = 4, 50, 60000
	const perProducerRate = 5000 // lines/s
	deadline := time.Now().Add(2 * time.Second)
	var logged atomic.Int64
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := httpEntry()
			start := time.Now()
			for n := 0; n < maxLines/producers && time.Now().Before(deadline); {
				for range perBatch {
					e.URI = fmt.Sprintf("/p%d/%d", p, n)
					e.Time = time.Now()
					w.Log(e)
					n++
				}
				logged.Add(perBatch)
				// Pace to perProducerRate: sleep until the batch is due.
				if due := start.Add(time.Duration(n) * time.Second / perProducerRate); time.Until(due) > 0 {
					time.Sleep(time.Until(due))
				}
			}
		}()
	}
	files := []string{path}
	rotations := 0
	for time.Now().Before(deadline) && rotations < 20 {
		time.Sleep(250 * time.Millisecond)
		rotated := fmt.Sprintf("%s.%d", path, rotations+1)
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		files = append(files, rotated)
		if err := w.Reopen(); err != nil {
			t.Fatal(err)
		}
		rotations++
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	n := logged.Load()
	t.Logf("%d lines in %d files (%d rotations), %.0f lines/s; stats %+v", n, len(files), rotations, float64(n)/2, st)
	if rotations < 3 {
		t.Fatalf("only %d rotations", rotations)
	}
	if st.Dropped != 0 {
		t.Errorf("%d lines dropped with the default queue", st.Dropped)
	}
	lines := readLines(t, files...)
	seen := make(map[string]bool, len(lines))
	var bytesRead uint64
	for _, l := range lines {
		bytesRead += uint64(len(l) + 1)
		var v struct{ URI string }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line is not complete JSON: %v: %q", err, l)
		}
		if seen[v.URI] {
			t.Fatalf("line %s written twice", v.URI)
		}
		seen[v.URI] = true
	}
	if int64(len(lines)) != n || st.Lines != uint64(n) || st.Bytes != bytesRead {
		t.Fatalf("logged %d lines, found %d, counted %d lines and %d bytes (read %d)", n, len(lines), st.Lines, st.Bytes, bytesRead)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^FileMode != 0 {
			t.Errorf("%s has mode %v, want at most %v", f, fi.Mode().Perm(), os.FileMode(FileMode))
		}
	}
}

// TestWriterCountsDrops blocks the writer on a FIFO nobody reads, so that
// a small queue fills: the lines that did not fit are counted as dropped,
// and every other line arrives once the FIFO is read.
func TestWriterCountsDrops(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := New(Options{QueueLines: 4})
	if err := w.Configure(config.AccessLog{File: fifo, Format: FormatJSON}, nil); err != nil {
		t.Fatal(err)
	}
	// The pipe holds 64 KiB and the writer's buffer 64 KiB: lines of
	// ~1 KiB fill both after ~130, then the queue's 4, then drops.
	e := httpEntry()
	e.UserAgent = strings.Repeat("u", 1000)
	const total = 2000
	for i := range total {
		e.URI = fmt.Sprintf("/%d", i)
		w.Log(e)
	}
	dropped := w.Stats().Dropped
	if dropped == 0 {
		t.Fatal("no drop counted with a blocked writer and a queue of 4")
	}
	// Read everything: the writer unblocks and Close drains the rest.
	if err := syscall.SetNonblock(int(r.Fd()), false); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 4096), 1<<20)
		n := 0
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				n = -1 << 30
			}
			n++
		}
		got <- n
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := <-got
	st := w.Stats()
	t.Logf("stats %+v, read %d", st, n)
	if uint64(n) != total-dropped || st.Lines != uint64(n) || st.Dropped != dropped {
		t.Fatalf("read %d lines, want %d logged - %d dropped; stats %+v", n, total, dropped, st)
	}
}

type collect struct {
	mu    sync.Mutex
	lines []string
}

func (c *collect) ForwardAccess(_ time.Time, line []byte) {
	c.mu.Lock()
	c.lines = append(c.lines, string(line))
	c.mu.Unlock()
}

func TestWriterConfigure(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	w := New(Options{})
	defer w.Close()
	e := tcpEntry()
	logN := func(prefix string, n int) {
		for i := range n {
			e.VSName = fmt.Sprintf("%s%d", prefix, i)
			w.Log(e)
		}
	}
	logN("none", 3) // no destination: nothing
	if err := w.Configure(config.AccessLog{File: a, Format: FormatJSON}, nil); err != nil {
		t.Fatal(err)
	}
	logN("a", 5)
	fwd := &collect{}
	if err := w.Configure(config.AccessLog{File: b, Format: FormatHAProxy}, fwd); err != nil {
		t.Fatal(err)
	}
	logN("b", 4)
	if err := w.Configure(config.AccessLog{File: b, Format: FormatJSON}, nil); err != nil { // same file, other format
		t.Fatal(err)
	}
	logN("c", 2)
	if err := w.Configure(config.AccessLog{Format: FormatJSON}, fwd); err != nil { // forwarder only
		t.Fatal(err)
	}
	logN("d", 1)
	if err := w.Configure(config.AccessLog{Format: FormatJSON}, nil); err != nil { // off
		t.Fatal(err)
	}
	logN("off", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	la, lb := readLines(t, a), readLines(t, b)
	if len(la) != 5 || !strings.HasPrefix(la[0], `{"time"`) || !strings.Contains(la[4], `"vsName":"a4"`) {
		t.Errorf("a.log: %q", la)
	}
	if len(lb) != 6 || !strings.Contains(lb[0], " b0 b0/10.0.0.6:5432 ") || !strings.HasPrefix(lb[4], `{"time"`) || !strings.Contains(lb[5], `"vsName":"c1"`) {
		t.Errorf("b.log: %q", lb)
	}
	if len(fwd.lines) != 5 || !strings.Contains(fwd.lines[0], " b0 ") || !strings.Contains(fwd.lines[4], `"vsName":"d0"`) {
		t.Errorf("forwarded: %q", fwd.lines)
	}
	if st := w.Stats(); st.Lines != 12 || st.Dropped != 0 || st.WriteErrors != 0 {
		t.Errorf("stats %+v, want 12 lines", st)
	}
}

func TestWriterConfigureErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.log")
	w := New(Options{})
	defer w.Close()
	if err := w.Configure(config.AccessLog{File: good, Format: FormatJSON}, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		set   config.AccessLog
		field string
	}{
		{"missing directory", config.AccessLog{File: filepath.Join(dir, "no", "such.log"), Format: FormatJSON}, "options.logging.accessLog.file"},
		{"a directory", config.AccessLog{File: dir, Format: FormatJSON}, "options.logging.accessLog.file"},
		{"format", config.AccessLog{File: good, Format: "xml"}, "options.logging.accessLog.format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := w.Configure(c.set, nil)
			if err == nil || !strings.HasPrefix(err.Error(), c.field+": ") {
				t.Fatalf("error %v does not name %s", err, c.field)
			}
		})
	}
	// The refused changes left the good file in place.
	w.Log(tcpEntry())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if l := readLines(t, good); len(l) != 1 {
		t.Fatalf("good.log: %q", l)
	}
}

// TestWriterFlushesWithoutClose: a line reaches the file within a flush
// period, without Close (tail -f sees it).
func TestWriterFlushesWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w := New(Options{})
	defer w.Close()
	if err := w.Configure(config.AccessLog{File: path, Format: FormatHAProxy}, nil); err != nil {
		t.Fatal(err)
	}
	w.Log(tcpEntry())
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(b, []byte("\n")) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the line was not written within 10 s: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkLog measures Log (formatting in the caller's goroutine and
// queueing) with the writer goroutine appending to a file, per format,
// from parallel producers. Drops are reported: the figure is the cost of
// a line the writer keeps up with, or not.
func BenchmarkLog(b *testing.B) {
	for _, format := range []string{FormatJSON, FormatHAProxy} {
		b.Run(format, func(b *testing.B) {
			w := New(Options{})
			if err := w.Configure(config.AccessLog{File: filepath.Join(b.TempDir(), "access.log"), Format: format}, nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				e := httpEntry()
				for pb.Next() {
					w.Log(e)
				}
			})
			b.StopTimer()
			_ = w.Close()
			st := w.Stats()
			b.ReportMetric(float64(st.Dropped)/float64(b.N), "dropped/op")
			b.ReportMetric(float64(st.Bytes)/float64(max(st.Lines, 1)), "B/line")
		})
	}
}

// BenchmarkFormat measures formatting alone.
func BenchmarkFormat(b *testing.B) {
	for _, c := range []struct {
		name string
		f    appendFunc
	}{{FormatJSON, AppendJSON}, {FormatHAProxy, AppendHAProxy}} {
		b.Run(c.name, func(b *testing.B) {
			e := httpEntry()
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = c.f(buf[:0], e)
			}
		})
	}
}
