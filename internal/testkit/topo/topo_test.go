package topo

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// peer dials addr from n and returns what the server saw as its peer.
func peer(n *NS, addr string) (string, error) {
	c, err := n.Dial(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

// TestTopology: the paths the package comment promises, with real
// connections: client → outside through upstream, internal → igw,
// Fulcrum (configured with ConfigureFulcrum) → farm
// through the router; and what must not work: upstream knows neither the
// farm nor the internal subnet.
func TestTopology(t *testing.T) {
	tp := New(t)
	tp.ConfigureFulcrum()
	ServePeer(t, tp.Outside.Listen("tcp", OutsideAddr+":7000"))
	ServePeer(t, tp.Farm.Listen("tcp", FarmAddrs[0]+":7000"))
	ServePeer(t, tp.Internal.Listen("tcp", InternalAddr+":7000"))
	ServePeer(t, tp.Client.Listen("tcp", ClientAddr+":7000"))
	ServePeer(t, tp.IGW.Listen("tcp", IGWAddr+":7000"))
	cases := []struct {
		name string
		from *NS
		to   string
		ok   bool
		seen string
	}{
		{"client to outside", tp.Client, OutsideAddr + ":7000", true, ClientAddr},
		{"fulcrum to farm", tp.Fulcrum, FarmAddrs[0] + ":7000", true, FulcrumEth1},
		{"internal to igw's network side", tp.Internal, IGWAddr + ":7000", true, InternalAddr},
		{"internal to client: the client's replies go to upstream", tp.Internal, ClientAddr + ":7000", false, ""},
		{"fulcrum to internal: the global gateway does not know it", tp.Fulcrum, InternalAddr + ":7000", false, ""},
		{"outside to farm: upstream does not know it", tp.Outside, FarmAddrs[0] + ":7000", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := peer(c.from, c.to)
			if !c.ok {
				if err == nil {
					t.Fatalf("connected (server saw %s)", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, c.seen+":") {
				t.Errorf("server saw %q, want %s", got, c.seen)
			}
		})
	}
	if v := tp.Router.ReadSysctl("net.ipv4.ip_forward"); v != "1" {
		t.Errorf("router ip_forward = %s", v)
	}
	if out, err := tp.Farm.Exec("ip", "-br", "addr"); err != nil || !strings.Contains(out, FarmAddrs[1]) {
		t.Errorf("ip netns exec: %v: %s", err, out)
	}
}
