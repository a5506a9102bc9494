package admin

import (
	"strings"
	"unicode/utf8"

	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Audit appends an entry for an action of p from remote to the audit
// trail. It does not fail: a write error is logged. Entries with success
// false are kept in the audit log's failure share (see
// store.AppendAuditEntry), where they cannot push out the others.
func (s *Service) Audit(p Principal, remote, action, detail string, success bool) {
	s.writeAudit(s.entry(p, remote, action, detail, success), !success)
}

// AuditAs is Audit for a caller known only by user name and by how they
// authenticated (method, a Method constant): the write path
// (control.Controller) audits the changes it commits through it.
func (s *Service) AuditAs(user, method, remote, action, detail string, success bool) {
	s.Audit(Principal{User: user, Method: method}, remote, action, detail, success)
}

// entry makes an audit entry, bounding the text an attacker may supply.
func (s *Service) entry(p Principal, remote, action, detail string, success bool) store.AuditEntry {
	return store.AuditEntry{
		Time:       s.now(),
		User:       truncate(p.User, 64),
		Source:     source(p.Method),
		RemoteAddr: RemoteHost(remote),
		Action:     truncate(action, 64),
		Detail:     truncate(detail, 1024),
		Success:    success,
	}
}

// auditShares is implemented by backends that keep failure entries in a
// share of the audit log of their own; *store.Store does.
type auditShares interface {
	AppendAuditEntry(e store.AuditEntry, failure bool) (store.AuditEntry, error)
}

// writeAudit appends e, in the failure share if failure is set and the
// backend keeps shares. A write error is logged.
func (s *Service) writeAudit(e store.AuditEntry, failure bool) {
	var err error
	if sh, ok := s.b.(auditShares); ok {
		_, err = sh.AppendAuditEntry(e, failure)
	} else {
		_, err = s.b.AppendAudit(e)
	}
	if err != nil {
		s.log.Error("admin: cannot write audit entry", "err", err,
			"user", e.User, "action", e.Action, "detail", e.Detail, "success", e.Success)
	}
	if s.onAudit != nil {
		s.onAudit(e)
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
