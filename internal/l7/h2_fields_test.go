package l7

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func field(name, value string, kind h1.Kind, hop bool) h1.Field {
	return h1.Field{Name: []byte(name), Value: []byte(value), Kind: kind, Hop: hop}
}

func TestAddFields(t *testing.T) {
	tests := []struct {
		name        string
		fields      []h1.Field
		skipTrailer bool
		clen        int64
		want        http.Header
	}{
		{
			name: "common and uncommon names, hop fields left out",
			fields: []h1.Field{
				field("Server", "nginx", h1.KindOther, false),
				field("ETag", `"abc"`, h1.KindOther, false),
				field("x-custom-thing", "1", h1.KindOther, false),
				field("Connection", "keep-alive", h1.KindOther, true),
			},
			clen: -1,
			want: http.Header{"Server": {"nginx"}, "Etag": {`"abc"`}, "X-Custom-Thing": {"1"}},
		},
		{
			name: "repeated fields keep their order",
			fields: []h1.Field{
				field("Set-Cookie", "a=1", h1.KindOther, false),
				field("Date", "today", h1.KindOther, false),
				field("set-cookie", "b=2", h1.KindOther, false),
			},
			clen: -1,
			want: http.Header{"Set-Cookie": {"a=1", "b=2"}, "Date": {"today"}},
		},
		{
			name: "the length given replaces the server's",
			fields: []h1.Field{
				field("Content-Length", "99", h1.KindOther, false),
				field("Content-Type", "text/plain", h1.KindOther, false),
			},
			clen: 13,
			want: http.Header{"Content-Length": {"13"}, "Content-Type": {"text/plain"}},
		},
		{
			name:   "only a length",
			fields: nil,
			clen:   0,
			want:   http.Header{"Content-Length": {"0"}},
		},
		{
			name: "trailer fields skipped when asked",
			fields: []h1.Field{
				field("Trailer", "X-Sum", h1.KindTrailer, false),
				field("Vary", "Accept", h1.KindOther, false),
			},
			skipTrailer: true,
			clen:        -1,
			want:        http.Header{"Vary": {"Accept"}},
		},
		{
			name: "trailer fields kept otherwise",
			fields: []h1.Field{
				field("Trailer", "X-Sum", h1.KindTrailer, false),
			},
			clen: -1,
			want: http.Header{"Trailer": {"X-Sum"}},
		},
		{
			name:   "nothing",
			fields: []h1.Field{field("Keep-Alive", "timeout=5", h1.KindOther, true)},
			clen:   -1,
			want:   http.Header{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			addFields(h, tc.fields, tc.skipTrailer, tc.clen)
			if !reflect.DeepEqual(h, tc.want) {
				t.Fatalf("got %v, want %v", h, tc.want)
			}
			// Adding to one field must not change another: the value
			// slices share one backing array.
			for k := range tc.want {
				before := fmt.Sprint(h)
				h.Add(k, "extra")
				h[k] = h[k][:len(h[k])-1]
				if after := fmt.Sprint(h); after != before {
					t.Fatalf("adding to %s changed other fields: %s, then %s", k, before, after)
				}
			}
		})
	}
}

func TestCanonicalFieldName(t *testing.T) {
	for _, name := range []string{"Server", "ETag", "etag", "content-type", "X-Request-Id", "x-a-b", "Set-Cookie", "WWW-Authenticate"} {
		if got, want := canonicalFieldName([]byte(name)), http.CanonicalHeaderKey(name); got != want {
			t.Errorf("canonicalFieldName(%q) = %q, want %q", name, got, want)
		}
	}
}

func BenchmarkAddFields(b *testing.B) {
	fields := []h1.Field{
		field("Server", "nginx/1.22.1", h1.KindOther, false),
		field("Date", "Mon, 30 Nov 2026 13:41:15 GMT", h1.KindOther, false),
		field("Content-Type", "text/plain", h1.KindOther, false),
		field("Content-Length", "13", h1.KindOther, true),
		field("Last-Modified", "Mon, 30 Nov 2026 13:00:00 GMT", h1.KindOther, false),
		field("Connection", "keep-alive", h1.KindOther, true),
		field("ETag", `"65f0-d"`, h1.KindOther, false),
		field("Accept-Ranges", "bytes", h1.KindOther, false),
	}
	b.ReportAllocs()
	for b.Loop() {
		h := make(http.Header, 8)
		addFields(h, fields, true, 13)
	}
}

// TestH2StreamedBodyFlushed: a body of unknown length that the real server
// sends in parts reaches an HTTP/2 client part by part (the proxy still
// flushes when it has nothing more buffered), and a body of known length
// arrives whole with its length.
func TestH2StreamedBodyFlushed(t *testing.T) {
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "h2.example.com"))
	rsPort := testkit.FreePort(t, "127.0.0.3")
	release := make(chan struct{})
	startReal(t, "stream", "127.0.0.3", rsPort, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fixed" {
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "fixed")
			return
		}
		_, _ = io.WriteString(w, "first;")
		w.(http.Flusher).Flush() // chunked: the length is unknown
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "second")
	}), nil)
	f := startVS(t, fmt.Sprintf(`
certificates:
%s
virtualServices:
- {address: 127.0.0.2, port: %d, type: http2, tls: {offload: true, certificates: [c]}, realServers: [{address: 127.0.0.3, port: `+strconv.Itoa(rsPort)+`}]}
`, certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2")))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: root.Pool(), ServerName: "h2.example.com"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, f.addr)
		}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	resp, err := c.Get("https://h2.example.com/fixed")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "fixed" || resp.ContentLength != 5 || resp.ProtoMajor != 2 {
		t.Fatalf("fixed: %q, %v, length %d, %s", b, err, resp.ContentLength, resp.Proto)
	}

	resp, err = c.Get("https://h2.example.com/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len("first;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first;" {
		t.Fatalf("first part: %q, %v", first, err)
	}
	close(release) // the second part is sent only once the first has arrived
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Fatalf("second part: %q, %v", rest, err)
	}
}
