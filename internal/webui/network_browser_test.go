package webui_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/store"
	"github.com/fulcrum-lb/fulcrum/internal/webui"
)

// startManaged serves the web UI over a controller that manages host (a
// network namespace of the test's own), on an HTTPS test server; it
// returns the controller and the server's URL.
func startManaged(t *testing.T, host control.Host) (*control.Controller, string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := dataplane.New(dataplane.Options{Logger: log})
	ctl, err := control.NewWith(st, eng, control.Options{Host: host, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	auth := admin.New(st, admin.Options{BcryptCost: bcrypt.MinCost, Logger: log})
	ctl.SetAuditor(auth)
	if _, err := auth.Bootstrap(adminPassword); err != nil {
		t.Fatal(err)
	}
	ui := webui.New(webui.Options{Control: ctl, Auth: auth, History: st, Logger: log, Status: eng})
	srv := httptest.NewTLSServer(ui.Handler())
	srv.Config.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	t.Cleanup(func() {
		srv.Close()
		ctl.Close()
		_ = eng.Close()
		_ = st.Close()
	})
	return ctl, srv.URL
}

// TestNetworkBrowser, in a real browser on a host of the test's own: a bad
// MTU is refused beside its field and nothing is stored; a VIP range is
// saved and applied with the confirm window, every page shows the banner
// with its countdown until the change is confirmed, then it is gone.
func TestNetworkBrowser(t *testing.T) {
	host, ns := webui.NewTestHost(t)
	ctl, base := startManaged(t, host)
	b := newBrowser(t, base)

	b.open("/network", "#login-submit")
	b.do(chromedp.SendKeys(chromedp.CSS("#f-user"), "bal"), chromedp.SendKeys(chromedp.CSS("#f-password"), adminPassword))
	b.submit("#login-submit", "#form-if-eth0")
	b.shotFull("20-network")

	// A bad MTU: the error is beside the field, what was typed is kept,
	// nothing is stored.
	b.set(map[string]string{"#f-if-eth0-addresses": "10.0.0.5/24", "#f-if-eth0-mtu": "20"})
	b.submit("#save-if-eth0", "#f-if-eth0-mtu-err")
	if got := b.text("#f-if-eth0-mtu-err"); !strings.Contains(got, "must be 576-9216") {
		t.Errorf("MTU error %q", got)
	}
	if v := eval[string](b, `document.getElementById("f-if-eth0-mtu").value`); v != "20" {
		t.Errorf("typed MTU not kept: %q", v)
	}
	if rev := ctl.Network().Revision; rev != 0 {
		t.Fatalf("a refused form was stored: network revision %d", rev)
	}
	b.shot("21-network-error")

	// An address and a VIP range: saved with the confirm window.
	b.set(map[string]string{"#f-if-eth0-mtu": "1500", "#f-if-eth0-vipRanges": "10.0.1.0/28"})
	b.submit("#save-if-eth0", "#net-pending")
	snap := ctl.Network()
	if snap.Revision != 1 || snap.Deadline.IsZero() {
		t.Fatalf("after saving: network revision %d, deadline %v", snap.Revision, snap.Deadline)
	}
	if f := snap.Network.Interface("eth0"); f == nil || len(f.VIPRanges) != 1 || f.VIPRanges[0] != "10.0.1.0/28" {
		t.Fatalf("eth0 settings: %+v", f)
	}
	if out := ns.IP("-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, "10.0.0.5/24") {
		t.Errorf("eth0 in the kernel: %s", out)
	}
	b.waitText("#net-pending", "Network change (revision 1) will be rolled back in", 10*time.Second)
	left := eval[int](b, `Number(document.getElementById("net-countdown").textContent)`)
	if left < 1 || left > 60 {
		t.Errorf("countdown shows %d s of a 60 s window", left)
	}
	b.shot("22-network-pending")

	// Every page shows it.
	b.open("/vs", "#net-pending")
	b.waitText("#net-pending", "Network change (revision 1)", 10*time.Second)

	// Confirm: the banner is gone, the change stays.
	b.submit("#net-confirm", "#flash")
	b.waitText("#flash", "confirmed", 10*time.Second)
	if eval[bool](b, `document.getElementById("net-pending") !== null`) {
		t.Error("the banner is still shown after the confirmation")
	}
	if loc := b.location(); !strings.HasSuffix(loc, "/vs") {
		t.Errorf("after confirming at %s, want the page the banner was on (/vs)", loc)
	}
	if s := ctl.Network(); !s.Deadline.IsZero() || s.Revision != 1 {
		t.Errorf("after confirming: revision %d, deadline %v", s.Revision, s.Deadline)
	}
	b.open("/network", "#form-if-eth0")
	if eval[bool](b, `document.getElementById("net-pending") !== null`) {
		t.Error("the banner is back on the network page")
	}
	if v := eval[string](b, `document.getElementById("f-if-eth0-vipRanges").value`); v != "10.0.1.0/28" {
		t.Errorf("VIP ranges shown: %q", v)
	}
	b.shotFull("23-network-confirmed")
	b.checkClean()
}
