//go:build linux

package health

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
	"github.com/fulcrum-lb/fulcrum/internal/testkit/topo"
)

// The marked-route topology, two namespaces joined by a veth:
//
//	chk  c0 10.72.1.1/24 ─── s0 10.72.1.2/24  srv  (10.72.9.9/32 on lo)
//
// The checks run in chk, whose main table knows 10.72.1.0/24 alone; the
// only way to 10.72.9.9, where srv's servers listen, is the default route
// of table markTable, which the rule `fwmark markOfGW lookup markTable`
// gives to packets carrying the mark — as package hostnet routes a
// service's traffic through its own default gateway.
const (
	markOfGW   = 0x10000
	markTable  = 100
	markServer = "10.72.9.9"
)

// markNet is the marked-route topology.
type markNet struct{ chk, srv *topo.NS }

func newMarkNet(t *testing.T) *markNet {
	topo.RequireRoot(t)
	p := topo.Prefix()
	n := &markNet{chk: topo.NewNS(t, p, "chk"), srv: topo.NewNS(t, p, "srv")}
	topo.Veth(t, n.chk, "c0", n.srv, "s0")
	n.chk.IP("addr", "add", "10.72.1.1/24", "dev", "c0")
	n.chk.IP("link", "set", "c0", "up")
	n.chk.IP("rule", "add", "fwmark", fmt.Sprintf("%#x", markOfGW), "lookup", fmt.Sprint(markTable), "pref", "100")
	n.chk.IP("route", "add", "default", "via", "10.72.1.2", "dev", "c0", "table", fmt.Sprint(markTable))
	// Replies from 10.72.9.9 come in on c0, which the main table does not
	// route back to.
	for _, f := range []string{"all", "default", "c0"} {
		n.chk.Sysctl("net.ipv4.conf."+f+".rp_filter", "0")
	}
	n.srv.IP("addr", "add", "10.72.1.2/24", "dev", "s0")
	n.srv.IP("addr", "add", markServer+"/32", "dev", "lo")
	n.srv.IP("link", "set", "s0", "up")
	return n
}

// onThread runs fn on a thread of its own in ns, with CAP_NET_ADMIN and
// CAP_NET_RAW dropped from the thread's effective set when drop. The
// thread is never given back to the runtime (it ends with its
// goroutine), so nothing else ever runs in its namespace or without those
// capabilities.
func onThread(ns *topo.NS, drop bool, fn func()) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Handle), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns.Name, err)
			return
		}
		if drop {
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				done <- fmt.Errorf("capget: %w", err)
				return
			}
			data[0].Effective &^= 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_RAW
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				done <- fmt.Errorf("capset: %w", err)
				return
			}
		}
		fn()
		done <- nil
	}()
	return <-done
}

// listen opens a socket on markServer in srv.
func (n *markNet) listen(t *testing.T) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	if terr := onThread(n.srv, false, func() { ln, err = net.Listen("tcp4", markServer+":0") }); terr != nil || err != nil {
		t.Fatalf("listening in %s: %v %v", n.srv.Name, terr, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// TestChecksFollowTheMarkedRoute runs every kind of check in chk against
// a server reachable only by the route of marked packets: with the
// service's mark the check passes, without it the server is unreachable,
// and where the mark cannot be set (a thread without CAP_NET_ADMIN) the
// check fails and says why.
func TestChecksFollowTheMarkedRoute(t *testing.T) {
	n := newMarkNet(t)
	target := func(ln net.Listener) Target {
		return Target{Address: markServer, Port: ln.Addr().(*net.TCPAddr).Port}
	}
	tcp := target(testkit.ServeTCP(t, n.listen(t), nil).Listener())
	web := startHTTPOn(t, n.listen(t), nil).target()
	smtp := &lineServer{}
	smtp.srv = testkit.ServeTCP(t, n.listen(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		smtp.session(c, smtpProto, nil)
	})
	ldap := &ldapServer{}
	ldap.srv = testkit.ServeTCP(t, n.listen(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		ldap.session(c)
	})
	bdata := target(testkit.ServeTCP(t, n.listen(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		if _, err := c.Read(buf); err == nil {
			_, _ = c.Write([]byte("READY"))
		}
	}).Listener())
	var pc net.PacketConn
	var err error
	if terr := onThread(n.srv, false, func() { pc, err = net.ListenPacket("udp4", markServer+":0") }); terr != nil || err != nil {
		t.Fatalf("listening on udp in %s: %v %v", n.srv.Name, terr, err)
	}
	dns := serveDNS(t, pc)

	const cannotMark = "cannot mark the socket for the service's default gateway: SO_MARK 0x10000: operation not permitted"
	for _, tc := range []struct {
		name    string
		p       Params
		tg      Target
		pingGrp string // net.ipv4.ping_group_range in chk
		up      string // in the reason of a passed check
		capless string // in the reason of a check on a thread without CAP_NET_ADMIN
	}{
		{name: "tcp", p: Params{Type: TypeTCP}, tg: tcp, up: "tcp connect to " + markServer, capless: cannotMark},
		{name: "http", p: Params{Type: TypeHTTP}, tg: web, up: "http 200 from " + web.String(), capless: cannotMark},
		{name: "smtp", p: Params{Type: TypeSMTP}, tg: smtp.target(), up: "smtp greeting from " + markServer, capless: cannotMark},
		{name: "ldap", p: Params{Type: TypeLDAP}, tg: ldap.target(), up: "ldap anonymous bind to " + markServer, capless: cannotMark},
		{name: "bdata", p: Params{Type: TypeBData, Send: hex.EncodeToString([]byte("PING")), Pattern: hex.EncodeToString([]byte("READY"))},
			tg: bdata, up: "holds 5245414459", capless: cannotMark},
		{name: "dns over udp", p: Params{Type: TypeDNS}, tg: dns.target(), up: "dns NOERROR from " + markServer, capless: cannotMark},
		{name: "icmp, ping socket", p: Params{Type: TypeICMP}, tg: Target{Address: markServer}, pingGrp: "0 2147483647",
			up: "icmp echo reply from " + markServer, capless: cannotMark},
		// Without CAP_NET_RAW there is no raw socket to mark at all.
		{name: "icmp, raw socket", p: Params{Type: TypeICMP}, tg: Target{Address: markServer}, pingGrp: "1 0",
			up: "icmp echo reply from " + markServer, capless: "no raw socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewChecker(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.pingGrp != "" {
				n.chk.Sysctl("net.ipv4.ping_group_range", tc.pingGrp)
				var raw bool
				var oerr error
				if err := onThread(n.chk, false, func() {
					var pc net.PacketConn
					if pc, raw, oerr = openICMP(false, markOfGW); oerr == nil {
						_ = pc.Close()
					}
				}); err != nil || oerr != nil {
					t.Fatalf("opening an icmp socket in %s: %v %v", n.chk.Name, err, oerr)
				}
				if want := tc.pingGrp == "1 0"; raw != want {
					t.Fatalf("raw socket %v, want %v", raw, want)
				}
			}
			check := func(mark uint32, drop bool) Result {
				t.Helper()
				tg := tc.tg
				tg.Mark = mark
				var r Result
				err := onThread(n.chk, drop, func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					r = c.Check(ctx, tg)
				})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			if r := check(markOfGW, false); !r.Up || !strings.Contains(r.Reason, tc.up) {
				t.Errorf("with the gateway's mark: %+v, want Up with %q", r, tc.up)
			}
			if r := check(0, false); r.Up || !strings.Contains(r.Reason, "network is unreachable") {
				t.Errorf("without a mark: %+v, want Down: network is unreachable", r)
			}
			if r := check(markOfGW, true); r.Up || !strings.Contains(r.Reason, tc.capless) {
				t.Errorf("with the mark, without CAP_NET_ADMIN: %+v, want Down with %q", r, tc.capless)
			}
		})
	}
}
