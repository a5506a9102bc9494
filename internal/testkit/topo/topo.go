// Package topo builds the reference two-armed deployment in network
// namespaces for tests (root only): real veth pairs, a bridge, routers
// with forwarding on, and real sockets opened inside the namespaces.
//
//	client .100 ──┐
//	              │  192.0.2.0/24 (bridge br0 in "upstream")
//	igw .253 ─────┼──── .254 upstream ──── 203.0.113.0/24 ──── .10 outside
//	 │            │     (global default gateway)
//	 │            └──── eth0 [ fulcrum ] eth1 ── 10.0.1.0/24 ── .254 router .1 ── 10.0.2.0/24 ── .10 .11 farm
//	 │                  (eth0 .1 and eth1 .1 are set by the test or by Fulcrum)
//	198.51.100.0/24 (igw .1)
//	 │
//	internal .10
//
// upstream is the global default gateway (192.0.2.254): it bridges the
// network side (br0) and routes to "outside" (203.0.113.0/24) but knows
// neither the farm (10.0.0.0/8) nor the internal subnet; igw
// (192.0.2.253) is the second gateway, the only way to "internal"
// (198.51.100.0/24). The client's default route is upstream; the farm's
// default route goes through the router to Fulcrum's eth1 (FulcrumEth1),
// so replies to clients' own addresses come back through Fulcrum
// (transparency). Fulcrum's eth0 and eth1 exist, down and without
// addresses: the test or Fulcrum configures them (ConfigureFulcrum does
// it with ip for tests of something else).
//
// Every namespace is named with a prefix unique to the test process and
// test ("fu<pid%1000><n>-"), and deleted in t.Cleanup.
package topo

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"
)

// Addresses of the topology.
const (
	NetSubnet    = "192.0.2.0/24"
	FulcrumEth0  = "192.0.2.1"   // Fulcrum's network-side address (ConfigureFulcrum)
	ClientAddr   = "192.0.2.100" // the internet-side client
	UpstreamAddr = "192.0.2.254" // the global default gateway
	IGWAddr      = "192.0.2.253" // the gateway to the internal subnet

	OutsideSubnet = "203.0.113.0/24"
	OutsideAddr   = "203.0.113.10" // the outside host (SNAT)
	UpstreamOut   = "203.0.113.1"

	InternalSubnet = "198.51.100.0/24"
	InternalAddr   = "198.51.100.10" // the internal client
	IGWInternal    = "198.51.100.1"

	FarmLink    = "10.0.1.0/24"
	FulcrumEth1 = "10.0.1.1"   // Fulcrum's farm-side address (ConfigureFulcrum)
	RouterLink  = "10.0.1.254" // the router on Fulcrum's farm side

	FarmSubnet = "10.0.2.0/24"
	RouterFarm = "10.0.2.1"
)

// FarmAddrs are the real servers' addresses, all in the farm namespace.
var FarmAddrs = []string{"10.0.2.10", "10.0.2.11"}

var seq atomic.Int32

// Prefix returns a namespace-name prefix unique to this process and call.
func Prefix() string {
	return fmt.Sprintf("fu%d%d", os.Getpid()%1000, seq.Add(1))
}

// NS is one network namespace of a test.
type NS struct {
	// Name is the namespace's name (ip netns).
	Name string
	// Handle is an open handle of it.
	Handle netns.NsHandle
	t      testing.TB
}

// RequireRoot fails the test under CI=true without root, and skips it
// elsewhere.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI runs as root, and this test needs root for network namespaces")
	}
	t.Skip("needs root for network namespaces")
}

// NewNS creates the namespace <prefix>-<role> with lo up, IPv6 duplicate
// address detection off; it is deleted in t.Cleanup.
func NewNS(t testing.TB, prefix, role string) *NS {
	t.Helper()
	name := prefix + "-" + role
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting namespace %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", name, err)
	}
	t.Cleanup(func() { _ = h.Close() })
	n := &NS{Name: name, Handle: h, t: t}
	n.IP("link", "set", "lo", "up")
	n.Sysctl("net.ipv6.conf.all.accept_dad", "0")
	n.Sysctl("net.ipv6.conf.default.accept_dad", "0")
	return n
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// IP runs `ip -n <ns> args…` and returns its output; a failure fails the
// test.
func (n *NS) IP(args ...string) string {
	n.t.Helper()
	return run(n.t, "ip", append([]string{"-n", n.Name}, args...)...)
}

// Exec runs a command in the namespace (ip netns exec) and returns its
// combined output and error.
func (n *NS) Exec(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...).CombinedOutput()
	return string(out), err
}

// Do runs fn on an OS thread inside the namespace: sockets it opens
// belong to the namespace and stay usable from any goroutine.
func (n *NS) Do(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(n.Handle); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- fmt.Errorf("leaving namespace %s: %w", n.Name, err) // the thread dies with the goroutine
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// Sysctl sets a sysctl (dotted name) in the namespace.
func (n *NS) Sysctl(name, value string) {
	n.t.Helper()
	err := n.Do(func() error {
		return os.WriteFile("/proc/sys/"+strings.ReplaceAll(name, ".", "/"), []byte(value+"\n"), 0o644)
	})
	if err != nil {
		n.t.Fatalf("sysctl %s=%s in %s: %v", name, value, n.Name, err)
	}
}

// ReadSysctl reads a sysctl in the namespace.
func (n *NS) ReadSysctl(name string) string {
	n.t.Helper()
	var v string
	err := n.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		n.t.Fatalf("sysctl %s in %s: %v", name, n.Name, err)
	}
	return v
}

// Veth connects a (interface aName) and b (bName) with a veth pair.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	run(t, "ip", "link", "add", aName, "netns", a.Name, "type", "veth", "peer", "name", bName, "netns", b.Name)
}

// Topo is the two-armed topology.
type Topo struct {
	// Prefix is the namespaces' name prefix.
	Prefix string
	// The namespaces (see the package comment).
	Client, Fulcrum, Upstream, Outside, IGW, Internal, Router, Farm *NS
}

// New builds the topology; everything is removed in t.Cleanup.
func New(t testing.TB) *Topo {
	t.Helper()
	RequireRoot(t)
	p := Prefix()
	tp := &Topo{Prefix: p}
	tp.Client = NewNS(t, p, "client")
	tp.Fulcrum = NewNS(t, p, "fulcrum")
	tp.Upstream = NewNS(t, p, "upstream")
	tp.Outside = NewNS(t, p, "outside")
	tp.IGW = NewNS(t, p, "igw")
	tp.Internal = NewNS(t, p, "internal")
	tp.Router = NewNS(t, p, "router")
	tp.Farm = NewNS(t, p, "farm")

	up := tp.Upstream
	up.IP("link", "add", "br0", "type", "bridge")
	up.IP("addr", "add", UpstreamAddr+"/24", "dev", "br0")
	up.IP("link", "set", "br0", "up")
	port := func(other *NS, otherName, portName string) {
		Veth(t, other, otherName, up, portName)
		up.IP("link", "set", portName, "master", "br0")
		up.IP("link", "set", portName, "up")
	}
	port(tp.Fulcrum, "eth0", "p-fulcrum")
	port(tp.Client, "eth0", "p-client")
	port(tp.IGW, "eth0", "p-igw")

	tp.Client.IP("addr", "add", ClientAddr+"/24", "dev", "eth0")
	tp.Client.IP("link", "set", "eth0", "up")
	tp.Client.IP("route", "add", "default", "via", UpstreamAddr)

	Veth(t, up, "eth1", tp.Outside, "eth0")
	up.IP("addr", "add", UpstreamOut+"/24", "dev", "eth1")
	up.IP("link", "set", "eth1", "up")
	up.Sysctl("net.ipv4.ip_forward", "1")
	tp.Outside.IP("addr", "add", OutsideAddr+"/24", "dev", "eth0")
	tp.Outside.IP("link", "set", "eth0", "up")
	tp.Outside.IP("route", "add", "default", "via", UpstreamOut)

	tp.IGW.IP("addr", "add", IGWAddr+"/24", "dev", "eth0")
	tp.IGW.IP("link", "set", "eth0", "up")
	Veth(t, tp.IGW, "eth1", tp.Internal, "eth0")
	tp.IGW.IP("addr", "add", IGWInternal+"/24", "dev", "eth1")
	tp.IGW.IP("link", "set", "eth1", "up")
	tp.IGW.Sysctl("net.ipv4.ip_forward", "1")
	tp.Internal.IP("addr", "add", InternalAddr+"/24", "dev", "eth0")
	tp.Internal.IP("link", "set", "eth0", "up")
	tp.Internal.IP("route", "add", "default", "via", IGWInternal)

	Veth(t, tp.Fulcrum, "eth1", tp.Router, "eth0")
	tp.Router.IP("addr", "add", RouterLink+"/24", "dev", "eth0")
	tp.Router.IP("link", "set", "eth0", "up")
	Veth(t, tp.Router, "eth1", tp.Farm, "eth0")
	tp.Router.IP("addr", "add", RouterFarm+"/24", "dev", "eth1")
	tp.Router.IP("link", "set", "eth1", "up")
	tp.Router.IP("route", "add", "default", "via", FulcrumEth1)
	tp.Router.Sysctl("net.ipv4.ip_forward", "1")
	for _, a := range FarmAddrs {
		tp.Farm.IP("addr", "add", a+"/24", "dev", "eth0")
	}
	tp.Farm.IP("link", "set", "eth0", "up")
	tp.Farm.IP("route", "add", "default", "via", RouterFarm)
	return tp
}

// ConfigureFulcrum gives Fulcrum's namespace its addresses and routes
// with ip, as an admin would (for tests of something other than package
// hostnet): eth0 FulcrumEth0/24, eth1 FulcrumEth1/24, default via
// UpstreamAddr, the farm via RouterLink.
func (tp *Topo) ConfigureFulcrum() {
	f := tp.Fulcrum
	f.IP("addr", "add", FulcrumEth0+"/24", "dev", "eth0")
	f.IP("link", "set", "eth0", "up")
	f.IP("addr", "add", FulcrumEth1+"/24", "dev", "eth1")
	f.IP("link", "set", "eth1", "up")
	f.IP("route", "add", "default", "via", UpstreamAddr)
	f.IP("route", "add", FarmSubnet, "via", RouterLink)
}

// Listen opens a listener in the namespace (network "tcp" or "udp" for a
// packet socket use ListenPacket); it is closed in t.Cleanup.
func (n *NS) Listen(network, addr string) net.Listener {
	n.t.Helper()
	var l net.Listener
	err := n.Do(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		n.t.Fatalf("listening on %s in %s: %v", addr, n.Name, err)
	}
	n.t.Cleanup(func() { _ = l.Close() })
	return l
}

// Dial connects from the namespace with d (its LocalAddr, Control and
// Timeout apply).
func (n *NS) Dial(d *net.Dialer, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) {
		c, err = d.Dial(network, addr)
		return err
	})
	return c, err
}

// ServePeer accepts connections on l and answers each with the peer's
// address as the server sees it ("host:port"), then closes it; it stops
// in t.Cleanup.
func ServePeer(t testing.TB, l net.Listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, c.RemoteAddr().String())
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); <-done })
}
