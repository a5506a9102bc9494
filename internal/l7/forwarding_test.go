package l7

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestForwardingHeader(t *testing.T) {
	for _, tt := range []struct {
		name  string
		h     fwdHeader
		alias bool
	}{
		{"X-Forwarded-For", fwdFor, false},
		{"x-forwarded-for", fwdFor, false},
		{"X_Forwarded_For", fwdFor, true},
		{"x_forwarded-for", fwdFor, true},
		{"X-Forwarded_For", fwdFor, true},
		{"X_FORWARDED_PROTO", fwdProto, true},
		{"X-Forwarded-Proto", fwdProto, false},
		{"X_Forwarded_Host", fwdXForwarded, true},
		{"X-Forwarded-Port", fwdXForwarded, false},
		{"Forwarded", fwdForwarded, false},
		{"X_Real_IP", fwdRealIP, true},
		{"x-real-ip", fwdRealIP, false},
		{"X_ClientSide", fwdClientSide, true},
		{"X-Clientside", fwdClientSide, false},
		{"X_Forwarded_", fwdNone, false},
		{"X-Forwarded", fwdNone, false},
		{"X_Real_IPs", fwdNone, false},
		{"X_Custom_Header", fwdNone, false},
		{"User-Agent", fwdNone, false},
		{"Forwarded_", fwdNone, false},
		{"Via", fwdNone, false},
		{"", fwdNone, false},
	} {
		h, alias := forwardingHeader(tt.name)
		hb, aliasb := forwardingHeader([]byte(tt.name))
		if h != tt.h || alias != tt.alias || hb != h || aliasb != alias {
			t.Errorf("forwardingHeader(%q) = %v, %v (bytes: %v, %v); want %v, %v", tt.name, h, alias, hb, aliasb, tt.h, tt.alias)
		}
	}
}

func TestForwardingAction(t *testing.T) {
	for _, tt := range []struct {
		name  string
		trust bool
		mode  string
		want  fwdAction
	}{
		{"X-Forwarded-For", false, "xff", fwdDrop},
		{"X_Forwarded_For", false, "xff", fwdDrop},
		{"X_Forwarded_For", false, "none", fwdDrop},
		{"x_real_ip", false, "none", fwdDrop},
		{"Forwarded", false, "via", fwdDrop},
		{"X-Forwarded-For", true, "xff", fwdMerge},
		{"X-Forwarded-For", true, "none", fwdPass},
		{"X_Forwarded_For", true, "xff", fwdDrop},
		{"X_Forwarded_For", true, "none", fwdPass},
		{"X_Forwarded_Proto", true, "xff-via", fwdDrop},
		{"X-Forwarded-Proto", true, "xff", fwdPass},
		{"X_Forwarded_Host", true, "xff", fwdPass},
		{"X_ClientSide", true, "clientside", fwdDrop},
		{"X_ClientSide", true, "xff", fwdPass},
		{"X_Real_IP", true, "xff", fwdPass},
		{"X_Custom", false, "xff", fwdPass},
		{"Accept", false, "xff", fwdPass},
	} {
		if _, got := forwardingAction(tt.name, tt.trust, tt.mode); got != tt.want {
			t.Errorf("forwardingAction(%q, trust %v, %s) = %v, want %v", tt.name, tt.trust, tt.mode, got, tt.want)
		}
	}
}

// TestUnderscoreForwardingHeaders: the underscore spellings of the
// forwarding headers (which CGI-style servers map to the same variables as
// the hyphen ones) never reach the real server from an untrusted client;
// from a trusted proxy only those of the headers Fulcrum adds are removed.
// Other headers with underscores pass.
func TestUnderscoreForwardingHeaders(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	hdr := "X_Forwarded_For: 6.6.6.6\r\nx_forwarded_proto: https\r\nX-Forwarded_Host: evil.example\r\n" +
		"X_Real_IP: 6.6.6.6\r\nX_ClientSide: 6.6.6.6\r\nX_Custom_Header: keep\r\n"
	for _, tc := range []struct {
		name, extra string
		gone, kept  []string // header keys as Go's server canonicalises them
	}{
		{"untrusted", "  addVia: clientside-via\n",
			[]string{"X_forwarded_for", "X_forwarded_proto", "X-Forwarded_host", "X_real_ip", "X_clientside"}, []string{"X_custom_header"}},
		{"untrusted xff", "",
			[]string{"X_forwarded_for", "X_forwarded_proto", "X-Forwarded_host", "X_real_ip", "X_clientside"}, []string{"X_custom_header"}},
		{"trusted xff", "  http: {trustedProxies: [127.0.0.0/8]}\n",
			[]string{"X_forwarded_for", "X_forwarded_proto"}, []string{"X-Forwarded_host", "X_real_ip", "X_clientside", "X_custom_header"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startVS(t, strings.Replace(plainVSPort(t, "", a), "type: http\n", "type: http\n"+tc.extra, 1))
			out := f.raw(t, "GET /u HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+hdr+"\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
			if err != nil {
				t.Fatalf("%v in %.200q", err, out)
			}
			body, _ := io.ReadAll(resp.Body)
			var rep echoReply
			if err := json.Unmarshal(body, &rep); err != nil {
				t.Fatalf("%v in %q", err, body)
			}
			for _, k := range tc.gone {
				if v, ok := rep.Header[k]; ok {
					t.Errorf("%s: %v reached the real server", k, v)
				}
			}
			for _, k := range tc.kept {
				if _, ok := rep.Header[k]; !ok {
					t.Errorf("%s did not reach the real server: %v", k, rep.Header)
				}
			}
			if tc.extra == "" && rep.Header.Get("X-Forwarded-For") != "127.0.0.1" {
				t.Errorf("X-Forwarded-For = %q", rep.Header.Get("X-Forwarded-For"))
			}
		})
	}
}
