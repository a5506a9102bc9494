package webui

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestServicePageCounters sends real requests through a layer-7 service
// and checks that its page and its real server's page show the request
// counters, the responses by class and a response time.
func TestServicePageCounters(t *testing.T) {
	ts := newTestServer(t)
	web := testkit.StartHTTP(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	vip := "127.0.93.31"
	port := testkit.FreePort(t, vip)
	w := ts.post("bal", "/vs/new", url.Values{"address": {vip}, "port": {itoa(port)}, "protocol": {"tcp"}, "type": {"http"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("add service: %d %s", w.Code, w.Body)
	}
	v := ts.ctl.Current().Config.VirtualServices
	id := v[len(v)-1].ID
	w = ts.post("bal", "/vs/"+itoa(id)+"/rs", url.Values{"address": {"127.0.0.1"}, "port": {itoa(web.Port())}, "weight": {"1"}, "enabled": {"on"}})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("add real server: %d %s", w.Code, w.Body)
	}
	rsID := ts.ctl.Current().Config.VirtualServiceByID(id).RealServers[0].ID
	// Source-IP persistence, whose table the page shows too.
	if _, err := ts.ctl.Apply(control.Change{Summary: "persist", Mutate: func(c *config.Config) error {
		c.VirtualServiceByID(id).Persistence = config.Persistence{Mode: "src"}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	base := fmt.Sprintf("http://%s:%d", vip, port)
	testkit.Eventually(t, 15*time.Second, func() bool {
		resp, err := c.Get(base + "/")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "the service to answer")
	sent := 0
	for _, path := range []string{"/missing", "/missing", "/", "/"} {
		c.CloseIdleConnections() // a new connection: persistence is looked up again
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		sent++
	}
	// Requests before the service was up were answered by Fulcrum: count
	// the real server's from the status.
	var reqs int64
	testkit.Eventually(t, 5*time.Second, func() bool {
		st := ts.s.statusByID()[id]
		if st.L7 == nil || len(st.RealServers) == 0 {
			return false
		}
		reqs = st.RealServers[0].Requests
		return st.L7.HTTP.Responses.C4xx == 2 && reqs >= int64(sent+1)
	}, "the requests to be counted")
	st := ts.s.statusByID()[id]
	page := ts.get("readonly", "/vs/"+itoa(id)).Body.String()
	for _, want := range []string{
		fmt.Sprintf(`id="vs-head-reqs">%d`, st.L7.HTTP.Requests),
		`id="vs-head-resp">` + classes(st.L7.HTTP.Responses),
		fmt.Sprintf(`id="rs-reqs-%d" title="Responses: 2xx %d · 4xx 2">%d<`, rsID, reqs-2, reqs),
		fmt.Sprintf(`id="rs-rtime-%d">`, rsID),
		fmt.Sprintf(`id="vs-head-persist">1 clients · %d hits · %d misses<`, st.Persistence.Hits, st.Persistence.Misses),
	} {
		if !strings.Contains(page, want) {
			t.Errorf("service page lacks %q", want)
		}
	}
	if strings.Contains(page, fmt.Sprintf(`id="rs-rtime-%d">–<`, rsID)) {
		t.Error("service page shows no response time for a real server that answered")
	}
	live := ts.get("readonly", "/vs/"+itoa(id)+"/live").Body.String()
	if !strings.Contains(live, fmt.Sprintf(`id="vs-head-reqs" hx-swap-oob="true">%d`, st.L7.HTTP.Requests)) {
		t.Errorf("live fragment lacks the request count: %.300s", live)
	}
	if !strings.Contains(live, `id="vs-head-persist" hx-swap-oob="true">1 clients · `) || st.Persistence.Hits == 0 {
		t.Errorf("live fragment lacks the persistence table (hits %d): %.600s", st.Persistence.Hits, live)
	}
	rsPage := ts.get("readonly", "/vs/"+itoa(id)+"/rs/"+itoa(rsID)).Body.String()
	for _, want := range []string{fmt.Sprintf(`id="rs-head-reqs">%d<`, reqs), `id="rs-head-resp">2xx`, `id="rs-head-rtime">`} {
		if !strings.Contains(rsPage, want) {
			t.Errorf("real-server page lacks %q", want)
		}
	}
}
