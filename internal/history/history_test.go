package history

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a status.Source whose answer the test sets between samples
// (a fixed status, as the API's golden test uses); the data plane itself
// is sampled in engine_test.go.
type fixture struct {
	mu sync.Mutex
	vs []status.VS
}

func (f *fixture) set(vs ...status.VS) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vs = vs
}

func (f *fixture) Status() []status.VS {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vs
}
func (f *fixture) Limits() status.Limits          { return status.Limits{} }
func (f *fixture) Events(int, int) []health.Event { return []health.Event{} }

var t0 = time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)

// l7 is a layer-7 service with one real server and one SubVS with one.
func l7(conns, in, out, req, r4, r5 int64) status.VS {
	rs := status.RS{ID: 11, TotalConns: conns, ActiveConns: 2, BytesIn: in / 2, BytesOut: out / 2, Requests: req,
		Responses: status.Responses{C2xx: req - r4 - r5, C4xx: r4, C5xx: r5}}
	return status.VS{ID: 1, TotalConns: conns, ActiveConns: 3, BytesIn: in, BytesOut: out, RealServers: []status.RS{rs},
		L7: &status.L7{HTTP: status.HTTP{Requests: req, Responses: status.Responses{C4xx: r4, C5xx: r5}},
			SubVSs: []status.SubVS{{ID: 5, Requests: req / 2, RealServers: []status.RS{{ID: 51, TotalConns: 4, ActiveConns: 1}}}}}}
}

func get(t *testing.T, h *History, q Query) *Doc {
	t.Helper()
	d, err := h.Get(q)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func lastOf(c Column) float32 { return c[len(c)-1] }

func TestRates(t *testing.T) {
	src := &fixture{}
	h := New(Options{Source: src})
	src.set(l7(10, 1000, 4000, 100, 3, 1))
	h.Sample(t0)
	src.set(l7(30, 3000, 12000, 300, 13, 5))
	h.Sample(t0.Add(2 * time.Second))

	tests := []struct {
		key  Key
		want map[string]float32
	}{
		{Key{VS: 1}, map[string]float32{"active": 3, "cps": 10, "bytesIn": 1000, "bytesOut": 4000, "rps": 100, "r4xx": 5, "r5xx": 2}},
		{Key{}, map[string]float32{"active": 3, "cps": 10, "bytesIn": 1000, "bytesOut": 4000, "rps": 100, "r4xx": 5, "r5xx": 2}},
		{Key{VS: 1, RS: 11}, map[string]float32{"active": 2, "cps": 10, "bytesIn": 500, "bytesOut": 2000, "rps": 100, "r4xx": 5, "r5xx": 2}},
		{Key{VS: 1, SubVS: 5}, map[string]float32{"active": 1, "cps": 0, "rps": 50}},
		{Key{VS: 1, SubVS: 5, RS: 51}, map[string]float32{"active": 1, "cps": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.key.String(), func(t *testing.T) {
			d := get(t, h, Query{Key: tt.key})
			if len(d.T) != 2 || d.T[1]-d.T[0] != 2 || d.Step != 2 {
				t.Fatalf("times %v step %v", d.T, d.Step)
			}
			for name, want := range tt.want {
				if got := lastOf(d.Series[name]); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			// The first point has no previous counters: rates 0.
			if got := d.Series["cps"][0]; got != 0 {
				t.Errorf("first cps = %v, want 0", got)
			}
		})
	}

	// A counter that went down (the object was replaced) restarts: no
	// negative rate, and the next interval counts from the new value.
	src.set(l7(5, 100, 100, 10, 0, 0))
	h.Sample(t0.Add(4 * time.Second))
	src.set(l7(9, 300, 500, 20, 0, 0))
	h.Sample(t0.Add(6 * time.Second))
	d := get(t, h, Query{Key: Key{VS: 1}})
	for name, col := range d.Series {
		for i, v := range col {
			if v < 0 {
				t.Errorf("%s[%d] = %v: negative", name, i, v)
			}
		}
	}
	if got := d.Series["cps"][2]; got != 0 {
		t.Errorf("cps after the reset = %v, want 0", got)
	}
	if got := d.Series["cps"][3]; got != 2 {
		t.Errorf("cps after the restart = %v, want 2", got)
	}
	if got := d.Series["bytesOut"][3]; got != 200 {
		t.Errorf("bytesOut after the restart = %v, want 200", got)
	}
}

func TestLayer4KeepsNoRequestColumns(t *testing.T) {
	src := &fixture{}
	h := New(Options{Source: src})
	for i := range 3 {
		src.set(status.VS{ID: 2, TotalConns: int64(10 * i), ActiveConns: 1, RealServers: []status.RS{{ID: 21, TotalConns: int64(10 * i)}}})
		h.Sample(t0.Add(time.Duration(i) * 2 * time.Second))
	}
	st := h.Stats()
	if st.Series != 2 || st.Bytes != 3*SeriesBytesL4 {
		t.Errorf("stats %+v, want 2 series and %d bytes (total + 2 layer-4 series)", st, 3*SeriesBytesL4)
	}
	d := get(t, h, Query{Key: Key{VS: 2}, Fields: []Field{RequestsPerSec, ConnsPerSec}})
	if got := d.Series["rps"]; len(got) != 3 || got[2] != 0 {
		t.Errorf("rps %v, want zeros", got)
	}
	if got := d.Series["cps"]; got[2] != 5 {
		t.Errorf("cps %v", got)
	}
	if len(d.Series) != 2 {
		t.Errorf("fields %v, want rps and cps only", d.Series)
	}
}

func TestDayPoints(t *testing.T) {
	src := &fixture{}
	h := New(Options{Source: src})
	// Two minutes of 2-second samples: connections grow by 2 per sample
	// (1/s) in the first minute, 6 (3/s) in the second; active peaks at 7.
	var conns int64
	for i := range 60 {
		if i > 0 {
			conns += 2
			if i >= 30 {
				conns += 4
			}
		}
		active := int64(i % 5)
		if i == 40 {
			active = 7
		}
		src.set(status.VS{ID: 3, TotalConns: conns, ActiveConns: active})
		h.Sample(t0.Add(time.Duration(i) * 2 * time.Second))
	}
	d := get(t, h, Query{Key: Key{VS: 3}, Range: Day})
	if d.Step != 60 || len(d.T) != 2 || d.T[0] != float64(t0.Unix()) || d.T[1] != float64(t0.Unix()+60) {
		t.Fatalf("day times %v step %v", d.T, d.Step)
	}
	// Minute 1: rates 0 (first sample) then 29 × 1/s → average 29/30.
	if got, want := d.Series["cps"][0], float32(29.0/30.0); math.Abs(float64(got-want)) > 0.002*float64(want) {
		t.Errorf("minute 1 cps = %v, want %v", got, want)
	}
	if got := d.Series["cps"][1]; got != 3 {
		t.Errorf("minute 2 cps = %v, want 3", got)
	}
	if got := d.Series["active"]; got[0] != 4 || got[1] != 7 {
		t.Errorf("active maxima %v, want [4 7]", got)
	}
	if h := get(t, h, Query{Key: Key{VS: 3}}); len(h.T) != 60 {
		t.Errorf("hour ring has %d points, want 60", len(h.T))
	}
}

func TestHourRingWraps(t *testing.T) {
	src := &fixture{}
	h := New(Options{Source: src})
	n := HourPoints + 100
	for i := range n {
		src.set(status.VS{ID: 1, TotalConns: int64(i), ActiveConns: int64(i % 300)})
		h.Sample(t0.Add(time.Duration(i) * 2 * time.Second))
	}
	d := get(t, h, Query{Key: Key{VS: 1}})
	if len(d.T) != HourPoints {
		t.Fatalf("%d points, want %d", len(d.T), HourPoints)
	}
	if want := float64(t0.Add(time.Duration(n-1) * 2 * time.Second).Unix()); d.T[len(d.T)-1] != want {
		t.Errorf("last time %v, want %v", d.T[len(d.T)-1], want)
	}
	for i := 1; i < len(d.T); i++ {
		if d.T[i] <= d.T[i-1] {
			t.Fatalf("times not increasing at %d: %v %v", i, d.T[i-1], d.T[i])
		}
	}
	if got, want := lastOf(d.Series["active"]), float32((n-1)%300); got != want {
		t.Errorf("last active %v, want %v", got, want)
	}
	// since keeps only what is newer.
	since := time.UnixMilli(int64(d.T[len(d.T)-3] * 1000))
	if d := get(t, h, Query{Key: Key{VS: 1}, Since: since}); len(d.T) != 2 || len(d.Series["cps"]) != 2 {
		t.Errorf("since: %d points, want 2", len(d.T))
	}
	// A sample not after the last is ignored.
	h.Sample(t0)
	if d := get(t, h, Query{Key: Key{VS: 1}}); len(d.T) != HourPoints || d.T[len(d.T)-1] < float64(t0.Unix()+100) {
		t.Errorf("an old sample was taken")
	}
}

func TestGoneAndBack(t *testing.T) {
	src := &fixture{}
	h := New(Options{Source: src, GoneAfter: 10 * time.Second})
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 2 * time.Second) }
	src.set(status.VS{ID: 1, TotalConns: 0, ActiveConns: 1}, status.VS{ID: 2})
	h.Sample(at(0))
	src.set(status.VS{ID: 2}) // service 1 deleted
	h.Sample(at(1))
	src.set(status.VS{ID: 1, TotalConns: 8, ActiveConns: 1}, status.VS{ID: 2}) // and restored
	h.Sample(at(2))
	d := get(t, h, Query{Key: Key{VS: 1}})
	b, _ := json.Marshal(d.Series["active"])
	if string(b) != "[1,null,1]" {
		t.Errorf("active %s, want [1,null,1]", b)
	}
	// The rate after the gap is over the whole gap: 8 connections in 4 s.
	if got := d.Series["cps"][2]; got != 2 {
		t.Errorf("cps after the gap = %v, want 2", got)
	}
	// Gone for longer than GoneAfter: dropped.
	src.set(status.VS{ID: 2})
	for i := 3; i <= 9; i++ {
		h.Sample(at(i))
	}
	if _, err := h.Get(Query{Key: Key{VS: 1}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("after GoneAfter: %v, want ErrNotFound", err)
	}
	if _, err := h.Get(Query{Key: Key{VS: 99}}); err == nil || !strings.Contains(err.Error(), "vs=99") {
		t.Errorf("unknown service: %v", err)
	}
	// A new service later has no points from before it existed.
	src.set(status.VS{ID: 2}, status.VS{ID: 3, ActiveConns: 4})
	h.Sample(at(10))
	d = get(t, h, Query{Key: Key{VS: 3}})
	for i, v := range d.Series["active"][:len(d.T)-1] {
		if v == v {
			t.Fatalf("active[%d] = %v before the service existed", i, v)
		}
	}
}

func TestCap(t *testing.T) {
	src := &fixture{}
	h := New(Options{Source: src, MaxSeries: 3, Logger: slog.New(slog.DiscardHandler)})
	// Services first: services 1 and 2 and real server 1 fill the cap;
	// real server 2 gets none.
	src.set(status.VS{ID: 1, RealServers: []status.RS{{ID: 1}, {ID: 2, ActiveConns: 5}}}, status.VS{ID: 2, ActiveConns: 5})
	h.Sample(t0)
	h.Sample(t0.Add(2 * time.Second))
	st := h.Stats()
	if st.Series != 3 || st.Untracked != 1 || st.MaxSeries != 3 {
		t.Errorf("stats %+v", st)
	}
	if d := get(t, h, Query{Key: Key{VS: 2}}); d.Untracked != "" || lastOf(d.Series["active"]) != 5 {
		t.Errorf("a service lost its history to a real server: %+v", d)
	}
	d := get(t, h, Query{Key: Key{VS: 1, RS: 2}})
	if !strings.Contains(d.Untracked, "cap of 3 series") || d.Series != nil || len(d.T) != 2 {
		t.Errorf("over the cap: %+v", d)
	}
	// The total still counts every service.
	if got := lastOf(get(t, h, Query{}).Series["active"]); got != 5 {
		t.Errorf("total active %v, want 5", got)
	}
	// Deleting service 2 frees the cap once its series is dropped.
	src.set(status.VS{ID: 1, RealServers: []status.RS{{ID: 1}, {ID: 2, ActiveConns: 5}}})
	h.Sample(t0.Add(DefaultGoneAfter + 4*time.Second))
	h.Sample(t0.Add(DefaultGoneAfter + 6*time.Second))
	if d := get(t, h, Query{Key: Key{VS: 1, RS: 2}}); d.Untracked != "" || lastOf(d.Series["active"]) != 5 {
		t.Errorf("after room was made: %+v", d)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		in   float64
		want float64
		tol  float64 // relative
	}{
		{0, 0, 0}, {-3, 0, 0}, {math.NaN(), 0, 0}, {0.5, 0.5, 0}, {1, 1, 0}, {2.5, 2.5, 0}, {511, 511, 0}, {512, 512, 0},
		{1.0 / 3, 1.0 / 3, 1.0 / 512}, {12345.678, 12345.678, 1.0 / 512}, {1.25e9, 1.25e9, 1.0 / 512},
		{math.Inf(1), float64(maxEncodable), 0}, {1e300, float64(maxEncodable), 0},
	}
	for _, tt := range tests {
		c := encode(tt.in)
		if c == code16Absent {
			t.Fatalf("encode(%v) is the absent code", tt.in)
		}
		got := float64(decode(c))
		if math.IsNaN(got) || math.IsInf(got, 0) || math.Abs(got-tt.want) > tt.tol*tt.want {
			t.Errorf("decode(encode(%v)) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if v := decode(code16Absent); v == v {
		t.Errorf("absent decodes to %v, want NaN", v)
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		q       string
		want    Query
		wantErr string
	}{
		{"", Query{Range: Hour}, ""},
		{"vs=3&range=24h", Query{Key: Key{VS: 3}, Range: Day}, ""},
		{"vs=3&subvs=4&rs=5&since=1765188000.5&fields=cps,rps", Query{Key: Key{VS: 3, SubVS: 4, RS: 5}, Range: Hour,
			Since: time.UnixMilli(1765188000500), Fields: []Field{ConnsPerSec, RequestsPerSec}}, ""},
		{"vs=x", Query{}, "query parameter vs: must be a positive integer"},
		{"vs=0", Query{}, "query parameter vs:"},
		{"rs=2", Query{}, "query parameter rs: needs vs"},
		{"subvs=2", Query{}, "query parameter subvs: needs vs"},
		{"range=7d", Query{}, `query parameter range: must be 1h or 24h, got "7d"`},
		{"since=NaN", Query{}, "query parameter since:"},
		{"since=-1", Query{}, "query parameter since:"},
		{"fields=cps,nope", Query{}, `query parameter fields: no field "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			v, _ := url.ParseQuery(tt.q)
			got, err := ParseQuery(v)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Key != tt.want.Key || got.Range != tt.want.Range || !got.Since.Equal(tt.want.Since) || len(got.Fields) != len(tt.want.Fields) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "vs=1", "vs=1&rs=2&subvs=3&range=24h&since=1.5&fields=active,cps", "since=1e400", "fields=,", "vs=-1"} {
		f.Add(s)
	}
	src := &fixture{}
	src.set(status.VS{ID: 1, RealServers: []status.RS{{ID: 2}}})
	h := New(Options{Source: src})
	h.Sample(t0)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "query parameter ") {
				t.Fatalf("error does not name the parameter: %v", err)
			}
			return
		}
		d, err := h.Get(q)
		if err != nil {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(%+v): %v", q, err)
			}
			return
		}
		if _, err := json.Marshal(d); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSamplerGoroutine(t *testing.T) {
	src := &fixture{}
	src.set(status.VS{ID: 1, ActiveConns: 2})
	h := New(Options{Source: src, Interval: 10 * time.Millisecond})
	h.Start()
	defer h.Close()
	ok := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if d, err := h.Get(Query{Key: Key{VS: 1}}); err == nil && len(d.T) >= 3 {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatal("the sampler took fewer than 3 samples in 10 s")
	}
	h.Close()
	h.Close() // a second Close is harmless
}
