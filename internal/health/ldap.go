package health

import (
	"context"
	"fmt"
	"io"
	"time"
)

// ldapChecker makes an LDAPv3 anonymous simple bind and passes when the
// server answers success. LDAPS (TLS from the first byte) and the LDAP
// StartTLS extended operation are not done: check such servers with
// tcp, or plain LDAP on 389.
type ldapChecker struct{}

// Check binds anonymously, reads the BindResponse and unbinds.
func (ldapChecker) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	c, stop, err := dial(ctx, "tcp", t)
	if err != nil {
		return down(TypeLDAP, t, start, "connect: "+describe(err))
	}
	defer func() { stop(); _ = c.Close() }()
	if _, err := c.Write(ldapBindRequest(1)); err != nil {
		return down(TypeLDAP, t, start, "bind: "+describe(err))
	}
	msg, err := readBERMessage(c)
	if err != nil {
		return down(TypeLDAP, t, start, "bind: "+describe(err))
	}
	r, _, err := parseBindResponse(msg)
	switch {
	case err != nil:
		return down(TypeLDAP, t, start, "bind: "+err.Error())
	case r.MessageID != 1:
		return down(TypeLDAP, t, start, fmt.Sprintf("bind: answer to message %d, want 1", r.MessageID))
	case r.ResultCode != 0:
		what := "anonymous bind: " + ldapResultName(r.ResultCode)
		if r.Diagnostic != "" {
			what += fmt.Sprintf(" (%q)", clean(r.Diagnostic))
		}
		return down(TypeLDAP, t, start, what)
	}
	res := up("ldap anonymous bind to "+t.String()+": success", start)
	_, _ = c.Write(ldapUnbindRequest(2))
	return res
}

// readBERMessage reads one whole BER TLV from r, of at most
// maxLDAPMessage bytes.
func readBERMessage(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 2, 6)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	if hdr[0]&0x1f == 0x1f {
		return nil, fmt.Errorf("%w: multi-byte tags are not used by LDAP", errBER)
	}
	if hdr[1] >= 0x80 {
		k := int(hdr[1] & 0x7f)
		if k == 0 || k > 3 {
			return nil, fmt.Errorf("%w: length of %d bytes", errBER, k)
		}
		hdr = hdr[:2+k]
		if _, err := io.ReadFull(r, hdr[2:]); err != nil {
			return nil, err
		}
	}
	n, _, err := berLength(hdr[1:])
	if err != nil {
		return nil, err
	}
	if n > maxLDAPMessage {
		return nil, fmt.Errorf("%w: message of %d bytes is too long", errBER, n)
	}
	msg := make([]byte, len(hdr)+n)
	copy(msg, hdr)
	if _, err := io.ReadFull(r, msg[len(hdr):]); err != nil {
		return nil, err
	}
	return msg, nil
}
