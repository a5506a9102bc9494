// Package status is the data plane's status model: the typed states and
// the per-service and per-real-server records the data plane fills, and
// Source, the one interface through which the native API, the web UI and
// the LoadMaster-compatible API read them. It holds types only; the data
// plane produces the values. See docs/architecture.md.
package status

// State is a state word of the status model. One type serves the states
// of services and real servers and the health checks' verdicts, so the
// front ends compare and display them alike; each field says which of the
// constants it takes. The values are the JSON strings of the native API.
type State string

// The states.
const (
	// Up is a service that can take connections (VS.State), a real server
	// whose health check passes (RS.Health, RS.Status) or a service the
	// health checks find healthy (VS.Health).
	Up State = "Up"
	// Down is an enabled service that cannot take connections (VS.State:
	// no real server is enabled and Up, or none of its sockets could be
	// opened; Reason says which), or a real server or service the health
	// checks find failed.
	Down State = "Down"
	// Disabled is a service or real server that is not enabled.
	Disabled State = "Disabled"
	// NotServed is an enabled service of a kind the data plane does not
	// serve yet (VS.State); Reason says why.
	NotServed State = "NotServed"
	// Enabled is an enabled real server that is not Down (RS.State).
	Enabled State = "Enabled"
	// Draining is a disabled real server that keeps its open connections
	// until the drain time ends (RS.Status).
	Draining State = "Draining"
	// Sorry is a service whose real servers are all Down and that sends
	// its clients to the sorry server (VS.Health).
	Sorry State = "Sorry"
	// Unchecked is a service without health checks (VS.Health).
	Unchecked State = "Unchecked"
	// Unknown is a real server without a health-check result: waiting for
	// its first check, or not checked (RS.Health, RS.Status).
	Unknown State = "Unknown"
)
