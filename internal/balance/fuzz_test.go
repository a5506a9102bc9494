package balance

import (
	"bytes"
	"context"
	"testing"
)

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

// FuzzParseLoad: ParseLoad never panics, and what it accepts is a number
// 0-MaxAgentLoad written in the first line.
func FuzzParseLoad(f *testing.F) {
	for _, s := range []string{"0", "42\n", " 100% ", "1000", "abc", "", "7\r\n8", "-3", "%%"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseLoad(b)
		if err != nil {
			return
		}
		if n < 0 || n > MaxAgentLoad {
			t.Fatalf("ParseLoad(%q) = %d, out of range", b, n)
		}
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i]
		}
		if !bytes.ContainsAny(line, "0123456789") {
			t.Fatalf("ParseLoad(%q) = %d without a digit on the first line", b, n)
		}
	})
}
