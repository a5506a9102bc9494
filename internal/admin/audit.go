package admin

import (
	"strings"
	"unicode/utf8"

	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Audit appends an entry for an action of p from remote to the audit
// trail. It does not fail: a write error is logged.
func (s *Service) Audit(p Principal, remote, action, detail string, success bool) {
	e := store.AuditEntry{
		Time:       s.now(),
		User:       truncate(p.User, 64),
		Source:     source(p.Method),
		RemoteAddr: remoteHost(remote),
		Action:     truncate(action, 64),
		Detail:     truncate(detail, 1024),
		Success:    success,
	}
	if _, err := s.b.AppendAudit(e); err != nil {
		s.log.Error("admin: cannot write audit entry", "err", err,
			"user", e.User, "action", e.Action, "detail", e.Detail, "success", e.Success)
	}
}

// auditResult audits a change whose outcome is err.
func (s *Service) auditResult(by Principal, remote, action, detail string, err error) {
	if err != nil {
		detail += ": " + err.Error()
	}
	s.Audit(by, remote, action, detail, err == nil)
}

// truncate bounds s to max bytes, cutting at a character boundary, so that
// attacker-supplied text (user names from Basic credentials) cannot bloat
// the audit trail.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "") + "..."
}
