package webui_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// TestLogsBrowser: in a real browser, sign in, see published events on the
// Logs page, filter them by severity and text, page back; then add a
// remote syslog host on Logging & alerts (with a mistake first) and find
// it in the configuration, and send a test event that the Logs page shows.
func TestLogsBrowser(t *testing.T) {
	a := startAppliance(t)
	b := newBrowser(t, a.AdminURL())

	b.open("/logs", "#login-submit")
	b.do(chromedp.SendKeys(chromedp.CSS("#f-user"), "bal"), chromedp.SendKeys(chromedp.CSS("#f-password"), adminPassword))
	b.submit("#login-submit", "#form-logs")

	// Events from the data plane's side of the appliance.
	for i := range 120 {
		a.Events.Publish(events.Event{Severity: events.Info, Kind: events.KindConfigChange, Message: fmt.Sprintf("browser test revision %d", i+1),
			Fields: map[string]string{"user": "alice"}})
	}
	a.Events.Publish(events.Event{Severity: events.Err, Kind: events.KindRSDown, Message: "real server 10.9.8.7:80 of shop is Down",
		Fields: map[string]string{"vs": "shop", "rs": "10.9.8.7:80", "reason": "connection refused"}})
	a.Events.Publish(events.Event{Severity: events.Warning, Kind: events.KindCertExpiring, Message: "certificate shop-cert expires in 9 days",
		Fields: map[string]string{"certificate": "shop-cert"}})
	a.Events.Publish(events.Event{Severity: events.Err, Kind: events.KindRSDown, Message: "real server 10.1.1.1:80 of intranet is Down",
		Fields: map[string]string{"vs": "intranet"}})

	// Newest first.
	b.open("/logs", "#logs-table")
	if got := b.text("#logs-table tbody tr:first-child"); !strings.Contains(got, "10.1.1.1:80 of intranet") || !strings.Contains(got, "err") {
		t.Errorf("first row %q", got)
	}
	b.shot("20-logs")

	// At least warning, with "shop": the two shop events, not intranet's.
	b.do(chromedp.SetValue(chromedp.CSS("#f-severity"), "warning"), chromedp.SendKeys(chromedp.CSS("#f-q"), "SHOP"))
	b.submit("#logs-filter", "#logs-table")
	rows := eval[[]string](b, `Array.from(document.querySelectorAll("#logs-table tbody tr")).map(function(r){return r.dataset.severity+" "+r.dataset.kind+" "+r.cells[3].textContent})`)
	want := []string{"warning cert.expiring certificate shop-cert expires in 9 days", "err rs.down real server 10.9.8.7:80 of shop is Down"}
	if strings.Join(rows, "|") != strings.Join(want, "|") {
		t.Errorf("filtered rows %q, want %q", rows, want)
	}
	if v := eval[string](b, `document.getElementById("f-q").value + "/" + document.getElementById("f-severity").value`); v != "SHOP/warning" {
		t.Errorf("the filter shows %q", v)
	}
	b.shot("21-logs-filtered")

	// Paging: the older page of everything ends with the oldest event.
	b.open("/logs?q=browser+test", "#logs-older")
	b.submit("#logs-older", "#logs-newest")
	if got := eval[string](b, `(function(){var r=document.querySelectorAll("#logs-table tbody tr"); return r[r.length-1].cells[3].textContent})()`); got != "browser test revision 1" {
		t.Errorf("last row of the older page %q", got)
	}

	// Logging & alerts: a syslog host, first with a bad port.
	b.open("/system/logging", "#syslog-add")
	b.set(map[string]string{"#f-syslog-new-address": "127.0.0.1", "#f-syslog-new-port": "70000", "#f-syslog-new-protocol": "tcp",
		"#f-syslog-new-severity": "warning"})
	b.submit("#syslog-add", "#f-syslog-new-port-err")
	if got := b.text("#f-syslog-new-port-err"); !strings.Contains(got, "must be 1-65535") {
		t.Errorf("port error %q", got)
	}
	if n := len(a.Control.Current().Config.Options.Logging.Syslog); n != 0 {
		t.Fatalf("a refused form stored %d hosts", n)
	}
	b.set(map[string]string{"#f-syslog-new-port": "1514"})
	b.do(chromedp.Click(chromedp.CSS("#f-syslog-new-accessLogs")))
	b.submit("#syslog-add", "#flash")
	b.waitText("#syslog-table", "127.0.0.1:1514", 10*time.Second)
	hosts := a.Control.Current().Config.Options.Logging.Syslog
	if len(hosts) != 1 || hosts[0].Address != "127.0.0.1" || hosts[0].Port != 1514 || hosts[0].Protocol != "tcp" || hosts[0].Severity != "warning" || !hosts[0].AccessLogs {
		t.Errorf("syslog hosts in the configuration: %+v", hosts)
	}
	if ch := a.Control.Current().Change; ch.Summary != "add syslog host tcp://127.0.0.1:1514" || ch.User != "bal" {
		t.Errorf("revision %+v", ch)
	}
	b.shotFull("22-logging")

	// The test event reaches the log.
	b.submit("#test-send", "#flash")
	b.open("/logs?kind=system", "#logs-table")
	if got := b.text("#logs-table tbody tr:first-child"); !strings.Contains(got, "Test event sent by bal") || !strings.Contains(got, "notice") {
		t.Errorf("test event row %q", got)
	}
	b.checkClean()
}
