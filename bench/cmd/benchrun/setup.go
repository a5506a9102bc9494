package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/bench/internal/host"
)

// machine describes where the figures were taken.
type machine struct {
	NProc      int               `json:"nproc"`
	Kernel     string            `json:"kernel"`
	CPU        string            `json:"cpu"`
	LoadBefore string            `json:"load_before"`
	LoadAfter  string            `json:"load_after"`
	Versions   map[string]string `json:"versions"`
}

func machineInfo(ctx context.Context) machine {
	m := machine{NProc: runtime.NumCPU(), LoadBefore: host.LoadAvg()}
	if out, err := exec.CommandContext(ctx, "uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	return m
}

// versions asks every program for its version (first line).
func versions(ctx context.Context, fulcrum string) map[string]string {
	v := map[string]string{}
	for name, argv := range map[string][]string{
		"fulcrum": {fulcrum, "version"},
		"go":      {"go", "version"},
		"haproxy": {"haproxy", "-v"},
		"nginx":   {"nginx", "-v"},
		"caddy":   {"caddy", "version"},
		"wrk":     {"wrk", "-v"},
		"h2load":  {"h2load", "--version"},
	} {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, _ := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		cancel()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if line == "" {
			line = "?"
		}
		v[name] = line
	}
	return v
}

// writeCert makes the one ECDSA P-256 self-signed certificate all proxies
// use (bench.example and 127.0.0.1) and writes cert.pem, key.pem and
// both in one file (HAProxy's crt).
func writeCert(dir string) (cert, key, both string, err error) {
	c, kp, err := host.SelfSigned("bench.example")
	if err != nil {
		return "", "", "", err
	}
	cert, key, both = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "both.pem")
	for path, data := range map[string][]byte{cert: c, key: kp, both: append(append([]byte{}, c...), kp...)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return "", "", "", fmt.Errorf("certificate: %w", err)
		}
	}
	return cert, key, both, nil
}

// verify checks, before any measurement, that the proxy answers on every
// listener, that the backend saw an X-Forwarded-For from it, that the h2
// listener speaks HTTP/2 and that the layer-4 listener relays.
func verify(ctx context.Context, e *env, x *proxy) error {
	pem, err := os.ReadFile(e.cert)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	for _, c := range []struct {
		scheme string
		kind   int
		h2     bool
	}{{"http", portHTTP, false}, {"https", portHTTPS, false}, {"https", portH2, true}} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "bench.example"}, ForceAttemptHTTP2: c.h2}
		if !c.h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		url := fmt.Sprintf("%s://%s/", c.scheme, x.addr(e.l, c.kind))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("verify %s: %w", x.name, err)
		}
		resp, err := cl.Do(req)
		if err != nil {
			return fmt.Errorf("verify %s %s: %w", x.name, url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		tr.CloseIdleConnections()
		switch {
		case resp.StatusCode != http.StatusOK || string(body) != "Hello, world!\n":
			return fmt.Errorf("verify %s %s: %s %q", x.name, url, resp.Status, body)
		case !strings.Contains(resp.Header.Get("X-Seen-Forwarded-For"), "127.0.0.1"):
			return fmt.Errorf("verify %s %s: the backend saw no X-Forwarded-For", x.name, url)
		case c.h2 && resp.ProtoMajor != 2:
			return fmt.Errorf("verify %s %s: answered over %s, not HTTP/2", x.name, url, resp.Proto)
		}
	}
	if x.noL4 != "" {
		return nil
	}
	conn, err := net.DialTimeout("tcp", x.addr(e.l, portL4), 5*time.Second)
	if err != nil {
		return fmt.Errorf("verify %s l4: %w", x.name, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("64\n")); err != nil {
		return fmt.Errorf("verify %s l4: %w", x.name, err)
	}
	if _, err := io.ReadFull(conn, make([]byte, 64)); err != nil {
		return fmt.Errorf("verify %s l4: %w", x.name, err)
	}
	return nil
}

// fetch saves the body of a GET of url (a pprof endpoint on loopback) to path.
func fetch(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fetch %s: %s %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	return f.Close()
}
