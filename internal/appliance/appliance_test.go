package appliance

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/console"
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
