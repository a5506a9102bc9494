package accesslog

import "sync"

// Memory is a Logger that keeps a copy of every entry in memory, without
// bound: for tests that check what the proxies log, not for production.
type Memory struct {
	mu      sync.Mutex
	entries []Entry
}

// Log keeps a copy of e.
func (m *Memory) Log(e *Entry) {
	m.mu.Lock()
	m.entries = append(m.entries, *e)
	m.mu.Unlock()
}

// Entries returns a copy of the entries logged so far, in order.
func (m *Memory) Entries() []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Entry(nil), m.entries...)
}
