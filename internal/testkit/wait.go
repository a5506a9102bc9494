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
	if ok, state := poll(timeout, cond); !ok {
		if state != "" {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, state)
		} else {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// Within calls cond as Eventually does, until it reports true or timeout
// passes, and reports whether it held, without failing the test: for a
// caller that reports the failure itself (with t.Errorf, or with what it
// saw).
func Within(timeout time.Duration, cond func() bool) bool {
	ok, _ := poll(timeout, func() (bool, string) { return cond(), "" })
	return ok
}

// poll calls cond until it reports true or timeout passes (checking once
// more at the deadline) and returns its last answer.
func poll(timeout time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	pause := minPoll
	for {
		ok, state := cond()
		if ok || !time.Now().Before(deadline) {
			return ok, state
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, maxPoll)
	}
}
