package history

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestEngineTraffic samples a real data plane serving a layer-4 and a
// layer-7 service in front of a real server that answers with a body of
// known size: after n requests through each, the history's rates add up to
// the counters' growth. (Layer-7 bytes are counted by the data plane's
// HTTP counters, issue 19 item 1; the layer-4 service checks bytes.)
func TestEngineTraffic(t *testing.T) {
	body := strings.Repeat("x", 10_000)
	be := testkit.StartHTTP(t, testkit.LoopbackAddr(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	vip := testkit.LoopbackAddr()
	ports := testkit.FreePorts(t, vip, 2)
	doc := fmt.Sprintf(`{"virtualServices": [
		{"address": %[1]q, "port": %[2]d, "protocol": "tcp", "type": "gen", "healthCheck": {"type": "none"}, "realServers": [{"address": %[4]q, "port": %[5]d}]},
		{"address": %[1]q, "port": %[3]d, "protocol": "tcp", "type": "http", "healthCheck": {"type": "none"}, "realServers": [{"address": %[4]q, "port": %[5]d}]}]}`,
		vip, ports[0], ports[1], be.IP(), be.Port())
	cfg, err := config.Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cfg.SetDefaults()
	cfg.AssignIDs(nil)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	eng := dataplane.New(dataplane.Options{Logger: slog.New(slog.DiscardHandler), Budget: admission.ForLimit(4096)})
	defer eng.Close()
	if err := eng.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	l4ID, rsID, l7ID := cfg.VirtualServices[0].ID, cfg.VirtualServices[0].RealServers[0].ID, cfg.VirtualServices[1].ID

	clock := t0
	h := New(Options{Source: eng})
	h.Sample(clock)
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	const n = 40
	for i := range 2 * n {
		resp, err := hc.Get(fmt.Sprintf("http://%s:%d/", vip, ports[i%2]))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The counters are final once no connection is open.
	testkit.Eventually(t, 5*time.Second, func() bool {
		s := eng.Status()
		return s[0].ActiveConns == 0 && s[1].ActiveConns == 0 && s[0].BytesOut >= n*10_000
	}, "connections closed and counted")
	clock = clock.Add(2 * time.Second)
	h.Sample(clock)

	st := eng.Status()[0]
	vs := get(t, h, Query{Key: Key{VS: l4ID}})
	if got := lastOf(vs.Series["cps"]) * 2; got != n {
		t.Errorf("new connections over the interval = %v, want %d", got, n)
	}
	if got, want := float64(lastOf(vs.Series["bytesOut"]))*2, float64(st.BytesOut); want < n*10_000 || got < want*0.998 || got > want*1.002 {
		t.Errorf("bytes out over the interval = %v, want %v (≥ %d bodies)", got, want, n)
	}
	st7 := eng.Status()[1]
	web := get(t, h, Query{Key: Key{VS: l7ID}})
	if got, want := float64(lastOf(web.Series["rps"]))*2, float64(vsCounters(&st7).req); got != want || want != n {
		t.Errorf("requests over the interval = %v, want %v (= %d)", got, want, n)
	}
	if got := lastOf(web.Series["cps"]) * 2; got != n {
		t.Errorf("layer-7 client connections over the interval = %v, want %d", got, n)
	}
	rs := get(t, h, Query{Key: Key{VS: l4ID, RS: rsID}})
	if got, want := float64(lastOf(rs.Series["bytesOut"]))*2, float64(st.RealServers[0].BytesOut); got < want*0.998 || got > want*1.002 || want == 0 {
		t.Errorf("real server bytes out = %v, want %v", got, want)
	}
	total := get(t, h, Query{})
	if got, want := lastOf(total.Series["cps"]), lastOf(vs.Series["cps"])+lastOf(web.Series["cps"]); got != want {
		t.Errorf("total cps %v, want the services' sum %v", got, want)
	}
}
