// Package attack holds the attack clients, real servers and measurements
// of Fulcrum's reliability suite: the driver bench/cmd/reliability runs
// them against Fulcrum and HAProxy and writes a report, and the fast
// subset in test/reliability asserts the acceptance criteria with
// them.
//
// Everything here talks to 127.0.0.0/8 only, bounds every loop in time
// and count, and closes what it opens. The TLS clients skip certificate
// verification: they are test tools talking to a proxy the caller
// started with a throw-away certificate.
package attack
