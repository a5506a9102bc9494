package webui_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
	"github.com/fulcrum-lb/fulcrum/internal/verify"
)

// browser drives one headless chromium tab.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string // screenshots

	mu     sync.Mutex
	issues []string // console errors and CSP violations
}

// newBrowser starts Debian's chromium, headless, with a fresh profile.
func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("hide-scrollbars", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, base: base, dir: artifactDir(t)}
	t.Cleanup(func() {
		cancel()
		acancel()
	})
	// Start the browser and listen for console errors and CSP reports.
	if _, err := chromedp.Call(ctx, log.Enable, struct{}{}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b.viewport(1280, 800)
	entries := chromedp.Events(ctx, log.EntryAdded)
	exceptions := chromedp.Events(ctx, cdpruntime.ExceptionThrown)
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if e := ev.Entry; e != nil && (e.Level == log.EntryLevelError || strings.Contains(e.Text, "Content Security Policy")) {
				b.note(fmt.Sprintf("console %s: %s (%s)", e.Level, e.Text, e.URL))
			}
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			if d := ev.ExceptionDetails; d != nil {
				msg := d.Text
				if d.Exception != nil {
					msg += " " + d.Exception.Description
				}
				b.note("exception: " + msg)
			}
		}
	}()
	return b
}

func (b *browser) note(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.issues = append(b.issues, s)
}

// expectedIssue reports whether a console error is one the test causes on
// purpose: the 4xx answers of refused form posts.
func expectedIssue(s string) bool {
	return strings.Contains(s, "status of 422") || strings.Contains(s, "status of 401") ||
		strings.Contains(s, "status of 429") || strings.Contains(s, "status of 409")
}

// checkClean fails on console errors and CSP violations seen so far.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.issues {
		if !expectedIssue(s) {
			b.t.Errorf("browser reported: %s", s)
		}
	}
	b.issues = nil
}

// do runs actions with a deadline.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.location())
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 3*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// open navigates to a path and waits for sel.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// text returns an element's text.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v (at %s)", sel, err, b.location())
	}
	return strings.TrimSpace(s)
}

// eval evaluates JavaScript returning T.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitText waits until sel's text contains want.
func (b *browser) waitText(sel, want string, d time.Duration) {
	b.t.Helper()
	var last string
	ok := testkit.Within(d, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.AtLeast(0)))
		last = s
		return err == nil && strings.Contains(s, want)
	})
	if !ok {
		b.t.Fatalf("%s: want text containing %q, have %q (at %s)", sel, want, last, b.location())
	}
}

// set sets form fields by CSS selector.
func (b *browser) set(fields map[string]string) {
	b.t.Helper()
	for sel, v := range fields {
		b.do(chromedp.SetValue(chromedp.CSS(sel), v))
	}
}

// submit clicks a submit button and waits for sel on the next page.
func (b *browser) submit(button, sel string) {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.stale = "1"`), chromedp.Click(chromedp.CSS(button)))
	b.waitNewPage()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
}

// waitNewPage waits until the page marked stale has been replaced by a
// loaded one.
func (b *browser) waitNewPage() {
	b.t.Helper()
	ok := testkit.Within(15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer cancel()
		fresh, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!document.documentElement.dataset.stale && document.readyState === "complete"`))
		return err == nil && fresh
	})
	if !ok {
		b.t.Fatalf("no new page after the submit (at %s)", b.location())
	}
}

// confirm clicks a button that opens the confirmation dialog, confirms,
// and waits for sel.
func (b *browser) confirm(button, sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(button)), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog[open] #confirm-ok")))
	b.submit("#confirm-ok", sel)
}

// shot saves a PNG screenshot of what the window shows.
func (b *browser) shot(name string) { b.screenshot(name, false) }

// shotFull saves what the window shows and, as NAME-full.png, the whole
// page.
func (b *browser) shotFull(name string) { b.screenshot(name, true) }

func (b *browser) screenshot(name string, full bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	view, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+".png"), view, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if !full {
		return
	}
	page, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, name+"-full.png"), page, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// viewport sets the window's size.
func (b *browser) viewport(w, h int64) {
	b.do(chromedp.EmulateViewport(w, h))
}

// rsStates counts a service's real servers by the state the UI must show,
// derived from the data plane's own status: its state, or "Up" for an
// enabled real server whose health check passes.
func rsStates(a *appliance.Appliance, vsID int) map[string]int {
	out := map[string]int{}
	for _, rs := range rsStatuses(a, vsID) {
		out[rs.display()]++
	}
	return out
}

// rsView is the part of status.RS the tests compare, read through its
// JSON form.
type rsView struct {
	ID     int          `json:"id"`
	State  status.State `json:"state"`
	Health status.State `json:"health"`
}

func (r rsView) display() string {
	if r.State == status.Enabled && r.Health == status.Up {
		return string(status.Up)
	}
	return string(r.State)
}

func rsStatuses(a *appliance.Appliance, vsID int) []rsView {
	raw, _ := json.Marshal(vsStatus(a, vsID).RealServers)
	var out []rsView
	_ = json.Unmarshal(raw, &out)
	return out
}

func vsStatus(a *appliance.Appliance, id int) status.VS {
	for _, v := range a.Engine.Status() {
		if v.ID == id {
			return v
		}
	}
	return status.VS{}
}

// TestWalkthrough does the Lync 2013 walk-through in a real browser:
// system options, certificate and intermediate import, a 443→4443 style
// service with super HTTP and source IP persistence and least connection,
// three real servers, the dashboard with live status and graphs, disabling
// a real server, the revision diff and a rollback — saving a screenshot of
// every main screen.
func TestWalkthrough(t *testing.T) {
	a := startAppliance(t)
	b := newBrowser(t, a.AdminURL())
	backends := startBackends(t, 3)
	leafPEM, interPEM := certFiles(t)
	vip := testkit.LoopbackAddr()
	vipPort := testkit.FreePort(t, vip)

	// Sign in. Unauthenticated pages send the browser to the login page.
	b.open("/vs", "#login-submit")
	b.shot("01-login")
	b.do(chromedp.SendKeys(chromedp.CSS("#f-user"), "bal"), chromedp.SendKeys(chromedp.CSS("#f-password"), adminPassword))
	b.submit("#login-submit", "#vs-table, .empty")
	if loc := b.location(); !strings.HasSuffix(loc, "/vs") {
		t.Errorf("after login at %s, want the page asked for (/vs)", loc)
	}

	// Keyboard: the first Tab reaches the skip link, the next ones the
	// navigation in page order, each with a visible focus ring.
	b.do(chromedp.KeyEvent(kb.Tab))
	if got := eval[string](b, `document.activeElement.className + ":" + document.activeElement.getAttribute("href")`); got != "skip:#main" {
		t.Errorf("first Tab focuses %q, want the skip link", got)
	}
	b.do(chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab))
	if got := eval[string](b, `document.activeElement.textContent.trim() + "|" + getComputedStyle(document.activeElement).outlineStyle`); got != "Dashboard|solid" {
		t.Errorf("third Tab focuses %q, want the Dashboard link with a focus ring", got)
	}

	// System Configuration: the Lync 2013 general settings.
	b.open("/system", "#system-save")
	b.do(chromedp.Click(chromedp.CSS("#f-subnetOriginating")), chromedp.Click(chromedp.CSS("#f-dropOnFail")))
	b.set(map[string]string{"#f-drainTime": "86400"})
	b.submit("#system-save", "#flash")
	b.waitText("#flash", "System configuration", 15*time.Second)
	opts := a.Control.Current().Config.Options
	if opts.SNAT || !opts.SubnetOriginating || !opts.DropOnFail || opts.DrainTime != 86400 {
		t.Errorf("options after save: %+v", opts)
	}
	// A value out of range is refused next to its field, keeping what was typed.
	b.set(map[string]string{"#f-connTimeout": "999999"})
	b.submit("#system-save", ".field.invalid")
	if got := b.text("#f-connTimeout-err"); !strings.Contains(got, "must be 1-86400") {
		t.Errorf("connTimeout error %q", got)
	}
	if v := eval[string](b, `document.getElementById("f-connTimeout").value`); v != "999999" {
		t.Errorf("typed value not kept: %q", v)
	}
	b.shot("02-system-error")
	b.open("/system", "#system-save")
	b.shotFull("02-system")

	// Certificates: the certificate with its key, then the intermediate.
	b.open("/certificates", "#cert-import")
	b.set(map[string]string{"#f-name": "lync-public"})
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#f-file"), []string{leafPEM}))
	b.submit("#cert-import", "#flash")
	b.set(map[string]string{"#f-name": "issuing-ca"})
	b.do(chromedp.Click(chromedp.CSS("#kind-inter")), chromedp.SetUploadFiles(chromedp.CSS("#f-file"), []string{interPEM}))
	b.submit("#cert-import", "#flash")
	b.waitText("#cert-table", "issuing-ca", 15*time.Second)
	b.waitText("#cert-table", "meet.example.com", 15*time.Second)
	b.shotFull("03-certificates")

	// Virtual Services > Add New with the Lync 2013 Reverse Proxy template:
	// the VIP, and port "443" changed to a free port here; the template asks
	// for the certificate (the only one is offered) and the HTTP service's
	// port.
	b.open("/vs/new", "#vs-add")
	b.set(map[string]string{"#f-address": vip, "#f-port": fmt.Sprint(vipPort), "#f-template": "lync2013-reverse-proxy"})
	b.shot("04-vs-new")
	b.submit("#vs-add", "#template-add")
	if v := eval[string](b, `document.getElementById("f-parameters-certificate").value`); v != "lync-public" {
		t.Errorf("certificate offered %q, want lync-public", v)
	}
	if v := eval[string](b, `document.getElementById("f-parameters-vip").value`); v != vip {
		t.Errorf("VIP carried over %q, want %s", v, vip)
	}
	b.set(map[string]string{"#f-svcport-1": fmt.Sprint(testkit.FreePort(t, vip))})
	b.shotFull("04-template")
	b.submit("#template-add", "#form-standard")
	cfg := a.Control.Current().Config
	if len(cfg.VirtualServices) != 2 {
		t.Fatalf("services after the template: %d", len(cfg.VirtualServices))
	}
	vsID := cfg.VirtualServices[0].ID
	vsPath := fmt.Sprintf("/vs/%d", vsID)
	if loc := b.location(); !strings.HasSuffix(loc, vsPath) {
		t.Errorf("after the template at %s, want %s", loc, vsPath)
	}
	if v := cfg.VirtualServices[0]; v.NickName != "Lync Reverse Proxy HTTPS" || v.Port != vipPort || v.Address != vip {
		t.Errorf("first service %s %s:%d", v.NickName, v.Address, v.Port)
	}
	if ch := a.Control.Current().Change; ch.Summary != "template lync2013-reverse-proxy: 2 virtual services" || ch.Source != "wui" {
		t.Errorf("template revision %+v", ch)
	}

	// View/Modify: Standard Options say Super HTTP and source IP, least
	// connection (set again, as the walk-through does); SSL Properties have
	// the certificate assigned.
	if m := eval[string](b, `document.getElementById("f-standard-persistence-mode").value`); m != "super-src" {
		t.Errorf("persistence mode from the template %q", m)
	}
	b.set(map[string]string{"#f-standard-persistence-mode": "super-src", "#f-standard-schedule": "lc"})
	b.submit("#form-standard button[type=submit]", "#flash")
	if !eval[bool](b, `document.querySelector('#form-ssl input[name="tls.certificates"][value="lync-public"]').checked`) {
		t.Error("the certificate is not assigned in SSL properties")
	}
	b.do(chromedp.Click(chromedp.CSS(`#form-ssl input[name="tls.versions"][value="1.3"]`)),
		chromedp.Click(chromedp.CSS(`#form-ssl input[name="tls.versions"][value="1.2"]`)))
	b.submit("#save-ssl", "#flash")
	v := a.Control.Current().Config.VirtualServiceByID(vsID)
	if v.Persistence.Mode != "super-src" || v.Schedule != "lc" || !v.TLS.Offload || len(v.TLS.Certificates) != 1 || v.TLS.Certificates[0] != "lync-public" ||
		len(v.TLS.Versions) != 2 {
		t.Fatalf("service after standard and SSL: %+v %+v %+v", v.Persistence, v.Schedule, v.TLS)
	}

	// Real servers: a mistake first (port 70000), then the three front ends.
	b.set(map[string]string{"#f-rs-address": backends[0].addr, "#f-rs-port": "70000"})
	b.submit("#rs-add", "#f-rs-port-err")
	if got := b.text("#f-rs-port-err"); !strings.Contains(got, "must be 1-65535, got 70000") {
		t.Errorf("port error %q", got)
	}
	if v := eval[string](b, `document.getElementById("f-rs-port").value`); v != "70000" {
		t.Errorf("typed port not kept: %q", v)
	}
	for _, be := range backends {
		b.set(map[string]string{"#f-rs-address": be.addr, "#f-rs-port": fmt.Sprint(be.port)})
		b.submit("#rs-add", "#flash")
	}
	v = a.Control.Current().Config.VirtualServiceByID(vsID)
	if len(v.RealServers) != 3 {
		t.Fatalf("real servers: %d", len(v.RealServers))
	}
	b.waitText("#rs-table", backends[2].addr, 15*time.Second)
	// The template checks the Front Ends' external site (HTTPS on 4443);
	// these test servers speak plain HTTP on their own port, so the admin
	// adjusts the health check, as one does for a lab: then they come Up.
	b.set(map[string]string{"#f-health-healthCheck-type": "http", "#f-health-healthCheck-port": "0",
		"#f-health-healthCheck-url": "/", "#f-health-healthCheck-method": "GET"})
	b.submit("#form-health button[type=submit]", "#flash")
	if hc := a.Control.Current().Config.VirtualServiceByID(vsID).HealthCheck; hc.Type != "http" || hc.Port != 0 || hc.URL != "/" {
		t.Fatalf("health check after the form: %+v", hc)
	}
	b.shotFull("05-vs")

	// A second, layer-4 service over the same front ends carries traffic
	// for the graphs whatever the layer-7 engine does with TLS.
	owa := testkit.LoopbackAddr()
	owaPort := testkit.FreePort(t, owa)
	b.open("/vs/new", "#vs-add")
	b.set(map[string]string{"#f-address": owa, "#f-port": fmt.Sprint(owaPort), "#f-nickname": "Office Web Apps"})
	b.submit("#vs-add", "#form-rs")
	for _, be := range backends {
		b.set(map[string]string{"#f-rs-address": be.addr, "#f-rs-port": fmt.Sprint(be.port)})
		b.submit("#rs-add", "#flash")
	}
	owaID := a.Control.Current().Config.VirtualServices[2].ID
	traffic := startTraffic(fmt.Sprintf("%s:%d", owa, owaPort))

	// Dashboard: every service with the state the data plane reports, and
	// graphs that move.
	b.open("/", "#dashboard")
	// The three real servers pass their checks: the dashboard says so.
	b.waitText(fmt.Sprintf(`[data-vs-rs="%d"]`, vsID), "3 Up", 30*time.Second)
	wantRS := rsStates(a, vsID)
	if wantRS[string(status.Up)] != 3 {
		t.Errorf("data plane reports %v, want 3 Up", wantRS)
	}
	for state, n := range wantRS {
		b.waitText(fmt.Sprintf(`[data-vs-rs="%d"]`, vsID), fmt.Sprintf("%d %s", n, state), 20*time.Second)
	}
	b.waitText(fmt.Sprintf(`[data-vs-state="%d"]`, vsID), string(vsStatus(a, vsID).State), 20*time.Second)
	graphs := func() bool {
		return eval[bool](b, `(function(){var c=window.fulcrumCharts; if(!c) return false;
			var d=c.bps.data, o=c.vs[`+fmt.Sprintf("%q", fmt.Sprint(owaID))+`];
			var any=function(a){return (a||[]).some(function(x){return x>0})};
			return any(d[1]) && any(c.conns.data[2]) && o && any(o.plot.data[1]);})()`)
	}
	if !testkit.Within(20*time.Second, graphs) {
		t.Errorf("the graphs show no traffic: %s", eval[string](b, `JSON.stringify(window.fulcrumCharts && window.fulcrumCharts.bps.data)`))
	}
	if s := b.text("#stat-bps"); s == "–" || strings.HasPrefix(s, "0 ") {
		t.Errorf("throughput readout %q", s)
	}
	if s := b.text(fmt.Sprintf(`[data-vs-bps="%d"]`, owaID)); s == "–" {
		t.Errorf("per-service throughput readout %q", s)
	}
	b.shotFull("06-dashboard")
	if n := traffic.close(); n == 0 {
		t.Error("no request went through the layer-4 service")
	}

	// Verify deployment: the template's smoke checks sent through the
	// service, trusting the issuing CA pasted in the form; the rows are
	// what verify.Run reports for the same configuration.
	b.open("/verify", "#verify-run")
	interData, err := os.ReadFile(interPEM)
	if err != nil {
		t.Fatal(err)
	}
	b.set(map[string]string{"#f-caPem": string(interData)})
	b.submit("#verify-run", "#verify-table")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(interData)
	want := verify.Run(b.ctx, a.Control.Current().Config, verify.Options{Roots: roots, Timeout: 10 * time.Second})
	type verifyRow struct {
		Check, Pass, Status string
	}
	rows := eval[[]verifyRow](b, `Array.from(document.querySelectorAll("#verify-table tbody tr")).map(function(r){
		return {Check: r.dataset.check, Pass: r.dataset.pass, Status: r.dataset.status}})`)
	if len(want) == 0 || len(rows) != len(want) {
		t.Errorf("verify: %d rows, verify.Run reports %d", len(rows), len(want))
	}
	for i := 0; i < len(rows) && i < len(want); i++ {
		w := want[i]
		if got := rows[i]; got != (verifyRow{w.Check, fmt.Sprint(w.Pass), fmt.Sprint(w.Status)}) {
			t.Errorf("verify row %d: %+v, verify.Run reports %q pass=%v status=%d (%s)", i, got, w.Check, w.Pass, w.Status, w.Error)
		}
	}
	b.shotFull("18-verify")

	// Disable one real server and see it change, on the service page and
	// on the dashboard.
	rs := a.Control.Current().Config.VirtualServiceByID(vsID).RealServers[1]
	b.open(vsPath, "#rs-table")
	b.submit(fmt.Sprintf("#rs-disable-%d", rs.ID), "#flash")
	b.waitText(fmt.Sprintf("#rs-state-%d", rs.ID), "Disabled", 15*time.Second)
	if got := rsStates(a, vsID)[string(status.Disabled)]; got != 1 {
		t.Errorf("data plane reports %d disabled real servers, want 1", got)
	}
	b.open("/", "#dashboard")
	b.waitText(fmt.Sprintf(`[data-vs-rs="%d"]`, vsID), "1 Disabled", 20*time.Second)
	b.shot("07-dashboard-disabled")

	// View/Modify Services list.
	b.open("/vs", "#vs-table")
	b.waitText("#vs-table", "Lync Reverse Proxy HTTPS", 15*time.Second)
	b.shot("08-vs-list")

	// Configuration history: the diff of the disable, then roll back.
	disabledRev := a.Control.Current().Revision
	b.open("/history", "#history-table")
	b.shotFull("09-history")
	b.open(fmt.Sprintf("/history/%d", disabledRev), "#diff-table")
	if got := b.text("#diff-table"); !strings.Contains(got, "enabled") || !strings.Contains(got, "true") || !strings.Contains(got, "false") {
		t.Errorf("diff of the disable: %q", got)
	}
	b.shot("10-revision-diff")
	b.open(fmt.Sprintf("/history/%d", disabledRev-1), "#rollback")
	b.confirm("#rollback", "#history-table")
	if got := a.Control.Current().Config.VirtualServiceByID(vsID).RealServerByID(rs.ID); got == nil || !config.IsTrue(got.Enabled) {
		t.Errorf("after rollback the real server is %+v, want enabled", got)
	}
	if sum := a.Control.Current().Change.Summary; sum != fmt.Sprintf("rollback to revision %d", disabledRev-1) {
		t.Errorf("rollback revision summary %q", sum)
	}
	b.open(vsPath, "#rs-table")
	b.waitText(fmt.Sprintf("#rs-state-%d", rs.ID), vsRSState(a, vsID, rs.ID), 15*time.Second)

	// Live: another administrator disables a real server (through the
	// write path, as the API would); the open page shows it without
	// reloading.
	other := a.Control.Current().Config.VirtualServiceByID(vsID).RealServers[2]
	b.do(chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.stale = "1"`))
	if _, err := a.Control.Apply(control.Change{Actor: control.Actor{User: "alice", Source: control.SourceAPI},
		Mutate: func(c *config.Config) error {
			c.VirtualServiceByID(vsID).RealServerByID(other.ID).Enabled = config.Bool(false)
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	b.waitText(fmt.Sprintf("#rs-state-%d", other.ID), "Disabled", 15*time.Second)
	if !eval[bool](b, `document.documentElement.dataset.stale === "1"`) {
		t.Error("the page reloaded instead of updating in place")
	}

	// The other screens.
	b.open("/users", "#form-key")
	b.shotFull("11-users")
	b.open("/audit", "#audit-table")
	b.shot("12-audit")
	b.open("/backup", "#h-backup")
	b.shot("13-backup")

	// Phone width.
	b.viewport(390, 844)
	b.open("/", "#dashboard")
	b.shotFull("14-dashboard-phone")
	b.open(vsPath, "#rs-table")
	b.shotFull("15-vs-phone")
	b.do(chromedp.Click(chromedp.CSS("#menu-toggle")), chromedp.WaitVisible(chromedp.CSS("#main-nav")))
	b.shot("16-menu-phone")
	b.viewport(1280, 800)

	b.checkClean()
}

// vsRSState is the state the UI must show for one real server.
func vsRSState(a *appliance.Appliance, vsID, rsID int) string {
	for _, rs := range rsStatuses(a, vsID) {
		if rs.ID == rsID {
			return rs.display()
		}
	}
	return ""
}
