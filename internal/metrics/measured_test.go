package metrics

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sum adds the values of the series of family name whose labels include
// want.
func sum(fams map[string]*familyData, name string, want map[string]string) (float64, bool) {
	fd, ok := fams[name]
	if !ok {
		return 0, false
	}
	var v float64
outer:
	for _, s := range fd.series {
		for k, x := range want {
			if s.labels[k] != x {
				continue outer
			}
		}
		v += s.value
	}
	return v, true
}

// TestHAProxyMeasured checks the values Fulcrum measures for the HAProxy
// families with real traffic: peak sessions after concurrent connections,
// request errors after malformed requests, connection reuses and
// attempts, connect and total times.
func TestHAProxyMeasured(t *testing.T) {
	r := newRig(t, true)
	web := strings.TrimPrefix(r.webURL, "http://")

	// Three client connections open at once.
	var held []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", web, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Two malformed requests, each answered with an error status.
	for _, raw := range []string{"NOT A REQUEST\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n"} {
		c := held[len(held)-1]
		held = held[:len(held)-1]
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("answer to %q: %v", raw, err)
		}
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("answer to %q: %d, want 4xx", raw, resp.StatusCode)
		}
		_ = resp.Body.Close()
		_ = c.Close()
	}
	for _, c := range held {
		_ = c.Close()
	}
	r.traffic(t, 20) // keep-alive requests: Fulcrum reuses its connections to the servers

	fams := parse(t, r.scrape(t))
	web1 := map[string]string{"proxy": "web"}
	get := func(name string, labels map[string]string) float64 {
		t.Helper()
		v, ok := sum(fams, name, labels)
		if !ok {
			t.Fatalf("%s not in the scrape", name)
		}
		return v
	}
	if v := get("haproxy_frontend_max_sessions", web1); v < 3 {
		t.Errorf("frontend max_sessions = %v after 3 concurrent connections", v)
	}
	if v := get("haproxy_frontend_request_errors_total", web1); v != 2 {
		t.Errorf("frontend request_errors_total = %v after 2 malformed requests", v)
	}
	reuses := get("haproxy_server_connection_reuses_total", web1)
	established := get("haproxy_server_sessions_total", web1)
	if reuses < 1 {
		t.Errorf("server connection_reuses_total = %v after 20 keep-alive requests", reuses)
	}
	if b := get("haproxy_backend_connection_reuses_total", web1); b != reuses {
		t.Errorf("backend connection_reuses_total = %v, its servers' sum %v", b, reuses)
	}
	// Every request went on a new or a kept connection.
	if reqs := get("fulcrum_rs_requests_total", map[string]string{"vs": "1"}); reuses+established != reqs {
		t.Errorf("reuses %v + connections %v != requests to the servers %v", reuses, established, reqs)
	}
	if a, e := get("haproxy_server_connection_attempts_total", web1), established+get("haproxy_server_connection_errors_total", web1); a != e {
		t.Errorf("connection_attempts_total = %v, want established + failed = %v", a, e)
	}
	if v := get("haproxy_server_max_sessions", web1); v < 1 {
		t.Errorf("server max_sessions = %v after traffic", v)
	}
	for _, name := range []string{"haproxy_server_connect_time_average_seconds", "haproxy_server_max_connect_time_seconds",
		"haproxy_server_max_total_time_seconds", "haproxy_server_total_time_average_seconds",
		"haproxy_backend_max_response_time_seconds", "haproxy_backend_max_total_time_seconds"} {
		if v := get(name, web1); v <= 0 {
			t.Errorf("%s = %v after traffic, want > 0", name, v)
		}
	}
	// The layer-4 service's connect time is measured too.
	if v := get("haproxy_server_max_connect_time_seconds", map[string]string{"proxy": r.tcpProxy(t, fams)}); v <= 0 {
		t.Errorf("layer-4 server max_connect_time = %v after a connection", v)
	}
	if v := get("haproxy_process_bytes_out_total", nil); v <= 0 {
		t.Errorf("process bytes_out_total = %v after traffic", v)
	}
}

// tcpProxy returns the proxy label of the layer-4 service.
func (r *rig) tcpProxy(t *testing.T, fams map[string]*familyData) string {
	for _, s := range fams["haproxy_frontend_sessions_total"].series {
		if s.labels["proxy"] != "web" {
			return s.labels["proxy"]
		}
	}
	t.Fatal("no layer-4 frontend")
	return ""
}
