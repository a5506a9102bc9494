package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestChangesAudited checks that the configuration changes made through
// the API are audited once each (by the write path, not the handler),
// with the caller, its interface, address, revision and summary, and that
// a dry run is not.
func TestChangesAudited(t *testing.T) {
	e := newEnv(t)
	e.must(req{method: "POST", path: "/api/v1/virtual-services", body: lyncVS}, http.StatusCreated)
	e.must(req{method: "POST", path: "/api/v1/virtual-services/1/real-servers?dryRun=true", body: `{"address":"127.0.0.4","port":9001}`}, http.StatusOK)
	e.must(req{method: "POST", path: "/api/v1/virtual-services/1/real-servers", body: `{"address":"127.0.0.4","port":9001}`}, http.StatusCreated)
	var audit auditList
	e.must(req{method: "GET", path: "/api/v1/audit?limit=100"}, http.StatusOK).json(t, &audit)
	var got []string
	for _, a := range audit.Entries {
		if a.Action != "config" {
			continue
		}
		if a.User != "bal" || a.Source != "api" || a.RemoteAddr != "127.0.0.1" || !a.Success {
			t.Errorf("config entry recorded as %+v", a)
		}
		got = append(got, a.Detail)
	}
	want := []string{"revision 2: add real server 127.0.0.4:9001 to 127.0.0.2:8080", "revision 1: add virtual service 127.0.0.2:8080"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("config audit entries %q, want %q", got, want)
	}
}
