package metrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

const shapeFile = "testdata/haproxy-2.6-families.txt"

// shape is a family's type and label names.
type shape struct {
	typ    string
	labels []string
}

// readShapes reads a file of "name type label,label" lines (# comments).
func readShapes(t testing.TB, path string) map[string]shape {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]shape{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		var s shape
		switch len(fields) {
		case 1:
		case 2:
			s.labels = strings.Split(fields[1], ",")
		case 3:
			s.typ = fields[1]
			s.labels = strings.Split(fields[2], ",")
		default:
			t.Fatalf("%s: bad line %q", path, line)
		}
		if len(s.labels) == 1 && (s.labels[0] == "" || s.labels[0] == "-") {
			s.labels = nil
		}
		out[fields[0]] = s
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHAProxyShapes checks that every HAProxy-compatible family has the
// type and labels of HAProxy 2.6's exporter. With -update it runs
// Debian's haproxy (built with USE_PROMEX) with a frontend, a backend and
// a server, scrapes its exporter and rewrites the shape file.
func TestHAProxyShapes(t *testing.T) {
	if *update {
		writeHAProxyShapes(t)
	}
	shapes := readShapes(t, shapeFile)
	if len(shapes) < 100 {
		t.Fatalf("%s holds %d families; regenerate it with -update", shapeFile, len(shapes))
	}
	for _, f := range families {
		if f.Scheme != SchemeHAProxy {
			continue
		}
		s, ok := shapes[f.Name]
		if !ok {
			s, ok = beyond26[f.Name]
		}
		if !ok {
			t.Errorf("%s is not a family of HAProxy 2.6's exporter", f.Name)
			continue
		}
		if string(f.Kind) != s.typ && typeExceptions[f.Name] != string(f.Kind) {
			t.Errorf("%s is a %s, HAProxy's is a %s", f.Name, f.Kind, s.typ)
		}
		if a, b := strings.Join(sorted(f.Labels), ","), strings.Join(sorted(s.labels), ","); a != b {
			t.Errorf("%s has labels %s, HAProxy's has %s", f.Name, a, b)
		}
	}
	// Every family left out has a reason for the documentation.
	for name := range shapes {
		if !exposed(name) && LeftOutReason(name) == "" {
			t.Errorf("HAProxy family %s is neither exposed nor given a reason in leftOutRules", name)
		}
	}
}

// beyond26 are the families dashboard 12693 queries that HAProxy 2.6's
// exporter does not have, with the shape of their siblings (a server's
// limit_session_rate as a frontend's, with the server label).
var beyond26 = map[string]shape{
	"haproxy_server_limit_session_rate": {typ: "gauge", labels: []string{"proxy", "server"}},
}

// typeExceptions are the families whose type differs from HAProxy's, and
// the type Fulcrum gives them: a counter without the _total suffix fails
// promtool check metrics.
var typeExceptions = map[string]string{
	"haproxy_process_failed_resolutions": "gauge",
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func exposed(name string) bool {
	for _, f := range families {
		if f.Name == name {
			return true
		}
	}
	return false
}

func writeHAProxyShapes(t *testing.T) {
	haproxy := need(t, "haproxy", "haproxy")
	out, err := exec.Command(haproxy, "-vv").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "+PROMEX") {
		t.Fatalf("haproxy -vv: %v (built without PROMEX?)\n%s", err, out)
	}
	version := strings.Fields(strings.SplitN(string(out), "\n", 2)[0])
	backend := testkit.StartHTTP(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	ports := testkit.FreePorts(t, "127.0.0.1", 2)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global
  log stdout format raw local0
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend exporter
  bind 127.0.0.1:%d
  http-request use-service prometheus-exporter if { path /metrics }
frontend web
  bind 127.0.0.1:%d
  default_backend app
backend app
  server s1 127.0.0.1:%d check
`, ports[0], ports[1], backend.Port())
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, haproxy, "-f", path, "-db")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])) + "/metrics"
	var body []byte
	testkit.Eventually(t, 20*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err = io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == 200
	}, "haproxy's exporter to answer")
	fams := parse(t, body)
	var b strings.Builder
	fmt.Fprintf(&b, "# Families of HAProxy's built-in Prometheus exporter (promex): name, type,\n")
	fmt.Fprintf(&b, "# label names (- for none). Generated by TestHAProxyShapes -update from a\n")
	fmt.Fprintf(&b, "# scrape of Debian's %s %s with a frontend, a backend and a server.\n", version[0], version[2])
	for _, name := range sortedKeys(fams) {
		if !strings.HasPrefix(name, "haproxy_frontend_") && !strings.HasPrefix(name, "haproxy_backend_") &&
			!strings.HasPrefix(name, "haproxy_server_") && !strings.HasPrefix(name, "haproxy_process_") {
			continue
		}
		labels := sortedKeys(fams[name].labels)
		l := strings.Join(labels, ",")
		if l == "" {
			l = "-"
		}
		fmt.Fprintf(&b, "%s %s %s\n", name, fams[name].typ, l)
	}
	if err := os.WriteFile(shapeFile, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDashboard12693 checks, on a real scrape with haproxyNames on and
// traffic through a layer-7 and a layer-4 service, that every family
// Grafana dashboard 12693 queries exists with the labels its queries use,
// with no exception.
func TestDashboard12693(t *testing.T) {
	want := readShapes(t, "testdata/dashboard-12693.txt")
	r := newRig(t, true)
	r.traffic(t, 10)
	fams := parse(t, r.scrape(t))
	var present int
	for _, name := range sortedKeys(want) {
		fd, ok := fams[name]
		if !ok {
			t.Errorf("dashboard 12693 queries %s: not in the scrape", name)
			continue
		}
		present++
		for _, l := range want[name].labels {
			if l == "instance" || l == "job" { // target labels Prometheus adds
				continue
			}
			if !fd.labels[l] {
				t.Errorf("dashboard 12693 queries %s by label %q; the scrape has %v", name, l, sortedKeys(fd.labels))
			}
		}
	}
	t.Logf("dashboard 12693: %d of %d families exposed", present, len(want))
}
