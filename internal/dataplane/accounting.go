package dataplane

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/memtrim"
	"github.com/fulcrum-lb/fulcrum/internal/udp"
)

// accountant is the Engine's one background goroutine: once a second it
// adds the bytes long TCP connections have moved, samples every counter
// into per-second rates, feeds health-check latency to dl, gives memory
// back after a burst of allocation, and every retryEvery retries the
// sockets that could not be opened.
type accountant struct {
	log       *slog.Logger
	snap      *atomic.Pointer[Snapshot]
	l4        *l4.Proxy
	udp       *udp.Proxy
	gate      *admission.Gate
	listeners *listener.Registry
	backends  *backend.Registry
	health    *healthSync
	engine    *Engine

	stop chan struct{}
	done chan struct{}
}

// startAccountant starts the loop of e's accountant.
func startAccountant(e *Engine) *accountant {
	a := &accountant{
		log: e.log, snap: &e.snap, l4: e.proxy, udp: e.udp, gate: e.gate,
		listeners: e.listeners, backends: e.backends, health: e.health, engine: e,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go a.loop()
	return a
}

// close stops the loop and waits for it to return.
func (a *accountant) close() {
	close(a.stop)
	<-a.done
}

func (a *accountant) loop() {
	defer close(a.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastRetry := time.Now()
	seen := map[backend.Key]time.Time{}
	trim := memtrim.New()
	for {
		select {
		case <-a.stop:
			return
		case now := <-t.C:
			a.l4.Account()
			for _, s := range a.snap.Load().services {
				sample(s, now)
			}
			a.engine.proc.sample(now, a.engine.processTotals())
			a.feedLatency(seen)
			if trim.Tick(now, int(a.gate.Held())+a.udp.Active()) {
				a.log.Info("memory given back to the system after a burst of allocation ended")
			}
			if now.Sub(lastRetry) >= retryEvery {
				lastRetry = now
				for _, k := range a.listeners.Retry() {
					a.log.Info("virtual service socket opened on retry", "socket", k)
				}
			}
		}
	}
}

// sample samples the counters of s, its SubVSs and its real servers.
func sample(s *service, now time.Time) {
	s.stats.Sample(now)
	if s.requests != nil {
		s.requests.Sample(now)
	}
	if s.http != nil {
		s.http.Sample(now)
	}
	for _, sub := range s.subs {
		sub.requests.Sample(now)
		if sub.http != nil {
			sub.http.Sample(now)
		}
		for _, r := range sub.servers {
			r.srv.Sample(now)
		}
	}
	for _, r := range s.servers {
		if r.srv != nil {
			r.srv.Sample(now)
		}
	}
}

// feedLatency gives the latency of each new passed health check of the
// real servers of dl services to their metrics (the response time dl
// schedules by). seen holds the time of the last check fed per server.
func (a *accountant) feedLatency(seen map[backend.Key]time.Time) {
	snap := a.snap.Load()
	m := a.health.monitor()
	if !snap.dl {
		clear(seen)
		return
	}
	dl := map[int]*service{}
	for _, s := range snap.services {
		if s.served() && s.vs.Schedule == "dl" {
			dl[s.vs.ID] = s
		}
	}
	live := make(map[backend.Key]bool, len(seen))
	for _, vs := range m.Status() {
		s := dl[vs.ID]
		if s == nil {
			continue
		}
		for _, rs := range vs.RealServers {
			k := backend.Key{VS: vs.ID, Address: rs.Address, Port: rs.Port}
			live[k] = true
			if !rs.LastUp || rs.LastCheck.IsZero() || !rs.LastCheck.After(seen[k]) {
				continue
			}
			seen[k] = rs.LastCheck
			if srv := a.backends.Get(k); srv != nil {
				srv.Metrics().ObserveLatency(rs.Latency)
			}
		}
	}
	for k := range seen {
		if !live[k] {
			delete(seen, k)
		}
	}
}
