package kempapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestRateLimitDropsConnection(t *testing.T) {
	e := newEnv(t, envOpts{limit: rate.Limit(0.01), burst: 3})
	// enable() used one call of 127.0.0.1's budget on the native API, which
	// is not limited here; the three calls below are the burst.
	for i := 0; i < 3; i++ {
		e.ok1("listvs", "")
	}
	r, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/access/listvs", nil)
	r.SetBasicAuth("bal", balPW)
	res, err := e.srv.Client().Do(r)
	if err == nil {
		res.Body.Close()
		t.Fatalf("call over the limit answered %d; want the connection dropped", res.StatusCode)
	}

	// Where the connection cannot be taken over, the answer is 429; other
	// clients have their own budget.
	serve := func(remote string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/access/listvs", nil)
		req.RemoteAddr = remote
		e.kemp.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := serve("127.0.0.1:1000"); got != http.StatusTooManyRequests {
		t.Errorf("limited client through a recorder: %d, want 429", got)
	}
	if got := serve("192.0.2.7:1000"); got != http.StatusUnauthorized {
		t.Errorf("another client: %d, want 401 (not limited, not authenticated)", got)
	}
}

func TestLimiterBudgetAndMemory(t *testing.T) {
	l := newLimiter(DefaultRateLimit, DefaultRateBurst)
	now := time.Unix(1_700_000_000, 0)
	// A burst of 30 calls passes, the 31st does not; the budget then
	// refills at 30 calls per 3 seconds.
	for i := 0; i < 30; i++ {
		if !l.allow("192.0.2.1", now) {
			t.Fatalf("call %d refused", i+1)
		}
	}
	if l.allow("192.0.2.1", now) {
		t.Fatal("31st call of a burst allowed")
	}
	second := now.Add(time.Second)
	for i := 0; i < 10; i++ {
		if !l.allow("192.0.2.1", second) {
			t.Fatalf("refilled call %d refused", i+1)
		}
	}
	if l.allow("192.0.2.1", second) {
		t.Fatal("more than 10 calls refilled in a second")
	}
	// IPv6 clients are grouped by /64.
	l.allow("2001:db8::1", now)
	for i := 0; i < 40; i++ {
		l.allow(fmt.Sprintf("2001:db8::%x", i+2), now)
	}
	if l.allow("2001:db8::ffff", now) {
		t.Fatal("a /64 got a fresh budget per address")
	}
	if l.allow("2001:db8:0:1::1", now) == false {
		t.Fatal("another /64 was limited")
	}

	// Memory stays bounded: idle buckets are swept, and when too many
	// clients are active at once new ones are refused.
	small := newLimiter(DefaultRateLimit, DefaultRateBurst)
	for i := 0; i < maxTrackedClients; i++ {
		small.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	if small.allow("192.0.2.200", now) {
		t.Fatal("a new client was tracked beyond the bound")
	}
	later := now.Add(time.Minute)
	if !small.allow("192.0.2.200", later) {
		t.Fatal("idle clients were not swept")
	}
	if n := len(small.clients); n > maxTrackedClients/2 {
		t.Fatalf("%d buckets after the sweep", n)
	}
}

func TestUnlimited(t *testing.T) {
	l := newLimiter(rate.Inf, 1)
	for i := 0; i < 1000; i++ {
		if !l.allow("192.0.2.1", time.Unix(0, 0)) {
			t.Fatal("unlimited limiter refused")
		}
	}
}
