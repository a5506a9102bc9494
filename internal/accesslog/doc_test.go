package accesslog

import (
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestFieldsDocumented: docs/observability.md names every field of the
// JSON format.
func TestFieldsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{Time: time.Unix(1, 0), Kind: KindHTTP, VS: 1, VSName: "web", SubVS: 2, SubVSName: "api",
		Client: netip.MustParseAddrPort("192.0.2.1:5000"), Frontend: netip.MustParseAddrPort("192.0.2.2:443"),
		Server: "10.0.0.1:80", ServerID: 3, Method: "GET", Host: "h", URI: "/", Proto: "HTTP/1.1", Status: 200,
		BytesIn: 1, BytesOut: 2, TTFB: time.Millisecond, Duration: time.Second, Retries: 1, Termination: "client-abort",
		UserAgent: "ua", SNI: "h"}
	var fields map[string]any
	if err := json.Unmarshal(AppendJSON(nil, &e), &fields); err != nil {
		t.Fatal(err)
	}
	for k := range fields {
		if !strings.Contains(string(b), "`"+k+"`") {
			t.Errorf("docs/observability.md does not list the access log field `%s`", k)
		}
	}
}
