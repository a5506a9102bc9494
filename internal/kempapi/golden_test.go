package kempapi

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenCommands are the commands whose answers are kept as golden files
// and compared with LoadMaster's shapes (testdata/shapes/vs-rs.txt, see
// shapes_test.go).
var goldenCommands = []string{"addvs", "modvs", "delvs", "listvs", "showvs", "addrs", "modrs", "delrs", "showrs"}

// goldenStep is one command of the golden scenario.
type goldenStep struct {
	cmd    string
	params [][2]string
}

// goldenScenario builds the services the recorded answers describe: a
// service with health-check host, URL and codes and a default gateway
// (addvs, modvs), deleted again (delvs); a named service (listvs, showvs)
// with one real server (addrs, showrs, modrs), deleted again (delrs).
var goldenScenario = []goldenStep{
	{"addvs", [][2]string{{"vs", "192.0.2.235"}, {"port", "6443"}, {"prot", "tcp"}, {"VStype", "http2"}, {"CheckType", "https"},
		{"CheckPort", "8080"}, {"CheckUse1.1", "1"}, {"CheckHost", "foo.example"}, {"CheckUrl", "/healthz"},
		{"CheckCodes", "303 404"}, {"DefaultGW", "192.0.2.1"}}},
	{"modvs", [][2]string{{"vs", "1"}, {"vsport", "6453"}, {"VStype", "gen"}}},
	{"delvs", [][2]string{{"vs", "1"}}},
	{"addvs", [][2]string{{"vs", "192.0.2.239"}, {"port", "80"}, {"prot", "tcp"}, {"VStype", "http"}, {"NickName", "foo"}, {"CheckType", "http"}}},
	{"listvs", nil},
	{"showvs", [][2]string{{"vs", "192.0.2.239"}, {"port", "80"}, {"prot", "tcp"}}},
	{"addrs", [][2]string{{"vs", "192.0.2.239"}, {"port", "80"}, {"prot", "tcp"}, {"rs", "10.10.10.10"}, {"rsport", "8080"}}},
	{"showrs", [][2]string{{"vs", "192.0.2.239"}, {"port", "80"}, {"prot", "tcp"}, {"rs", "10.10.10.10"}, {"rsport", "8080"}}},
	{"modrs", [][2]string{{"vs", "192.0.2.239"}, {"port", "80"}, {"prot", "tcp"}, {"rs", "!1"}, {"weight", "900"}}},
	{"delrs", [][2]string{{"vs", "192.0.2.239"}, {"port", "80"}, {"prot", "tcp"}, {"rs", "10.10.10.10"}, {"rsport", "8080"}}},
}

// goldenAnswers runs the scenario through one API version and returns the
// raw answers by file name.
func goldenAnswers(t *testing.T, v2 bool) map[string][]byte {
	e := newEnv(t, envOpts{})
	out := map[string][]byte{}
	for _, s := range goldenScenario {
		name := s.cmd + ".xml"
		if v2 {
			name = s.cmd + ".json"
		}
		a := e.scenarioCall(v2, s.cmd, s.params, nil)
		if a.status != 200 {
			t.Fatalf("%s: %d %s", name, a.status, a.body)
		}
		if _, done := out[name]; !done { // the first answer of each command is kept
			out[name] = a.body
		}
	}
	return out
}

func TestGolden(t *testing.T) {
	got := goldenAnswers(t, false)
	for k, v := range goldenAnswers(t, true) {
		got[k] = v
	}
	for _, cmd := range goldenCommands {
		for _, ext := range []string{".xml", ".json"} {
			name := cmd + ext
			matchGolden(t, "", name, "Golden", got[name])
		}
	}
}

// matchGolden compares body with the golden file testdata/golden/<dir>/name
// (dir may be ""), or writes it with -update; test names the test to run
// with -update.
func matchGolden(t *testing.T, dir, name, test string, body []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", dir, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/kempapi -run %s -update to create it)", err, test)
	}
	if !bytes.Equal(want, body) {
		t.Errorf("%s differs from the golden file (run with -update if the change is intended):\n%s", name, body)
	}
}

// scenarioCall makes one call of a golden scenario: over /accessv2 (v2)
// with numeric values as JSON numbers, except the parameters named in
// text, and body as base64 "data"; or over /access with the parameters
// in the query (spaces escaped) and body as the request body.
func (e *env) scenarioCall(v2 bool, cmd string, params [][2]string, body []byte, text ...string) answer {
	if v2 {
		m := map[string]any{"cmd": cmd, "apiuser": "bal", "apipass": balPW}
		for _, p := range params {
			if n, err := strconv.Atoi(p[1]); err == nil && !slices.Contains(text, p[0]) {
				m[p[0]] = n
			} else {
				m[p[0]] = p[1]
			}
		}
		if body != nil {
			m["data"] = body // encoding/json writes a []byte as base64
		}
		a, _ := e.v2(m)
		return a
	}
	var q []string
	for _, p := range params {
		q = append(q, p[0]+"="+strings.ReplaceAll(p[1], " ", "%20"))
	}
	return e.v1(auth{}, cmd, strings.Join(q, "&"), body)
}
