package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// Options configure New.
type Options struct {
	// Source is the data plane's status, read at every scrape. Required.
	Source status.Source
	// Config returns the configuration in force (names of services,
	// SubVSs and limits, and options.metrics.haproxyNames); nil, or a nil
	// result, means none: services are named by address and the
	// HAProxy-compatible families are off.
	Config func() *config.Config
	// Version and Commit are Fulcrum's build, for fulcrum_build_info.
	Version, Commit string
	// Extra are more collectors to expose beside Fulcrum's, e.g. the
	// access log's and syslog senders' drop counters
	// (prometheus.NewCounterFunc is enough). Their names must not clash.
	Extra []prometheus.Collector
	// Pipeline returns the counters of the access log, syslog and alert
	// senders at scrape time; nil leaves their families out.
	Pipeline func() Pipeline
	// Stopping reports whether Fulcrum is stopping
	// (haproxy_process_stopping); nil means never.
	Stopping func() bool
	// Logger receives scrape errors; nil means slog.Default().
	Logger *slog.Logger
}

// Collector is a prometheus.Collector of Fulcrum's status.
type Collector struct {
	src      status.Source
	cfg      func() *config.Config
	version  string
	commit   string
	started  time.Time
	pipe     func() Pipeline
	stopping func() bool
	cpu      cpuClock
}

// NewCollector returns the collector of o.Source (Extra, Logger unused).
func NewCollector(o Options) (*Collector, error) {
	if o.Source == nil {
		return nil, errors.New("metrics: no status source")
	}
	return &Collector{src: o.Source, cfg: o.Config, version: o.Version, commit: o.Commit, started: time.Now(), pipe: o.Pipeline, stopping: o.Stopping}, nil
}

// Exporter is the registry of Fulcrum's collector, the Go runtime and
// process collectors and the extra ones, with its HTTP handler.
type Exporter struct {
	// Registry holds the collectors.
	Registry *prometheus.Registry
	handler  http.Handler
}

// New returns an Exporter for o.
func New(o Options) (*Exporter, error) {
	c, err := NewCollector(o)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := prometheus.NewRegistry()
	all := append([]prometheus.Collector{
		c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}, o.Extra...)
	for i, col := range all {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("metrics: collector %d: %w", i, err)
		}
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	})
	return &Exporter{Registry: reg, handler: h}, nil
}

// Handler serves the exposition (text or protobuf, gzip as the scraper
// asks). It does not authenticate: the caller wraps it.
func (e *Exporter) Handler() http.Handler { return e.handler }

// Describe sends the descriptors of every family, of both schemes.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range families {
		ch <- f.desc
	}
}

// scrape is the state of one Collect.
type scrape struct {
	ch        chan<- prometheus.Metric
	haproxy   bool
	now       time.Time
	slowStart time.Duration // options.slowStart
}

func (s *scrape) put(f *Family, v float64, lv ...string) {
	m, err := prometheus.NewConstMetric(f.desc, f.valueType(), v, lv...)
	if err != nil {
		m = prometheus.NewInvalidMetric(f.desc, err)
	}
	s.ch <- m
}

func (s *scrape) hist(f *Family, h status.Histogram, lv ...string) {
	buckets := make(map[float64]uint64, len(status.DurationBounds))
	for i, b := range status.DurationBounds {
		var n uint64
		if i < len(h.Counts) {
			n = h.Counts[i]
		}
		buckets[b] = n
	}
	m, err := prometheus.NewConstHistogram(f.desc, h.Count, h.Sum, buckets, lv...)
	if err != nil {
		m = prometheus.NewInvalidMetric(f.desc, err)
	}
	s.ch <- m
}

// names are the labels that name the objects of the configuration.
type names struct {
	vs    map[int]*config.VirtualService // top-level and SubVSs by ID
	rs    map[int]*config.RealServer
	proxy map[int]string // HAProxy proxy name by VS ID
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect reads the status once and sends every family's series.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	var cfg *config.Config
	if c.cfg != nil {
		cfg = c.cfg()
	}
	vss := c.src.Status()
	lim := c.src.Limits()
	s := &scrape{ch: ch, haproxy: cfg != nil && cfg.Options.Metrics.HAProxyNames, now: time.Now()}
	if cfg != nil {
		s.slowStart = time.Duration(cfg.Options.SlowStart) * time.Second
	}
	n := nameAll(cfg, vss)

	var conns, reqs, bytesOut int64
	for i := range vss {
		v := &vss[i]
		conns += v.TotalConns
		bytesOut += v.BytesOut
		if v.L7 != nil {
			reqs += v.L7.HTTP.Requests
		}
		c.collectVS(s, n, v, lim)
	}
	s.put(fConns, float64(lim.Conns))
	s.put(fConnsLimit, float64(lim.Budget.TCPConns))
	s.put(fConnsRefused, float64(lim.ConnsRefused))
	s.put(fUDPSessions, float64(lim.UDPSessions))
	s.put(fUDPLimit, float64(lim.Budget.UDPSessions))
	s.put(fFDLimit, float64(lim.Budget.Limit))
	s.put(fServices, float64(len(vss)))
	s.put(fBuildInfo, 1, c.version, c.commit, runtime.Version())
	if c.pipe != nil {
		s.pipeline(c.pipe())
	}
	if !s.haproxy {
		return
	}
	s.put(hProcBuild, 1, c.version)
	s.put(hProcNbproc, 1)
	s.put(hProcNbthread, float64(runtime.GOMAXPROCS(0)))
	s.put(hProcUptime, time.Since(c.started).Seconds())
	s.put(hProcStart, float64(c.started.UnixNano())/1e9)
	s.put(hProcMaxFDs, float64(lim.Budget.Limit))
	s.put(hProcCurConns, float64(lim.Conns))
	s.put(hProcMaxConns, float64(lim.Budget.TCPConns))
	s.put(hProcHardMax, float64(lim.Budget.TCPConns))
	s.put(hProcConnsTot, float64(conns))
	s.put(hProcReqTotal, float64(reqs))
	c.processMore(s, lim, bytesOut, runtime.GOMAXPROCS(0))
}

// vsName is a service's name: its nickname, else address:port.
func vsName(cv *config.VirtualService, v *status.VS) string {
	if cv != nil && cv.NickName != "" {
		return cv.NickName
	}
	return net.JoinHostPort(v.Address, strconv.Itoa(v.Port))
}

// nameAll indexes the configuration and gives every top-level service a
// unique HAProxy proxy name: its name, with "#ID" when another service
// has the same name.
func nameAll(cfg *config.Config, vss []status.VS) names {
	n := names{vs: map[int]*config.VirtualService{}, rs: map[int]*config.RealServer{}, proxy: map[int]string{}}
	if cfg != nil {
		for i := range cfg.VirtualServices {
			v := &cfg.VirtualServices[i]
			n.vs[v.ID] = v
			for j := range v.RealServers {
				n.rs[v.RealServers[j].ID] = &v.RealServers[j]
			}
			for j := range v.SubVSs {
				sv := &v.SubVSs[j]
				n.vs[sv.ID] = sv
				for k := range sv.RealServers {
					n.rs[sv.RealServers[k].ID] = &sv.RealServers[k]
				}
			}
		}
	}
	count := map[string]int{}
	for i := range vss {
		count[vsName(n.vs[vss[i].ID], &vss[i])]++
	}
	for i := range vss {
		name := vsName(n.vs[vss[i].ID], &vss[i])
		if count[name] > 1 {
			name += "#" + strconv.Itoa(vss[i].ID)
		}
		n.proxy[vss[i].ID] = name
	}
	return n
}

var codes = []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

func responseValues(r status.Responses) [6]int64 {
	return [6]int64{r.C1xx, r.C2xx, r.C3xx, r.C4xx, r.C5xx, r.Other}
}

func (s *scrape) responses(f *Family, r status.Responses, lv ...string) {
	vals := responseValues(r)
	for i, code := range codes {
		s.put(f, float64(vals[i]), append(lv[:len(lv):len(lv)], code)...)
	}
}

func (s *scrape) state(f *Family, states []string, cur string, lv ...string) {
	for _, st := range states {
		s.put(f, boolf(st == cur), append(lv[:len(lv):len(lv)], st)...)
	}
}

func (c *Collector) collectVS(s *scrape, n names, v *status.VS, lim status.Limits) {
	cv := n.vs[v.ID]
	id := strconv.Itoa(v.ID)
	addr := net.JoinHostPort(v.Address, strconv.Itoa(v.Port))
	lv := []string{id, vsName(cv, v), addr + "/" + v.Protocol}

	s.put(fVSUp, boolf(v.State == status.Up), lv...)
	s.put(fVSConns, float64(v.ActiveConns), lv...)
	s.put(fVSConnsTotal, float64(v.TotalConns), lv...)
	s.put(fVSBytesIn, float64(v.BytesIn), lv...)
	s.put(fVSBytesOut, float64(v.BytesOut), lv...)
	s.put(fVSErrors, float64(v.Errors), lv...)
	h := v.LimitHits
	for _, l := range []struct {
		name string
		v    int64
	}{{"maxConns", h.MaxConns}, {"connsPerSec", h.ConnsPerSec}, {"bandwidth", h.Bandwidth}, {"throughput", h.Throughput},
		{"sessions", h.Sessions}, {"globalConns", h.GlobalConns}, {"abuse", h.Abuse}} {
		s.put(fVSLimitHits, float64(l.v), append(lv[:3:3], l.name)...)
	}
	if p := v.Persistence; p != nil {
		s.put(fVSPersistHits, float64(p.Hits), lv...)
		s.put(fVSPersistMiss, float64(p.Misses), lv...)
		s.put(fVSPersistSize, float64(p.Entries), lv...)
	}
	if l7 := v.L7; l7 != nil {
		s.put(fVSRequests, float64(l7.HTTP.Requests), lv...)
		s.put(fVSReqActive, float64(l7.ActiveRequests), lv...)
		s.responses(fVSResponses, l7.HTTP.Responses, lv...)
		s.put(fVSProxyErrors, float64(l7.HTTP.ProxyErrors), lv...)
		s.put(fVSRetries, float64(l7.HTTP.Retries), lv...)
		s.put(fVSAborted, float64(l7.HTTP.Aborted), lv...)
		s.hist(fVSDuration, l7.HTTP.Duration, lv...)
		s.hist(fVSTTFB, l7.HTTP.TTFB, lv...)
	}
	for i := range v.RealServers {
		c.collectRS(s, n, &v.RealServers[i], lv, "")
	}
	var subs []status.SubVS
	if v.L7 != nil {
		subs = v.L7.SubVSs
	}
	for i := range subs {
		sv := &subs[i]
		sid := strconv.Itoa(sv.ID)
		sname := sv.NickName
		if sname == "" {
			sname = "subvs-" + sid
		}
		slv := append(lv[:3:3], sid, sname)
		s.put(fSubUp, boolf(sv.Health == status.Up || sv.Health == status.Unchecked), slv...)
		s.put(fSubRequests, float64(sv.HTTP.Requests), slv...)
		s.put(fSubReqActive, float64(sv.ActiveRequests), slv...)
		s.responses(fSubResponses, sv.HTTP.Responses, slv...)
		s.put(fSubProxyErrors, float64(sv.HTTP.ProxyErrors), slv...)
		s.put(fSubRetries, float64(sv.HTTP.Retries), slv...)
		s.put(fSubAborted, float64(sv.HTTP.Aborted), slv...)
		s.hist(fSubDuration, sv.HTTP.Duration, slv...)
		s.hist(fSubTTFB, sv.HTTP.TTFB, slv...)
		for j := range sv.RealServers {
			c.collectRS(s, n, &sv.RealServers[j], lv, sid)
		}
	}
	if s.haproxy {
		c.haproxyVS(s, n, v, cv, lim)
	}
}

func (c *Collector) collectRS(s *scrape, n names, rs *status.RS, vlv []string, subvs string) {
	lv := append(vlv[:3:3], subvs, strconv.Itoa(rs.ID), net.JoinHostPort(rs.Address, strconv.Itoa(rs.Port)))
	st := rsStatus(rs)
	s.put(fRSUp, boolf(st == status.Up), lv...)
	s.put(fRSStatus, 1, append(lv[:6:6], string(st))...)
	s.put(fRSWeight, float64(rs.Weight), lv...)
	s.put(fRSConns, float64(rs.ActiveConns), lv...)
	s.put(fRSConnsTotal, float64(rs.TotalConns), lv...)
	s.put(fRSBytesIn, float64(rs.BytesIn), lv...)
	s.put(fRSBytesOut, float64(rs.BytesOut), lv...)
	s.put(fRSFailures, float64(rs.Failures), lv...)
	s.put(fRSCheckFail, float64(rs.CheckFailures), lv...)
	s.put(fRSCheckTime, rs.Latency.Seconds(), lv...)
	s.put(fRSRequests, float64(rs.Requests), lv...)
	s.responses(fRSResponses, rs.Responses, lv...)
	s.put(fRSResponseTime, rs.ResponseTime.Seconds(), lv...)
}

// rsStatus is the real server's status by health checks and drain, or,
// before the health monitor has the configuration, what the data plane
// acts on.
func rsStatus(rs *status.RS) status.State {
	if rs.Status != "" {
		return rs.Status
	}
	switch {
	case !rs.Enabled:
		return status.Disabled
	case rs.Health == status.Down:
		return status.Down
	case rs.Health == status.Up:
		return status.Up
	}
	return status.Unknown
}

var (
	proxyStates  = []string{"DOWN", "UP"}
	serverStates = []string{"DOWN", "UP", "MAINT", "DRAIN", "NOLB"}
)

// haproxyServerState maps a real server's status to HAProxy's; "" (all
// states 0) while it waits for its first check.
func haproxyServerState(st status.State) string {
	switch st {
	case status.Up:
		return "UP"
	case status.Down:
		return "DOWN"
	case status.Disabled:
		return "MAINT"
	case status.Draining:
		return "DRAIN"
	}
	return ""
}

// haproxyVS sends the HAProxy-compatible series of one top-level service:
// its frontend, its backend (and one per SubVS) and their servers.
func (c *Collector) haproxyVS(s *scrape, n names, v *status.VS, cv *config.VirtualService, lim status.Limits) {
	proxy := n.proxy[v.ID]
	s.put(hFeCurSess, float64(v.ActiveConns), proxy)
	maxConns := 0
	rate := math.NaN()
	if cv != nil {
		maxConns = cv.Limits.MaxConns
		if cv.Limits.ConnsPerSec > 0 {
			rate = float64(cv.Limits.ConnsPerSec)
		}
	}
	if maxConns == 0 {
		maxConns = lim.DefaultServiceConns
		if v.Protocol == "udp" {
			maxConns = lim.DefaultServiceSessions
		}
	}
	s.put(hFeLimitSess, float64(maxConns), proxy)
	s.put(hFeSessTotal, float64(v.TotalConns), proxy)
	s.put(hFeConnsTotal, float64(v.TotalConns), proxy)
	s.put(hFeBytesIn, float64(v.BytesIn), proxy)
	s.put(hFeBytesOut, float64(v.BytesOut), proxy)
	up := "DOWN"
	if v.State == status.Up {
		up = "UP"
	}
	s.state(hFeStatus, proxyStates, up, proxy)
	s.put(hFeLimitRate, rate, proxy)
	s.frontendMore(v, proxy)
	h := v.LimitHits
	s.put(hFeDeniedConns, float64(h.MaxConns+h.ConnsPerSec+h.GlobalConns+h.Abuse), proxy)
	if v.L7 != nil {
		s.responses(hFeHTTPResp, v.L7.HTTP.Responses, proxy)
		s.put(hFeHTTPReq, float64(v.L7.HTTP.Requests), proxy)
		for _, f := range []*Family{hFeCompIn, hFeCompOut, hFeCompBypass, hFeCompResp, hFeCacheLook, hFeCacheHits} {
			s.put(f, 0, proxy)
		}
	}

	// The service's own backend: its real servers. A service with SubVSs
	// has none of its own; each SubVS is a backend named proxy/subvs.
	if len(v.RealServers) > 0 || v.L7 == nil || len(v.L7.SubVSs) == 0 {
		var httpStats *status.HTTP
		if v.L7 != nil {
			httpStats = &v.L7.HTTP
		}
		backendUp := v.State == status.Up
		bi := backendInfo{upDown: v.UpDown, maxSess: v.Peaks.MaxConns, maxRate: v.Peaks.MaxConnRate, lastSess: v.Peaks.LastConn}
		if v.L7 != nil {
			bi.maxSess, bi.maxRate, bi.lastSess = v.L7.MaxActiveRequests, v.L7.HTTP.MaxRequestRate, v.L7.HTTP.LastRequest
		}
		c.haproxyBackend(s, n, proxy, backendUp, v.RealServers, httpStats, bi)
	}
	if v.L7 != nil {
		for i := range v.L7.SubVSs {
			sv := &v.L7.SubVSs[i]
			name := sv.NickName
			if name == "" {
				name = strconv.Itoa(sv.ID)
			}
			bi := backendInfo{upDown: sv.UpDown, maxSess: sv.MaxActiveRequests, maxRate: sv.HTTP.MaxRequestRate, lastSess: sv.HTTP.LastRequest}
			c.haproxyBackend(s, n, proxy+"/"+name, sv.Health == status.Up || sv.Health == status.Unchecked, sv.RealServers, &sv.HTTP, bi)
		}
	}
}

func (c *Collector) haproxyBackend(s *scrape, n names, proxy string, up bool, rss []status.RS, h *status.HTTP, bi backendInfo) {
	var cur, total, in, out, fails int64
	var weight, uweight, active int
	var rtSum float64
	var rtN int
	for i := range rss {
		rs := &rss[i]
		cur += rs.ActiveConns
		total += rs.TotalConns
		in += rs.BytesIn
		out += rs.BytesOut
		fails += rs.Failures
		uweight += rs.Weight
		st := rsStatus(rs)
		if st == status.Up {
			weight += rs.Weight
			active++
		}
		if rs.ResponseTime > 0 {
			rtSum += rs.ResponseTime.Seconds()
			rtN++
		}
		c.haproxyServer(s, n, proxy, rs, st, h != nil)
	}
	s.put(hBeCurQueue, 0, proxy)
	s.put(hBeMaxQueue, 0, proxy)
	s.put(hBeCurSess, float64(cur), proxy)
	s.put(hBeSessTotal, float64(total), proxy)
	s.put(hBeBytesIn, float64(in), proxy)
	s.put(hBeBytesOut, float64(out), proxy)
	s.put(hBeConnErrors, float64(fails), proxy)
	st := "DOWN"
	if up {
		st = "UP"
	}
	s.state(hBeStatus, proxyStates, st, proxy)
	s.put(hBeWeight, float64(weight), proxy)
	s.put(hBeUWeight, float64(uweight), proxy)
	s.put(hBeActive, float64(active), proxy)
	s.put(hBeQueueTime, 0, proxy)
	rt := 0.0
	if rtN > 0 {
		rt = rtSum / float64(rtN)
	}
	s.put(hBeRespTime, rt, proxy)
	s.backendMore(proxy, rss, h, bi)
	if h == nil {
		return
	}
	s.put(hBeRetries, float64(h.Retries), proxy)
	s.responses(hBeHTTPResp, h.Responses, proxy)
	s.put(hBeHTTPReq, float64(h.Requests), proxy)
	tt := 0.0
	if h.Duration.Count > 0 {
		tt = h.Duration.Sum / float64(h.Duration.Count)
	}
	s.put(hBeTotalTime, tt, proxy)
	for _, f := range []*Family{hBeCompIn, hBeCompOut, hBeCompBypass, hBeCompResp, hBeCacheLook, hBeCacheHits} {
		s.put(f, 0, proxy)
	}
}

func (c *Collector) haproxyServer(s *scrape, n names, proxy string, rs *status.RS, st status.State, http bool) {
	server := net.JoinHostPort(rs.Address, strconv.Itoa(rs.Port))
	limit := math.NaN()
	if cr := n.rs[rs.ID]; cr != nil && cr.Limit > 0 {
		limit = float64(cr.Limit)
	}
	s.put(hSvCurQueue, 0, proxy, server)
	s.put(hSvMaxQueue, 0, proxy, server)
	s.put(hSvCurSess, float64(rs.ActiveConns), proxy, server)
	s.put(hSvLimitSess, limit, proxy, server)
	s.put(hSvSessTotal, float64(rs.TotalConns), proxy, server)
	s.put(hSvBytesIn, float64(rs.BytesIn), proxy, server)
	s.put(hSvBytesOut, float64(rs.BytesOut), proxy, server)
	s.put(hSvConnErrors, float64(rs.Failures), proxy, server)
	s.state(hSvStatus, serverStates, haproxyServerState(st), proxy, server)
	s.put(hSvWeight, float64(rs.Weight), proxy, server)
	s.put(hSvUWeight, float64(rs.Weight), proxy, server)
	s.put(hSvCheckFail, float64(rs.CheckFailures), proxy, server)
	s.put(hSvCheckDur, rs.Latency.Seconds(), proxy, server)
	s.put(hSvQueueTime, 0, proxy, server)
	s.put(hSvRespTime, rs.ResponseTime.Seconds(), proxy, server)
	if http {
		s.responses(hSvHTTPResp, rs.Responses, proxy, server)
	}
	s.serverMore(proxy, server, rs, http)
}
