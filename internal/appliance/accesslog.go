package appliance

import (
	"sync"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// accessLogSink configures the access log Writer from the configuration
// in force.
type accessLogSink struct {
	w *accesslog.Writer

	mu      sync.Mutex // orders the Configure calls of Start and of changes
	applied config.AccessLog
	forward bool // lines go to the syslog hub too
	ok      bool // applied is in force
}

// startAccessLog configures a.AccessLog from the stored configuration and
// on every change. A file that cannot be opened is logged and published as
// an event; the Writer keeps its previous file (or none).
func (a *Appliance) startAccessLog() {
	s := &accessLogSink{w: a.AccessLog}
	apply := func(cfg *config.Config) {
		set := cfg.Options.Logging.AccessLog
		// Lines go to the syslog hub only when a host takes them: the
		// hub's ForwardAccess sends to the hosts with accessLogs.
		forward := false
		for _, h := range cfg.Options.Logging.Syslog {
			forward = forward || h.AccessLogs
		}
		var fwd accesslog.Forwarder
		if forward && a.Syslog != nil {
			fwd = a.Syslog
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ok && s.applied == set && s.forward == forward {
			return
		}
		if err := s.w.Configure(set, fwd); err != nil {
			s.ok = false
			a.log.Error("access log not applied", "err", err)
			a.Events.Publish(events.Event{Severity: events.Err, Kind: events.KindSystem,
				Message: "access log not applied: " + err.Error(), Fields: map[string]string{"file": set.File}})
			return
		}
		s.applied, s.forward, s.ok = set, forward, true
	}
	apply(a.Control.Current().Config)
	a.Control.Subscribe(func(snap *control.Snapshot) { apply(snap.Config) })
}

// ReopenLogs opens the access log file anew at its configured path: after
// logrotate renamed it, the lines not yet written go to the renamed file
// and the next ones to a new file (serve calls it on SIGHUP).
func (a *Appliance) ReopenLogs() error {
	if a.AccessLog == nil {
		return nil
	}
	return a.AccessLog.Reopen()
}
