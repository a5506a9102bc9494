package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSeverityNames(t *testing.T) {
	for _, tc := range []struct {
		s    Severity
		name string
	}{{Emerg, "emerg"}, {Alert, "alert"}, {Crit, "crit"}, {Err, "err"}, {Warning, "warning"}, {Notice, "notice"}, {Info, "info"}, {Debug, "debug"}} {
		if tc.s.String() != tc.name {
			t.Errorf("%d.String() = %q, want %q", tc.s, tc.s.String(), tc.name)
		}
		if got, ok := ParseSeverity(tc.name); !ok || got != tc.s {
			t.Errorf("ParseSeverity(%q) = %d, %v", tc.name, got, ok)
		}
	}
	if _, ok := ParseSeverity("warn"); ok {
		t.Error("warn is not an RFC 5424 keyword")
	}
	if Severity(9).String() != "unknown" {
		t.Error("out of range severity")
	}
}

func TestRingKeepsNewestAndFilters(t *testing.T) {
	b := NewBus(4)
	t0 := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	for i := range 6 {
		sev, kind := Info, KindRSUp
		if i%2 == 1 {
			sev, kind = Err, KindRSDown
		}
		b.Publish(Event{Time: t0.Add(time.Duration(i) * time.Second), Severity: sev, Kind: kind,
			Message: fmt.Sprintf("event %d", i), Fields: map[string]string{"rs": fmt.Sprint(i)}})
	}
	all := b.List(Filter{MaxSeverity: -1}, 0)
	if len(all) != 4 || all[0].Seq != 6 || all[3].Seq != 3 {
		t.Fatalf("ring holds %+v, want seq 6..3", all)
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"severity", Filter{MaxSeverity: Err}, []uint64{6, 4}},
		{"kind prefix", Filter{MaxSeverity: -1, Kind: "rs."}, []uint64{6, 5, 4, 3}},
		{"kind", Filter{MaxSeverity: -1, Kind: KindRSUp}, []uint64{5, 3}},
		{"text in message", Filter{MaxSeverity: -1, Text: "EVENT 5"}, []uint64{6}},
		{"text in field", Filter{MaxSeverity: -1, Text: "3"}, []uint64{4}},
		{"before", Filter{MaxSeverity: -1, Before: 5}, []uint64{4, 3}},
	} {
		var got []uint64
		for _, e := range b.List(tc.f, 0) {
			got = append(got, e.Seq)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := b.List(Filter{MaxSeverity: -1}, 2); len(got) != 2 || got[0].Seq != 6 {
		t.Errorf("limit 2: %+v", got)
	}
}

func TestSubscribersNeverBlockPublish(t *testing.T) {
	b := NewBus(0)
	slow := b.Subscribe(2)
	fast := b.Subscribe(100)
	for i := range 10 {
		b.Publish(Event{Severity: Notice, Kind: KindConfigChange, Message: fmt.Sprint(i)})
	}
	if slow.Dropped() != 8 || fast.Dropped() != 0 {
		t.Errorf("dropped slow %d fast %d, want 8 and 0", slow.Dropped(), fast.Dropped())
	}
	if e := <-fast.C(); e.Seq != 1 || e.Time.IsZero() {
		t.Errorf("first event %+v", e)
	}
	slow.Close()
	slow.Close()
	if _, ok := <-slow.C(); !ok {
		t.Error("queued events are still delivered after Close")
	}
	// Close racing with Publish neither panics nor blocks.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				b.Publish(Event{Severity: Info, Kind: KindSystem})
			}
		}()
	}
	for range 20 {
		b.Subscribe(1).Close()
	}
	wg.Wait()
	fast.Close()
}

func TestEventJSON(t *testing.T) {
	b, err := json.Marshal(Event{Seq: 1, Severity: Warning, Kind: KindRSDown, Message: "m"})
	if err != nil || !strings.Contains(string(b), `"severity":"warning"`) {
		t.Fatalf("%s %v", b, err)
	}
	var e Event
	if err := json.Unmarshal(b, &e); err != nil || e.Severity != Warning {
		t.Errorf("round trip %+v %v", e, err)
	}
	if err := json.Unmarshal([]byte(`{"severity":"warn"}`), &e); err == nil || !strings.Contains(err.Error(), "warn") {
		t.Errorf("bad severity accepted: %v", err)
	}
}
