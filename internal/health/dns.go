package health

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// DNS record types and response codes used by the dns check.
const (
	dnsTypeA  = 1
	dnsTypeNS = 2
	dnsClass  = 1 // IN

	dnsMaxMessage = 4096
)

var dnsRcodes = map[int]string{0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

func rcodeName(c int) string {
	if n, ok := dnsRcodes[c]; ok {
		return n
	}
	return fmt.Sprintf("RCODE%d", c)
}

// dnsChecker sends one UDP query, with recursion desired, and passes when
// the server answers it with NOERROR or NXDOMAIN: either means the server
// is serving. The query is for Params.Host (type A) or, without a host,
// for the root zone's NS records, which a resolver answers; an
// authoritative-only server usually REFUSEs "." and needs a Host in one
// of its zones.
type dnsChecker struct {
	name  string // fully qualified, "." for the root
	qtype uint16
}

func newDNSChecker(p Params) (*dnsChecker, error) {
	if p.Host == "" || p.Host == "." {
		return &dnsChecker{name: ".", qtype: dnsTypeNS}, nil
	}
	name := strings.TrimSuffix(p.Host, ".") + "."
	if _, err := appendDNSName(nil, name); err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	return &dnsChecker{name: name, qtype: dnsTypeA}, nil
}

// Check sends the query and waits for the matching answer.
func (d *dnsChecker) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	c, stop, err := dial(ctx, "udp", t)
	if err != nil {
		return down(TypeDNS, t, start, "socket: "+describe(err))
	}
	defer func() { stop(); _ = c.Close() }()
	id := uint16(rand.Uint32())
	q, err := dnsQuery(id, d.name, d.qtype)
	if err != nil {
		return down(TypeDNS, t, start, err.Error())
	}
	if _, err := c.Write(q); err != nil {
		return down(TypeDNS, t, start, "send: "+describe(err))
	}
	buf := make([]byte, dnsMaxMessage)
	var last error
	// A connected UDP socket only gets datagrams from the server; skip
	// stray ones (wrong ID or question) until the deadline.
	for range 16 {
		n, err := c.Read(buf)
		if err != nil {
			what := describe(err)
			if last != nil {
				what += " (ignored: " + last.Error() + ")"
			}
			return down(TypeDNS, t, start, fmt.Sprintf("query %s: %s", d.name, what))
		}
		rcode, err := parseDNSResponse(buf[:n], id, d.name, d.qtype)
		if err != nil {
			last = err
			continue
		}
		what := fmt.Sprintf("dns %s from %s for %s", rcodeName(rcode), t, d.name)
		if rcode != 0 && rcode != 3 {
			return Result{Reason: what, Latency: time.Since(start)}
		}
		return up(what, start)
	}
	return down(TypeDNS, t, start, "no valid answer: "+last.Error())
}

// dnsQuery builds a query message with one question.
func dnsQuery(id uint16, name string, qtype uint16) ([]byte, error) {
	b := make([]byte, 12, 12+len(name)+6)
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], 0x0100) // RD
	binary.BigEndian.PutUint16(b[4:], 1)      // QDCOUNT
	b, err := appendDNSName(b, name)
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, qtype)
	return binary.BigEndian.AppendUint16(b, dnsClass), nil
}

// appendDNSName appends name ("example.com." or ".") in wire format.
func appendDNSName(b []byte, name string) ([]byte, error) {
	if name == "." {
		return append(b, 0), nil
	}
	if len(name) > 254 {
		return nil, fmt.Errorf("name %q is longer than 253 characters", name)
	}
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l == "" || len(l) > 63 {
			return nil, fmt.Errorf("name %q has an empty label or one longer than 63 characters", name)
		}
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0), nil
}

var errDNS = errors.New("malformed DNS answer")

// parseDNSResponse checks that msg answers the query (id, name, qtype)
// and returns its response code.
func parseDNSResponse(msg []byte, id uint16, name string, qtype uint16) (rcode int, err error) {
	if len(msg) < 12 {
		return 0, fmt.Errorf("%w: %d bytes", errDNS, len(msg))
	}
	if got := binary.BigEndian.Uint16(msg); got != id {
		return 0, fmt.Errorf("%w: id %d, want %d", errDNS, got, id)
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&0x8000 == 0 {
		return 0, fmt.Errorf("%w: not a response", errDNS)
	}
	if op := flags >> 11 & 0xf; op != 0 {
		return 0, fmt.Errorf("%w: opcode %d", errDNS, op)
	}
	rcode = int(flags & 0xf)
	qd := binary.BigEndian.Uint16(msg[4:])
	if qd == 0 && rcode != 0 && rcode != 3 {
		return rcode, nil // servers may drop the question from an error answer
	}
	if qd != 1 {
		return 0, fmt.Errorf("%w: %d questions", errDNS, qd)
	}
	got, off, err := readDNSName(msg, 12)
	if err != nil {
		return 0, err
	}
	if off+4 > len(msg) {
		return 0, fmt.Errorf("%w: truncated question", errDNS)
	}
	if !strings.EqualFold(got, name) {
		return 0, fmt.Errorf("%w: answer for %q, want %q", errDNS, got, name)
	}
	if t, c := binary.BigEndian.Uint16(msg[off:]), binary.BigEndian.Uint16(msg[off+2:]); t != qtype || c != dnsClass {
		return 0, fmt.Errorf("%w: answer for type %d class %d", errDNS, t, c)
	}
	return rcode, nil
}

// readDNSName reads a possibly compressed name at off and returns it in
// presentation form with a final dot, and the offset after it.
func readDNSName(msg []byte, off int) (string, int, error) {
	var sb strings.Builder
	end := -1
	for jumps := 0; ; {
		if off >= len(msg) {
			return "", 0, fmt.Errorf("%w: truncated name", errDNS)
		}
		l := int(msg[off])
		switch {
		case l == 0:
			if end < 0 {
				end = off + 1
			}
			if sb.Len() == 0 {
				return ".", end, nil
			}
			return sb.String(), end, nil
		case l&0xc0 == 0xc0:
			if off+1 >= len(msg) {
				return "", 0, fmt.Errorf("%w: truncated pointer", errDNS)
			}
			if jumps++; jumps > 16 {
				return "", 0, fmt.Errorf("%w: pointer loop", errDNS)
			}
			if end < 0 {
				end = off + 2
			}
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
		case l&0xc0 != 0:
			return "", 0, fmt.Errorf("%w: label type %#x", errDNS, l&0xc0)
		default:
			if off+1+l > len(msg) {
				return "", 0, fmt.Errorf("%w: truncated label", errDNS)
			}
			if sb.Len()+l+1 > 255 {
				return "", 0, fmt.Errorf("%w: name too long", errDNS)
			}
			sb.Write(msg[off+1 : off+1+l])
			sb.WriteByte('.')
			off += 1 + l
		}
	}
}
