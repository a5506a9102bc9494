package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
)

// Addresses of the safe-apply test: Fulcrum's eth0 faces the admin
// (10.77.0.0/24), its eth1 the clients (10.88.0.0/24, VIPs in a range).
const (
	adminSideFixed = "10.77.0.1"   // set by the test, before Fulcrum: not Fulcrum's
	adminSideOwned = "10.77.0.5"   // added by Fulcrum: the admin address the change removes
	adminSideKept  = "10.77.0.6"   // added by a confirmed change
	adminPeer      = "10.77.0.2"   // the admin's workstation
	clientSide     = "10.88.0.1"   // Fulcrum's address on the client side (added by Fulcrum)
	clientPeer     = "10.88.0.2"   // a client
	vipInRange     = "10.88.0.105" // a VIP in eth1's VIP range
	adminPort      = "18443"
)

// TestNetworkSafeApply is the acceptance test of the confirm window, in
// network namespaces with the built binary: a change that removes the
// admin address cuts the admin off and is rolled back after the window;
// a confirmed change stays; stopping leaves the namespace's addresses,
// routes, rules and nftables as they were; a restart applies the network
// settings before the services and the admin listener open their sockets.
func TestNetworkSafeApply(t *testing.T) {
	topo.RequireRoot(t)
	prefix := topo.Prefix()
	fns := topo.NewNS(t, prefix, "fulcrum")
	adm := topo.NewNS(t, prefix, "admin")
	cli := topo.NewNS(t, prefix, "client")
	topo.Veth(t, fns, "eth0", adm, "eth0")
	topo.Veth(t, fns, "eth1", cli, "eth1")
	fns.IP("addr", "add", adminSideFixed+"/24", "dev", "eth0")
	fns.IP("link", "set", "eth0", "up")
	fns.IP("link", "set", "eth1", "up")
	adm.IP("link", "set", "eth0", "up")
	cli.IP("link", "set", "eth1", "up")
	adm.IP("addr", "add", adminPeer+"/24", "dev", "eth0")
	cli.IP("addr", "add", clientPeer+"/24", "dev", "eth1")
	before := hostState(t, fns)
	t.Logf("the namespace before Fulcrum starts:\n%s", before)

	// A real server inside Fulcrum's namespace, on its loopback.
	backend := fns.Listen("tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "hello from the farm\n")
			_ = c.Close()
		}
	}()

	work := t.TempDir()
	dir := filepath.Join(work, "data")
	env := []string{"FULCRUM_ADMIN_PASSWORD=" + password}
	p := startIn(t, fns, work, env, "serving configuration revision", "serve", "--data-dir", dir, "--admin-addr", "0.0.0.0:"+adminPort, "--manage-network", "on")
	fixed := nsClient(t, adm, adminSideFixed, dir)

	// Revision 1: Fulcrum adds the admin address and the client side,
	// with a VIP range; confirmed.
	rev1 := fmt.Sprintf(`{"confirmSeconds":5,"interfaces":[
		{"name":"eth0","addresses":["%s/24","%s/24"]},
		{"name":"eth1","addresses":["%s/24"],"vipRanges":["10.88.0.100-10.88.0.110"]}]}`, adminSideFixed, adminSideOwned, clientSide)
	code, body := fixed.call("PUT", "/api/v1/network", rev1)
	if code != http.StatusOK {
		t.Fatalf("PUT /network: %d %s", code, body)
	}
	if code, body := fixed.call("POST", "/api/v1/network/confirm", `{"revision":1}`); code != http.StatusOK {
		t.Fatalf("confirm: %d %s", code, body)
	}
	admin := nsClient(t, adm, adminSideOwned, dir)
	if code, body := admin.call("GET", "/api/v1/network", ""); code != http.StatusOK || !strings.Contains(body, `"managed": true`) && !strings.Contains(body, `"managed":true`) {
		t.Fatalf("GET /network on the new admin address: %d %s", code, body)
	}
	vs := fmt.Sprintf(`{"address":"%s","port":8080,"protocol":"tcp","realServers":[{"address":"127.0.0.1","port":%d}]}`,
		vipInRange, backend.Addr().(*net.TCPAddr).Port)
	if code, body := admin.call("POST", "/api/v1/virtual-services", vs); code != http.StatusCreated {
		t.Fatalf("add the VIP's service: %d %s", code, body)
	}
	if got, err := fetchVIP(cli); err != nil || got != "hello from the farm\n" {
		t.Fatalf("the VIP in the range does not answer: %q %v", got, err)
	}

	// Revision 2 removes the admin address: the admin is cut off, and
	// after 5 s the change is rolled back as revision 3.
	rev2 := strings.Replace(rev1, `,"`+adminSideOwned+`/24"`, "", 1)
	code, body = admin.tryCall("PUT", "/api/v1/network", rev2)
	t.Logf("PUT /network removing the admin address answered %d %s (the answer may be lost with the address)", code, body)
	if !eventually(10*time.Second, func() bool { return !admin.reachable() }) {
		t.Fatal("the admin address still answers after the change that removed it")
	}
	if !eventually(20*time.Second, admin.reachable) {
		t.Fatalf("the admin address did not come back after the confirm window:\n%s", p.output())
	}
	var hist struct {
		Current   uint64 `json:"current"`
		Revisions []struct {
			Revision uint64 `json:"revision"`
			Source   string `json:"source"`
			Summary  string `json:"summary"`
		} `json:"revisions"`
	}
	admin.getJSON("/api/v1/network/history", &hist)
	if hist.Current != 3 || len(hist.Revisions) != 3 || hist.Revisions[0].Source != "system" ||
		hist.Revisions[0].Summary != "rolled back: revision 2 was not confirmed within 5 s" {
		t.Fatalf("history after the rollback: %+v", hist)
	}

	// Revision 4 adds an address and names the admin address; confirmed,
	// it stays after its window.
	rev4 := strings.Replace(rev1, `"confirmSeconds":5,`, `"confirmSeconds":5,"adminAddress":"`+adminSideOwned+`:`+adminPort+`",`, 1)
	rev4 = strings.Replace(rev4, `"`+adminSideOwned+`/24"]`, `"`+adminSideOwned+`/24","`+adminSideKept+`/24"]`, 1)
	if code, body := admin.call("PUT", "/api/v1/network", rev4); code != http.StatusOK {
		t.Fatalf("PUT /network revision 4: %d %s", code, body)
	}
	if code, body := admin.call("POST", "/api/v1/network/confirm?revision=4", ""); code != http.StatusOK {
		t.Fatalf("confirm 4: %d %s", code, body)
	}
	time.Sleep(6 * time.Second)
	kept := nsClient(t, adm, adminSideKept, dir)
	var net4 struct {
		Revision uint64 `json:"revision"`
		Pending  bool   `json:"pending"`
	}
	kept.getJSON("/api/v1/network", &net4)
	if net4.Revision != 4 || net4.Pending {
		t.Fatalf("a confirmed change did not stay: %+v", net4)
	}

	// Stopping leaves the namespace as it was before Fulcrum started.
	p.stop(t)
	if after := hostState(t, fns); after != before {
		t.Fatalf("the namespace differs after Fulcrum stopped:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// A restart without --admin-addr: the admin listener binds the
	// settings' admin address, which Fulcrum adds first, and the VIP
	// answers at once.
	p = startIn(t, fns, work, env, "serving configuration revision", "serve", "--data-dir", dir, "--manage-network", "on")
	if got, err := fetchVIP(cli); err != nil || got != "hello from the farm\n" {
		t.Fatalf("right after the restart the VIP does not answer: %q %v\n%s", got, err, p.output())
	}
	if !strings.Contains(p.output(), "https://"+adminSideOwned+":"+adminPort+"/api/v1/") {
		t.Errorf("the admin listener is not on the settings' admin address:\n%s", p.output())
	}
	admin.getJSON("/api/v1/network", &net4)
	if net4.Revision != 4 || net4.Pending {
		t.Errorf("after the restart: %+v", net4)
	}
	if kept.reachable() {
		t.Error("the admin listener answers on another address than the settings' adminAddress")
	}
	p.stop(t)
	if after := hostState(t, fns); after != before {
		t.Fatalf("the namespace differs after the second stop:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// startIn is start, with the binary run in namespace n.
func startIn(t *testing.T, n *topo.NS, dir string, env []string, ready string, args ...string) *proc {
	t.Helper()
	return startCmd(t, dir, env, ready, exec.Command("ip", append([]string{"netns", "exec", n.Name, binary}, args...)...))
}

// fetchVIP connects from the client namespace to the VIP and reads the
// answer.
func fetchVIP(cli *topo.NS) (string, error) {
	c, err := cli.Dial(&net.Dialer{Timeout: 3 * time.Second}, "tcp", net.JoinHostPort(vipInRange, "8080"))
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// eventually polls cond every 200 ms until it holds, at most for d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// nsClient talks to the admin API at addr from namespace n, pinning the
// admin certificate of the data directory.
type nsClientT struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func nsClient(t *testing.T, n *topo.NS, addr, dataDir string) *nsClientT {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "admin-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("admin-cert.pem holds no PEM block")
	}
	pinned := block.Bytes
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			return n.Dial(&net.Dialer{Timeout: time.Second}, network, a)
		},
		DisableKeepAlives: true,
		// The certificate names the address Fulcrum first listened on;
		// the test pins the certificate itself instead.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, pinned) {
					return errors.New("not the admin certificate of the data directory")
				}
				return nil
			}},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &nsClientT{t: t, base: "https://" + net.JoinHostPort(addr, adminPort), hc: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// tryCall makes a request as bal; code 0 when it failed.
func (c *nsClientT) tryCall(method, path, body string) (int, string) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.SetBasicAuth("bal", password)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// call is tryCall; a failed request fails the test.
func (c *nsClientT) call(method, path, body string) (int, string) {
	c.t.Helper()
	code, b := c.tryCall(method, path, body)
	if code == 0 {
		c.t.Fatalf("%s %s%s: %s", method, c.base, path, b)
	}
	return code, b
}

func (c *nsClientT) getJSON(path string, v any) {
	c.t.Helper()
	code, b := c.call("GET", path, "")
	if code != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal([]byte(b), v); err != nil {
		c.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// reachable reports whether the admin API answers at c's address.
func (c *nsClientT) reachable() bool {
	code, _ := c.tryCall("GET", "/api/v1/session", "")
	return code == http.StatusOK
}

// hostState describes the namespace's addresses, routes, rules, nftables
// tables and forwarding sysctls, one item a line, sorted.
func hostState(t *testing.T, n *topo.NS) string {
	t.Helper()
	var lines []string
	var links []struct {
		IfName   string   `json:"ifname"`
		Flags    []string `json:"flags"`
		MTU      int      `json:"mtu"`
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	decodeIP(t, n, &links, "-j", "addr")
	for _, l := range links {
		lines = append(lines, fmt.Sprintf("link %s mtu %d up %v", l.IfName, l.MTU, slices.Contains(l.Flags, "UP")))
		for _, a := range l.AddrInfo {
			lines = append(lines, fmt.Sprintf("addr %s %s/%d", l.IfName, a.Local, a.PrefixLen))
		}
	}
	for _, fam := range []string{"-4", "-6"} {
		var routes []map[string]any
		decodeIP(t, n, &routes, fam, "-j", "route", "show", "table", "all")
		for _, r := range routes {
			lines = append(lines, fmt.Sprintf("route %s %v dev %v via %v table %v proto %v type %v src %v", fam,
				r["dst"], r["dev"], r["gateway"], r["table"], r["protocol"], r["type"], r["prefsrc"]))
		}
		var rules []map[string]any
		decodeIP(t, n, &rules, fam, "-j", "rule")
		for _, r := range rules {
			lines = append(lines, fmt.Sprintf("rule %s %v from %v fwmark %v table %v", fam, r["priority"], r["src"], r["fwmark"], r["table"]))
		}
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(n.Handle)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		lines = append(lines, fmt.Sprintf("nft table %d %s", tb.Family, tb.Name))
	}
	lines = append(lines, "sysctl ip_forward "+n.ReadSysctl("net.ipv4.ip_forward"))
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func decodeIP(t *testing.T, n *topo.NS, v any, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).Output()
	if err != nil {
		t.Fatalf("ip %v: %v", args, err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ip %v: %v: %s", args, err, out)
	}
}
