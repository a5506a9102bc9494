package persist

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzCallID: CallID never panics; a Call-ID it returns is non-empty,
// bounded, free of control characters, and appears in the message (joined
// if it was folded).
func FuzzCallID(f *testing.F) {
	for _, s := range []string{
		"INVITE sip:bob@example.com SIP/2.0\r\nCall-ID: a84b4c76e66710@pc33\r\n\r\n",
		"SIP/2.0 180 Ringing\ni: x\n\n",
		"REGISTER sip:x SIP/2.0\r\nCall-ID: a\r\n\tb\r\n\r\n",
		"BYE sip:x SIP/2.0\r\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		id, err := CallID(msg)
		if err != nil {
			return
		}
		if len(id) == 0 || len(id) > MaxCallIDLen {
			t.Fatalf("Call-ID of length %d", len(id))
		}
		for _, c := range id {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("Call-ID %q has a control character", id)
			}
		}
		first, _, _ := bytes.Cut(id, []byte(" "))
		if !bytes.Contains(msg, first) {
			t.Fatalf("Call-ID %q not in the message", id)
		}
	})
}

// FuzzParseHello: ParseHello never panics, and what it returns is
// consistent: a session ID of at most 32 bytes that appears in the input.
func FuzzParseHello(f *testing.F) {
	f.Add(clientHello([]byte("0123456789abcdef0123456789abcdef"), "example.com"))
	f.Add(serverHello([]byte("0123456789abcdef"), false))
	f.Add(serverHello(nil, true))
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHello(b)
		if err != nil {
			if !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrNotHello) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if len(h.SessionID) > 32 || (len(h.SessionID) > 0 && !bytes.Contains(b, h.SessionID)) {
			t.Fatalf("session ID %x", h.SessionID)
		}
		if h.Server && h.SNI != "" {
			t.Fatal("ServerHello with SNI")
		}
	})
}

// FuzzTokenVerify: no input but a token issued with the secret verifies,
// and verification never panics.
func FuzzTokenVerify(f *testing.F) {
	sg, err := newSigner(secret, 3)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_750_000_000, 0)
	valid := sg.issue(sg.serverID("10.0.0.1", 80), now.Add(time.Hour))
	f.Add(valid)
	f.Add(valid[:len(valid)-1] + "A")
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		id, exp, err := sg.verify(tok, now)
		if err != nil {
			return
		}
		// It verified: it must be exactly a token this signer would issue.
		if sg.issue(id, exp) != tok {
			t.Fatalf("token %q verifies but is not one the signer issues", tok)
		}
	})
}

// FuzzQueryValue: queryValue never panics.
func FuzzQueryValue(f *testing.F) {
	f.Add("a=1&sid=%41&b", "sid")
	f.Add("%zz=1&s+id=2", "s id")
	f.Fuzz(func(t *testing.T, raw, tag string) {
		_, _ = queryValue(raw, tag)
	})
}
