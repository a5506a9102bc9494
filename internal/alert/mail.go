package alert

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// mailer batches events and sends them through the SMTP relay.
type mailer struct {
	a *Alerter

	mu       sync.Mutex
	cfg      config.Email
	tls      *tls.Config
	batch    []events.Event
	more     int // events beyond MaxBatch in the batch
	firstAt  time.Time
	lastSent time.Time

	sent, failed atomic.Int64

	wake  chan struct{}
	stopc chan struct{}
	done  chan struct{}
	st    streak
}

func newMailer(a *Alerter) *mailer {
	m := &mailer{a: a, wake: make(chan struct{}, 1), stopc: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	return m
}

func (m *mailer) configure(c config.Email) error {
	name := c.ServerName
	if name == "" {
		name = c.Server
	}
	tcfg, err := tlsConfig(name, c.CACert)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.cfg = config.Email{} // no mail rather than mail to an unchecked relay
		return fmt.Errorf("options.alerts.email.caCert: %w", err)
	}
	m.cfg, m.tls = c, tcfg
	if c.Server == "" {
		m.batch, m.more = nil, 0
	}
	return nil
}

func (m *mailer) add(e events.Event) {
	m.mu.Lock()
	if m.cfg.Server == "" || !covers(m.cfg.Severity, e) {
		m.mu.Unlock()
		return
	}
	if len(m.batch) == 0 {
		m.firstAt = time.Now()
	}
	if len(m.batch) < MaxBatch {
		m.batch = append(m.batch, e)
	} else {
		m.more++
	}
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// run sends a batch BatchWindow after its first event, and never sooner
// than MailInterval after the previous mail.
func (m *mailer) run() {
	defer close(m.done)
	for {
		m.mu.Lock()
		var due time.Time
		if len(m.batch) > 0 {
			due = m.firstAt.Add(m.a.o.BatchWindow)
			if next := m.lastSent.Add(m.a.o.MailInterval); !m.lastSent.IsZero() && next.After(due) {
				due = next
			}
		}
		m.mu.Unlock()
		var timer <-chan time.Time
		var t *time.Timer
		if !due.IsZero() {
			t = time.NewTimer(time.Until(due))
			timer = t.C
		}
		select {
		case <-m.stopc:
			if t != nil {
				t.Stop()
			}
			return
		case <-m.wake:
		case <-timer:
			m.flush()
		}
		if t != nil {
			t.Stop()
		}
	}
}

// flush sends the batch now.
func (m *mailer) flush() {
	m.mu.Lock()
	batch, more, cfg, tcfg := m.batch, m.more, m.cfg, m.tls
	m.batch, m.more = nil, 0
	if len(batch) > 0 {
		m.lastSent = time.Now()
	}
	m.mu.Unlock()
	if len(batch) == 0 || cfg.Server == "" || len(cfg.To) == 0 {
		return // no relay, or a setup without recipients yet
	}
	msg, err := compose(cfg, m.a.o.Hostname, batch, more, time.Now())
	if err == nil {
		err = sendMail(cfg, tcfg, m.a.o.Hostname, msg)
	}
	if err != nil {
		m.failed.Add(1)
		m.a.failed(&m.st, "email", fmt.Errorf("mail of %d events to %s: %w", len(batch)+more, strings.Join(cfg.To, ", "), err))
		return
	}
	m.sent.Add(1)
	m.a.succeeded(&m.st)
}

func (m *mailer) close() {
	select {
	case <-m.stopc:
		return
	default:
	}
	close(m.stopc)
	<-m.done
	m.flush()
}

// compose makes the mail of a batch.
func compose(cfg config.Email, host string, batch []events.Event, more int, now time.Time) ([]byte, error) {
	worst := batch[0]
	for _, e := range batch[1:] {
		if e.Severity < worst.Severity {
			worst = e
		}
	}
	subject := fmt.Sprintf("[Fulcrum %s] %s: %s", host, worst.Severity, worst.Message)
	if n := len(batch) + more; n > 1 {
		subject = fmt.Sprintf("[Fulcrum %s] %d events, most severe %s: %s", host, n, worst.Severity, worst.Message)
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	var to []string
	for _, t := range cfg.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("to %q: %w", t, err)
		}
		to = append(to, a.String())
	}
	header("From", from.String())
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", headerText(subject, 200)))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+headerToken(host)+">")
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	fmt.Fprintf(qp, "Fulcrum %s reports %d event(s).\r\n", host, len(batch)+more)
	for _, e := range batch {
		fmt.Fprintf(qp, "\r\n%s  %s  %s\r\n%s\r\n", e.Time.UTC().Format(time.RFC3339), e.Severity, e.Kind, bodyText(e.Message))
		keys := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(qp, "  %s: %s\r\n", bodyText(k), bodyText(e.Fields[k]))
		}
	}
	if more > 0 {
		fmt.Fprintf(qp, "\r\n… and %d more events (see the Logs page).\r\n", more)
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// headerText makes s safe in a header: one line, no control characters,
// at most max characters.
func headerText(s string, max int) string {
	var sb strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			sb.WriteString("…")
			break
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String()
}

// headerToken keeps the characters of a host name allowed in a
// Message-ID.
func headerToken(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-') {
			return r
		}
		return -1
	}, s)
	if s == "" {
		return "fulcrum"
	}
	return s
}

// bodyText keeps a value on one line of the body.
func bodyText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// sendMail runs one SMTP exchange: implicit TLS or STARTTLS (required) as
// cfg.Security says, AUTH PLAIN only over TLS, then the message.
func sendMail(cfg config.Email, tcfg *tls.Config, helo string, msg []byte) error {
	addr := net.JoinHostPort(cfg.Server, strconv.Itoa(cfg.Port))
	deadline := time.Now().Add(SMTPTimeout)
	d := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	if cfg.Security == "tls" {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tcfg)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, tcfg.ServerName)
	if err != nil {
		_ = conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(heloName(helo)); err != nil {
		return err
	}
	secure := cfg.Security == "tls"
	if cfg.Security == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the relay does not offer STARTTLS (security starttls requires it)")
		}
		if err := c.StartTLS(tcfg); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
		secure = true
	}
	if cfg.User != "" {
		if !secure {
			return errors.New("AUTH is sent only over TLS")
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the relay does not offer AUTH")
		}
		if err := c.Auth(smtp.PlainAuth("", cfg.User, cfg.Password, tcfg.ServerName)); err != nil {
			return fmt.Errorf("AUTH PLAIN as %q: %w", cfg.User, err)
		}
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return err
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, t := range cfg.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return err
		}
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// heloName is the name given in EHLO: the host name when it is one,
// else "localhost".
func heloName(h string) string {
	if h == "" || strings.ContainsFunc(h, func(r rune) bool {
		return r >= 128 || !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-')
	}) {
		return "localhost"
	}
	return h
}
