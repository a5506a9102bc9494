package health

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// icmpChecker sends one ICMP echo request and passes when the matching
// echo reply comes back.
//
// It prefers an unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP), which
// Linux allows to the groups in net.ipv4.ping_group_range; the kernel then
// routes the reply to that socket alone. Otherwise it opens a raw socket,
// which needs root or CAP_NET_RAW, and picks its reply out by identifier,
// sequence number and payload. With neither, every icmp check fails with
// a reason that says so.
type icmpChecker struct{}

// icmpPayload is the data carried by our echo requests.
var icmpPayload = []byte("fulcrum-health-check")

// Check pings the target's address; the port is not used.
func (icmpChecker) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	fail := func(what string) Result {
		return Result{Reason: "icmp " + t.Address + ": " + what, Latency: time.Since(start)}
	}
	ip, err := resolveIP(ctx, t.Address)
	if err != nil {
		return fail(err.Error())
	}
	v6 := !ip.Is4()
	c, raw, err := openICMP(v6, t.Mark)
	if err != nil {
		return fail(err.Error())
	}
	defer c.Close()
	defer guardPacket(ctx, c)()
	id, seq := uint16(rand.Uint32()), uint16(rand.Uint32())
	var dst net.Addr = &net.UDPAddr{IP: ip.AsSlice()}
	if raw {
		dst = &net.IPAddr{IP: ip.AsSlice()}
	}
	if _, err := c.WriteTo(echoRequest(v6, id, seq, icmpPayload), dst); err != nil {
		return fail("send: " + describe(err))
	}
	buf := make([]byte, 1500)
	// A raw socket sees every ICMP packet of the host: bound the number of
	// foreign ones we skip (the deadline bounds the time).
	for range 1024 {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fail("no echo reply: " + describe(err))
		}
		rid, rseq, data, ok := parseEchoReply(buf[:n], v6)
		if !ok || rseq != seq || (raw && rid != id) || !bytes.Equal(data, icmpPayload) {
			continue
		}
		if fromIP(from) != ip {
			continue
		}
		return up("icmp echo reply from "+t.Address, start)
	}
	return fail("no echo reply among 1024 packets")
}

// resolveIP returns the address of host, an IP address or a DNS name
// (IPv4 preferred).
func resolveIP(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve: %s", describe(err))
	}
	if len(addrs) == 0 {
		return netip.Addr{}, errors.New("resolve: no address")
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

// openICMP opens a ping socket, or else a raw socket (raw true), with
// the packet mark mark when it is not 0. A mark that cannot be set fails
// it (a *markError): the raw socket would need the same capability.
func openICMP(v6 bool, mark uint32) (c net.PacketConn, raw bool, err error) {
	c, perr := pingSocket(v6, mark)
	if perr == nil {
		return c, false, nil
	}
	if me := asMarkError(mark, perr); me != nil {
		return nil, false, me
	}
	network, local := "ip4:icmp", "0.0.0.0"
	if v6 {
		network, local = "ip6:ipv6-icmp", "::"
	}
	var lc net.ListenConfig
	if mark != 0 {
		lc.Control = markControl(mark)
	}
	c, rerr := lc.ListenPacket(context.Background(), network, local)
	if me := asMarkError(mark, rerr); me != nil {
		return nil, false, me
	}
	if rerr != nil {
		return nil, false, fmt.Errorf("cannot ping: no ping socket (%s; see sysctl net.ipv4.ping_group_range) "+
			"and no raw socket (%s; needs root or CAP_NET_RAW)", describe(perr), describe(rerr))
	}
	return c, true, nil
}

// asMarkError returns the failure to set mark held by err, or nil. It
// looks only when mark is not 0, so that an unmarked check does not pay
// for the search.
func asMarkError(mark uint32, err error) *markError {
	if mark == 0 || err == nil {
		return nil
	}
	var me *markError
	if !errors.As(err, &me) {
		return nil
	}
	return me
}

// guardPacket ties c's deadline to ctx, like guard.
func guardPacket(ctx context.Context, c net.PacketConn) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	s := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return func() { s() }
}

func fromIP(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// ICMP message types of echo.
const (
	icmp4EchoRequest = 8
	icmp4EchoReply   = 0
	icmp6EchoRequest = 128
	icmp6EchoReply   = 129
)

// echoRequest builds an echo request. The IPv4 checksum is ours to
// compute; the kernel computes ICMPv6's (it covers a pseudo-header).
func echoRequest(v6 bool, id, seq uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0] = icmp4EchoRequest
	if v6 {
		b[0] = icmp6EchoRequest
	}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	b = append(b, payload...)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:], inetChecksum(b))
	}
	return b
}

// parseEchoReply reads an ICMP echo reply: identifier, sequence number and
// data. ok is false for anything else.
func parseEchoReply(b []byte, v6 bool) (id, seq uint16, data []byte, ok bool) {
	want := byte(icmp4EchoReply)
	if v6 {
		want = icmp6EchoReply
	}
	if len(b) < 8 || b[0] != want || b[1] != 0 {
		return 0, 0, nil, false
	}
	return binary.BigEndian.Uint16(b[4:]), binary.BigEndian.Uint16(b[6:]), b[8:], true
}

// inetChecksum is the Internet checksum (RFC 1071) of b.
func inetChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
