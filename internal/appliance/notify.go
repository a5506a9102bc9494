package appliance

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/alert"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/syslog"
)

// CertCheckInterval is how often certificate expiry is checked besides at
// start and on every configuration change.
const CertCheckInterval = time.Hour

// notifier turns what happens in the appliance into events on its bus
// (health transitions, the audit trail, certificate expiry) and feeds the
// bus to the syslog hub and the alerter.
type notifier struct {
	bus   *events.Bus
	log   *slog.Logger
	cfg   atomic.Pointer[config.Config] // the configuration in force, for names
	hub   *syslog.Hub
	alert *alert.Alerter
	certs *certWatcher

	subs    []*events.Subscription
	wg      sync.WaitGroup
	poke    chan struct{}
	stopc   chan struct{}
	started bool
}

func newNotifier(bus *events.Bus, log *slog.Logger) *notifier {
	n := &notifier{bus: bus, log: log, poke: make(chan struct{}, 1), stopc: make(chan struct{}),
		certs: &certWatcher{bus: bus, seen: map[string]string{}}}
	n.hub = syslog.New(syslog.Options{Logger: log, OnError: func(host string, err error) {
		bus.Publish(events.Event{Severity: events.Err, Kind: events.KindSystem,
			Message: fmt.Sprintf("syslog host %s cannot be reached: %v", host, err),
			Fields:  map[string]string{alert.SinkField: "syslog", "host": host, "error": err.Error()}})
	}})
	n.alert = alert.New(alert.Options{Logger: log, OnError: func(dest string, err error) {
		bus.Publish(events.Event{Severity: events.Err, Kind: events.KindSystem,
			Message: fmt.Sprintf("alert to %s failed: %v", dest, err),
			Fields:  map[string]string{alert.SinkField: "alert", "destination": dest, "error": err.Error()}})
	}})
	return n
}

// start configures the sinks from the configuration in force, follows its
// changes and starts forwarding and the certificate watcher.
func (n *notifier) start(ctl *control.Controller) {
	n.configure(ctl.Current())
	ctl.Subscribe(n.configure)
	hubSub, alertSub := n.bus.Subscribe(syslog.QueueSize), n.bus.Subscribe(1024)
	n.subs = []*events.Subscription{hubSub, alertSub}
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.hub.Run(hubSub) }()
	go func() { defer n.wg.Done(); n.alert.Run(alertSub) }()
	go func() { defer n.wg.Done(); n.watchCerts() }()
	n.started = true
	n.bus.Publish(events.Event{Severity: events.Notice, Kind: events.KindSystem, Message: "Fulcrum started"})
}

// configure is the controller's subscriber: new settings for the sinks.
func (n *notifier) configure(snap *control.Snapshot) {
	if snap == nil || snap.Config == nil {
		return
	}
	c := snap.Config
	n.cfg.Store(c)
	if err := n.hub.Configure(c.Options.Logging.Syslog); err != nil {
		n.log.Error("syslog settings not applied in full", "err", err)
	}
	if err := n.alert.Configure(c.Options.Alerts); err != nil {
		n.log.Error("alert settings not applied in full", "err", err)
	}
	select {
	case n.poke <- struct{}{}:
	default:
	}
}

// close publishes the stop, lets the sinks send what they hold and stops
// them.
func (n *notifier) close() {
	if !n.started {
		n.hub.Close()
		n.alert.Close()
		return
	}
	n.started = false
	n.bus.Publish(events.Event{Severity: events.Notice, Kind: events.KindSystem, Message: "Fulcrum stopping"})
	close(n.stopc)
	for _, s := range n.subs {
		s.Close() // the forwarders drain what is queued and return
	}
	n.wg.Wait()
	n.hub.Close()
	n.alert.Close()
}

func (n *notifier) watchCerts() {
	tick := time.NewTicker(CertCheckInterval)
	defer tick.Stop()
	for {
		if c := n.cfg.Load(); c != nil {
			n.certs.check(c, time.Now())
		}
		select {
		case <-n.stopc:
			return
		case <-n.poke:
		case <-tick.C:
		}
	}
}

// vsName returns a service's (or SubVS's) display name: its nickname, else
// address:port for a service and "SubVS <id>" for a SubVS; and its
// parent's ID for a SubVS.
func vsName(c *config.Config, id int) (name string, parent int) {
	if c != nil {
		for i := range c.VirtualServices {
			v := &c.VirtualServices[i]
			if v.ID == id {
				return displayName(v, false), 0
			}
			for j := range v.SubVSs {
				if s := &v.SubVSs[j]; s.ID == id {
					return displayName(s, true), v.ID
				}
			}
		}
	}
	return "service " + strconv.Itoa(id), 0
}

func displayName(v *config.VirtualService, sub bool) string {
	switch {
	case v.NickName != "":
		return v.NickName
	case sub:
		return "SubVS " + strconv.Itoa(v.ID)
	}
	return net.JoinHostPort(v.Address, strconv.Itoa(v.Port))
}

// healthEvent is health.Options.OnEvent: a transition as an event.
func (n *notifier) healthEvent(h health.Event) {
	n.bus.Publish(healthToEvent(n.cfg.Load(), h))
}

func healthToEvent(c *config.Config, h health.Event) events.Event {
	name, parent := vsName(c, h.VS)
	f := map[string]string{"vs": name, "vsId": strconv.Itoa(h.VS), "from": h.From, "to": h.To}
	if h.Reason != "" {
		f["reason"] = h.Reason
	}
	if parent != 0 {
		f["parentId"] = strconv.Itoa(parent)
	}
	addr := ""
	if h.Address != "" {
		addr = net.JoinHostPort(h.Address, strconv.Itoa(h.Port))
	}
	e := events.Event{Time: h.Time, Fields: f}
	suffix := ""
	if h.Reason != "" {
		suffix = ": " + h.Reason
	}
	if h.RS != 0 {
		f["rs"], f["rsId"] = addr, strconv.Itoa(h.RS)
		e.Message = fmt.Sprintf("real server %s of %s is %s%s", addr, name, h.To, suffix)
		switch h.To {
		case health.StatusDown:
			e.Kind, e.Severity = events.KindRSDown, events.Err
		case health.StatusUp:
			e.Kind, e.Severity = events.KindRSUp, events.Notice
		case health.StatusDisabled, health.StatusDraining:
			e.Kind, e.Severity = events.KindRSState, events.Notice
		default:
			e.Kind, e.Severity = events.KindRSState, events.Info
		}
		return e
	}
	if addr != "" && addr != name {
		f["address"] = addr
	}
	e.Message = fmt.Sprintf("virtual service %s is %s%s", name, h.To, suffix)
	switch h.To {
	case health.StatusDown:
		e.Kind, e.Severity = events.KindVSDown, events.Crit
	case health.StatusUp:
		e.Kind, e.Severity = events.KindVSUp, events.Notice
	case health.StatusSorry:
		e.Kind, e.Severity = events.KindVSState, events.Warning
	case health.StatusDisabled, health.StatusDraining:
		e.Kind, e.Severity = events.KindVSState, events.Notice
	default:
		e.Kind, e.Severity = events.KindVSState, events.Info
	}
	return e
}

// auditEvent is admin.Options.OnAudit: an audit entry as an event.
func (n *notifier) auditEvent(a store.AuditEntry) { n.bus.Publish(auditToEvent(a)) }

func auditToEvent(a store.AuditEntry) events.Event {
	f := map[string]string{"action": a.Action, "success": strconv.FormatBool(a.Success)}
	for k, v := range map[string]string{"user": a.User, "source": a.Source, "remote": a.RemoteAddr, "detail": a.Detail} {
		if v != "" {
			f[k] = v
		}
	}
	who := a.User
	if who == "" {
		who = "unknown user"
	}
	if a.Source != "" {
		who += " (" + a.Source + ")"
	}
	if a.RemoteAddr != "" {
		who += " from " + a.RemoteAddr
	}
	e := events.Event{Time: a.Time, Fields: f}
	switch {
	case a.Action == "config":
		e.Kind, e.Severity = events.KindConfigChange, events.Notice
		if rev, summary, ok := strings.Cut(strings.TrimPrefix(a.Detail, "revision "), ": "); ok {
			if _, err := strconv.ParseUint(rev, 10, 64); err == nil {
				f["revision"], f["summary"] = rev, summary
			}
		}
		e.Message = "configuration changed by " + who + ": " + a.Detail
	case a.Action == "login" && a.Success:
		e.Kind, e.Severity = events.KindLogin, events.Info
		e.Message = "login of " + who
	case a.Action == "login":
		e.Kind, e.Severity = events.KindLoginFailed, events.Warning
		e.Message = "login failed for " + who + ": " + a.Detail
	case a.Action == "lockout":
		e.Kind, e.Severity = events.KindLockout, events.Warning
		e.Message = "lockout: " + a.Detail + " (" + who + ")"
	case a.Action == "network" || strings.HasPrefix(a.Action, "network-"):
		e.Kind, e.Severity = events.KindNetwork, events.Notice
		if !a.Success {
			e.Severity = events.Err
		}
		e.Message = "network settings (" + a.Action + ") by " + who + ": " + a.Detail
	default:
		e.Kind, e.Severity = events.KindAdmin, events.Info
		if !a.Success {
			e.Severity = events.Warning
		}
		verb := a.Action
		if !a.Success {
			verb += " refused"
		}
		e.Message = verb + " by " + who + ": " + a.Detail
	}
	return e
}

// certWatcher publishes cert.expiring and cert.expired events, each at
// most once per certificate per day.
type certWatcher struct {
	bus  *events.Bus
	mu   sync.Mutex
	seen map[string]string // certificate name and expiry → the day (UTC) it was last published
}

func (w *certWatcher) check(c *config.Config, now time.Time) {
	days := c.Options.Alerts.CertExpiryDays
	if days <= 0 {
		days = config.DefaultCertExpiryDays
	}
	today := now.UTC().Format(time.DateOnly)
	w.mu.Lock()
	defer w.mu.Unlock()
	keep := map[string]string{}
	for _, cert := range c.Certificates {
		info, err := certs.Describe(cert.Name, cert.Intermediate, cert.CertPEM)
		if err != nil {
			continue // validation refuses such a certificate; nothing to watch
		}
		left := info.NotAfter.Sub(now)
		if left > time.Duration(days)*24*time.Hour {
			continue
		}
		key := cert.Name + "|" + info.NotAfter.UTC().Format(time.RFC3339)
		if left <= 0 {
			key += "|expired"
		}
		keep[key] = w.seen[key]
		if w.seen[key] == today {
			continue
		}
		keep[key] = today
		f := map[string]string{"certificate": cert.Name, "subject": info.Subject,
			"notAfter": info.NotAfter.UTC().Format(time.RFC3339)}
		kind := "certificate"
		if cert.Intermediate {
			f["intermediate"] = "true"
			kind = "intermediate certificate"
		}
		e := events.Event{Time: now, Fields: f}
		if left <= 0 {
			e.Kind, e.Severity = events.KindCertExpired, events.Err
			e.Message = fmt.Sprintf("%s %s expired on %s", kind, cert.Name, info.NotAfter.UTC().Format(time.DateOnly))
		} else {
			d := int(left / (24 * time.Hour))
			f["daysLeft"] = strconv.Itoa(d)
			e.Kind, e.Severity = events.KindCertExpiring, events.Warning
			e.Message = fmt.Sprintf("%s %s expires in %d days, on %s", kind, cert.Name, d, info.NotAfter.UTC().Format(time.DateOnly))
		}
		w.bus.Publish(e)
	}
	w.seen = keep
}
