package attack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/fulcrum-lb/fulcrum/bench/internal/host"
)

// Cert is the suite's self-signed ECDSA P-256 certificate.
type Cert struct {
	CertPEM, KeyPEM string
	// Both is a file with the certificate then the key (HAProxy's crt).
	Both string
}

// WriteCert makes a certificate for reliability.test and 127.0.0.1 and
// writes both.pem into dir.
func WriteCert(dir string) (Cert, error) {
	cp, kp, err := host.SelfSigned("reliability.test")
	if err != nil {
		return Cert{}, err
	}
	c := Cert{
		CertPEM: string(cp),
		KeyPEM:  string(kp),
		Both:    filepath.Join(dir, "both.pem"),
	}
	if err := os.WriteFile(c.Both, []byte(c.CertPEM+c.KeyPEM), 0o600); err != nil {
		return Cert{}, fmt.Errorf("certificate: %w", err)
	}
	return c, nil
}

// Layout is the proxy side of a run: the listeners a proxy opens (0: not
// opened), the real servers behind them and the timeouts.
type Layout struct {
	// HTTP is plain HTTP/1.1; H2 TLS with ALPN h2 and http/1.1; TCP a
	// layer-4 service; UDP a UDP service (Fulcrum only); RST and Hang
	// HTTP services over a good real server and a resetting or hanging
	// one.
	HTTP, H2, TCP, UDP, RST, Hang int
	// Kill is an HTTP service over KillBackends (the real servers the
	// backend-kill case kills).
	Kill         int
	KillBackends []int
	// Backends are the ports of the HTTP real servers; Reset, Hanging,
	// Echo and UDPEcho those of the other kinds.
	Backends                      []int
	Reset, Hanging, Echo, UDPEcho int
	IdleTimeout, BodyTimeout      int // seconds
	HeaderTimeout                 int // seconds
	Cert                          Cert
}

// FulcrumConfig is the layout as a Fulcrum configuration document (JSON,
// for `fulcrum apply -f`).
func FulcrumConfig(l Layout) ([]byte, error) {
	rs := func(ports ...int) []map[string]any {
		var out []map[string]any
		for _, p := range ports {
			out = append(out, map[string]any{"address": "127.0.0.1", "port": p})
		}
		return out
	}
	httpSettings := map[string]any{"bodyTimeout": l.BodyTimeout, "headerTimeout": l.HeaderTimeout}
	web := func(port int, typ string, tls bool, ports ...int) map[string]any {
		m := map[string]any{"nickname": fmt.Sprintf("%s-%d", typ, port), "address": "127.0.0.1", "port": port, "protocol": "tcp", "type": typ,
			"schedule": "rr", "idleTimeout": l.IdleTimeout, "http": httpSettings, "realServers": rs(ports...)}
		if tls {
			m["tls"] = map[string]any{"offload": true, "certificates": []string{"reliability"}}
		}
		return m
	}
	var vss []map[string]any
	if l.HTTP != 0 {
		vss = append(vss, web(l.HTTP, "http", false, l.Backends...))
	}
	if l.H2 != 0 {
		vss = append(vss, web(l.H2, "http2", true, l.Backends...))
	}
	if l.RST != 0 {
		vss = append(vss, web(l.RST, "http", false, l.Backends[0], l.Reset))
	}
	if l.Hang != 0 {
		vss = append(vss, web(l.Hang, "http", false, l.Backends[0], l.Hanging))
	}
	if l.Kill != 0 {
		vss = append(vss, web(l.Kill, "http", false, l.KillBackends...))
	}
	if l.TCP != 0 {
		vss = append(vss, map[string]any{"nickname": "tcp", "address": "127.0.0.1", "port": l.TCP, "protocol": "tcp", "type": "gen",
			"idleTimeout": l.IdleTimeout, "realServers": rs(l.Echo)})
	}
	if l.UDP != 0 {
		vss = append(vss, map[string]any{"nickname": "udp", "address": "127.0.0.1", "port": l.UDP, "protocol": "udp", "type": "gen",
			"transparent": false, "realServers": rs(l.UDPEcho)})
	}
	doc := map[string]any{"virtualServices": vss}
	if l.Cert.CertPEM != "" {
		doc["certificates"] = []map[string]any{{"name": "reliability", "certPem": l.Cert.CertPEM, "keyPem": l.Cert.KeyPEM}}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("fulcrum config: %w", err)
	}
	return b, nil
}

// HAProxyConfig is the layout as an HAProxy 2.6 configuration: the same
// listeners (no UDP), round robin, keep-alive to the real servers,
// X-Forwarded-For, timeouts like Fulcrum's (client, server and keep-alive
// at the idle timeout, http-request at the header timeout; HAProxy has no
// body timeout of its own and option http-buffer-request is not set),
// 2 retries with redispatch and TCP checks every 9 s (Fulcrum's defaults).
func HAProxyConfig(l Layout, maxconn int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    nbthread 1\n    no strict-limits\n    maxconn %d\n", maxconn)
	fmt.Fprintf(&b, `defaults
    maxconn %d
    timeout connect 5s
    timeout client %ds
    timeout server %ds
    timeout http-request %ds
    timeout http-keep-alive %ds
    retries 2
    option redispatch
`, maxconn, l.IdleTimeout, l.IdleTimeout, l.HeaderTimeout, l.IdleTimeout)
	servers := func(ports ...int) {
		for i, p := range ports {
			fmt.Fprintf(&b, "    server s%d 127.0.0.1:%d check inter 9s fall 2 rise 1\n", i+1, p)
		}
	}
	web := func(name string, ports []int, binds ...string) {
		fmt.Fprintf(&b, "frontend %s\n    mode http\n    option http-keep-alive\n    option forwardfor\n", name)
		for _, bind := range binds {
			fmt.Fprintf(&b, "    bind %s\n", bind)
		}
		fmt.Fprintf(&b, "    default_backend %s\nbackend %s\n    mode http\n    balance roundrobin\n    http-reuse safe\n", name, name)
		servers(ports...)
	}
	var binds []string
	if l.HTTP != 0 {
		binds = append(binds, fmt.Sprintf("127.0.0.1:%d", l.HTTP))
	}
	if l.H2 != 0 {
		binds = append(binds, fmt.Sprintf("127.0.0.1:%d ssl crt %s alpn h2,http/1.1", l.H2, l.Cert.Both))
	}
	if len(binds) > 0 {
		web("web", l.Backends, binds...)
	}
	if l.RST != 0 {
		web("rst", []int{l.Backends[0], l.Reset}, fmt.Sprintf("127.0.0.1:%d", l.RST))
	}
	if l.Hang != 0 {
		web("hang", []int{l.Backends[0], l.Hanging}, fmt.Sprintf("127.0.0.1:%d", l.Hang))
	}
	if l.Kill != 0 {
		web("kill", l.KillBackends, fmt.Sprintf("127.0.0.1:%d", l.Kill))
	}
	if l.TCP != 0 {
		fmt.Fprintf(&b, "frontend tcp\n    mode tcp\n    bind 127.0.0.1:%d\n    default_backend tcp\nbackend tcp\n    mode tcp\n", l.TCP)
		servers(l.Echo)
	}
	return b.String()
}
