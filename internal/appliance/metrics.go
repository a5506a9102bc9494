package appliance

import (
	"fmt"
	"net"
	"net/http"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/metrics"
)

// MetricsPath is where the Prometheus exposition is served.
const MetricsPath = "/metrics"

// startMetrics makes the exporter of the data plane's status and, when
// addr is not empty, serves it without authentication on a listener of
// its own (--metrics-addr).
func (a *Appliance) startMetrics(addr, version, commit string) error {
	exp, err := metrics.New(metrics.Options{
		Source:   a.Engine,
		Config:   func() *config.Config { return a.Control.Current().Config },
		Version:  version,
		Commit:   commit,
		Pipeline: a.pipelineCounts,
		Stopping: a.stopping.Load,
		Logger:   a.log,
	})
	if err != nil {
		return err
	}
	a.Metrics = exp
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener (--metrics-addr): %w", err)
	}
	a.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, exp.Handler())
	a.serve(ln, mux)
	return nil
}

// metricsHandler serves the exposition on the admin listener to callers
// authenticated as for the API (session, API key as a bearer token, or
// Basic) whose role may read the status.
func (a *Appliance) metricsHandler() http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := admin.PrincipalFrom(r.Context())
		if !ok || !p.Can(admin.PermRead) {
			http.Error(w, "permission denied: reading metrics needs the read permission", http.StatusForbidden)
			return
		}
		a.Metrics.Handler().ServeHTTP(w, r)
	})
	return a.Auth.Middleware(inner)
}

// MetricsAddr returns the address of the unauthenticated metrics
// listener, or "" when there is none.
func (a *Appliance) MetricsAddr() string {
	if a.metricsLn == nil {
		return ""
	}
	return a.metricsLn.Addr().String()
}

// pipelineCounts are the access log's, syslog senders' and alerter's
// counters, for the metrics.
func (a *Appliance) pipelineCounts() metrics.Pipeline {
	var p metrics.Pipeline
	if a.AccessLog != nil {
		st := a.AccessLog.Stats()
		p.AccessLines, p.AccessBytes, p.AccessDropped, p.AccessWriteErrors = st.Lines, st.Bytes, st.Dropped, st.WriteErrors
	}
	if a.Syslog != nil {
		for _, h := range a.Syslog.Stats() {
			p.Syslog = append(p.Syslog, metrics.SyslogHost{Host: h.Host, Sent: h.Sent, Dropped: h.Dropped, Queued: h.Queued, Connected: h.Connected})
		}
	}
	if a.Alerts != nil {
		st := a.Alerts.Stats()
		p.MailsSent, p.MailsFailed = st.MailsSent, st.MailsFailed
		for _, w := range st.Webhooks {
			p.Webhooks = append(p.Webhooks, metrics.WebhookCounts{Sent: w.Sent, Failed: w.Failed, Dropped: w.Dropped})
		}
	}
	return p
}
