package testkit

import (
	"sync"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
)

// AccessLog is a real accesslog.Logger that keeps a copy of every entry in
// memory, for tests that check what the proxies log.
type AccessLog struct {
	mu      sync.Mutex
	entries []accesslog.Entry
}

// Log keeps a copy of e.
func (l *AccessLog) Log(e *accesslog.Entry) {
	l.mu.Lock()
	l.entries = append(l.entries, *e)
	l.mu.Unlock()
}

// Entries returns a copy of the entries logged so far, in order.
func (l *AccessLog) Entries() []accesslog.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]accesslog.Entry(nil), l.entries...)
}
