package health

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// bdataChecker sends bytes and passes when the answer contains the
// pattern bytes. With no pattern it passes once the bytes are sent.
type bdataChecker struct {
	send, pattern []byte
}

func newBDataChecker(p Params) (*bdataChecker, error) {
	send, err := hex.DecodeString(p.Send)
	if err != nil || len(send) == 0 {
		return nil, errors.New("send: required for bdata: hex-encoded bytes to send")
	}
	pattern, err := hex.DecodeString(p.Pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern: must be hex-encoded bytes for bdata: %w", err)
	}
	if len(pattern) > maxBData {
		return nil, fmt.Errorf("pattern: at most %d bytes, got %d", maxBData, len(pattern))
	}
	return &bdataChecker{send: send, pattern: pattern}, nil
}

// Check sends the bytes and reads until the pattern shows up, the server
// closes, maxBData bytes have come, or the deadline.
func (b *bdataChecker) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	c, stop, err := dial(ctx, "tcp", t)
	if err != nil {
		return down(TypeBData, t, start, "connect: "+describe(err))
	}
	defer func() { stop(); _ = c.Close() }()
	if _, err := c.Write(b.send); err != nil {
		return down(TypeBData, t, start, "send: "+describe(err))
	}
	if len(b.pattern) == 0 {
		return up(fmt.Sprintf("bdata %d bytes sent to %s", len(b.send), t), start)
	}
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 4096)
	for len(buf) < maxBData {
		n, err := c.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if bytes.Contains(buf, b.pattern) {
			return up(fmt.Sprintf("bdata answer from %s holds %x", t, b.pattern), start)
		}
		if err != nil {
			return down(TypeBData, t, start, fmt.Sprintf("answer of %d bytes without %x: %s", len(buf), b.pattern, describe(err)))
		}
	}
	return down(TypeBData, t, start, fmt.Sprintf("no %x in the first %d bytes", b.pattern, maxBData))
}
