package backend

// Health is a real server's health-check state.
type Health int32

// The health states. A server starts Unknown, which counts as available
// until its first check says otherwise (a new server gets an immediate first
// check), and stays Unknown when its service has no health check.
const (
	// HealthUnknown means not checked (yet).
	HealthUnknown Health = iota
	// HealthUp means the last checks passed.
	HealthUp
	// HealthDown means the checks failed; the server gets no new work.
	HealthDown
)

// String returns "Unknown", "Up" or "Down".
func (h Health) String() string {
	switch h {
	case HealthUp:
		return "Up"
	case HealthDown:
		return "Down"
	}
	return "Unknown"
}

// Health returns the server's health-check state.
func (s *Server) Health() Health { return Health(s.health.Load()) }

// SetHealth records a health-check result and reports whether the state
// changed. Reacting to a change (dropping connections when the global
// "drop connections on RS failure" is set) is the data plane's job.
//
// When the state changes and the server belongs to a Registry with a hook
// set by SetHealthHook, the hook is called before SetHealth returns.
func (s *Server) SetHealth(h Health) (changed bool) {
	old := Health(s.health.Swap(int32(h)))
	if old == h {
		return false
	}
	if s.reg != nil {
		if f := s.reg.hook.Load(); f != nil {
			(*f)(s, old, h)
		}
	}
	return true
}

// Draining reports whether the server is draining: it keeps the
// connections (and persisted clients) it has but gets no new ones.
func (s *Server) Draining() bool { return s.draining.Load() }

// SetDraining starts or ends draining.
func (s *Server) SetDraining(d bool) { s.draining.Store(d) }

// Available reports whether the server may be given new work: it is
// enabled, not Down and not draining. Limits are checked separately by
// Acquire.
func (s *Server) Available() bool {
	return s.settings.Load().Enabled && s.Health() != HealthDown && !s.draining.Load()
}
