package webui

import (
	"html"
	"regexp"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// TestRegistriesOffered checks that the service page offers every
// registered scheduling method and persistence mode, and the system page
// every value of "always check persist", each with its registered label.
func TestRegistriesOffered(t *testing.T) {
	ts := newTestServer(t)
	id := ts.addVS(t, "192.0.2.61")
	vsPage := ts.get("bal", "/vs/"+itoa(id)).Body.String()
	systemPage := ts.get("bal", "/system").Body.String()
	offered := func(page, value, label string) bool {
		re := regexp.MustCompile(`<option value="` + regexp.QuoteMeta(html.EscapeString(value)) + `"( selected)?>` +
			regexp.QuoteMeta(html.EscapeString(label)) + `</option>`)
		return re.MatchString(page)
	}
	for _, m := range balance.Registered() {
		if m.Label == "" || !offered(vsPage, m.Name, m.Label) {
			t.Errorf("the service page does not offer scheduling method %s as %q", m.Name, m.Label)
		}
	}
	for _, m := range persist.Registered() {
		if m.Label == "" || !offered(vsPage, m.Name, m.Label) {
			t.Errorf("the service page does not offer persistence mode %s as %q", m.Name, m.Label)
		}
	}
	for _, a := range persist.AlwaysRegistered() {
		if a.Label == "" || !offered(systemPage, a.Name, a.Label) {
			t.Errorf("the system page does not offer always persist %s as %q", a.Name, a.Label)
		}
	}
}
