package kempapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

// TestRateLimitAnswers429 checks the answer over the limit: 429 with
// LoadMaster's error body, XML on /access and JSON on /accessv2 (with and
// without a Content-Type), a Retry-After header, and the connection kept,
// so a client can read why and when to come back; another client address
// has its own budget.
func TestRateLimitAnswers429(t *testing.T) {
	e := newEnv(t, envOpts{limit: rate.Limit(0.01), burst: 3})
	// enable() used the native API, which is not limited here; the three
	// calls below are the burst.
	for i := 0; i < 3; i++ {
		e.ok1("listvs", "")
	}
	a := e.v1(auth{}, "listvs", "", nil)
	mustErrXML(t, a, http.StatusTooManyRequests, "Too many requests: this address made more than 3 API calls in 300 s")
	if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 || ra > 100 {
		t.Errorf("Retry-After %q, want 1-100 s (one call refills in 100 s)", a.header.Get("Retry-After"))
	}
	for _, ct := range []string{"application/json", ""} {
		body := `{"cmd":"listvs","apiuser":"bal","apipass":"` + balPW + `"}`
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/accessv2", strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		a := e.do(r)
		j, err := parseJSON(a.body)
		if err != nil {
			t.Fatalf("v2 (Content-Type %q): %v: %s", ct, err, a.body)
		}
		mustErrJSON(t, a, j, http.StatusTooManyRequests, "Too many requests")
		if a.header.Get("Retry-After") == "" {
			t.Errorf("v2 (Content-Type %q): no Retry-After", ct)
		}
		if a.header.Get("Connection") == "close" {
			t.Errorf("v2 (Content-Type %q): the connection is closed", ct)
		}
	}

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

// TestRateLimitFromConfig checks options.apiRateLimit: calls per 3 s of
// one client, taking effect with the change that sets it.
func TestRateLimitFromConfig(t *testing.T) {
	e := newEnv(t, envOpts{})
	s := New(Options{Control: e.ctl, Auth: e.auth, Backups: e.st, Logger: quiet})
	setLimit := func(n int) {
		t.Helper()
		if _, err := e.ctl.Apply(control.Change{Actor: control.Actor{User: "test", Source: control.SourceCLI},
			Mutate: func(c *config.Config) error { c.Options.APIRateLimit = n; return nil }}); err != nil {
			t.Fatal(err)
		}
	}
	calls := func(n int, remote string) []int {
		var got []int
		for i := 0; i < n; i++ {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/accessv2", strings.NewReader(`{"cmd":"listvs"}`))
			req.RemoteAddr = remote
			s.ServeHTTP(rec, req)
			got = append(got, rec.Code)
		}
		return got
	}
	for _, tc := range []struct {
		limit int
		want  string
	}{
		{2, "[401 401 429 429]"},
		{4, "[401 401 401 401 429]"},
		{0, "[" + strings.TrimSpace(strings.Repeat("401 ", 30)) + " 429]"}, // 0 means LoadMaster's 30
	} {
		setLimit(tc.limit)
		n := strings.Count(tc.want, " ") + 1
		if got := fmt.Sprint(calls(n, "198.51.100.9:4000")); got != tc.want {
			t.Errorf("apiRateLimit %d: %s, want %s", tc.limit, got, tc.want)
		}
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
