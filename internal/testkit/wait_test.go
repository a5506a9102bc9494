package testkit

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestEventuallyReturnsOnceTrue(t *testing.T) {
	calls := 0
	start := time.Now()
	Eventually(t, 5*time.Second, func() bool { calls++; return calls == 4 }, "the fourth call")
	if calls != 4 {
		t.Errorf("%d calls, want 4", calls)
	}
	// Three pauses of 1, 2 and 4 ms: far below the 50 ms cap.
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v for three retries", d)
	}
}

func TestEventuallyFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		wait  func(r *recorder)
		wants []string
	}{
		{"plain", func(r *recorder) {
			Eventually(r, 30*time.Millisecond, func() bool { return false }, "the moon")
		}, []string{"timed out after 30ms waiting for the moon"}},
		{"with state", func(r *recorder) {
			n := 0
			EventuallyState(r, 30*time.Millisecond, func() (bool, string) { n++; return false, fmt.Sprintf("try %d", n) }, "the sun")
		}, []string{"timed out after 30ms waiting for the sun: try "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{}
			start := time.Now()
			tc.wait(r)
			if d := time.Since(start); d < 30*time.Millisecond || d > 2*time.Second {
				t.Errorf("gave up after %v, want about 30ms", d)
			}
			for _, w := range tc.wants {
				if !strings.Contains(r.fatal, w) {
					t.Errorf("failure %q does not contain %q", r.fatal, w)
				}
			}
		})
	}
}

func TestEventuallyChecksOnceMoreAtTheDeadline(t *testing.T) {
	r := &recorder{}
	deadline := time.Now().Add(20 * time.Millisecond)
	Eventually(r, 20*time.Millisecond, func() bool { return !time.Now().Before(deadline) }, "the deadline")
	if r.fatal != "" {
		t.Errorf("a condition that holds at the deadline failed: %s", r.fatal)
	}
}

func TestWithin(t *testing.T) {
	calls := 0
	if !Within(5*time.Second, func() bool { calls++; return calls == 3 }) || calls != 3 {
		t.Errorf("Within of a condition true on the third call: %d calls", calls)
	}
	start := time.Now()
	if Within(30*time.Millisecond, func() bool { return false }) {
		t.Error("Within of a condition never true reported true")
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %v, want about 30ms", d)
	}
}
