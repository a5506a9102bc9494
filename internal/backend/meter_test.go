package backend

import (
	"sync"
	"testing"
	"time"
)

func TestTryOpen(t *testing.T) {
	var c Counters
	const workers, tries, limit = 8, 200, 7
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tries {
				if c.TryOpen(limit) {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if granted != limit || c.Active() != limit || c.Total() != limit {
		t.Fatalf("granted %d, active %d, total %d; want %d", granted, c.Active(), c.Total(), limit)
	}
	c.Close()
	if !c.TryOpen(limit) || c.TryOpen(limit) {
		t.Error("a freed slot is not granted exactly once")
	}
	if !c.TryOpen(0) || c.Active() != limit+1 {
		t.Error("TryOpen(0) is not unlimited")
	}
}

func TestRates(t *testing.T) {
	for _, tc := range []struct {
		name               string
		conns, in, out     int64
		after              time.Duration
		wantC, wantI, want float64
	}{
		{"one second", 10, 1000, 2000, time.Second, 10, 1000, 2000},
		{"half a second", 5, 500, 0, 500 * time.Millisecond, 10, 1000, 0},
		{"nothing", 0, 0, 0, time.Second, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Counters
			s := NewServer(key(1), Settings{})
			t0 := time.Unix(1000, 0)
			c.Sample(t0)
			s.Sample(t0)
			if r := c.Rates(); r != (Rates{}) {
				t.Fatalf("rates after one sample: %+v", r)
			}
			for range tc.conns {
				c.Open()
				s.Track(nopCloser{})()
			}
			c.AddBytes(tc.in, tc.out)
			s.AddBytes(tc.in, tc.out)
			c.Sample(t0.Add(tc.after))
			s.Sample(t0.Add(tc.after))
			want := Rates{ConnsPerSec: tc.wantC, BytesInPerSec: tc.wantI, BytesOutPerSec: tc.want}
			if c.Rates() != want || s.Rates() != want {
				t.Errorf("rates %+v and %+v, want %+v", c.Rates(), s.Rates(), want)
			}
		})
	}
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func TestLimitHitsAndErrors(t *testing.T) {
	var c Counters
	c.AddLimitHit(LimitBandwidth)
	c.AddLimitHit(LimitBandwidth)
	c.AddLimitHit(Limit(-1)) // ignored
	c.AddLimitHit(numLimits) // ignored
	c.AddError()
	if c.LimitHits(LimitBandwidth) != 2 || c.LimitHits(LimitMaxConns) != 0 || c.LimitHits(numLimits) != 0 || c.Errors() != 1 {
		t.Errorf("hits %d, errors %d", c.LimitHits(LimitBandwidth), c.Errors())
	}
	names := map[string]bool{}
	for l := range numLimits {
		names[l.String()] = true
	}
	if len(names) != int(numLimits) || names["unknown"] || numLimits.String() != "unknown" {
		t.Errorf("limit names %v", names)
	}
}

func TestHealthHook(t *testing.T) {
	r := NewRegistry()
	s := r.Lookup(key(1), Settings{Enabled: true})
	r.Commit([]*Server{s})
	type change struct{ from, to Health }
	var got []change
	r.SetHealthHook(func(srv *Server, from, to Health) {
		if srv != s {
			t.Errorf("hook for another server")
		}
		got = append(got, change{from, to})
	})
	for _, h := range []Health{HealthUp, HealthUp, HealthDown, HealthDown, HealthUp} {
		s.SetHealth(h)
	}
	want := []change{{HealthUnknown, HealthUp}, {HealthUp, HealthDown}, {HealthDown, HealthUp}}
	if len(got) != len(want) {
		t.Fatalf("hook calls %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d: %v, want %v", i, got[i], want[i])
		}
	}
	r.SetHealthHook(nil)
	s.SetHealth(HealthDown)
	if len(got) != len(want) {
		t.Error("hook called after removal")
	}
	// A server outside any registry has no hook.
	if !NewServer(key(2), Settings{}).SetHealth(HealthDown) {
		t.Error("SetHealth did not report the change")
	}
}

func TestAddrPort(t *testing.T) {
	for _, tc := range []struct {
		k    Key
		want string
	}{
		{Key{1, "10.0.0.1", 80}, "10.0.0.1:80"},
		{Key{1, "2001:db8::1", 443}, "[2001:db8::1]:443"},
		{Key{1, "::ffff:10.0.0.1", 80}, "10.0.0.1:80"},
		{Key{1, "web.example", 80}, ""},
		{Key{1, "fe80::1%eth0", 80}, ""},
	} {
		ap, ok := NewServer(tc.k, Settings{}).AddrPort()
		if got := ""; ok {
			got = ap.String()
			if got != tc.want {
				t.Errorf("%v: %s, want %s", tc.k, got, tc.want)
			}
		} else if tc.want != "" {
			t.Errorf("%v: no AddrPort, want %s", tc.k, tc.want)
		}
	}
}
