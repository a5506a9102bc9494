package appliance

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/console"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartServeClose(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	o := Options{DataDir: dir, AdminAddr: "127.0.0.1:0", Out: &out, BcryptCost: bcrypt.MinCost,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `Created administrator "bal" with password: `) {
		t.Errorf("no password announced:\n%s", out.String())
	}
	pw := strings.Fields(strings.SplitN(out.String(), "password: ", 2)[1])[0]

	// The admin plane speaks only TLS 1.2 and newer.
	for _, tc := range []struct {
		max    uint16
		wantOK bool
	}{{tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MaxVersion: tc.max}}
		req, _ := http.NewRequest("GET", a.AdminURL()+"/api/v1/status", nil)
		req.SetBasicAuth("bal", pw)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if (err == nil) != tc.wantOK {
			t.Errorf("TLS max version %x: err %v", tc.max, err)
		}
		if err == nil {
			if resp.StatusCode != 200 {
				t.Errorf("status %d", resp.StatusCode)
			}
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
	}

	// A second server on the same data directory is refused.
	if _, err := Start(o); err == nil || !strings.Contains(err.Error(), "in use by another fulcrum process") {
		t.Errorf("second start: %v", err)
	}

	// The console socket answers as the console administrator.
	c, err := console.Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Live {
		t.Error("console did not reach the running server")
	}
	body, _, err := c.Do("GET", "/api/v1/session", nil, "", nil)
	if err != nil || !bytes.Contains(body, []byte(`"method": "console"`)) {
		t.Errorf("console session: %s %v", body, err)
	}
	c.Close()

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close the store is free: the console opens it directly.
	c, err = console.Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Live {
		t.Error("console claims a live server after Close")
	}
	c.Close()
}

// TestHealthThroughAPI creates a service whose real server does not
// answer and reads its health status and events through the native API.
func TestHealthThroughAPI(t *testing.T) {
	dir := t.TempDir()
	a, err := Start(Options{DataDir: dir, AdminAddr: "127.0.0.1:0", AdminPassword: "correct horse battery",
		BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, err := console.Connect(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A real server on a port nothing listens on: its tcp check fails.
	deadPort := testkit.FreePort(t, "127.0.0.1")
	vipPort := testkit.FreePort(t, "127.0.0.2")
	vs := fmt.Sprintf(`{"address":"127.0.0.2","port":%d,"realServers":[{"address":"127.0.0.1","port":%d}]}`, vipPort, deadPort)
	if body, _, err := c.Do("POST", "/api/v1/virtual-services", []byte(vs), "application/json", nil); err != nil {
		t.Fatalf("create: %v %s", err, body)
	}
	var events struct {
		Events []struct {
			VS, RS int
			To     string
			Reason string
		} `json:"events"`
	}
	// The first check runs at once and fails at once (refused); 2 failures make Down.
	testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
		body, _, err := c.Do("GET", "/api/v1/events?limit=10", nil, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(body, &events); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		for _, e := range events.Events {
			if e.RS != 0 && e.To == "Down" && strings.Contains(e.Reason, "refused") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", events)
	}, "a Down event of the real server")
	body, _, err := c.Do("GET", "/api/v1/status", nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"health": "Down"`, `"check": "tcp"`, `"status": "Down"`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("status lacks %s:\n%s", want, body)
		}
	}
	if _, _, err := c.Do("GET", "/api/v1/events?limit=x", nil, "", nil); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("bad limit: %v", err)
	}
}
