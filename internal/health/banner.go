package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// bannerChecker checks the server-speaks-first protocols: it reads the
// greeting, optionally upgrades to TLS with the protocol's STARTTLS
// command, then says goodbye politely.
type bannerChecker struct {
	proto banner
	p     Params
}

// banner describes one greeting protocol.
type banner struct {
	name string
	// greet judges the greeting; ok false means Down with the returned text.
	greet func(r *bufio.Reader) (text string, ok bool, err error)
	// startTLS is the upgrade command and the judge of its answer; nil when
	// the protocol has none.
	startTLS    string
	startTLSAns func(r *bufio.Reader) (text string, ok bool, err error)
	// quit is the goodbye command.
	quit string
}

// codeReply judges an SMTP/FTP/NNTP style reply against the wanted codes.
func codeReply(want ...string) func(r *bufio.Reader) (string, bool, error) {
	return func(r *bufio.Reader) (string, bool, error) {
		code, text, err := readCodeReply(r)
		if err != nil {
			return "", false, err
		}
		for _, w := range want {
			if code == w {
				return code + " " + text, true, nil
			}
		}
		return code + " " + text, false, nil
	}
}

// prefixLine judges a one-line reply by its prefix (POP3 "+OK").
func prefixLine(prefixes ...string) func(r *bufio.Reader) (string, bool, error) {
	return func(r *bufio.Reader) (string, bool, error) {
		l, err := readLine(r)
		if err != nil {
			return "", false, err
		}
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				return l, true, nil
			}
		}
		return l, false, nil
	}
}

// imapTagged reads untagged lines until the tagged answer to tag.
func imapTagged(tag string) func(r *bufio.Reader) (string, bool, error) {
	return func(r *bufio.Reader) (string, bool, error) {
		for range maxLines {
			l, err := readLine(r)
			if err != nil {
				return "", false, err
			}
			if strings.HasPrefix(l, tag+" ") {
				return l, strings.HasPrefix(l[len(tag)+1:], "OK"), nil
			}
		}
		return "", false, errors.New("no tagged answer")
	}
}

// telnetGreeting passes on any first byte: option negotiation (IAC) or a
// login banner. A server that waits silently for the client is Down.
func telnetGreeting(r *bufio.Reader) (string, bool, error) {
	b, err := r.ReadByte()
	if err != nil {
		return "", false, err
	}
	if b == 0xff {
		return "option negotiation", true, nil
	}
	_ = r.UnreadByte()
	l, _ := r.Peek(min(r.Buffered(), 80))
	return strings.TrimSpace(string(l)), true, nil
}

var banners = map[string]banner{
	TypeSMTP: {name: TypeSMTP, greet: codeReply("220"), startTLS: "STARTTLS", startTLSAns: codeReply("220"), quit: "QUIT"},
	TypeFTP:  {name: TypeFTP, greet: codeReply("220"), startTLS: "AUTH TLS", startTLSAns: codeReply("234"), quit: "QUIT"},
	TypeNNTP: {name: TypeNNTP, greet: codeReply("200", "201"), startTLS: "STARTTLS", startTLSAns: codeReply("382"), quit: "QUIT"},
	TypePOP3: {name: TypePOP3, greet: prefixLine("+OK"), startTLS: "STLS", startTLSAns: prefixLine("+OK"), quit: "QUIT"},
	TypeIMAP: {name: TypeIMAP, greet: prefixLine("* OK", "* PREAUTH"), startTLS: "f1 STARTTLS", startTLSAns: imapTagged("f1"),
		quit: "f2 LOGOUT"},
	TypeTelnet: {name: TypeTelnet, greet: telnetGreeting},
}

func newBannerChecker(p Params) (*bannerChecker, error) {
	b := banners[p.Type]
	if p.StartTLS && b.startTLS == "" {
		return nil, fmt.Errorf("startTls: %s has no STARTTLS", p.Type)
	}
	return &bannerChecker{proto: b, p: p}, nil
}

// Check reads the greeting and, with StartTLS, upgrades the connection.
func (b *bannerChecker) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	name := b.proto.name
	c, stop, err := dial(ctx, "tcp", t)
	if err != nil {
		return down(name, t, start, "connect: "+describe(err))
	}
	defer func() { stop(); _ = c.Close() }()
	r := bufio.NewReaderSize(c, maxLine)
	text, ok, err := b.proto.greet(r)
	if err != nil {
		return down(name, t, start, "greeting: "+describe(err))
	}
	if !ok {
		return down(name, t, start, fmt.Sprintf("greeting %q", clean(text)))
	}
	latency := time.Since(start)
	reason := fmt.Sprintf("%s greeting from %s: %q", name, t, clean(text))
	var conn net.Conn = c
	if b.p.StartTLS {
		if _, err := io.WriteString(c, b.proto.startTLS+"\r\n"); err != nil {
			return down(name, t, start, b.proto.startTLS+": "+describe(err))
		}
		ans, ok, err := b.proto.startTLSAns(r)
		switch {
		case err != nil:
			return down(name, t, start, b.proto.startTLS+": "+describe(err))
		case !ok:
			return down(name, t, start, fmt.Sprintf("%s refused: %q", b.proto.startTLS, clean(ans)))
		case r.Buffered() > 0:
			return down(name, t, start, b.proto.startTLS+": data after the answer before TLS")
		}
		tc := tls.Client(c, tlsConfig(b.p, t))
		if err := tc.HandshakeContext(ctx); err != nil {
			return down(name, t, start, b.proto.startTLS+": "+describe(err))
		}
		conn, r = tc, bufio.NewReaderSize(tc, maxLine)
		latency = time.Since(start)
		reason += " with " + b.proto.startTLS
	}
	if b.proto.quit != "" {
		// Best effort: say goodbye and read the answer, so the server
		// sees an orderly end rather than a reset.
		if _, err := io.WriteString(conn, b.proto.quit+"\r\n"); err == nil {
			_, _ = readLine(r)
		}
	}
	return Result{Up: true, Reason: reason, Latency: latency}
}

// readLine reads one line of at most maxLine bytes without its CR LF.
func readLine(r *bufio.Reader) (string, error) {
	l, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("line longer than %d bytes", maxLine)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(l), "\r\n"), nil
}

// readCodeReply reads an SMTP/FTP/NNTP reply: "ddd text", or a multi-line
// reply from "ddd-text" up to the line "ddd text" with the same code (FTP
// allows lines without a code in between). It returns the code and the
// text of the first line.
func readCodeReply(r *bufio.Reader) (code, text string, err error) {
	l, err := readLine(r)
	if err != nil {
		return "", "", err
	}
	code, text, multi, err := parseCodeLine(l)
	if err != nil {
		return "", "", err
	}
	for n := 0; multi; n++ {
		if n == maxLines {
			return "", "", fmt.Errorf("reply longer than %d lines", maxLines)
		}
		l, err := readLine(r)
		if err != nil {
			return "", "", err
		}
		if len(l) >= 4 && l[:3] == code && l[3] == ' ' || l == code {
			multi = false
		}
	}
	return code, text, nil
}

// parseCodeLine splits the first line of a reply into its three-digit
// code, its text and whether more lines follow.
func parseCodeLine(l string) (code, text string, multi bool, err error) {
	if len(l) < 3 || !isDigits(l[:3]) || len(l) > 3 && l[3] != ' ' && l[3] != '-' {
		return "", "", false, fmt.Errorf("not a reply line: %q", clean(l))
	}
	if len(l) > 4 {
		text = l[4:]
	}
	return l[:3], text, len(l) > 3 && l[3] == '-', nil
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
