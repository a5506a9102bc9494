package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

// serveCanned listens on 127.0.0.1 and answers the first request on every
// connection with raw, then waits for the client to close.
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
				_, _ = br.ReadByte() // until the client closes
			}()
		}
	}()
	return ln.Addr().String()
}

func TestExchange(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want error // nil: kept open; errAny: some error
	}{
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", nil},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", nil},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n", nil},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi", errNotKept},
		{"body until close", "HTTP/1.1 200 OK\r\n\r\n", errNotKept},
		{"not 200", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", errStatus},
		{"truncated", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveCanned(t, tt.raw)
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if tt.want == errAny {
				// The server keeps the connection open: bound the read.
				_ = c.SetDeadline(time.Now().Add(200 * time.Millisecond))
			} else {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			}
			err = exchange(c, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("exchange: %v", err)
			case tt.want == errAny && err == nil:
				t.Fatal("exchange succeeded, want an error")
			case tt.want != nil && tt.want != errAny && !errors.Is(err, tt.want):
				t.Fatalf("exchange error = %v, want %v", err, tt.want)
			}
		})
	}
}

// errAny in a test table means any error will do.
var errAny = errors.New("any error")

// TestOpenAll opens connections to a real HTTP server (plain and TLS) on
// 127.0.0.1, checks they stay usable and open, and that stillOpen notices
// when the server closes them.
func TestOpenAll(t *testing.T) {
	tests := []struct {
		name     string
		tls      bool
		n        int
		parallel int
		chunked  bool
	}{
		{"plain", false, 40, 8, false},
		{"plain chunked", false, 25, 100, true},
		{"tls", true, 20, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Host != "bench.example" {
					http.Error(w, "wrong host", http.StatusBadRequest)
					return
				}
				_, _ = w.Write([]byte("ok"))
				if tt.chunked {
					w.(http.Flusher).Flush()
					_, _ = w.Write([]byte(" and more"))
				}
			})
			srv := httptest.NewUnstartedServer(h)
			if tt.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			o := newOpener(srv.Listener.Addr().String(), "bench.example", tt.tls)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			open, errs, firstErr := openAll(ctx, o, tt.n, tt.parallel)
			defer func() {
				for _, c := range open {
					c.Close()
				}
			}()
			if len(open) != tt.n || errs != 0 || firstErr != nil {
				t.Fatalf("open %d of %d, errors %d, first %v", len(open), tt.n, errs, firstErr)
			}
			if got := stillOpen(open, tt.parallel); got != tt.n {
				t.Fatalf("stillOpen = %d, want %d", got, tt.n)
			}
			// Each connection was left clean: a second request works on it.
			for i, c := range open {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := exchange(c, o.req); err != nil {
					t.Fatalf("connection %d: second request: %v", i, err)
				}
			}
			srv.CloseClientConnections()
			got := -1
			for range 100 { // wait for the server's closes to arrive
				if got = stillOpen(open, tt.parallel); got == 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got != 0 {
				t.Fatalf("after the server closed them, stillOpen = %d, want 0", got)
			}
		})
	}
}

func TestOpenAllStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	open, errs, firstErr := openAll(ctx, newOpener(srv.Listener.Addr().String(), "bench.example", false), 10, 3)
	if len(open) != 0 || errs != 10 || !errors.Is(firstErr, context.Canceled) {
		t.Fatalf("open %d, errors %d, first %v; want 0, 10, context.Canceled", len(open), errs, firstErr)
	}
}

func TestRaiseNoFile(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if err := raiseNoFile(lim.Cur); err != nil {
		t.Fatalf("raiseNoFile(current) = %v", err)
	}
	if err := raiseNoFile(lim.Max); err != nil {
		t.Fatalf("raiseNoFile(hard limit) = %v", err)
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur != lim.Max {
		t.Fatalf("soft limit %d, want the hard limit %d", lim.Cur, lim.Max)
	}
}
