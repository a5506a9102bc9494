package api

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/history"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// steppedSource is a status.Source whose status the test sets between the
// history's samples.
type steppedSource struct {
	mu sync.Mutex
	vs []status.VS
}

func (s *steppedSource) set(vs []status.VS) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vs = vs
}

func (s *steppedSource) Status() []status.VS {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vs
}
func (s *steppedSource) Limits() status.Limits          { return status.Limits{} }
func (s *steppedSource) Events(int, int) []health.Event { return []health.Event{} }

// TestHistoryGolden keeps GET /api/v1/history byte for byte: a layer-7
// service with a SubVS and real servers sampled four times at fixed
// instants (a real server removed after the second, so its last points are
// null), read whole, by object, with since and fields, and the answers to
// bad queries. Run with -update after a deliberate change.
func TestHistoryGolden(t *testing.T) {
	src := &steppedSource{}
	h := history.New(history.Options{Source: src})
	at := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	for i := range int64(4) {
		rss := []status.RS{{ID: 11, ActiveConns: i, TotalConns: 10 * i, BytesIn: 1000 * i, BytesOut: 8000 * i, Requests: 20 * i,
			Responses: status.Responses{C2xx: 18 * i, C4xx: i, C5xx: i}}}
		if i < 2 {
			rss = append(rss, status.RS{ID: 12, TotalConns: 3 * i})
		}
		src.set([]status.VS{{ID: 1, ActiveConns: 2 * i, TotalConns: 10 * i, BytesIn: 1000 * i, BytesOut: 8000 * i, RealServers: rss,
			L7: &status.L7{HTTP: status.HTTP{Requests: 30 * i, Responses: status.Responses{C2xx: 27 * i, C4xx: 2 * i, C5xx: i}},
				SubVSs: []status.SubVS{{ID: 2, Requests: 10 * i, RealServers: []status.RS{{ID: 21, TotalConns: 5 * i, ActiveConns: 1}}}}}}})
		h.Sample(at.Add(time.Duration(i) * 2 * time.Second))
	}
	e := newStatusEnv(t, nil, Options{StatsHistory: h})
	var out bytes.Buffer
	for _, q := range []string{
		"", "?vs=1", "?vs=1&rs=11", "?vs=1&rs=12", "?vs=1&subvs=2", "?vs=1&subvs=2&rs=21", "?vs=1&range=24h",
		"?vs=1&since=1796724002&fields=rps,r4xx,r5xx",
		"?vs=9", "?vs=1&rs=99", "?rs=11", "?vs=one", "?range=1w", "?since=yesterday", "?fields=cps,latency",
	} {
		r := e.do(req{method: "GET", path: "/api/v1/history" + q})
		fmt.Fprintf(&out, "GET /api/v1/history%s → %d\n%s\n", q, r.status, bytes.TrimSpace(r.body))
	}
	checkGolden(t, "history.golden", out.Bytes())

	t.Run("no history kept", func(t *testing.T) {
		e := newStatusEnv(t, nil, Options{})
		e.must(req{method: "GET", path: "/api/v1/history?vs=1"}, http.StatusNotFound)
		e.must(req{method: "GET", path: "/api/v1/history?vs=x"}, http.StatusBadRequest)
	})
	t.Run("needs read permission", func(t *testing.T) {
		e.must(req{method: "GET", path: "/api/v1/history", noAuth: true}, http.StatusUnauthorized)
	})
}
