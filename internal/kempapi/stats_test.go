package kempapi

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestStatsLayer7 sends HTTP requests through a layer-7 service and reads
// stats: the service's and real server's bytes are the data plane's
// layer-7 counts (header and body), and TPS shows the request rate (SSL
// none: the service has no TLS).
func TestStatsLayer7(t *testing.T) {
	e := newEnv(t, envOpts{dataPlane: true})
	vip := "127.0.93.21"
	web := testkit.StartHTTP(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	vport := testkit.FreePort(t, vip)
	vs := fmt.Sprintf("vs=%s&port=%d&prot=tcp", vip, vport)
	e.ok1("addvs", vs+"&VStype=http&CheckType=tcp")
	e.ok1("addrs", fmt.Sprintf("%s&rs=%s&rsport=%d", vs, web.IP(), web.Port()))
	url := fmt.Sprintf("http://%s:%d/", vip, vport)
	answers(t, url, 1) // the service is up
	first := e.ok1("stats", "").data()
	if first.at("TPS") == nil || first.val("TPS", "Total") == "" || first.val("TPS", "SSL") == "" {
		t.Fatal("stats has no TPS group with Total and SSL")
	}
	const n = 50
	answers(t, url, n)
	var d *xnode
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		time.Sleep(1100 * time.Millisecond) // rates are measured between calls a second apart
		d = e.ok1("stats", "").data()
		tps, _ := strconv.Atoi(d.val("TPS", "Total"))
		return tps > 0, "TPS/Total " + d.val("TPS", "Total")
	}, "stats to show the request rate")
	if ssl := d.val("TPS", "SSL"); ssl != "0" {
		t.Errorf("TPS/SSL %s, want 0 (no TLS)", ssl)
	}
	st := e.eng.Status()[0]
	if got := d.val("Vs", "BytesRead"); got != strconv.FormatInt(st.BytesIn, 10) || st.BytesIn == 0 {
		t.Errorf("Vs/BytesRead %s, status bytesIn %d", got, st.BytesIn)
	}
	rs := st.RealServers[0]
	if got := d.val("Rs", "BytesRead"); got != strconv.FormatInt(rs.BytesOut, 10) || rs.BytesOut == 0 {
		t.Errorf("Rs/BytesRead %s, status bytesOut %d", got, rs.BytesOut)
	}
	if rs.Requests != n+1 {
		t.Errorf("real server requests %d, want %d", rs.Requests, n+1)
	}
}

// TestStatsShape holds the answer of stats to testdata/shapes/stats.txt:
// the top-level elements in order (repeated ones once), with their
// children in order.
func TestStatsShape(t *testing.T) {
	e := newEnv(t, envOpts{dataPlane: true})
	e.ok1("addvs", "vs=127.0.93.22&port=80&prot=tcp&VStype=http&CheckType=none")
	e.ok1("addrs", "vs=127.0.93.22&port=80&prot=tcp&rs=127.0.0.1&rsport=9")
	b, err := os.ReadFile(filepath.Join("testdata", "shapes", "stats.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	var got []string
	d := e.ok1("stats", "").data()
	for i, k := range d.kids {
		if i > 0 && d.kids[i-1].name == k.name {
			continue
		}
		line := k.name
		for _, c := range k.kids {
			line += " " + c.name
		}
		got = append(got, line)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stats shape:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
