package persist

import (
	"errors"
	"testing"
)

func TestCallID(t *testing.T) {
	for _, tc := range []struct {
		name, msg, want string
		err             error
	}{
		{"request", "INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.atlanta.example.com\r\nCall-ID: a84b4c76e66710@pc33.atlanta.example.com\r\nCSeq: 314159 INVITE\r\n\r\nv=0\r\n", "a84b4c76e66710@pc33.atlanta.example.com", nil},
		{"response", "SIP/2.0 200 OK\r\nCALL-ID:   xyz  \r\n\r\n", "xyz", nil},
		{"compact", "BYE sip:a@b SIP/2.0\ni: f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com\n\n", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com", nil},
		{"space before colon", "OPTIONS sip:x SIP/2.0\r\nCall-Id \t: abc\r\n\r\n", "abc", nil},
		{"folded", "REGISTER sip:x SIP/2.0\r\nCall-ID: part1\r\n  part2\r\nCSeq: 1 REGISTER\r\n\r\n", "part1 part2", nil},
		{"first wins", "ACK sip:x SIP/2.0\r\nCall-ID: one\r\nCall-ID: two\r\n\r\n", "one", nil},
		{"body not header", "INVITE sip:x SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\nCall-ID: body\r\n", "", ErrNoCallID},
		{"continuation is not a header", "INVITE sip:x SIP/2.0\r\nSubject: hi\r\n Call-ID: no\r\n\r\n", "", ErrNoCallID},
		{"truncated line", "INVITE sip:x SIP/2.0\r\nCall-ID: abc", "", ErrNoCallID},
		{"http", "GET / HTTP/1.1\r\nCall-ID: x\r\n\r\n", "", ErrNotSIP},
		{"empty", "", "", ErrNotSIP},
		{"no start line end", "INVITE sip:x SIP/2.0", "", ErrNotSIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CallID([]byte(tc.msg))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("CallID = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{
		"INVITE sip:x SIP/2.0\r\nCall-ID:\r\n\r\n",
		"INVITE sip:x SIP/2.0\r\nCall-ID: a\x01b\r\n\r\n",
	} {
		if _, err := CallID([]byte(bad)); err == nil {
			t.Errorf("CallID(%q) accepted", bad)
		}
	}
}
