package admin

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// The real store must satisfy Backend.
var _ Backend = (*store.Store)(nil)

// memBackend is an in-memory Backend that behaves like *store.Store:
// sorted listings, ErrNotFound errors, validation on put, API keys tied to
// an existing user and deleted with it, audit sequence numbers.
type memBackend struct {
	mu    sync.Mutex
	users map[string]config.User
	keys  map[string]config.APIKey
	audit []store.AuditEntry
	seq   uint64

	failUsers error // returned by Users, User and APIKeys when set
	failAudit error // returned by AppendAudit when set
}

func newMemBackend() *memBackend {
	return &memBackend{users: map[string]config.User{}, keys: map[string]config.APIKey{}}
}

func (m *memBackend) Users() ([]config.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failUsers != nil {
		return nil, fmt.Errorf("read users: %w", m.failUsers)
	}
	out := []config.User{}
	for _, u := range m.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b config.User) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func (m *memBackend) User(name string) (config.User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failUsers != nil {
		return config.User{}, fmt.Errorf("read user %q: %w", name, m.failUsers)
	}
	u, ok := m.users[name]
	if !ok || name == "" {
		return config.User{}, fmt.Errorf("read user %q: %w", name, store.ErrNotFound)
	}
	return u, nil
}

func (m *memBackend) PutUser(u config.User) error {
	if err := config.ValidateUser(u); err != nil {
		return fmt.Errorf("put user %q: %w", u.Name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users[u.Name] = u
	return nil
}

func (m *memBackend) DeleteUser(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[name]; !ok || name == "" {
		return fmt.Errorf("delete user %q: %w", name, store.ErrNotFound)
	}
	delete(m.users, name)
	for id, k := range m.keys {
		if k.User == name {
			delete(m.keys, id)
		}
	}
	return nil
}

func (m *memBackend) APIKeys() ([]config.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failUsers != nil {
		return nil, fmt.Errorf("read api keys: %w", m.failUsers)
	}
	var out []config.APIKey
	for _, k := range m.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b config.APIKey) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (m *memBackend) PutAPIKey(k config.APIKey) error {
	var es config.Errors
	if k.ID == "" || len(k.ID) > store.MaxAPIKeyID {
		es = append(es, config.FieldError{Path: "id", Message: "must be 1-128 printable bytes"})
	}
	if k.User == "" {
		es = append(es, config.FieldError{Path: "user", Message: "required"})
	}
	if utf8.RuneCountInString(k.Description) > store.MaxAPIKeyDescription {
		es = append(es, config.FieldError{Path: "description", Message: "at most 128 characters"})
	}
	if len(es) > 0 {
		return fmt.Errorf("put api key %q: %w", k.ID, es)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[k.User]; !ok {
		return fmt.Errorf("put api key %q: user %q: %w", k.ID, k.User, store.ErrNotFound)
	}
	m.keys[k.ID] = k
	return nil
}

func (m *memBackend) DeleteAPIKey(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.keys[id]; !ok || id == "" {
		return fmt.Errorf("delete api key %q: %w", id, store.ErrNotFound)
	}
	delete(m.keys, id)
	return nil
}

func (m *memBackend) AppendAudit(e store.AuditEntry) (store.AuditEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failAudit != nil {
		return store.AuditEntry{}, fmt.Errorf("append audit entry: %w", m.failAudit)
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	m.seq++
	e.Seq = m.seq
	m.audit = append(m.audit, e)
	return e, nil
}

// auditLog returns a copy of the audit entries so far.
func (m *memBackend) auditLog() []store.AuditEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.audit)
}

// auditSince returns the entries appended after the first n.
func (m *memBackend) auditSince(n int) []store.AuditEntry {
	return m.auditLog()[n:]
}
