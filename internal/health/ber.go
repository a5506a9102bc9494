package health

import (
	"errors"
	"fmt"
)

// A minimal BER (X.690) encoder and decoder: just enough for an LDAP
// simple bind (RFC 4511). Only definite lengths are accepted, as RFC 4511
// §5.1 requires.

// BER tag bytes used by the LDAP bind.
const (
	berInteger     = 0x02
	berOctetString = 0x04
	berEnumerated  = 0x0a
	berSequence    = 0x30
	ldapBindReq    = 0x60 // [APPLICATION 0] constructed
	ldapBindResp   = 0x61 // [APPLICATION 1] constructed
	ldapUnbindReq  = 0x42 // [APPLICATION 2] primitive
	ldapSimpleAuth = 0x80 // [0] primitive
)

// maxLDAPMessage bounds the size of a BindResponse we accept.
const maxLDAPMessage = 64 << 10

// berTLV appends one tag-length-value to b.
func berTLV(b []byte, tag byte, value []byte) []byte {
	b = append(b, tag)
	n := len(value)
	switch {
	case n < 0x80:
		b = append(b, byte(n))
	case n <= 0xff:
		b = append(b, 0x81, byte(n))
	case n <= 0xffff:
		b = append(b, 0x82, byte(n>>8), byte(n))
	default:
		b = append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, value...)
}

// berInt encodes a non-negative integer's content octets.
func berInt(v int) []byte {
	if v == 0 {
		return []byte{0}
	}
	var out []byte
	for v > 0 {
		out = append([]byte{byte(v)}, out...)
		v >>= 8
	}
	if out[0]&0x80 != 0 {
		out = append([]byte{0}, out...)
	}
	return out
}

// ldapBindRequest returns an LDAPv3 anonymous simple BindRequest with the
// given message ID.
func ldapBindRequest(id int) []byte {
	var op []byte
	op = berTLV(op, berInteger, berInt(3)) // version
	op = berTLV(op, berOctetString, nil)   // name: "" (anonymous)
	op = berTLV(op, ldapSimpleAuth, nil)   // simple: "" (no password)
	msg := berTLV(nil, berInteger, berInt(id))
	msg = berTLV(msg, ldapBindReq, op)
	return berTLV(nil, berSequence, msg)
}

// ldapUnbindRequest returns an UnbindRequest with the given message ID.
func ldapUnbindRequest(id int) []byte {
	msg := berTLV(nil, berInteger, berInt(id))
	msg = berTLV(msg, ldapUnbindReq, nil)
	return berTLV(nil, berSequence, msg)
}

var errBER = errors.New("malformed BER")

// berRead splits the first TLV off b: its tag, its value and the rest.
func berRead(b []byte) (tag byte, value, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("%w: truncated header", errBER)
	}
	tag = b[0]
	if tag&0x1f == 0x1f {
		return 0, nil, nil, fmt.Errorf("%w: multi-byte tags are not used by LDAP", errBER)
	}
	n, hdr, err := berLength(b[1:])
	if err != nil {
		return 0, nil, nil, err
	}
	b = b[1+hdr:]
	if n > len(b) {
		return 0, nil, nil, fmt.Errorf("%w: length %d beyond the %d bytes left", errBER, n, len(b))
	}
	return tag, b[:n], b[n:], nil
}

// berLength decodes a definite length: the length and the bytes it used.
func berLength(b []byte) (n, used int, err error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("%w: truncated length", errBER)
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k == 0 {
		return 0, 0, fmt.Errorf("%w: indefinite length", errBER)
	}
	if k > 3 {
		return 0, 0, fmt.Errorf("%w: length of %d bytes is too long", errBER, k)
	}
	if len(b) < 1+k {
		return 0, 0, fmt.Errorf("%w: truncated length", errBER)
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, nil
}

// berInteger decodes an INTEGER or ENUMERATED of at most 4 bytes.
func berIntValue(v []byte) (int, error) {
	if len(v) == 0 || len(v) > 4 {
		return 0, fmt.Errorf("%w: integer of %d bytes", errBER, len(v))
	}
	n := int(int8(v[0]))
	for _, c := range v[1:] {
		n = n<<8 | int(c)
	}
	return n, nil
}

// bindResponse is the part of an LDAP BindResponse a check looks at.
type bindResponse struct {
	MessageID  int
	ResultCode int
	MatchedDN  string
	Diagnostic string
}

// parseBindResponse decodes one LDAPMessage holding a BindResponse. It
// returns the bytes after the message.
func parseBindResponse(b []byte) (bindResponse, []byte, error) {
	var r bindResponse
	tag, msg, rest, err := berRead(b)
	if err != nil {
		return r, nil, err
	}
	if tag != berSequence {
		return r, nil, fmt.Errorf("%w: LDAPMessage tag %#x, want SEQUENCE", errBER, tag)
	}
	tag, id, msg, err := berRead(msg)
	if err != nil {
		return r, nil, err
	}
	if tag != berInteger {
		return r, nil, fmt.Errorf("%w: messageID tag %#x, want INTEGER", errBER, tag)
	}
	if r.MessageID, err = berIntValue(id); err != nil {
		return r, nil, err
	}
	tag, op, _, err := berRead(msg) // controls may follow; ignored
	if err != nil {
		return r, nil, err
	}
	if tag != ldapBindResp {
		return r, nil, fmt.Errorf("%w: protocolOp tag %#x, want BindResponse", errBER, tag)
	}
	tag, code, op, err := berRead(op)
	if err != nil {
		return r, nil, err
	}
	if tag != berEnumerated {
		return r, nil, fmt.Errorf("%w: resultCode tag %#x, want ENUMERATED", errBER, tag)
	}
	if r.ResultCode, err = berIntValue(code); err != nil {
		return r, nil, err
	}
	tag, dn, op, err := berRead(op)
	if err != nil {
		return r, nil, err
	}
	if tag != berOctetString {
		return r, nil, fmt.Errorf("%w: matchedDN tag %#x, want OCTET STRING", errBER, tag)
	}
	r.MatchedDN = string(dn)
	tag, diag, _, err := berRead(op) // referral and serverSaslCreds may follow
	if err != nil {
		return r, nil, err
	}
	if tag != berOctetString {
		return r, nil, fmt.Errorf("%w: diagnosticMessage tag %#x, want OCTET STRING", errBER, tag)
	}
	r.Diagnostic = string(diag)
	return r, rest, nil
}

// ldapResultNames names the result codes a bind is likely to get.
var ldapResultNames = map[int]string{
	0: "success", 1: "operationsError", 2: "protocolError", 7: "authMethodNotSupported",
	8: "strongerAuthRequired", 13: "confidentialityRequired", 48: "inappropriateAuthentication",
	49: "invalidCredentials", 50: "insufficientAccessRights", 51: "busy", 52: "unavailable",
	53: "unwillingToPerform", 80: "other",
}

func ldapResultName(code int) string {
	if n, ok := ldapResultNames[code]; ok {
		return fmt.Sprintf("%d %s", code, n)
	}
	return fmt.Sprint(code)
}
