package balance

import (
	"fmt"
	"net/url"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// Adaptive configures the adaptive method (LoadMaster's resource based
// scheduling, `showadaptive`/`modadaptive`): an agent on each real server
// answers an HTTP GET with its load in percent.
type Adaptive struct {
	// URL is the path the agent answers on; it must start with "/".
	// Empty means DefaultAgentURL.
	URL string
	// Port is the agent's port; 0 means the real server's own port.
	// (LoadMaster's default is 80; the configuration supplies it.)
	Port int
	// Interval is the time between two reads of each agent; 0 means
	// DefaultAgentInterval.
	Interval time.Duration
	// MinPercent is the control threshold, 0-50: while no server reports a
	// load of at least MinPercent, adaptive schedules by the static weights
	// alone, as wrr (LoadMaster's "Min. Control Variable Value").
	MinPercent int
}

// Defaults of Adaptive, LoadMaster's.
const (
	// DefaultAgentURL is the agent path used when Adaptive.URL is empty.
	DefaultAgentURL = "/load"
	// DefaultAgentInterval is the agent polling interval used when
	// Adaptive.Interval is 0.
	DefaultAgentInterval = 7 * time.Second
)

// validate checks a and fills in defaults.
func (a *Adaptive) validate() error {
	if a.URL == "" {
		a.URL = DefaultAgentURL
	}
	if u, err := url.ParseRequestURI(a.URL); err != nil || a.URL[0] != '/' || u.Host != "" {
		return fmt.Errorf("adaptive url must be a path starting with /, got %q", a.URL)
	}
	if a.Port < 0 || a.Port > 65535 {
		return fmt.Errorf("adaptive port must be 0-65535, got %d", a.Port)
	}
	if a.Interval < 0 {
		return fmt.Errorf("adaptive interval must not be negative, got %s", a.Interval)
	}
	if a.Interval == 0 {
		a.Interval = DefaultAgentInterval
	}
	if a.MinPercent < 0 || a.MinPercent > 50 {
		return fmt.Errorf("adaptive minimum percent must be 0-50, got %d", a.MinPercent)
	}
	return nil
}

// adaptive schedules by the load the servers' agents report ("adaptive"):
// smooth weighted round robin over effective weights weight × (100 −
// load), so a server at 20% gets twice the share of one at 60% and a
// server at 100% gets nothing while another can take the work. A server
// whose agent has not answered recently counts at the mean load of those
// that have. While no server reports at least MinPercent (or none
// reports), or every server reports 100%, it is wrr on the static weights.
// Reports older than three intervals are ignored. The agents are read by
// an agentPoller, one goroutine per Picker, started by NewWithOptions and
// stopped by Close or by Options.Context.
type adaptive struct {
	*core
	cfg    Adaptive
	dyn    *smooth
	poller *agentPoller
	loads  []int64 // scratch under dyn.mu: this pick's loads, -1 unknown
}

func newAdaptive(c *core, o Options) (Picker, error) {
	cfg := o.Adaptive
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &adaptive{core: c, cfg: cfg, dyn: newSmooth(len(c.es)), loads: make([]int64, len(c.es))}
	p.poller = startPoller(o.Context, c, cfg, o.Logger)
	return p, nil
}

// Close stops the agent poller and waits for it.
func (p *adaptive) Close() error {
	p.poller.stop()
	return nil
}

// Pick implements Picker.
func (p *adaptive) Pick(req *Request) (*backend.Server, func(Outcome), error) {
	now, ramp := p.ramping()
	p.dyn.mu.Lock()
	defer p.dyn.mu.Unlock()
	static := p.readLoads()
	e, ok := p.dyn.pickLocked(p.core, req, func(i int, e *entry) int64 {
		w := e.weight
		if !static {
			w *= 100 - p.loads[i]
		}
		if ramp {
			w *= p.rampFrac(e, now)
		}
		return w
	})
	if !ok {
		return nil, nil, ErrNoServer
	}
	return e.srv, e.done, nil
}

// readLoads fills p.loads from the fresh agent reports of the available
// servers and reports whether scheduling should use the static weights.
func (p *adaptive) readLoads() (static bool) {
	cutoff := p.now().Add(-3 * p.cfg.Interval)
	var sum, known, top int64
	for i := range p.es {
		p.loads[i] = -1
		if !p.es[i].srv.Available() {
			continue
		}
		if l, at, ok := p.es[i].m.Load(); ok && !at.Before(cutoff) {
			p.loads[i] = int64(l)
			sum += int64(l)
			known++
			top = max(top, int64(l))
		}
	}
	if known == 0 || top < int64(p.cfg.MinPercent) {
		return true
	}
	mean := sum / known
	idle := false
	for i := range p.loads {
		if p.loads[i] < 0 {
			p.loads[i] = mean
		}
		if p.loads[i] < 100 && p.es[i].srv.Available() {
			idle = true
		}
	}
	return !idle
}
