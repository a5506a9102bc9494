package testkit

import (
	"testing"
	"time"
)

// Backoff bounds of Eventually: the first retry comes after minPoll, each
// next one after twice as long, never more than maxPoll.
const (
	minPoll = time.Millisecond
	maxPoll = 50 * time.Millisecond
)

// Eventually calls cond until it reports true, retrying after a short,
// growing pause (1 ms doubling up to 50 ms), and fails the test with what
// if timeout passes first. Use it instead of a fixed time.Sleep before an
// assertion: it returns as soon as the condition holds.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	EventuallyState(t, timeout, func() (bool, string) { return cond(), "" }, what)
}

// EventuallyState is Eventually for a condition that also describes the
// state it saw: on timeout the failure message ends with the last
// description, so that the log says why the condition never held.
func EventuallyState(t testing.TB, timeout time.Duration, cond func() (ok bool, state string), what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := minPoll
	for {
		ok, state := cond()
		if ok {
			return
		}
		if !time.Now().Before(deadline) {
			if state != "" {
				t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, state)
			} else {
				t.Fatalf("timed out after %v waiting for %s", timeout, what)
			}
			return
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, maxPoll)
	}
}
