package admin

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// Aggregation of failure entries in the audit log. Failed and refused
// logins and lockouts are what an attacker causes at will — from rotating
// addresses, 50 a second — so they are not written one entry each: within
// a minute the first AuditImmediate failures of one kind are written as
// they happen and the rest become one entry with their count, time span
// and (some of) their sources, written when the minute ends. A kind is an
// action and detail about one account, or one API key; failures about user
// names or keys that do not exist form one kind each. While failures of a
// kind keep coming, every minute makes one entry of that kind.
const (
	// AuditImmediate is how many failures of one kind within
	// AuditAggregateWindow are written as they happen.
	AuditImmediate = 3
	// AuditAggregateWindow is the span of one aggregated entry.
	AuditAggregateWindow = time.Minute
	// maxAuditKinds bounds the kinds being aggregated at once; failures of
	// further kinds join one catch-all kind.
	maxAuditKinds = 1024
	// maxListedSources is how many source addresses an aggregated entry
	// names; maxCountedSources how many distinct ones it counts.
	maxListedSources  = 10
	maxCountedSources = 1000
	// maxListedNames is how many unknown user names it quotes.
	maxListedNames = 5
)

// anySubject is the subject of failures that concern no existing account
// or key (unknown user names, malformed or unknown API keys, whole
// sources).
const anySubject = "*"

// auditKind identifies a kind of failure.
type auditKind struct {
	action, subject, base, method string
}

// auditWindow gathers the failures of one kind during one window.
type auditWindow struct {
	end      time.Time           // when the window closes
	written  int                 // failures written as they happened
	count    int                 // failures gathered, not yet written
	first    time.Time           // of the gathered failures
	last     time.Time           // of the gathered failures
	sources  []string            // listed sources
	distinct map[string]struct{} // counted sources
	names    []string            // listed unknown user names
	user     string              // the entries' user
	success  bool                // the entries' success flag
}

// auditAggregator holds the open windows.
type auditAggregator struct {
	mu      sync.Mutex
	windows map[auditKind]*auditWindow
	timer   *time.Timer
	timerAt time.Time
}

// auditFailure records a failure that an unauthenticated client can cause
// at will: as its own entry if it is among the first AuditImmediate of its
// kind this minute (with detail), otherwise gathered into the kind's
// aggregated entry (described by base). subject is the account or key the
// failure concerns, or anySubject; name, if set, is an unknown user name
// to quote. All of these entries are kept in the audit log's failure
// share (see store.AppendAuditEntry).
func (s *Service) auditFailure(who Principal, remote, action, subject, name, base, detail string, success bool) {
	now := s.now()
	src := sourceOf(remote)
	a := &s.agg
	a.mu.Lock()
	due := s.dueLocked(now, false)
	k := auditKind{action: action, subject: truncate(subject, 64), base: base, method: who.Method}
	w := a.windows[k]
	if w == nil && len(a.windows) >= maxAuditKinds {
		k = auditKind{action: action, subject: anySubject, base: "other failures", method: who.Method}
		w = a.windows[k]
	}
	if w == nil {
		w = &auditWindow{end: now.Add(AuditAggregateWindow), success: success}
		if subject != anySubject {
			w.user = who.User
		}
		a.windows[k] = w
	}
	immediate := w.written < AuditImmediate
	if immediate {
		w.written++
	} else {
		w.count++
		if w.first.IsZero() {
			w.first = now
		}
		w.last = now
		if _, seen := w.distinct[src]; !seen && len(w.distinct) < maxCountedSources {
			if w.distinct == nil {
				w.distinct = map[string]struct{}{}
			}
			w.distinct[src] = struct{}{}
			if len(w.sources) < maxListedSources {
				w.sources = append(w.sources, src)
			}
		}
		if name != "" && len(w.names) < maxListedNames {
			if n := q(truncate(name, 32)); !containsString(w.names, n) {
				w.names = append(w.names, n)
			}
		}
		s.armLocked(w.end, now)
	}
	a.mu.Unlock()
	for _, e := range due {
		s.writeAudit(e, true)
	}
	if immediate {
		s.writeAudit(s.entry(who, remote, action, detail, success), true)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FlushAudit writes every aggregated failure entry still gathering, at
// once; call it before shutting down so that the last minute's failures
// are not lost. Without it they are written when their minute ends.
func (s *Service) FlushAudit() {
	s.agg.mu.Lock()
	due := s.dueLocked(s.now(), true)
	s.agg.mu.Unlock()
	for _, e := range due {
		s.writeAudit(e, true)
	}
}

// flushTimer runs when the earliest window with gathered failures ends.
func (s *Service) flushTimer() {
	s.agg.mu.Lock()
	s.agg.timer, s.agg.timerAt = nil, time.Time{}
	now := s.now()
	due := s.dueLocked(now, false)
	for _, w := range s.agg.windows {
		if w.count > 0 {
			s.armLocked(w.end, now)
		}
	}
	s.agg.mu.Unlock()
	for _, e := range due {
		s.writeAudit(e, true)
	}
}

// armLocked makes sure the flush timer runs by end. Called with agg.mu
// held.
func (s *Service) armLocked(end, now time.Time) {
	a := &s.agg
	if a.timer != nil && !a.timerAt.After(end) {
		return
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	a.timerAt = end
	a.timer = time.AfterFunc(max(end.Sub(now), time.Second), s.flushTimer)
}

// dueLocked returns the aggregated entries of the windows that have ended
// (all windows with gathered failures when all is set), and starts the
// next window of each kind that had any: failures that keep coming are
// gathered from their first. Windows without gathered failures are
// forgotten when they end. Called with agg.mu held.
func (s *Service) dueLocked(now time.Time, all bool) []store.AuditEntry {
	var out []store.AuditEntry
	for k, w := range s.agg.windows {
		if now.Before(w.end) && !(all && w.count > 0) {
			continue
		}
		if w.count == 0 {
			delete(s.agg.windows, k)
			continue
		}
		out = append(out, s.aggregated(k, w))
		s.agg.windows[k] = &auditWindow{end: now.Add(AuditAggregateWindow), written: AuditImmediate, user: w.user, success: w.success}
	}
	if len(out) > 1 {
		sortEntries(out)
	}
	return out
}

// sortEntries orders aggregated entries by the time of their last failure.
func sortEntries(es []store.AuditEntry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Time.Before(es[j-1].Time); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// aggregated makes the entry of a window's gathered failures.
func (s *Service) aggregated(k auditKind, w *auditWindow) store.AuditEntry {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s: %d more between %s and %s UTC", k.base, w.count,
		w.first.UTC().Format("15:04:05"), w.last.UTC().Format("15:04:05"))
	n := len(w.distinct)
	switch {
	case n == 1:
		sb.WriteString(" from 1 source: ")
	case n >= maxCountedSources:
		fmt.Fprintf(&sb, " from %d or more sources: ", n)
	default:
		fmt.Fprintf(&sb, " from %d sources: ", n)
	}
	sb.WriteString(strings.Join(w.sources, ", "))
	if n > len(w.sources) {
		sb.WriteString(", … (+" + strconv.Itoa(n-len(w.sources)) + " more)")
	}
	if len(w.names) > 0 {
		sb.WriteString("; user names " + strings.Join(w.names, ", "))
	}
	e := s.entry(Principal{User: w.user, Method: k.method}, "", k.action, sb.String(), w.success)
	e.Time = w.last
	if n == 1 {
		e.RemoteAddr = w.sources[0]
	}
	return e
}
