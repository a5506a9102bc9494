package kempapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
)

// fuzzEnv is an API with a key for bal, used in-process by the fuzz
// targets (no data plane: nothing binds sockets).
func fuzzEnv(f *testing.F) (*env, string) {
	e := newEnv(f, envOpts{})
	bal := admin.Principal{User: "bal", Role: config.RoleAdmin, Method: admin.MethodConsole}
	_, key, err := e.auth.CreateAPIKey(bal, "", "bal", "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	return e, key
}

// keepEnabled turns the API back on when a fuzz input turned it off, and
// starts again from an empty configuration when inputs have grown it (each
// change stores the whole configuration, so a large one slows the fuzzer
// down without finding more).
func keepEnabled(t *testing.T, e *env) {
	cur := e.ctl.Current().Config
	grown := len(cur.VirtualServices) > 16 || len(cur.Certificates) > 8
	if cur.Options.EnableAPI && !grown {
		return
	}
	_, err := e.ctl.Apply(control.Change{Actor: control.Actor{User: "fuzz", Source: control.SourceSystem},
		Mutate: func(c *config.Config) error {
			if grown {
				*c = *config.Default()
			}
			c.Options.EnableAPI = true
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
}

// Statuses an answer may have; 500 would mean an unexpected failure.
var fuzzStatuses = map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 405: true, 413: true, 422: true}

// checkInvariants holds after every request: the configuration in force is
// valid.
func checkInvariants(t *testing.T, e *env) {
	if err := e.ctl.Current().Config.Validate(); err != nil {
		t.Fatalf("configuration in force is invalid: %v", err)
	}
}

// FuzzAccess feeds arbitrary commands, query strings and bodies to the v1
// API (the parameter parser, then the whole handler as an authenticated
// administrator).
func FuzzAccess(f *testing.F) {
	e, key := fuzzEnv(f)
	for _, s := range []struct {
		cmd, query string
		body       []byte
	}{
		{"listvs", "", nil},
		{"addvs", "vs=192.0.2.1&port=80&prot=tcp&VStype=http&Persist=src&Schedule=lc&Idletime=1800", nil},
		{"modvs", "vs=1&Enable=n&CheckType=http&CheckUrl=/x&CheckHeaders=Host:a|X:b&CheckCodes=301 302", nil},
		{"modvs", "vs=1&createsubvs=", nil},
		{"addrs", "vs=1&rs=192.0.2.2&rsport=8080&weight=5&enable=y", nil},
		{"modrs", "vs=1&rs=!1&newport=81", nil},
		{"showrs", "vs=192.0.2.1&port=80&prot=tcp&rs=192.0.2.2", nil},
		{"set", "param=enableapi&value=no", nil},
		{"set", "param=conntimeout&value=0", nil},
		{"addcert", "cert=x&password=y", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")},
		{"restore", "type=3", []byte{0x1f, 0x8b, 0, 0}},
		{"useraddlocal", "user=bob&password=xxxxxxxxxxxxxx", nil},
		{"usersetperms", "user=bob&perms=real", nil},
		{"showvs", "vs=%00&port=-1", nil},
		{"dupvs", "vs=1&newport=81", nil},
		{"modadaptive", "AdaptiveURL=/l&AdaptivePort=81&AdaptiveInterval=2&MinPercent=3", nil},
		{"modvs", "vs=1&FollowVSID=2", nil},
		{"logging/df", "", nil},
	} {
		f.Add(s.cmd, s.query, s.body)
	}
	f.Fuzz(func(t *testing.T, cmd, query string, body []byte) {
		p := params{}
		_ = addQuery(p, query) // the parser alone must not panic

		keepEnabled(t, e)
		// The key comes first: the first occurrence of a parameter wins, so
		// the input cannot change who is calling.
		u := &url.URL{Path: "/access/" + cmd, RawQuery: "apikey=" + url.QueryEscape(key) + "&" + query}
		method := http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
		req := &http.Request{Method: method, URL: u, Header: http.Header{}, Host: "example.test", RemoteAddr: "192.0.2.9:1234",
			Body: http.NoBody}
		if body != nil {
			req.Body = nopCloser{bytes.NewReader(body)}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req = req.WithContext(t.Context())
		rec := httptest.NewRecorder()
		e.kemp.ServeHTTP(rec, req)
		if !fuzzStatuses[rec.Code] {
			t.Fatalf("%s?%s: status %d: %s", cmd, query, rec.Code, rec.Body.Bytes())
		}
		if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "text/xml") {
			x, err := parseXML(rec.Body.Bytes())
			if err != nil {
				t.Fatalf("%s?%s: malformed XML: %v: %s", cmd, query, err, rec.Body.Bytes())
			}
			if x.attr("stat") != itoa(rec.Code) {
				t.Fatalf("stat %s with HTTP %d", x.attr("stat"), rec.Code)
			}
		}
		checkInvariants(t, e)
	})
}

// FuzzAccessV2 feeds arbitrary JSON to the v2 API: the body parser, then
// the whole handler with the administrator's key put in.
func FuzzAccessV2(f *testing.F) {
	e, key := fuzzEnv(f)
	for _, s := range []string{
		`{"cmd":"listvs"}`,
		`{"cmd":"addvs","vs":"192.0.2.1","port":80,"prot":"tcp","Enable":true,"VStype":"http"}`,
		`{"cmd":"modvs","vs":1,"Idletime":1800,"Persist":"super-src","createsubvs":""}`,
		`{"cmd":"addrs","vs":1,"rs":"192.0.2.2","rsport":8080,"critical":false}`,
		`{"cmd":"set","param":"snat","val":true}`,
		`{"cmd":"addcert","cert":"c","data":"AAAA"}`,
		`{"cmd":"modadaptive","AdaptivePort":81,"MinPercent":"4","AdaptiveURL":"/x"}`,
		`{"cmd":"logging.df"}`,
		`{"cmd":"get","param":null}`,
		`{"cmd":["x"]}`,
		`[1,2]`,
		`{"cmd":"listvs","Enable":1,"enable":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req request
		req.p = params{}
		_ = decodeV2(body, &req) // the parser alone must not panic

		keepEnabled(t, e)
		var m map[string]any
		if json.Unmarshal(body, &m) == nil && m != nil {
			for k := range m {
				if strings.EqualFold(k, "apikey") || strings.EqualFold(k, "apiuser") || strings.EqualFold(k, "apipass") {
					delete(m, k)
				}
			}
			m["apikey"] = key
			body, _ = json.Marshal(m)
		}
		hr := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/accessv2", bytes.NewReader(body))
		hr.RemoteAddr = "192.0.2.9:1234"
		rec := httptest.NewRecorder()
		e.kemp.ServeHTTP(rec, hr)
		if !fuzzStatuses[rec.Code] {
			t.Fatalf("%s: status %d: %s", body, rec.Code, rec.Body.Bytes())
		}
		j, err := parseJSON(rec.Body.Bytes())
		if err != nil {
			t.Fatalf("%s: malformed JSON answer: %v: %s", body, err, rec.Body.Bytes())
		}
		if j.get("code").num() != int64(rec.Code) {
			t.Fatalf("code %s with HTTP %d", j.get("code").n, rec.Code)
		}
		checkInvariants(t, e)
	})
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// FuzzJSONString checks the hand-written JSON string writer against
// encoding/json, and the XML text writer against an XML parser.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f<>&", "Zürich 会議", "\u2028\u2029", "\xff\xfe", "tab\tnl\ncr\r"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		jsonString(&b, s)
		want, _ := json.Marshal(s)
		if !bytes.Equal(b.Bytes(), want) {
			t.Fatalf("jsonString(%q) = %s, encoding/json %s", s, b.Bytes(), want)
		}
		var x bytes.Buffer
		x.WriteString("<a>")
		xmlText(&x, s)
		x.WriteString("</a>")
		for _, c := range x.Bytes() {
			if c > 0x7e {
				t.Fatalf("non-ASCII byte in %q", x.Bytes())
			}
		}
		n, err := parseXML(x.Bytes())
		if err != nil {
			t.Fatalf("xmlText(%q) is not XML: %v: %s", s, err, x.Bytes())
		}
		if strings.ToValidUTF8(s, "\uFFFD") == s && !strings.ContainsFunc(s, func(r rune) bool {
			return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || r == 0xfffe || r == 0xffff
		}) && !strings.Contains(s, "\r") && n.text != s {
			t.Fatalf("xmlText round trip %q → %q", s, n.text)
		}
	})
}
