package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The four proxies, in the order they are run in each round.
var allProxies = []string{"fulcrum", "haproxy", "nginx", "caddy"}

// Listener kinds every proxy serves, each on its own port.
const (
	portHTTP  = 0 // plain HTTP/1.1
	portHTTPS = 1 // TLS offload, ALPN http/1.1
	portH2    = 2 // TLS offload, ALPN h2 and http/1.1
	portL4    = 3 // layer-4 TCP
)

// layout holds the ports of one run.
type layout struct {
	base int
}

func (l layout) httpBackends() []int { return []int{l.base + 1, l.base + 2, l.base + 3} }
func (l layout) l4Backends() []int   { return []int{l.base + 11, l.base + 12, l.base + 13} }
func (l layout) admin() int          { return l.base + 99 }
func (l layout) pprof() int          { return l.base + 98 }

// port is the port of listener kind k of the proxy at index i of allProxies.
func (l layout) port(i, k int) int { return l.base + 100 + 10*i + k }

// proxy is one running proxy under test.
type proxy struct {
	name  string
	index int
	p     *proc
	// noL4 is set when the proxy cannot do layer 4 (Debian's Caddy).
	noL4 string
}

func (x *proxy) addr(l layout, k int) string {
	return fmt.Sprintf("127.0.0.1:%d", l.port(x.index, k))
}

// env is what starting proxies needs.
type env struct {
	l       layout
	tmp     string // temporary directory, removed at the end
	logs    string // log directory in the results
	bin     map[string]string
	cert    string // PEM certificate
	key     string // PEM key
	certKey string // certificate then key (HAProxy)
	cpu     int    // proxies' CPU
	ps      *procs
	// fdLimit is the open-file limit the proxies inherit; their connection
	// limits are set from it.
	fdLimit int
}

func (e *env) logPath(name string) string { return filepath.Join(e.logs, name+".log") }

func addrs(ports []int) []string {
	var out []string
	for _, p := range ports {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", p))
	}
	return out
}

// startProxy starts one proxy with the configuration of the suite and waits
// until all of its listeners accept.
func startProxy(ctx context.Context, e *env, name string, pprofAddr string) (*proxy, error) {
	idx := -1
	for i, n := range allProxies {
		if n == name {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("unknown proxy %q", name)
	}
	x := &proxy{name: name, index: idx}
	var err error
	switch name {
	case "fulcrum":
		x.p, err = startFulcrum(ctx, e, idx, pprofAddr)
	case "haproxy":
		x.p, err = startHAProxy(e, idx)
	case "nginx":
		x.p, err = startNginx(e, idx)
	case "caddy":
		x.p, err = startCaddy(e, idx)
		x.noL4 = "n/a (Debian's caddy has no layer-4 module)"
	}
	if err != nil {
		return nil, err
	}
	kinds := []int{portHTTP, portHTTPS, portH2, portL4}
	if x.noL4 != "" {
		kinds = kinds[:3]
	}
	for _, k := range kinds {
		if err := waitPort(ctx, x.addr(e.l, k), x.p, 20*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", name, err, tail(e.logPath(name), 2000))
		}
	}
	return x, nil
}

func startFulcrum(ctx context.Context, e *env, idx int, pprofAddr string) (*proc, error) {
	data := filepath.Join(e.tmp, "fulcrum-data")
	fresh := false
	if _, err := os.Stat(data); os.IsNotExist(err) {
		fresh = true
		if err := os.MkdirAll(data, 0o700); err != nil {
			return nil, fmt.Errorf("fulcrum: %w", err)
		}
	}
	argv := []string{e.bin["fulcrum"], "serve", "--data-dir", data,
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", e.l.admin()), "--log-level", "warn"}
	logName := "fulcrum"
	if pprofAddr != "" {
		argv = append(argv, "--pprof-listen", pprofAddr)
		logName = "fulcrum-pprof"
	}
	p, err := e.ps.start(logName, e.cpu, []string{"FULCRUM_ADMIN_PASSWORD=benchmark passphrase"}, e.logPath(logName), argv...)
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(data, "fulcrum.sock")
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i > 200 || !p.alive() {
			return nil, fmt.Errorf("fulcrum did not start:\n%s", tail(e.logPath(logName), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !fresh { // the configuration is in the data directory already
		return p, nil
	}
	doc, err := fulcrumConfig(e, idx)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(e.tmp, "fulcrum.json")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		return nil, fmt.Errorf("fulcrum config: %w", err)
	}
	if _, err := runTool(ctx, time.Minute, -1, e.logPath("fulcrum-apply"), e.bin["fulcrum"], "apply", "--data-dir", data, "-f", path); err != nil {
		return nil, fmt.Errorf("fulcrum apply: %w\n%s", err, tail(e.logPath("fulcrum-apply"), 2000))
	}
	return p, nil
}

// fulcrumConfig is Fulcrum's configuration document (JSON, as `fulcrum
// apply -f` takes it): least connection over the same backends as the
// others, X-Forwarded-For (the default addVia), TLS offload with the
// suite's certificate.
func fulcrumConfig(e *env, idx int) ([]byte, error) {
	cert, err := os.ReadFile(e.cert)
	if err != nil {
		return nil, fmt.Errorf("fulcrum config: %w", err)
	}
	key, err := os.ReadFile(e.key)
	if err != nil {
		return nil, fmt.Errorf("fulcrum config: %w", err)
	}
	rs := func(ports []int) []map[string]any {
		var out []map[string]any
		for _, p := range ports {
			out = append(out, map[string]any{"address": "127.0.0.1", "port": p})
		}
		return out
	}
	tls := map[string]any{"offload": true, "certificates": []string{"bench"}}
	vs := func(k int, typ string, withTLS bool, ports []int) map[string]any {
		m := map[string]any{"address": "127.0.0.1", "port": e.l.port(idx, k), "protocol": "tcp",
			"type": typ, "schedule": "lc", "realServers": rs(ports)}
		if typ != "gen" {
			m["addVia"] = "xff"
		}
		if withTLS {
			m["tls"] = tls
		}
		return m
	}
	doc := map[string]any{
		"certificates": []map[string]any{{"name": "bench", "certPem": string(cert), "keyPem": string(key)}},
		"virtualServices": []map[string]any{
			vs(portHTTP, "http", false, e.l.httpBackends()),
			vs(portHTTPS, "http", true, e.l.httpBackends()),
			vs(portH2, "http2", true, e.l.httpBackends()),
			vs(portL4, "gen", false, e.l.l4Backends()),
		},
	}
	return json.MarshalIndent(doc, "", "  ")
}

func startHAProxy(e *env, idx int) (*proc, error) {
	var b strings.Builder
	// HAProxy reckons 2 descriptors per connection and, by default,
	// refuses to start when 2×maxconn exceeds its file limit. Idle client
	// connections need one each (the server side is a small kept pool), so
	// with "no strict-limits" it holds 10,000 of them under a limit of
	// 20,000 (it warns at start).
	maxconn := max(e.fdLimit/2-10, 10100)
	fmt.Fprintf(&b, "global\n    nbthread 1\n    no strict-limits\n    ulimit-n %d\n    maxconn %d\ndefaults\n    maxconn %d\n", e.fdLimit, maxconn, maxconn)
	fmt.Fprintf(&b, `    timeout connect 5s
    timeout client 660s
    timeout server 660s
    timeout http-request 30s
    timeout http-keep-alive 660s
frontend web
    mode http
    option http-keep-alive
    option forwardfor
    bind 127.0.0.1:%d
    bind 127.0.0.1:%d ssl crt %s alpn http/1.1
    bind 127.0.0.1:%d ssl crt %s alpn h2,http/1.1
    default_backend web
backend web
    mode http
    balance leastconn
    http-reuse safe
`, e.l.port(idx, portHTTP), e.l.port(idx, portHTTPS), e.certKey, e.l.port(idx, portH2), e.certKey)
	for i, a := range addrs(e.l.httpBackends()) {
		fmt.Fprintf(&b, "    server s%d %s\n", i+1, a)
	}
	fmt.Fprintf(&b, `frontend l4
    mode tcp
    bind 127.0.0.1:%d
    default_backend l4
backend l4
    mode tcp
    balance leastconn
`, e.l.port(idx, portL4))
	for i, a := range addrs(e.l.l4Backends()) {
		fmt.Fprintf(&b, "    server s%d %s\n", i+1, a)
	}
	path := filepath.Join(e.tmp, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("haproxy config: %w", err)
	}
	return e.ps.start("haproxy", e.cpu, nil, e.logPath("haproxy"), "haproxy", "-db", "-f", path)
}

// nginxCommon is the top of both nginx configurations: one process (no
// master) so that the measured pid is the worker.
func nginxCommon(dir string, stream bool, fdLimit int) string {
	s := ""
	if stream {
		s = "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
	}
	return s + fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile %[2]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections %[3]d; }
`, dir, fdLimit, fdLimit-100)
}

func nginxTemps(dir string) string {
	return fmt.Sprintf(`    client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
`, dir)
}

func startNginx(e *env, idx int) (*proc, error) {
	dir := filepath.Join(e.tmp, "nginx-proxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	var b strings.Builder
	b.WriteString(nginxCommon(dir, true, e.fdLimit))
	b.WriteString("http {\n    access_log off;\n")
	b.WriteString(nginxTemps(dir))
	b.WriteString("    keepalive_timeout 660s;\n    keepalive_requests 10000000;\n    ssl_protocols TLSv1.2 TLSv1.3;\n")
	b.WriteString("    ssl_session_cache shared:SSL:10m;\n    upstream web {\n        least_conn;\n")
	for _, a := range addrs(e.l.httpBackends()) {
		fmt.Fprintf(&b, "        server %s;\n", a)
	}
	fmt.Fprintf(&b, `        keepalive 1024;
        keepalive_requests 10000000;
        keepalive_timeout 660s;
    }
    server {
        listen 127.0.0.1:%d;
        listen 127.0.0.1:%d ssl;
        listen 127.0.0.1:%d ssl http2;
        ssl_certificate %s;
        ssl_certificate_key %s;
        location / {
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_max_temp_file_size 0;
        }
    }
}
stream {
    upstream l4 {
        least_conn;
`, e.l.port(idx, portHTTP), e.l.port(idx, portHTTPS), e.l.port(idx, portH2), e.cert, e.key)
	for _, a := range addrs(e.l.l4Backends()) {
		fmt.Fprintf(&b, "        server %s;\n", a)
	}
	fmt.Fprintf(&b, "    }\n    server {\n        listen 127.0.0.1:%d;\n        proxy_pass l4;\n        proxy_timeout 660s;\n    }\n}\n",
		e.l.port(idx, portL4))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("nginx config: %w", err)
	}
	return e.ps.start("nginx", e.cpu, nil, e.logPath("nginx"), "nginx", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", path)
}

func startCaddy(e *env, idx int) (*proc, error) {
	dir := filepath.Join(e.tmp, "caddy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("caddy: %w", err)
	}
	up := strings.Join(addrs(e.l.httpBackends()), " ")
	site := func(scheme string, port int, tls bool) string {
		t := ""
		if tls {
			t = fmt.Sprintf("    tls %s %s\n", e.cert, e.key)
		}
		return fmt.Sprintf("%s://:%d {\n    bind 127.0.0.1\n%s    reverse_proxy %s {\n        lb_policy least_conn\n    }\n}\n",
			scheme, port, t, up)
	}
	cfg := "{\n    admin off\n    auto_https off\n    servers {\n        protocols h1 h2\n    }\n}\n" +
		site("http", e.l.port(idx, portHTTP), false) +
		site("https", e.l.port(idx, portHTTPS), true) +
		site("https", e.l.port(idx, portH2), true)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("caddy config: %w", err)
	}
	envs := []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	return e.ps.start("caddy", e.cpu, envs, e.logPath("caddy"), "caddy", "run", "--config", path, "--adapter", "caddyfile")
}

// startBackends starts the real servers on the load CPU: an nginx with a
// small answer on / and a 1 MiB file on /1m (HTTP rows), and
// bench/cmd/backend (layer-4 rows).
func startBackends(ctx context.Context, e *env, loadCPU int) error {
	dir := filepath.Join(e.tmp, "nginx-backend")
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	if err := os.WriteFile(filepath.Join(www, "1m"), make([]byte, 1<<20), 0o644); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	var b strings.Builder
	b.WriteString(nginxCommon(dir, false, e.fdLimit))
	b.WriteString("http {\n    access_log off;\n    sendfile on;\n    tcp_nopush on;\n")
	b.WriteString(nginxTemps(dir))
	b.WriteString("    keepalive_timeout 660s;\n    keepalive_requests 10000000;\n    server {\n")
	for _, a := range addrs(e.l.httpBackends()) {
		fmt.Fprintf(&b, "        listen %s;\n", a)
	}
	fmt.Fprintf(&b, `        root %s;
        location = / {
            default_type text/plain;
            add_header X-Seen-Forwarded-For $http_x_forwarded_for always;
            return 200 "Hello, world!\n";
        }
        location = /1m { default_type application/octet-stream; }
    }
}
`, www)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("backend config: %w", err)
	}
	nb, err := e.ps.start("nginx-backend", loadCPU, nil, e.logPath("nginx-backend"), "nginx", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", path)
	if err != nil {
		return err
	}
	l4 := strings.Join(addrs(e.l.l4Backends()), ",")
	tb, err := e.ps.start("backend", loadCPU, nil, e.logPath("backend"), e.bin["backend"], "-listen", l4)
	if err != nil {
		return err
	}
	for _, a := range addrs(e.l.httpBackends()) {
		if err := waitPort(ctx, a, nb, 10*time.Second); err != nil {
			return fmt.Errorf("nginx backend: %w\n%s", err, tail(e.logPath("nginx-backend"), 2000))
		}
	}
	for _, a := range addrs(e.l.l4Backends()) {
		if err := waitPort(ctx, a, tb, 10*time.Second); err != nil {
			return fmt.Errorf("backend: %w", err)
		}
	}
	return nil
}
