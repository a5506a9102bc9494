package accesslog

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var at = time.Date(2026, 12, 8, 9, 5, 7, 123456789, time.UTC)

func httpEntry() *Entry {
	return &Entry{
		Time: at, Kind: KindHTTP, VS: 3, VSName: "web", SubVS: 7, SubVSName: "api",
		Client: netip.MustParseAddrPort("192.0.2.10:40000"), Frontend: netip.MustParseAddrPort("198.51.100.1:443"),
		Server: "10.0.0.5:8080", ServerID: 11, Method: "GET", Host: "www.example.com", URI: "/index.html?q=1",
		Proto: "HTTP/1.1", Status: 200, BytesIn: 312, BytesOut: 2750, TTFB: 30*time.Millisecond + 250*time.Microsecond,
		Duration: 109 * time.Millisecond, Retries: 1, UserAgent: "curl/8.0", SNI: "www.example.com",
	}
}

func tcpEntry() *Entry {
	return &Entry{
		Time: at, Kind: KindTCP, VS: 4, VSName: "10.0.0.1:5432",
		Client: netip.MustParseAddrPort("[2001:db8::1]:5555"), Frontend: netip.MustParseAddrPort("[2001:db8::100]:5432"),
		Server: "10.0.0.6:5432", ServerID: 12, BytesIn: 100, BytesOut: 212, TTFB: -1, Duration: 5007 * time.Millisecond,
		Termination: "idle-timeout",
	}
}

func TestAppendHAProxy(t *testing.T) {
	cases := []struct {
		name string
		e    *Entry
		want string
	}{
		{"http", httpEntry(), `192.0.2.10:40000 [08/Dec/2026:09:05:07.123] web api/10.0.0.5:8080 -1/0/-1/30/109 200 2750 - - ---- 0/0/0/0/1 0/0 {www.example.com|curl/8.0} "GET /index.html?q=1 HTTP/1.1"`},
		{"tcp", tcpEntry(), `[2001:db8::1]:5555 [08/Dec/2026:09:05:07.123] 10.0.0.1:5432 10.0.0.1:5432/10.0.0.6:5432 0/-1/5007 212 cD 0/0/0/0/0 0/0`},
		{"no server", &Entry{Time: at, Kind: KindUDP, VSName: "dns", TTFB: -1, Termination: "no-server"},
			`-:- [08/Dec/2026:09:05:07.123] dns dns/<NOSRV> 0/-1/0 0 SC 0/0/0/0/0 0/0`},
		{"injection", &Entry{Time: at, Kind: KindHTTP, VSName: "my web", Method: "GET", URI: "/a\r\nforged line\"#{|}", Proto: "HTTP/1.1",
			Host: "h\nx", UserAgent: "é", TTFB: -1},
			`-:- [08/Dec/2026:09:05:07.123] my#20web my#20web/<NOSRV> -1/0/-1/-1/0 -1 0 - - ---- 0/0/0/0/0 0/0 {h#0Ax|#C3#A9} "GET /a#0D#0Aforged#20line#22#23#7B#7C#7D HTTP/1.1"`},
		{"bad request", &Entry{Time: at, Kind: KindHTTP, VSName: "web", Status: 400, TTFB: -1, Termination: "bad-response"},
			`-:- [08/Dec/2026:09:05:07.123] web web/<NOSRV> -1/0/-1/-1/0 400 0 - - PH-- 0/0/0/0/0 0/0 {|} "<BADREQ>"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(AppendHAProxy(nil, c.e)); got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestAppendJSON(t *testing.T) {
	cases := []struct {
		name string
		e    *Entry
		want map[string]any
	}{
		{"http", httpEntry(), map[string]any{
			"time": "2026-12-08T09:05:07.123Z", "kind": "http", "vs": 3.0, "vsName": "web", "subvs": 7.0, "subvsName": "api",
			"client": "192.0.2.10:40000", "frontend": "198.51.100.1:443", "server": "10.0.0.5:8080", "serverId": 11.0,
			"method": "GET", "host": "www.example.com", "uri": "/index.html?q=1", "proto": "HTTP/1.1", "status": 200.0,
			"userAgent": "curl/8.0", "ttfbMs": 30.25, "retries": 1.0, "sni": "www.example.com", "bytesIn": 312.0, "bytesOut": 2750.0,
			"durationMs": 109.0, "termination": "",
		}},
		{"tcp", tcpEntry(), map[string]any{
			"time": "2026-12-08T09:05:07.123Z", "kind": "tcp", "vs": 4.0, "vsName": "10.0.0.1:5432",
			"client": "[2001:db8::1]:5555", "frontend": "[2001:db8::100]:5432", "server": "10.0.0.6:5432", "serverId": 12.0,
			"bytesIn": 100.0, "bytesOut": 212.0, "durationMs": 5007.0, "termination": "idle-timeout",
		}},
		{"hostile", &Entry{Time: at, Kind: KindHTTP, URI: "/\r\n{\"x\":1}\u2028\x00", Host: "a\"b\\c", UserAgent: "\xff\xfe", TTFB: -1},
			map[string]any{
				"time": "2026-12-08T09:05:07.123Z", "kind": "http", "vs": 0.0, "vsName": "", "client": "", "frontend": "", "server": "",
				"serverId": 0.0, "method": "", "host": "a\"b\\c", "uri": "/\r\n{\"x\":1}\u2028\x00", "proto": "", "status": 0.0,
				"userAgent": "\ufffd\ufffd", "ttfbMs": -1.0, "retries": 0.0, "bytesIn": 0.0, "bytesOut": 0.0, "durationMs": 0.0, "termination": "",
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line := AppendJSON(nil, c.e)
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("line holds a CR or LF: %q", line)
			}
			var got map[string]any
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			if len(got) != len(c.want) {
				t.Errorf("%d fields, want %d: %s", len(got), len(c.want), line)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v (%s)", k, got[k], v, line)
				}
			}
		})
	}
}

// FuzzFormat checks both formats with any strings a client or an admin
// controls: a JSON line is one valid object whose strings read back as
// given (valid UTF-8) and a HAProxy line is one line with the same number
// of space-separated fields as a harmless entry's.
func FuzzFormat(f *testing.F) {
	f.Add("GET", "/index.html", "www.example.com", "curl/8.0", "HTTP/1.1", "web", "api", "")
	f.Add("GET", "/a\r\nb", "h\"ost", "ua\x00\x1f", "HTTP/2.0", "my web", "", "client-abort")
	f.Add("\xff", "/\u2028\u2029", "{|}#", "\\\"", "", "", "x y", "?")
	f.Fuzz(func(t *testing.T, method, uri, host, ua, proto, vs, sub, term string) {
		for _, kind := range []string{KindHTTP, KindTCP} {
			e := httpEntry()
			e.Kind, e.Method, e.URI, e.Host, e.UserAgent, e.Proto, e.VSName, e.SubVSName, e.Termination = kind, method, uri, host, ua, proto, vs, sub, term
			line := AppendJSON(nil, e)
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("JSON line holds a CR or LF: %q", line)
			}
			var got map[string]any
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("JSON line does not parse: %v: %q", err, line)
			}
			if kind == KindHTTP {
				for k, v := range map[string]string{"method": method, "uri": uri, "host": host, "userAgent": ua, "proto": proto, "vsName": vs, "subvsName": sub, "termination": term} {
					if utf8.ValidString(v) && got[k] != v {
						t.Fatalf("%s read back as %q, want %q", k, got[k], v)
					}
				}
			}
			ha := string(AppendHAProxy(nil, e))
			ref := *httpEntry()
			ref.Kind = kind
			if ref.Method == "" || method == "" { // <BADREQ> has one field instead of three
				ref.Method = method
			}
			if strings.ContainsAny(ha, "\r\n") {
				t.Fatalf("HAProxy line holds a CR or LF: %q", ha)
			}
			if n, want := len(strings.Split(ha, " ")), len(strings.Split(string(AppendHAProxy(nil, &ref)), " ")); n != want {
				t.Fatalf("HAProxy line has %d fields, want %d: %q", n, want, ha)
			}
		}
	})
}
