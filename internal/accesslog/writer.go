package accesslog

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Forwarder receives every access log line the Writer handles, besides
// the file: the syslog hub, which sends it to the hosts with accessLogs.
type Forwarder interface {
	// ForwardAccess gets one line, without its line feed, of an entry
	// whose Time is t. It is called from the Writer's one goroutine and
	// must not block. line is NOT a copy: it is valid only until
	// ForwardAccess returns (the Writer reuses the buffer), so a
	// forwarder must copy what it keeps and must not keep the slice.
	ForwardAccess(t time.Time, line []byte)
}

// DefaultQueueLines is the Writer's queue length when
// Options.QueueLines is 0: about 0.4 s of lines at 20,000 lines/s, which
// covers a slow write to a busy disk without a drop.
const DefaultQueueLines = 8192

// FlushEvery is the longest a line waits in the Writer's buffer: lines
// are written when the queue is empty, and at least this often while it
// never is.
const FlushEvery = 200 * time.Millisecond

// FileMode is the mode of an access log file the Writer creates.
const FileMode = 0o640

const (
	bufSize   = 64 << 10 // the file's bufio buffer
	keepLimit = 16 << 10 // line buffers larger than this are not pooled
)

// Options configure a Writer.
type Options struct {
	// Logger receives the Writer's own errors; slog.Default when nil.
	Logger *slog.Logger
	// QueueLines is how many formatted lines may wait for the writer
	// goroutine; DefaultQueueLines when 0 or less. A line that finds the
	// queue full is dropped and counted (Stats.Dropped).
	QueueLines int
}

// Stats are the Writer's counters since New.
type Stats struct {
	// Lines are the lines handed to a destination (the file, the
	// forwarder or both).
	Lines uint64
	// Bytes are the bytes written to files, line feeds included.
	Bytes uint64
	// Dropped are the lines lost because the queue was full: the file
	// could not take them as fast as they came.
	Dropped uint64
	// WriteErrors are the failed writes to the file; each loses the
	// lines that were buffered then (at most 64 KiB).
	WriteErrors uint64
}

// Writer is the access log: a Logger that formats each entry in the
// caller's goroutine and hands the line, through a bounded queue, to one
// goroutine that writes it to the file (buffered) and to the Forwarder.
// Log never blocks. Configure, Reopen and Close are serialised and may be
// called from any goroutine.
type Writer struct {
	log  *slog.Logger
	q    chan *item
	mode atomic.Pointer[mode] // nil: no destination, Log does nothing
	done chan struct{}        // closed when the goroutine has returned

	lines, bytes, dropped, werrs atomic.Uint64

	mu     sync.Mutex // serialises Configure, Reopen and Close; guards what follows
	path   string
	closed bool
}

// mode is what Log does with an entry.
type mode struct {
	format appendFunc
}

// item is one queued line, or a control message for the goroutine.
type item struct {
	t   time.Time
	buf []byte
	ctl *control
}

// control changes what the goroutine writes to; it is queued with the
// lines, so that every line queued before it goes to the old destination
// and every line after it to the new one.
type control struct {
	setFile bool     // replace the file with file (nil: no file)
	file    *os.File // opened by the caller
	setFwd  bool
	fwd     Forwarder
	stop    bool // write what is queued, flush, close the file, return
	done    chan struct{}
}

var itemPool = sync.Pool{New: func() any { return &item{buf: make([]byte, 0, 512)} }}

func putItem(it *item) {
	if cap(it.buf) > keepLimit {
		return
	}
	it.buf = it.buf[:0]
	itemPool.Put(it)
}

// New returns a Writer without a destination (Log does nothing until
// Configure gives it one) and starts its goroutine; Close stops it.
func New(o Options) *Writer {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueueLines <= 0 {
		o.QueueLines = DefaultQueueLines
	}
	w := &Writer{log: o.Logger, q: make(chan *item, o.QueueLines), done: make(chan struct{})}
	go w.run()
	return w
}

// Log formats e and queues its line; it never blocks (a full queue counts
// a drop) and does not keep e.
func (w *Writer) Log(e *Entry) {
	m := w.mode.Load()
	if m == nil {
		return
	}
	it := itemPool.Get().(*item)
	it.t = e.Time
	it.buf = append(m.format(it.buf[:0], e), '\n')
	select {
	case w.q <- it:
	default:
		w.dropped.Add(1)
		putItem(it)
	}
}

// Configure makes set and fwd the destinations: the file set.File ("" for
// none) in set.Format, and fwd (nil for none). A new file is opened (with
// O_APPEND, created with mode 0640) before the old one is closed, and the
// lines queued before the switch are written to the old one; an unchanged
// path keeps its file open. An error names the field at fault and changes
// nothing.
func (w *Writer) Configure(set config.AccessLog, fwd Forwarder) error {
	format, err := formatter(set.Format)
	if err != nil {
		return fmt.Errorf("options.logging.accessLog.format: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("access log: writer closed")
	}
	c := &control{setFwd: true, fwd: fwd}
	if set.File != w.path {
		c.setFile = true
		if set.File != "" {
			if c.file, err = openLog(set.File); err != nil {
				return fmt.Errorf("options.logging.accessLog.file: %w", err)
			}
		}
	}
	on := set.File != "" || fwd != nil
	if !on {
		w.mode.Store(nil)
	}
	w.send(c)
	if on {
		w.mode.Store(&mode{format: format})
	}
	w.path = set.File
	return nil
}

// Reopen opens the file at the configured path anew, for logrotate: once
// the file has been renamed, the lines queued before Reopen are written
// to it (the old name's file) and every later one to a new file at the
// path. No line is lost or written twice. If the path cannot be opened,
// writing goes on to the old file and the error is returned. Without a
// file it does nothing.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.path == "" {
		return nil
	}
	f, err := openLog(w.path)
	if err != nil {
		return fmt.Errorf("access log: reopen: %w", err)
	}
	w.send(&control{setFile: true, file: f})
	return nil
}

// Stats returns the Writer's counters.
func (w *Writer) Stats() Stats {
	return Stats{Lines: w.lines.Load(), Bytes: w.bytes.Load(), Dropped: w.dropped.Load(), WriteErrors: w.werrs.Load()}
}

// Close writes the lines queued, flushes and closes the file and stops the
// goroutine. Lines logged afterwards are discarded.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	w.mode.Store(nil)
	w.send(&control{stop: true})
	<-w.done
	return nil
}

// send queues c (waiting for room: only lines are dropped) and waits
// until the goroutine has acted on it; w.mu is held.
func (w *Writer) send(c *control) {
	c.done = make(chan struct{})
	w.q <- &item{ctl: c}
	<-c.done
}

// openLog opens path for appending, creating it with FileMode.
func openLog(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_CLOEXEC, FileMode)
}

// sink is the goroutine's destination.
type sink struct {
	f       *os.File
	bw      *bufio.Writer
	fwd     Forwarder
	pending bool      // bw holds unflushed lines
	warned  time.Time // of the last error logged
}

func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	var s sink
	for {
		select {
		case it := <-w.q:
			if it.ctl != nil {
				if w.control(&s, it.ctl) {
					return
				}
				continue
			}
			w.write(&s, it)
			if len(w.q) == 0 {
				w.flush(&s)
			}
		case <-t.C:
			w.flush(&s)
		}
	}
}

// write hands one line to the destinations.
func (w *Writer) write(s *sink, it *item) {
	defer putItem(it)
	if s.bw == nil && s.fwd == nil {
		return
	}
	w.lines.Add(1)
	if s.bw != nil {
		if _, err := s.bw.Write(it.buf); err != nil {
			w.failed(s, err)
		} else {
			s.pending = true
		}
	}
	if s.fwd != nil {
		s.fwd.ForwardAccess(it.t, it.buf[:len(it.buf)-1])
	}
}

// flush writes the buffered lines to the file.
func (w *Writer) flush(s *sink) {
	if s.bw == nil || !s.pending {
		return
	}
	if err := s.bw.Flush(); err != nil {
		w.failed(s, err)
		return
	}
	s.pending = false
}

// counting is the file under the bufio.Writer: it counts the bytes
// written (bufio writes a long line past its buffer).
type counting struct {
	f *os.File
	n *atomic.Uint64
}

func (c counting) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.n.Add(uint64(n))
	return n, err
}

// failed counts a failed write, logs it (at most every 10 s) and resets
// the buffer, whose lines are lost.
func (w *Writer) failed(s *sink, err error) {
	w.werrs.Add(1)
	if time.Since(s.warned) >= 10*time.Second {
		s.warned = time.Now()
		w.log.Error("access log: write failed; lines lost", "file", s.f.Name(), "err", err)
	}
	s.bw.Reset(counting{s.f, &w.bytes})
	s.pending = false
}

// control acts on c and reports whether the goroutine must return.
func (w *Writer) control(s *sink, c *control) bool {
	defer close(c.done)
	if c.stop {
		for {
			select {
			case it := <-w.q:
				if it.ctl == nil {
					w.write(s, it)
				}
				continue
			default:
			}
			break
		}
		w.closeFile(s)
		return true
	}
	if c.setFile {
		w.closeFile(s)
		if c.file != nil {
			s.f = c.file
			s.bw = bufio.NewWriterSize(counting{c.file, &w.bytes}, bufSize)
		}
	}
	if c.setFwd {
		s.fwd = c.fwd
	}
	return false
}

// closeFile flushes and closes the current file.
func (w *Writer) closeFile(s *sink) {
	if s.f == nil {
		return
	}
	w.flush(s)
	if err := s.f.Close(); err != nil {
		w.log.Error("access log: close", "file", s.f.Name(), "err", err)
	}
	s.f, s.bw, s.pending = nil, nil, false
}
