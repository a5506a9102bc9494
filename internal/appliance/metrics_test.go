package appliance

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestMetricsEndpoints checks /metrics on the admin listener (401 without
// credentials, 200 with an API key as a bearer token or Basic) and on the
// --metrics-addr listener (200 without credentials).
func TestMetricsEndpoints(t *testing.T) {
	dir := t.TempDir()
	a, err := Start(Options{DataDir: dir, AdminAddr: "127.0.0.1:0", AdminPassword: "correct horse battery",
		MetricsAddr: testkit.FreeAddr(t, "127.0.0.1"), Version: "v-test", Commit: "c-test",
		BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	by := admin.Principal{User: config.FirstAdmin, Role: config.RoleAdmin, Method: admin.MethodConsole}
	_, secret, err := a.Auth.CreateAPIKey(by, "127.0.0.1", config.FirstAdmin, "prometheus")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // the test's own self-signed admin certificate
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(url string, set func(*http.Request)) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if set != nil {
			set(req)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	adminURL := a.AdminURL() + MetricsPath
	cases := []struct {
		name string
		url  string
		set  func(*http.Request)
		want int
	}{
		{"admin listener without credentials", adminURL, nil, 401},
		{"admin listener with a wrong key", adminURL, func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		{"admin listener with an API key", adminURL, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+secret) }, 200},
		{"admin listener with Basic", adminURL, func(r *http.Request) { r.SetBasicAuth(config.FirstAdmin, "correct horse battery") }, 200},
		{"metrics listener without credentials", fmt.Sprintf("http://%s%s", a.MetricsAddr(), MetricsPath), nil, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := get(c.url, c.set)
			if code != c.want {
				t.Fatalf("%d, want %d: %.300s", code, c.want, body)
			}
			if code == 200 && !strings.Contains(body, `fulcrum_build_info{commit="c-test",goversion=`) {
				t.Errorf("no build info in the exposition:\n%.1000s", body)
			}
		})
	}
	// The unauthenticated listener serves nothing but /metrics.
	if code, _ := get(fmt.Sprintf("http://%s/api/v1/status", a.MetricsAddr()), nil); code != 404 {
		t.Errorf("the metrics listener answered /api/v1/status with %d", code)
	}
}
