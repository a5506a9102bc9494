package webui

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
	"github.com/fulcrum-lb/fulcrum/internal/verify"
)

// TestVerifyPage runs deployment verification through a real layer-7
// service in front of a real backend, and checks the page against what
// verify.Run reports, the refusals and the form errors.
func TestVerifyPage(t *testing.T) {
	ts := newTestServer(t)
	if w := ts.get("readonly", "/verify"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "No service has smoke checks — templates add them") {
		t.Fatalf("verify page without checks: %d %.300s", w.Code, w.Body)
	}

	// A real backend and a service in front of it, with two smoke checks:
	// one that passes and one that expects a status the backend never sends.
	be := testkit.StartHTTP(t, "127.0.0.41", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", r.Host)
	}))
	vip := "127.0.0.42"
	vport := testkit.FreePort(t, vip)
	if _, err := ts.ctl.Apply(control.Change{Actor: control.Actor{User: "test", Source: control.SourceAPI}, Mutate: func(c *config.Config) error {
		c.VirtualServices = append(c.VirtualServices, config.VirtualService{ID: 77, NickName: "Web", Address: vip, Port: vport,
			Protocol: "tcp", Type: "http",
			RealServers: []config.RealServer{{ID: 1, Address: be.IP(), Port: be.Port(), Weight: 1000}},
			Checks: []config.SmokeCheck{{Name: "Home page", URL: "http://www.example.com/"},
				{Name: "Wants a teapot", URL: "http://www.example.com/tea", Expect: []int{418}}}})
		return nil
	}}); err != nil {
		t.Fatal(err)
	}

	// The page, the button only for roles that may run it, the checks on
	// the service page.
	if body := ts.get("readonly", "/verify").Body.String(); strings.Contains(body, `id="verify-run"`) || !strings.Contains(body, `id="verify-denied"`) {
		t.Error("the read-only user is offered the run button")
	}
	if body := ts.get("operator", "/verify").Body.String(); !strings.Contains(body, `id="verify-run"`) {
		t.Error("the operator has no run button")
	}
	if body := ts.get("readonly", "/vs/77").Body.String(); !strings.Contains(body, "Wants a teapot") || !strings.Contains(body, "http://www.example.com/tea") {
		t.Error("the service page does not list its smoke checks")
	}

	// Refusals and form errors.
	if w := ts.post("readonly", "/verify", url.Values{}); w.Code != http.StatusForbidden {
		t.Errorf("read-only run: %d", w.Code)
	}
	for _, tc := range []struct {
		form url.Values
		id   string
		want string
	}{
		{url.Values{"caPem": {"not a certificate"}}, "f-caPem-err", "holds no PEM certificate"},
		{url.Values{"vs": {"5"}}, "f-vs-err", "no service with ID 5 has smoke checks"},
		{url.Values{"vs": {"x"}}, "f-vs-err", "must be a whole number"},
	} {
		w := ts.post("operator", "/verify", tc.form)
		re := regexp.MustCompile(`id="` + tc.id + `">([^<]*)<`)
		m := re.FindStringSubmatch(w.Body.String())
		if w.Code != http.StatusUnprocessableEntity || m == nil || !strings.Contains(m[1], tc.want) {
			t.Errorf("post %v: %d, error %q, want %q", tc.form, w.Code, m, tc.want)
		}
	}

	// A run: the rows are verify.Run's results. The service is polled
	// until it answers, as the data plane starts it asynchronously.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var want []verify.Result
	testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
		want = verify.Run(ctx, ts.ctl.Current().Config, verify.Options{Timeout: 5 * time.Second})
		return len(want) == 2 && want[0].Pass, fmt.Sprintf("%+v", want)
	}, "the service to answer its first check")
	if len(want) != 2 || !want[0].Pass || want[1].Pass || want[1].Status != 200 {
		t.Fatalf("verify.Run: %+v", want)
	}
	w := ts.post("operator", "/verify", url.Values{"vs": {"77"}})
	if w.Code != http.StatusOK {
		t.Fatalf("run: %d %.300s", w.Code, w.Body)
	}
	rows := regexp.MustCompile(`<tr data-check="([^"]*)" data-pass="([^"]*)" data-status="([^"]*)">`).FindAllStringSubmatch(w.Body.String(), -1)
	if len(rows) != len(want) {
		t.Fatalf("%d rows, verify.Run reports %d", len(rows), len(want))
	}
	for i, r := range want {
		if got := rows[i][1:]; got[0] != r.Check || got[1] != fmt.Sprint(r.Pass) || got[2] != fmt.Sprint(r.Status) {
			t.Errorf("row %d: %v, verify.Run reports %q pass=%v status=%d", i, got, r.Check, r.Pass, r.Status)
		}
	}
	if body := w.Body.String(); !strings.Contains(body, `id="verify-passed">1 passed`) || !strings.Contains(body, `id="verify-failed">1 failed`) {
		t.Error("the pass and fail counts are missing")
	}
	if ts.ctl.Current().Change.User != "test" {
		t.Error("verification changed the configuration")
	}
}
