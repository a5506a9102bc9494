// Package history keeps the statistics history of a running Fulcrum in
// memory: for the whole appliance and for every virtual service, SubVS and
// real server, one ring of points at the sampling interval (2 s) for the
// last hour and one ring of 1-minute points for the last day, made from the
// first (average of the rates, maximum of the active connections). A
// sampler goroutine reads status.Source at every interval and turns the
// counters' growth into rates. The number of series is capped, and so is
// the memory (see MaxSeries and SeriesBytes).
package history

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// Defaults of Options.
const (
	// DefaultInterval is the sampling interval: the resolution of the
	// hour ring.
	DefaultInterval = 2 * time.Second
	// DefaultMaxSeries is the cap on the number of series (the
	// appliance's total not counted): at most about 90 MiB (46,114 bytes a
	// series with every column, 25,920 without the request columns of
	// layer 7). Services and SubVSs get theirs before real servers, so
	// 1,000 services with 10 real servers each keep the history of every
	// service and of the first 1,000 real servers.
	DefaultMaxSeries = 2_000
	// DefaultGoneAfter is how long the series of an object that is no
	// longer in the status (a deleted service or real server) is kept
	// before it is dropped. Coming back within it (an undo, a rollback)
	// continues the series.
	DefaultGoneAfter = 15 * time.Minute
)

// Ring sizes.
const (
	// HourPoints is the length of the hour ring: an hour of 2-second points.
	HourPoints = 1800
	// DayPoints is the length of the day ring: a day of 1-minute points.
	DayPoints = 1440
)

// Field is one value of a point.
type Field int

// The fields of a point, in their JSON order.
const (
	// Active is the number of open connections (UDP: sessions); the day
	// ring keeps the maximum of the minute.
	Active Field = iota
	// ConnsPerSec is new connections (UDP: sessions) per second.
	ConnsPerSec
	// BytesInPerSec is bytes per second received from clients (a real
	// server: sent to it).
	BytesInPerSec
	// BytesOutPerSec is bytes per second sent to clients (a real server:
	// received from it).
	BytesOutPerSec
	// RequestsPerSec is HTTP requests per second (layer 7).
	RequestsPerSec
	// Responses4xxPerSec is HTTP answers with a 4xx status per second.
	Responses4xxPerSec
	// Responses5xxPerSec is HTTP answers with a 5xx status per second.
	Responses5xxPerSec

	numFields
)

// fieldNames are the fields' names in the API and JSON.
var fieldNames = [numFields]string{"active", "cps", "bytesIn", "bytesOut", "rps", "r4xx", "r5xx"}

// String returns the field's name in the API.
func (f Field) String() string {
	if f < 0 || f >= numFields {
		return fmt.Sprintf("Field(%d)", int(f))
	}
	return fieldNames[f]
}

// Fields are all fields, in order.
func Fields() []Field {
	out := make([]Field, numFields)
	for i := range out {
		out[i] = Field(i)
	}
	return out
}

// SeriesBytes is the memory of the rings of one series with every field
// in use (a layer-7 object); a series that never had a request keeps no
// column for the three request fields (SeriesBytesL4).
const SeriesBytes = int(numFields) * (HourPoints + DayPoints) * 2

// SeriesBytesL4 is the memory of the rings of a series without requests.
const SeriesBytesL4 = int(RequestsPerSec) * (HourPoints + DayPoints) * 2

// Key names the object of a series. The zero Key is the appliance's total
// over all virtual services.
type Key struct {
	// VS is the top-level virtual service's ID.
	VS int
	// SubVS is the SubVS's ID, 0 for the service itself or its own real
	// servers.
	SubVS int
	// RS is the real server's ID, 0 for the service or SubVS.
	RS int
}

// String names the key by the API's query parameters.
func (k Key) String() string {
	switch {
	case k == Key{}:
		return "total"
	case k.SubVS != 0 && k.RS != 0:
		return fmt.Sprintf("vs=%d subvs=%d rs=%d", k.VS, k.SubVS, k.RS)
	case k.SubVS != 0:
		return fmt.Sprintf("vs=%d subvs=%d", k.VS, k.SubVS)
	case k.RS != 0:
		return fmt.Sprintf("vs=%d rs=%d", k.VS, k.RS)
	}
	return fmt.Sprintf("vs=%d", k.VS)
}

// Range is a time range the history answers for.
type Range string

// The ranges.
const (
	// Hour is the last hour at the sampling interval.
	Hour Range = "1h"
	// Day is the last day at 1-minute points.
	Day Range = "24h"
)

// ParseRange reads a range; "" is Hour.
func ParseRange(s string) (Range, error) {
	switch Range(s) {
	case "", Hour:
		return Hour, nil
	case Day:
		return Day, nil
	}
	return "", fmt.Errorf("must be 1h or 24h, got %q", s)
}

// Errors of Query.
var (
	// ErrNotFound is returned for an object that has no series: it does
	// not exist, or it has been gone longer than GoneAfter.
	ErrNotFound = errors.New("no statistics history")
)

// Options configure a History.
type Options struct {
	// Source is the status read at every interval. Required for Start.
	Source status.Source
	// Interval is the sampling interval; 0 means DefaultInterval. Tests
	// shorten it.
	Interval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSeries caps the number of series; 0 means DefaultMaxSeries.
	MaxSeries int
	// GoneAfter is how long the series of a vanished object is kept; 0
	// means DefaultGoneAfter.
	GoneAfter time.Duration
	// Logger receives a warning when the cap is first reached; nil means
	// slog.Default().
	Logger *slog.Logger
}

// counters are the monotonic counters of one object at one sample.
type counters struct {
	conns, in, out, req, r4, r5 int64
}

// columnLen is the length of a column: the hour ring, then the day ring,
// in one allocation (6,480 bytes: Go's size class wastes 4.7 %, where two
// allocations would waste 10 %).
const columnLen = HourPoints + DayPoints

// ring is one resolution's columns of a series; a nil column (only the
// request fields) reads as 0 wherever the series has data.
type ring [numFields][]code16

// series is the history of one object.
type series struct {
	// cols are the columns by field, each columnLen long, nil for a
	// request field never used.
	cols [numFields][]code16
	// The counters at the previous sample.
	prevCounters
	// seen is the number of the last sample that saw the object; lastAt
	// when.
	seen   uint64
	lastAt time.Time
	// The current minute: sums of the rates and maximum of Active over
	// the samples that saw the object.
	sum [numFields]float64
	n   int
}

// History keeps the statistics history. Its methods are safe for
// concurrent use.
type History struct {
	src       status.Source
	interval  time.Duration
	now       func() time.Time
	maxSeries int
	goneAfter time.Duration
	log       *slog.Logger
	perMinute int // hour points per day point

	mu        sync.RWMutex
	hourT     []int64 // Unix milliseconds, ring
	dayT      []int64
	hourN     uint64 // samples taken
	dayN      uint64 // day points written
	minuteAt  int64  // time of the current minute's first sample
	inMinute  int    // samples in the current minute
	series    map[Key]*series
	total     *series
	untracked map[Key]*untracked // objects over the cap
	warned    bool

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New returns a History; Start starts its sampler.
func New(o Options) *History {
	h := &History{src: o.Source, interval: o.Interval, now: o.Now, maxSeries: o.MaxSeries, goneAfter: o.GoneAfter, log: o.Logger,
		hourT: make([]int64, HourPoints), dayT: make([]int64, DayPoints),
		series: map[Key]*series{}, untracked: map[Key]*untracked{}}
	if h.interval <= 0 {
		h.interval = DefaultInterval
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxSeries <= 0 {
		h.maxSeries = DefaultMaxSeries
	}
	if h.goneAfter <= 0 {
		h.goneAfter = DefaultGoneAfter
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.perMinute = max(1, int(math.Round(float64(time.Minute)/float64(h.interval))))
	h.total = newSeries()
	return h
}

// Interval returns the sampling interval.
func (h *History) Interval() time.Duration { return h.interval }

// MaxSeries returns the cap on the number of series.
func (h *History) MaxSeries() int { return h.maxSeries }

// Start starts the sampler goroutine: one sample now, then one at every
// interval until Close.
func (h *History) Start() {
	h.stop, h.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(h.done)
		t := time.NewTicker(h.interval)
		defer t.Stop()
		h.Sample(h.now())
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.Sample(h.now())
			}
		}
	}()
}

// Close stops the sampler and waits for it; the history can still be
// read. It may be called without Start, and more than once.
func (h *History) Close() {
	h.once.Do(func() {
		if h.stop == nil {
			return
		}
		close(h.stop)
		<-h.done
	})
}

// Sample reads the status once and adds a point to every series at now.
// The sampler calls it at every interval; tests call it with the times
// they choose. A now not after the last sample's is ignored.
func (h *History) Sample(now time.Time) {
	if h.src == nil {
		return
	}
	list := h.src.Status()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hourN > 0 && now.UnixMilli() <= h.hourT[(h.hourN-1)%HourPoints] {
		return
	}
	stamp := h.hourN + 1
	slot := int(h.hourN % HourPoints)
	h.hourT[slot] = now.UnixMilli()
	if h.inMinute == 0 {
		h.minuteAt = now.UnixMilli()
	}
	var tot [numFields]float64
	// Services and SubVSs first, real servers after: when the cap is
	// reached, services keep their history before real servers get one.
	for i := range list {
		v := &list[i]
		vals := h.observe(Key{VS: v.ID}, vsCounters(v), v.ActiveConns, now, stamp, slot)
		for f := range tot {
			tot[f] += vals[f]
		}
		if v.L7 == nil {
			continue
		}
		for _, sv := range v.L7.SubVSs {
			c, active := subVSCounters(&sv)
			h.observe(Key{VS: v.ID, SubVS: sv.ID}, c, active, now, stamp, slot)
		}
	}
	for i := range list {
		v := &list[i]
		for _, rs := range v.RealServers {
			h.observe(Key{VS: v.ID, RS: rs.ID}, rsCounters(&rs), rs.ActiveConns, now, stamp, slot)
		}
		if v.L7 == nil {
			continue
		}
		for _, sv := range v.L7.SubVSs {
			for _, rs := range sv.RealServers {
				h.observe(Key{VS: v.ID, SubVS: sv.ID, RS: rs.ID}, rsCounters(&rs), rs.ActiveConns, now, stamp, slot)
			}
		}
	}
	h.total.seen, h.total.lastAt = stamp, now
	h.total.write(slot, tot)
	for k, s := range h.series {
		if s.seen == stamp {
			continue
		}
		if now.Sub(s.lastAt) > h.goneAfter {
			delete(h.series, k)
			continue
		}
		s.absent(slot)
	}
	for k, u := range h.untracked {
		if u.seen != stamp {
			delete(h.untracked, k)
		}
	}
	h.hourN++
	h.inMinute++
	if h.inMinute >= h.perMinute {
		h.closeMinute()
	}
}

// closeMinute writes the day point of every series from the minute's
// samples.
func (h *History) closeMinute() {
	slot := int(h.dayN % DayPoints)
	h.dayT[slot] = h.minuteAt
	h.total.closeMinute(slot)
	for _, s := range h.series {
		s.closeMinute(slot)
	}
	h.dayN++
	h.inMinute = 0
}

// observe records the object k at now and returns its point's values.
// An object over the cap gets no series; its values are still computed
// (the total counts them).
func (h *History) observe(k Key, c counters, active int64, now time.Time, stamp uint64, slot int) [numFields]float64 {
	s := h.series[k]
	if s == nil {
		u := h.untracked[k]
		if len(h.series) >= h.maxSeries {
			if !h.warned {
				h.warned = true
				h.log.Warn("statistics history: series cap reached; new objects get no history", "maxSeries", h.maxSeries, "first", k.String())
			}
			if u == nil {
				u = &untracked{}
				h.untracked[k] = u
			}
			u.seen = stamp
			return u.step(c, active, now)
		}
		s = newSeries()
		h.series[k] = s
		if u != nil { // room was made: continue from its counters
			s.prevCounters = u.prevCounters
			delete(h.untracked, k)
		}
		// Points before the object appeared are absent.
		s.fillAbsent()
	}
	vals := s.step(c, active, now)
	s.seen, s.lastAt = stamp, now
	s.write(slot, vals)
	return vals
}

// prevCounters are an object's counters at its previous sample.
type prevCounters struct {
	prev    counters
	prevAt  time.Time
	hasPrev bool
}

// step returns the point of counters c and active at now and keeps c for
// the next.
func (p *prevCounters) step(c counters, active int64, now time.Time) [numFields]float64 {
	var vals [numFields]float64
	vals[Active] = float64(active)
	if p.hasPrev {
		if dt := now.Sub(p.prevAt).Seconds(); dt > 0 {
			vals[ConnsPerSec] = rate(c.conns, p.prev.conns, dt)
			vals[BytesInPerSec] = rate(c.in, p.prev.in, dt)
			vals[BytesOutPerSec] = rate(c.out, p.prev.out, dt)
			vals[RequestsPerSec] = rate(c.req, p.prev.req, dt)
			vals[Responses4xxPerSec] = rate(c.r4, p.prev.r4, dt)
			vals[Responses5xxPerSec] = rate(c.r5, p.prev.r5, dt)
		}
	}
	p.prev, p.prevAt, p.hasPrev = c, now, true
	return vals
}

// untracked is an object over the cap: only its previous counters, for
// the total.
type untracked struct {
	prevCounters
	seen uint64
}

// rate is the growth of a counter per second. A counter that went down
// (the object was replaced and counts afresh) gives 0 for this interval
// and restarts from its new value.
func rate(cur, prev int64, dt float64) float64 {
	if cur <= prev {
		return 0
	}
	return float64(cur-prev) / dt
}

func newSeries() *series {
	s := &series{}
	for f := range RequestsPerSec {
		s.cols[f] = make([]code16, columnLen)
	}
	return s
}

// ring returns the columns of one range.
func (s *series) ring(rng Range) ring {
	var r ring
	for f, c := range s.cols {
		switch {
		case c == nil:
		case rng == Day:
			r[f] = c[HourPoints:]
		default:
			r[f] = c[:HourPoints:HourPoints]
		}
	}
	return r
}

// column returns field f's column, made if it is not yet.
func (s *series) column(f Field) []code16 {
	if s.cols[f] == nil {
		s.cols[f] = make([]code16, columnLen)
	}
	return s.cols[f]
}

// fillAbsent marks every point of both rings absent.
func (s *series) fillAbsent() {
	col := s.cols[Active]
	for i := range col {
		col[i] = code16Absent
	}
}

// write stores a present point in the hour ring and adds it to the minute.
func (s *series) write(slot int, vals [numFields]float64) {
	for f, v := range vals {
		if s.cols[f] == nil && v == 0 {
			continue
		}
		s.column(Field(f))[slot] = encode(v)
	}
	s.sum[Active] = max(s.sum[Active], vals[Active])
	for f := ConnsPerSec; f < numFields; f++ {
		s.sum[f] += vals[f]
	}
	s.n++
}

// absent stores an absent point in the hour ring.
func (s *series) absent(slot int) {
	s.cols[Active][slot] = code16Absent
}

// closeMinute writes the minute's day point (absent if no sample saw the
// object) and starts the next minute.
func (s *series) closeMinute(slot int) {
	slot += HourPoints
	if s.n == 0 {
		s.cols[Active][slot] = code16Absent
		return
	}
	for f := range numFields {
		v := s.sum[f]
		if f != Active {
			v /= float64(s.n)
		}
		if s.cols[f] == nil && v == 0 {
			continue
		}
		s.column(f)[slot] = encode(v)
	}
	s.sum, s.n = [numFields]float64{}, 0
}

// Bytes returns the memory of the series' columns.
func (s *series) bytes() int {
	n := 0
	for _, c := range s.cols {
		n += 2 * len(c)
	}
	return n
}

// vsCounters are a top-level service's counters. Requests are the service's
// HTTP counters when the data plane fills them, else the requests of its
// own pool and of its SubVSs.
func vsCounters(v *status.VS) counters {
	c := counters{conns: v.TotalConns, in: v.BytesIn, out: v.BytesOut}
	if v.L7 != nil {
		c.req, c.r4, c.r5 = v.L7.HTTP.Requests, v.L7.HTTP.Responses.C4xx, v.L7.HTTP.Responses.C5xx
		if c.req == 0 {
			c.req = v.L7.Requests
			for _, sv := range v.L7.SubVSs {
				c.req += sv.Requests
			}
		}
	}
	return c
}

// subVSCounters are a SubVS's counters: connections and bytes are its real
// servers' (it has no client connections of its own).
func subVSCounters(sv *status.SubVS) (counters, int64) {
	c := counters{req: max(sv.HTTP.Requests, sv.Requests), r4: sv.HTTP.Responses.C4xx, r5: sv.HTTP.Responses.C5xx}
	var active int64
	for _, rs := range sv.RealServers {
		c.conns += rs.TotalConns
		c.in += rs.BytesIn
		c.out += rs.BytesOut
		active += rs.ActiveConns
	}
	return c, active
}

// rsCounters are a real server's counters.
func rsCounters(rs *status.RS) counters {
	return counters{conns: rs.TotalConns, in: rs.BytesIn, out: rs.BytesOut, req: rs.Requests,
		r4: rs.Responses.C4xx, r5: rs.Responses.C5xx}
}

// Stats describe the history's size.
type Stats struct {
	// Series is the number of series (the total not counted).
	Series int `json:"series"`
	// MaxSeries is the cap.
	MaxSeries int `json:"maxSeries"`
	// Untracked is the number of objects in the status that have no
	// series because the cap is reached.
	Untracked int `json:"untracked"`
	// Bytes is the memory of all series' columns.
	Bytes int `json:"bytes"`
}

// Stats returns the history's size.
func (h *History) Stats() Stats {
	h.mu.RLock()
	defer h.mu.RUnlock()
	st := Stats{Series: len(h.series), MaxSeries: h.maxSeries, Untracked: len(h.untracked), Bytes: h.total.bytes()}
	for _, s := range h.series {
		st.Bytes += s.bytes()
	}
	return st
}
