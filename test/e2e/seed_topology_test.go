package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
)

// The seed's services in the two-armed topology (see package topo): VIPs
// in eth0's subnet, which Fulcrum adds to eth0 itself.
const (
	seedVIPSubnetOrig = "192.0.2.50" // real servers see Fulcrum's farm-side address
	seedVIPTransp     = "192.0.2.51" // transparent: real servers see the client
	seedVIPInternal   = "192.0.2.52" // internal clients, through its own gateway
)

// farmServer answers each connection in the farm namespace with the
// address the real server sees the client at, then closes it.
func farmServer(t *testing.T, farm *topo.NS, addr string) {
	l := farm.Listen("tcp", addr)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			_, _ = fmt.Fprintf(c, "%s saw %s\n", addr, host)
			_ = c.Close()
		}
	}()
}

// ask connects from namespace n to addr and reads the one-line answer.
func ask(n *topo.NS, addr string, local string) (string, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := n.Dial(d, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestSeedTopology is the acceptance test of the appliance's networking in
// the reference deployment, with the built binary: `fulcrum setup` gives
// eth0 its address and the default gateway; Fulcrum, started in its
// namespace, applies that, then the farm side through the API; a service
// on the network side balances to the farm with subnet originating
// requests (the servers see Fulcrum's farm-side address); a transparent
// one shows them the client's own address; an internal service answers
// internal clients through its per-service gateway while the global
// default gateway points elsewhere, and stops answering them without it;
// with SNAT on a real server's own connection reaches an outside host
// from the VIP's address, and with SNAT off it does not.
func TestSeedTopology(t *testing.T) {
	tp := topo.New(t)
	for _, a := range topo.FarmAddrs {
		farmServer(t, tp.Farm, net.JoinHostPort(a, "8080"))
	}
	// The outside host records who connects.
	outside := tp.Outside.Listen("tcp", net.JoinHostPort(topo.OutsideAddr, "9000"))
	var seenMu sync.Mutex
	var seen []string
	go func() {
		for {
			c, err := outside.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			seenMu.Lock()
			seen = append(seen, host)
			seenMu.Unlock()
			_, _ = io.WriteString(c, "outside\n")
			_ = c.Close()
		}
	}()
	seenCount := func() int {
		seenMu.Lock()
		defer seenMu.Unlock()
		return len(seen)
	}
	lastSeen := func() string {
		seenMu.Lock()
		defer seenMu.Unlock()
		if len(seen) == 0 {
			return ""
		}
		return seen[len(seen)-1]
	}

	work := t.TempDir()
	dir := filepath.Join(work, "data")
	resolv := filepath.Join(work, "resolv.conf")
	env := []string{"FULCRUM_ADMIN_PASSWORD=" + password}

	// Quick setup, as on the appliance's console: eth0, the default
	// gateway, DNS and the admin listener.
	admin := net.JoinHostPort(topo.FulcrumEth0, adminPort)
	cmd := exec.Command("ip", "netns", "exec", tp.Fulcrum.Name, binary, "setup", "--non-interactive", "--data-dir", dir,
		"--interface", "eth0", "--address", topo.FulcrumEth0+"/24", "--gateway", topo.UpstreamAddr,
		"--dns", topo.UpstreamAddr, "--search", "example.test", "--admin-addr", admin)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fulcrum setup: %v\n%s", err, out)
	} else if !strings.Contains(string(out), "https://"+admin+"/") {
		t.Fatalf("fulcrum setup does not name the web UI:\n%s", out)
	}
	p := startIn(t, tp.Fulcrum, work, env, "serving configuration revision", "serve", "--data-dir", dir, "--manage-network", "on", "--resolv-conf", resolv)
	api := nsClient(t, tp.Client, topo.FulcrumEth0, dir)
	if code, body := api.call("GET", "/api/v1/network", ""); code != http.StatusOK {
		t.Fatalf("the admin API on the address setup gave: %d %s\n%s", code, body, p.output())
	}
	if b, err := os.ReadFile(resolv); err != nil || !strings.Contains(string(b), "nameserver "+topo.UpstreamAddr) || !strings.Contains(string(b), "search example.test") {
		t.Errorf("the resolver file from setup's DNS: %q %v", b, err)
	}

	// The farm side, through the API, confirmed.
	netDoc := fmt.Sprintf(`{"interfaces":[
		{"name":"eth0","addresses":["%s/24"]},
		{"name":"eth1","addresses":["%s/24"]}],
		"gateway":"%s","routes":[{"destination":"%s","gateway":"%s"}],
		"dns":{"servers":["%s"],"search":["example.test"]},"adminAddress":"%s"}`,
		topo.FulcrumEth0, topo.FulcrumEth1, topo.UpstreamAddr, topo.FarmSubnet, topo.RouterLink, topo.UpstreamAddr, admin)
	code, body := api.call("PUT", "/api/v1/network", netDoc)
	if code != http.StatusOK {
		t.Fatalf("PUT /network: %d %s", code, body)
	}
	if code, body := api.call("POST", "/api/v1/network/confirm", `{"revision":2}`); code != http.StatusOK {
		t.Fatalf("confirm: %d %s", code, body)
	}

	rs := func(addrs ...string) string {
		var out []string
		for _, a := range addrs {
			out = append(out, fmt.Sprintf(`{"address":"%s","port":8080}`, a))
		}
		return strings.Join(out, ",")
	}
	add := func(doc string) int {
		t.Helper()
		code, body := api.call("POST", "/api/v1/virtual-services", doc)
		if code != http.StatusCreated {
			t.Fatalf("add %s: %d %s", doc, code, body)
		}
		var created struct {
			ID int `json:"id"`
		}
		if err := json.Unmarshal([]byte(body), &created); err != nil || created.ID == 0 {
			t.Fatalf("no id in %s: %v", body, err)
		}
		return created.ID
	}
	add(fmt.Sprintf(`{"nickname":"farm","address":"%s","port":80,"protocol":"tcp","realServers":[%s]}`, seedVIPSubnetOrig, rs(topo.FarmAddrs...)))
	add(fmt.Sprintf(`{"nickname":"transparent","address":"%s","port":80,"protocol":"tcp","transparent":true,"subnetOriginating":false,"realServers":[%s]}`,
		seedVIPTransp, rs(topo.FarmAddrs[0])))
	internal := add(fmt.Sprintf(`{"nickname":"internal","address":"%s","port":80,"protocol":"tcp","defaultGateway":"%s","realServers":[%s]}`,
		seedVIPInternal, topo.IGWAddr, rs(topo.FarmAddrs[1])))

	// The network side balances to the farm; the servers see Fulcrum's
	// farm-side address (subnet originating).
	answers := map[string]bool{}
	for range 6 {
		got, err := ask(tp.Client, net.JoinHostPort(seedVIPSubnetOrig, "80"), "")
		if err != nil {
			t.Fatalf("client → %s: %v\n%s", seedVIPSubnetOrig, err, p.output())
		}
		answers[got] = true
	}
	for _, a := range topo.FarmAddrs {
		if want := a + ":8080 saw " + topo.FulcrumEth1; !answers[want] {
			t.Errorf("subnet originating: no answer %q among %v", want, answers)
		}
	}

	// Transparency: the server sees the client's own address, and the
	// reply came back through Fulcrum (the connection completed).
	if got, err := ask(tp.Client, net.JoinHostPort(seedVIPTransp, "80"), ""); err != nil || got != topo.FarmAddrs[0]+":8080 saw "+topo.ClientAddr {
		t.Errorf("transparent service: %q %v", got, err)
	}

	// The internal service answers the internal client through its own
	// gateway (igw); the global default gateway (upstream) knows no route
	// to the internal subnet.
	internalWant := topo.FarmAddrs[1] + ":8080 saw " + topo.FulcrumEth1
	if got, err := ask(tp.Internal, net.JoinHostPort(seedVIPInternal, "80"), ""); err != nil || got != internalWant {
		t.Fatalf("internal client through the per-service gateway: %q %v\n%s", got, err, p.output())
	}
	if code, body := api.call("PATCH", fmt.Sprintf("/api/v1/virtual-services/%d", internal), `{"defaultGateway":""}`); code != http.StatusOK {
		t.Fatalf("removing the per-service gateway: %d %s", code, body)
	}
	if got, err := ask(tp.Internal, net.JoinHostPort(seedVIPInternal, "80"), ""); err == nil {
		t.Errorf("without its gateway the internal service still answered the internal client: %q (the reply must have gone through the global default gateway, which has no route there)", got)
	}
	if code, body := api.call("PATCH", fmt.Sprintf("/api/v1/virtual-services/%d", internal), fmt.Sprintf(`{"defaultGateway":"%s"}`, topo.IGWAddr)); code != http.StatusOK {
		t.Fatalf("restoring the per-service gateway: %d %s", code, body)
	}
	if got, err := ask(tp.Internal, net.JoinHostPort(seedVIPInternal, "80"), ""); err != nil || got != internalWant {
		t.Errorf("with its gateway back: %q %v", got, err)
	}

	// SNAT off: a real server's own connection to the outside does not
	// leave from the VIP's address.
	outsideAddr := net.JoinHostPort(topo.OutsideAddr, "9000")
	if got, err := ask(tp.Farm, outsideAddr, topo.FarmAddrs[0]); err == nil && lastSeen() == seedVIPSubnetOrig {
		t.Error("with SNAT off the outside host saw the VIP")
	} else {
		t.Logf("SNAT off: the real server's own connection: %q %v (outside saw %q)", got, err, lastSeen())
	}
	if code, body := api.call("PATCH", "/api/v1/options", `{"snat":true}`); code != http.StatusOK {
		t.Fatalf("SNAT on: %d %s", code, body)
	}
	if got, err := ask(tp.Farm, outsideAddr, topo.FarmAddrs[0]); err != nil || got != "outside" || lastSeen() != seedVIPSubnetOrig {
		t.Errorf("with SNAT on: %q %v; the outside host saw %q, want the VIP %s", got, err, lastSeen(), seedVIPSubnetOrig)
	}
	if code, body := api.call("PATCH", "/api/v1/options", `{"snat":false}`); code != http.StatusOK {
		t.Fatalf("SNAT off: %d %s", code, body)
	}
	before := seenCount()
	if _, err := ask(tp.Farm, outsideAddr, topo.FarmAddrs[0]); err == nil && seenCount() > before && lastSeen() == seedVIPSubnetOrig {
		t.Error("with SNAT off again the outside host still saw the VIP")
	}
	p.stop(t)
}
