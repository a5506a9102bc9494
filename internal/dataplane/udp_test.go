package dataplane

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// sipUAS is a tiny SIP user agent server over UDP: it answers every
// request with "SIP/2.0 200 OK", copying Via, From, Call-ID and CSeq,
// adding a tag to To and naming itself in a Server header.
type sipUAS struct {
	name string
	port int
}

func startUAS(t testing.TB, addr, name string) *sipUAS {
	t.Helper()
	srv := testkit.StartUDP(t, addr, func(pc net.PacketConn, from net.Addr, p []byte) {
		if resp, ok := sipAnswer(p, name); ok {
			_, _ = pc.WriteTo(resp, from)
		}
	})
	return &sipUAS{name: name, port: srv.Port()}
}

// sipAnswer builds the 200 OK answer to a SIP request, or reports false
// for anything that is not one.
func sipAnswer(req []byte, server string) ([]byte, bool) {
	r := bufio.NewReader(strings.NewReader(string(req)))
	start, err := r.ReadString('\n')
	if err != nil {
		return nil, false
	}
	method, _, ok := strings.Cut(start, " ")
	if !ok || !strings.HasSuffix(strings.TrimSpace(start), "SIP/2.0") {
		return nil, false
	}
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" || err != nil {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "from", "call-id", "cseq":
			b.WriteString(line + "\r\n")
		case "to":
			b.WriteString("To:" + value + ";tag=" + server + "\r\n")
		}
	}
	fmt.Fprintf(&b, "Server: %s\r\nAllow: INVITE, ACK, OPTIONS, BYE\r\nX-Method: %s\r\nContent-Length: 0\r\n\r\n", server, method)
	return []byte(b.String()), true
}

// sipRequest is a SIP request of method with callID, from a client on
// local to the service at vip.
func sipRequest(method, callID string, local, vip netip.AddrPort, cseq int) []byte {
	return fmt.Appendf(nil, "%s sip:service@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%d\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:alice@example.test>;tag=a1\r\n"+
		"To: <sip:service@example.test>\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: %d %s\r\n"+
		"Content-Length: 0\r\n\r\n",
		method, vip, local, callID, cseq, callID, cseq, method)
}

// sipHeader returns the value of header name in a SIP message.
func sipHeader(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if n, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(n), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// sipExchange sends a request from c to vip and returns the answer and
// where it came from, retrying (UDP may drop) a bounded number of times.
func sipExchange(t *testing.T, c *net.UDPConn, vip netip.AddrPort, method, callID string, cseq int) (string, netip.AddrPort) {
	t.Helper()
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	buf := make([]byte, 65535)
	for range 20 {
		if _, err := c.WriteToUDPAddrPort(sipRequest(method, callID, local, vip, cseq), vip); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err == nil {
			return string(buf[:n]), from
		}
	}
	t.Fatalf("no answer to %s %s", method, callID)
	return "", netip.AddrPort{}
}

func TestSIPOverUDP(t *testing.T) {
	uas := []*sipUAS{startUAS(t, "127.0.0.31", "uas-a"), startUAS(t, "127.0.0.32", "uas-b"), startUAS(t, "127.0.0.33", "uas-c")}
	e := newEngine(t)
	port := testkit.FreeUDPPort(t, "127.0.0.30")
	vs := config.VirtualService{ID: 1, Address: "127.0.0.30", Port: port, Protocol: "udp", Idletime: 3, HealthCheck: config.HealthCheck{Type: "none"}}
	for i, u := range uas {
		vs.RealServers = append(vs.RealServers, config.RealServer{ID: 11 + i, Address: fmt.Sprintf("127.0.0.%d", 31+i), Port: u.port})
	}
	mustApply(t, e, conf(t, vs))
	vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.30"), uint16(port))

	// Three phones: each OPTIONS and INVITE round trip keeps its Call-ID,
	// comes back from the VIP, and a phone's session stays on one server.
	servers := map[string]bool{}
	for i := range 3 {
		phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer phone.Close()
		var server string
		for j, method := range []string{"OPTIONS", "INVITE"} {
			callID := fmt.Sprintf("call-%d-%d@example.test", i, j)
			resp, from := sipExchange(t, phone, vip, method, callID, j+1)
			if from != vip {
				t.Errorf("answer from %s, want the VIP %s", from, vip)
			}
			if !strings.HasPrefix(resp, "SIP/2.0 200 OK\r\n") || sipHeader(resp, "Call-ID") != callID ||
				sipHeader(resp, "CSeq") != fmt.Sprintf("%d %s", j+1, method) || sipHeader(resp, "X-Method") != method {
				t.Errorf("answer to %s %s:\n%s", method, callID, resp)
			}
			s := sipHeader(resp, "Server")
			if j > 0 && s != server {
				t.Errorf("phone %d moved from %s to %s within its session", i, server, s)
			}
			server = s
		}
		servers[server] = true
	}
	if len(servers) != 3 {
		t.Errorf("round robin over 3 SIP servers used %v", servers)
	}
	st := e.Status()[0]
	if st.Protocol != "udp" || st.State != status.Up || st.TotalConns != 3 || st.BytesIn == 0 || st.BytesOut == 0 {
		t.Errorf("status %+v", st)
	}
	if !st.Sockets[0].Listening || !strings.HasPrefix(st.Sockets[0].Address, "127.0.0.30:") {
		t.Errorf("sockets %+v", st.Sockets)
	}
	// Sessions end after the 3 s idle timeout.
	testkit.Eventually(t, 10*time.Second, func() bool { return e.Status()[0].ActiveConns == 0 }, "sessions to time out")
	if e.udp.Active() != 0 {
		t.Errorf("%d sessions left", e.udp.Active())
	}
}

func TestUDPRealServerDropped(t *testing.T) {
	a, b := startUAS(t, "127.0.0.35", "uas-a"), startUAS(t, "127.0.0.36", "uas-b")
	e := newEngine(t)
	port := testkit.FreeUDPPort(t, "127.0.0.34")
	build := func(aEnabled bool) *config.Config {
		vs := config.VirtualService{ID: 1, Address: "127.0.0.34", Port: port, Protocol: "udp", HealthCheck: config.HealthCheck{Type: "none"}, RealServers: []config.RealServer{
			{ID: 11, Address: "127.0.0.35", Port: a.port, Enabled: config.Bool(aEnabled)},
			{ID: 12, Address: "127.0.0.36", Port: b.port},
		}}
		cfg := conf(t, vs)
		cfg.Options.DropOnFail = true
		return cfg
	}
	mustApply(t, e, build(true))
	vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.34"), uint16(port))
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	// Find a phone session on a: the first goes to a with round robin.
	resp, _ := sipExchange(t, phone, vip, "OPTIONS", "c1", 1)
	first := sipHeader(resp, "Server")
	if first != "uas-a" {
		t.Skipf("first session went to %s; round robin order differs", first)
	}
	// Disabling a with drop on failure ends the session at once: the next
	// datagram starts a new session, on b.
	mustApply(t, e, build(false))
	testkit.Eventually(t, 10*time.Second, func() bool { return e.Status()[0].RealServers[0].ActiveConns == 0 }, "the session on a to end")
	resp, _ = sipExchange(t, phone, vip, "OPTIONS", "c3", 3)
	if got := sipHeader(resp, "Server"); got != "uas-b" {
		t.Errorf("after a was dropped the phone reached %s", got)
	}
}
