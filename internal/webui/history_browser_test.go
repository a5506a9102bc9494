package webui_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/history"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestHistoryBrowser, in a real browser: traffic passes through a service
// while no page is open and the server's statistics history samples it
// (every 100 ms here); the dashboard and the service page, opened
// afterwards, graph that traffic from before they were opened, and then
// extend the graphs with new points.
func TestHistoryBrowser(t *testing.T) {
	a, err := appliance.Start(appliance.Options{DataDir: t.TempDir(), AdminAddr: "127.0.0.1:0",
		AdminPassword: adminPassword, BcryptCost: bcrypt.MinCost, HistoryInterval: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("close appliance: %v", err)
		}
	})
	be := startBackends(t, 1)[0]
	vip := testkit.LoopbackAddr()
	port := testkit.FreePort(t, vip)
	if _, err := a.Control.Apply(control.Change{Actor: control.Actor{User: "test", Source: control.SourceAPI},
		Mutate: func(c *config.Config) error {
			c.VirtualServices = append(c.VirtualServices, config.VirtualService{Address: vip, Port: port, Protocol: "tcp", Type: "gen",
				NickName: "history", HealthCheck: config.HealthCheck{Type: "none"},
				RealServers: []config.RealServer{{Address: be.addr, Port: be.port}}})
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	vsID := a.Control.Current().Config.VirtualServices[0].ID

	// Traffic while no page is open, until the history has it.
	gen := startTraffic(net.JoinHostPort(vip, fmt.Sprint(port)))
	testkit.Eventually(t, 15*time.Second, func() bool {
		d, err := a.History.Get(history.Query{Key: history.Key{VS: vsID}, Fields: []history.Field{history.BytesOutPerSec}})
		if err != nil {
			return false
		}
		n := 0
		for _, v := range d.Series["bytesOut"] {
			if v > 0 {
				n++
			}
		}
		return n >= 3
	}, "the history to sample traffic")
	if ok := gen.close(); ok == 0 {
		t.Fatal("no request went through")
	}

	b := newBrowser(t, a.AdminURL())
	b.open("/", "#login-submit")
	b.do(chromedp.SendKeys(chromedp.CSS("#f-user"), "bal"), chromedp.SendKeys(chromedp.CSS("#f-password"), adminPassword))
	b.submit("#login-submit", "#dashboard")

	// Points from before the page was opened, with traffic, in the big
	// graphs and in the service's mini graph.
	before := fmt.Sprintf(`(function(){var c=window.fulcrumCharts; if(!c||c.source!=="history") return false;
		var early=function(d, k){for(var i=0;i<d[0].length;i++){if(d[0][i]<c.openedAt&&d[k][i]>0) return true;} return false;};
		var v=c.vs[%q]; return early(c.bps.data,2) && early(c.conns.data,2) && !!v && early(v.plot.data,1);})()`, fmt.Sprint(vsID))
	if !testkit.Within(15*time.Second, func() bool { return eval[bool](b, before) }) {
		t.Fatalf("the dashboard does not graph the traffic from before it was opened: %s",
			eval[string](b, `JSON.stringify(window.fulcrumCharts && {source: window.fulcrumCharts.source, openedAt: window.fulcrumCharts.openedAt, bps: window.fulcrumCharts.bps.data})`))
	}
	// And it grows with points from after.
	if !testkit.Within(15*time.Second, func() bool {
		return eval[bool](b, `(function(){var t=window.fulcrumCharts.bps.data[0]; return t.length>0 && t[t.length-1]>window.fulcrumCharts.openedAt+1;})()`)
	}) {
		t.Error("the dashboard's graphs are not extended after the page opened")
	}
	if got := eval[bool](b, `document.getElementById("dash-range").hidden`); got {
		t.Error("the range switch is hidden")
	}
	b.shot("history-01-dashboard")
	// 24 h: the day ring (1-minute points; none yet at this age) replaces
	// the hour.
	b.do(chromedp.Click(chromedp.CSS(`#dash-range button[data-range="24h"]`)))
	if !testkit.Within(15*time.Second, func() bool {
		return eval[bool](b, `window.fulcrumCharts.history.range==="24h" && document.querySelector('#dash-range [data-range="24h"]').getAttribute("aria-pressed")==="true"`)
	}) {
		t.Error("the 24 h switch did not take")
	}

	// The service page.
	b.open(fmt.Sprintf("/vs/%d", vsID), "#vs-graphs")
	page := `(function(){var c=window.fulcrumCharts; if(!c||!c.vsBps) return false; var d=c.vsBps.data;
		for(var i=0;i<d[0].length;i++){if(d[0][i]<c.openedAt&&d[2][i]>0) return true;} return false;})()`
	if !testkit.Within(15*time.Second, func() bool { return eval[bool](b, page) }) {
		t.Errorf("the service page does not graph the traffic from before it was opened: %s",
			eval[string](b, `JSON.stringify(window.fulcrumCharts && window.fulcrumCharts.vsBps && window.fulcrumCharts.vsBps.data)`))
	}
	b.shot("history-02-vs")
	b.checkClean()
}
