package dataplane

import (
	"net"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// NoAccessLogDestination is the status note of a service with accessLog
// on while its lines would go nowhere.
const NoAccessLogDestination = "not applied: accessLog: no destination (set options.logging.accessLog.file or a syslog host with accessLogs)"

// NoAccessLogWriter is the status note of a service with accessLog on in
// an Engine started without an access log (Options.AccessLog nil).
const NoAccessLogWriter = "not applied: accessLog: this process has no access log writer"

// hasAccessLogDestination reports whether access log lines of cfg go
// anywhere: a file, or a syslog host with accessLogs.
func hasAccessLogDestination(cfg *config.Config) bool {
	l := &cfg.Options.Logging
	if l.AccessLog.File != "" {
		return true
	}
	for i := range l.Syslog {
		if l.Syslog[i].AccessLogs {
			return true
		}
	}
	return false
}

// accessLogFor returns the logger a proxy gets for vs in cfg: l, the
// Engine's, when vs has accessLog and its lines have a destination; nil
// otherwise (then accessLogNotes says why).
func accessLogFor(l accesslog.Logger, cfg *config.Config, vs *config.VirtualService) accesslog.Logger {
	if !vs.AccessLog || l == nil || !hasAccessLogDestination(cfg) {
		return nil
	}
	return l
}

// accessLogNotes are the status notes of vs about its accessLog: why it
// is not applied, if it is not.
func (e *Engine) accessLogNotes(cfg *config.Config, vs *config.VirtualService) []string {
	switch {
	case !vs.AccessLog:
		return nil
	case !hasAccessLogDestination(cfg):
		return []string{NoAccessLogDestination}
	case e.accessLog == nil:
		return []string{NoAccessLogWriter}
	}
	return nil
}

// vsName is the name of vs in access log entries: its nickname, else its
// address:port.
func vsName(vs *config.VirtualService) string {
	if vs.NickName != "" {
		return vs.NickName
	}
	return net.JoinHostPort(vs.Address, strconv.Itoa(vs.Port))
}
