// Package testkit is the shared kit of Fulcrum's tests: real backends on
// 127.0.0.0/8 (HTTP and HTTPS, TCP echo or fixed answer, UDP echo, TLS),
// a test certificate authority issuing server and client certificates,
// free ports and distinct loopback addresses, and waiting for a condition
// instead of sleeping.
//
// It is a normal package so that tests of any package can import it, but
// only test files may: production code must never depend on it. It
// imports nothing from Fulcrum, so no package's tests form an import
// cycle with it. Everything it starts is closed by t.Cleanup and leaves
// no goroutine behind (goleak-clean).
package testkit
