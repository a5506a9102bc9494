package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// serveCanned listens on 127.0.0.1 and answers every connection with raw,
// then closes it. It returns the address.
func serveCanned(t *testing.T, raw string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				_, _ = c.Write([]byte(raw))
			}()
		}
	}()
	return ln.Addr().String()
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		wantErr bool
		status  bool // the error is errStatus
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", false, false},
		{"until close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nwhole body", false, false},
		{"empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, false},
		{"not 200", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", true, true},
		{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort", true, false},
		{"truncated chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc", true, false},
		{"not http", "SSH-2.0-nope\r\n\r\n", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveCanned(t, tt.raw)
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			err = readResponse(bufio.NewReader(c))
			if (err != nil) != tt.wantErr {
				t.Fatalf("readResponse error = %v, want error %v", err, tt.wantErr)
			}
			if tt.status != errors.Is(err, errStatus) {
				t.Fatalf("readResponse error = %v, errStatus expected: %v", err, tt.status)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted on purpose: 100..1
	}
	tests := []struct {
		name    string
		lat     []time.Duration
		elapsed time.Duration
		want    result
	}{
		{"none", nil, time.Second, result{Errors: 3, Resumed: 0}},
		{"one", ms(7), time.Second, result{Ops: 1, Errors: 3, OpsPerS: 1, P50us: 7000, P99us: 7000}},
		{"four", ms(4, 1, 3, 2), 2 * time.Second, result{Ops: 4, Errors: 3, OpsPerS: 2, P50us: 2000, P99us: 4000}},
		{"hundred", ms(hundred...), 4 * time.Second, result{Ops: 100, Errors: 3, OpsPerS: 25, P50us: 50000, P99us: 99000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.lat, 3, tt.want.Resumed, tt.elapsed); got != tt.want {
				t.Fatalf("summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestRunAgainstTLSServer drives a real TLS server on 127.0.0.1: full
// handshakes never resume; with a session cache every operation after a
// worker's first resumes.
func TestRunAgainstTLSServer(t *testing.T) {
	tests := []struct {
		name    string
		resume  bool
		maxVers uint16
	}{
		{"full TLS 1.3", false, tls.VersionTLS13},
		{"resume TLS 1.3", true, tls.VersionTLS13},
		{"full TLS 1.2", false, tls.VersionTLS12},
		{"resume TLS 1.2", true, tls.VersionTLS12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Host != "bench.example" {
					http.Error(w, "wrong host", http.StatusBadRequest)
					return
				}
				_, _ = w.Write([]byte("ok"))
			}))
			srv.TLS = &tls.Config{MaxVersion: tt.maxVers}
			srv.StartTLS()
			defer srv.Close()
			const conns = 2
			r, firstErr := run(config{addr: srv.Listener.Addr().String(), sni: "bench.example",
				resume: tt.resume, insecure: true, conns: conns, duration: 300 * time.Millisecond})
			if firstErr != nil || r.Errors != 0 {
				t.Fatalf("errors %d, first %v", r.Errors, firstErr)
			}
			if r.Ops < conns+1 {
				t.Fatalf("only %d operations", r.Ops)
			}
			want := int64(0)
			if tt.resume {
				want = r.Ops - conns
			}
			if r.Resumed != want {
				t.Fatalf("resumed %d of %d operations, want %d", r.Resumed, r.Ops, want)
			}
			if r.OpsPerS <= 0 || r.P50us <= 0 || r.P99us < r.P50us {
				t.Fatalf("bad summary %+v", r)
			}
		})
	}
}

func TestRunCountsErrors(t *testing.T) {
	// A port that answers 503 over TLS: every operation is an error.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	r, firstErr := run(config{addr: srv.Listener.Addr().String(), sni: "bench.example",
		insecure: true, conns: 1, duration: 100 * time.Millisecond})
	if r.Ops != 0 || r.Errors == 0 || !errors.Is(firstErr, errStatus) {
		t.Fatalf("got %+v, first error %v; want only errors with errStatus", r, firstErr)
	}
}
