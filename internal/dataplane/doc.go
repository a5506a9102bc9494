// Package dataplane runs the data plane: Engine.Apply compiles a validated
// configuration into an immutable snapshot, reconciles the listening sockets
// and swaps the snapshot in atomically, so a reload loses no connection.
//
// The Engine is an orchestrator. compile.go builds what every served
// service shares (sockets, real servers, picker and persistence, limits,
// and the defaults such as the idle timeout, resolved once here); one
// driver per kind of service (driver.go: l4Driver, udpDriver; l7.go:
// l7Driver) builds the rest, reuses a service that did not change, and
// commits or rolls back its part of a candidate. The drainer (drain.go),
// the health sync (healthsync.go) and the once-a-second accounting
// (accounting.go) are small types the Engine owns. Runtime state — real
// servers' counters and health, persistence tables, layer-7 services and
// their ticket keys — outlives a snapshot. The Engine is a status.Source.
//
// What the data plane does with sockets it cannot open, drain times,
// drop on failure, persistence, health and limits is described in
// docs/architecture.md ("Data plane"); adding a kind of service is a
// checklist there.
package dataplane
