package health

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// bindResponseBytes encodes a BindResponse LDAPMessage.
func bindResponseBytes(id, code int, dn, diag string) []byte {
	var op []byte
	op = berTLV(op, berEnumerated, berInt(code))
	op = berTLV(op, berOctetString, []byte(dn))
	op = berTLV(op, berOctetString, []byte(diag))
	m := berTLV(nil, berInteger, berInt(id))
	m = berTLV(m, ldapBindResp, op)
	return berTLV(nil, berSequence, m)
}

// FuzzParseBindResponse feeds arbitrary bytes to the BER decoder: it never
// panics, and whatever it decodes encodes back to a message that decodes
// to the same values.
func FuzzParseBindResponse(f *testing.F) {
	f.Add(bindResponseBytes(1, 0, "", ""))
	f.Add(bindResponseBytes(1, 53, "dc=example", "anonymous binds are disabled"))
	f.Add(bindResponseBytes(300, 49, "", strings.Repeat("x", 300)))
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00})
	f.Add(ldapBindRequest(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, rest, err := parseBindResponse(b)
		if err != nil {
			return
		}
		if len(rest) > len(b) {
			t.Fatalf("rest longer than input")
		}
		if r.MessageID < 0 || r.ResultCode < 0 {
			return // negative values are decoded but never encoded by berInt
		}
		again, _, err := parseBindResponse(bindResponseBytes(r.MessageID, r.ResultCode, r.MatchedDN, r.Diagnostic))
		if err != nil || again != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}

// FuzzReadBERMessage checks that reading a message from a stream never
// panics nor returns more than the stream or the limit holds.
func FuzzReadBERMessage(f *testing.F) {
	f.Add(bindResponseBytes(1, 0, "", ""))
	f.Add([]byte{0x30, 0x83, 0x01, 0x00, 0x00})
	f.Add([]byte{0x30, 0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := readBERMessage(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(msg) > len(b) || len(msg) > maxLDAPMessage+6 || !bytes.Equal(msg, b[:len(msg)]) {
			t.Fatalf("message of %d bytes from %d", len(msg), len(b))
		}
		if _, _, _, err := berRead(msg); err != nil {
			t.Fatalf("a whole message does not split: %v", err)
		}
	})
}

// FuzzParseDNSResponse feeds arbitrary answers to the DNS parser.
func FuzzParseDNSResponse(f *testing.F) {
	q, _ := dnsQuery(0x1234, "health.test.", dnsTypeA)
	ans := append([]byte(nil), q...)
	ans[2] |= 0x80
	f.Add(ans)
	root, _ := dnsQuery(0x1234, ".", dnsTypeNS)
	root[2] |= 0x80
	f.Add(root)
	f.Add([]byte{0x12, 0x34, 0x80, 0x05, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x12, 0x34, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, name := range []string{"health.test.", "."} {
			rcode, err := parseDNSResponse(b, 0x1234, name, dnsTypeA)
			if err == nil && (rcode < 0 || rcode > 15) {
				t.Fatalf("rcode %d", rcode)
			}
		}
		if len(b) > 12 {
			name, off, err := readDNSName(b, 12)
			if err == nil && (len(name) > 256 || off > len(b) || !strings.HasSuffix(name, ".")) {
				t.Fatalf("name %q off %d of %d", name, off, len(b))
			}
		}
	})
}

// FuzzReadCodeReply feeds arbitrary greetings to the SMTP/FTP/NNTP reply
// reader.
func FuzzReadCodeReply(f *testing.F) {
	for _, s := range []string{"220 ready\r\n", "220-a\r\n220-b\r\n220 c\r\n", "220-a\r\n text\r\n220 end\r\n",
		"22\r\n", "220-a\r\n", "abc def\r\n", "220\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		code, _, err := readCodeReply(bufio.NewReaderSize(bytes.NewReader(b), maxLine))
		if err == nil && (len(code) != 3 || !isDigits(code)) {
			t.Fatalf("code %q", code)
		}
		_, _, _ = imapTagged("f1")(bufio.NewReaderSize(bytes.NewReader(b), maxLine))
		_, _, _ = telnetGreeting(bufio.NewReaderSize(bytes.NewReader(b), maxLine))
	})
}

// FuzzParseEchoReply feeds arbitrary packets to the ICMP reply parser.
func FuzzParseEchoReply(f *testing.F) {
	req := echoRequest(false, 7, 9, icmpPayload)
	rep := append([]byte(nil), req...)
	rep[0] = icmp4EchoReply
	f.Add(rep)
	f.Add([]byte{129, 0, 0, 0, 0, 7, 0, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v6 := range []bool{false, true} {
			_, _, data, ok := parseEchoReply(b, v6)
			if ok && len(data) != len(b)-8 {
				t.Fatalf("data of %d bytes from %d", len(data), len(b))
			}
		}
		if len(b) >= 4 {
			// With its checksum in place, a message sums to zero.
			m := append([]byte(nil), b...)
			m[2], m[3] = 0, 0
			c := inetChecksum(m)
			m[2], m[3] = byte(c>>8), byte(c)
			if inetChecksum(m) != 0 {
				t.Fatalf("checksummed %x sums to %#x", m, inetChecksum(m))
			}
		}
	})
}

func TestEchoChecksum(t *testing.T) {
	// A message with its checksum in place sums to zero.
	m := echoRequest(false, 0x1234, 0x5678, icmpPayload)
	if inetChecksum(m) != 0 {
		t.Errorf("checksum of a checksummed message: %#x", inetChecksum(m))
	}
	if m := echoRequest(true, 1, 2, nil); m[0] != icmp6EchoRequest || m[2] != 0 || m[3] != 0 {
		t.Errorf("ICMPv6 request %x", m)
	}
}

func TestBERLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536} {
		b := berTLV(nil, berOctetString, make([]byte, n))
		tag, v, rest, err := berRead(b)
		if err != nil || tag != berOctetString || len(v) != n || len(rest) != 0 {
			t.Errorf("length %d: tag %#x len %d rest %d err %v", n, tag, len(v), len(rest), err)
		}
	}
	for _, v := range []int{0, 1, 127, 128, 255, 256, 1 << 20} {
		n, err := berIntValue(berInt(v))
		if err != nil || n != v {
			t.Errorf("integer %d: %d %v", v, n, err)
		}
	}
	if got, want := ldapBindRequest(1), []byte{0x30, 0x0c, 0x02, 0x01, 0x01, 0x60, 0x07, 0x02, 0x01, 0x03, 0x04, 0x00, 0x80, 0x00}; !bytes.Equal(got, want) {
		t.Errorf("bind request %x, want %x", got, want)
	}
}
