package alert

import (
	"crypto/hmac"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/events"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// received is one mail an SMTP server in a test took.
type received struct {
	tls  bool
	user string
	from string
	to   []string
	data []byte
}

// smtpBackend is the receiving side: emersion/go-smtp, a complete SMTP
// server implementation (STARTTLS, AUTH PLAIN via go-sasl).
type smtpBackend struct {
	mu    sync.Mutex
	mails []received
	got   chan struct{}
}

type smtpSession struct {
	b    *smtpBackend
	c    *smtp.Conn
	user string
	r    received
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{b: b, c: c}, nil
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "alerts" || pass != "s3cret pass" {
			return errors.New("bad credentials")
		}
		s.user = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.r = received{from: from, user: s.user}
	_, s.r.tls = s.c.TLSConnectionState()
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.to = append(s.r.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.data = b
	s.b.mu.Lock()
	s.b.mails = append(s.b.mails, s.r)
	s.b.mu.Unlock()
	s.b.got <- struct{}{}
	return nil
}

func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// startSMTP starts an SMTP server on 127/8; with cert it offers STARTTLS
// (and AUTH only after it).
func startSMTP(t *testing.T, cert *testkit.Cert) (*smtpBackend, string, int) {
	return startSMTPOn(t, cert, false)
}

// startSMTPOn is startSMTP; implicit serves TLS from the first byte.
func startSMTPOn(t *testing.T, cert *testkit.Cert, implicit bool) (*smtpBackend, string, int) {
	t.Helper()
	b := &smtpBackend{got: make(chan struct{}, 10)}
	srv := smtp.NewServer(b)
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.TLS()}, MinVersion: tls.VersionTLS12}
	}
	var ln net.Listener = testkit.Listen(t, testkit.LoopbackAddr())
	if implicit {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	a := ln.Addr().(*net.TCPAddr)
	return b, a.IP.String(), a.Port
}

type errorLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *errorLog) add(dest string, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, dest+": "+err.Error())
	l.mu.Unlock()
}

func (l *errorLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

func TestMailOverSTARTTLSWithAuth(t *testing.T) {
	ca := testkit.NewCA(t, "mail CA")
	b, ip, port := startSMTP(t, ca.Server(t, "mail.test"))
	var el errorLog
	a := New(Options{Hostname: "lb1.example", OnError: el.add, BatchWindow: 300 * time.Millisecond, MailInterval: time.Second})
	defer a.Close()
	err := a.Configure(config.Alerts{Email: config.Email{Server: ip, Port: port, Security: "starttls", ServerName: "mail.test",
		CACert: ca.CertPEM(), User: "alerts", Password: "s3cret pass", From: "Fulcrum <lb@example.com>",
		To: []string{"ops@example.com", "Night Shift <night@example.com>"}, Severity: "warning"}})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 8, 3, 4, 5, 0, time.UTC)
	a.Event(events.Event{Time: at, Severity: events.Warning, Kind: events.KindCertExpiring, Message: "certificate web expires in 5 days",
		Fields: map[string]string{"certificate": "web", "notAfter": "2026-12-13T00:00:00Z"}})
	a.Event(events.Event{Time: at, Severity: events.Err, Kind: events.KindRSDown,
		Message: "real server 10.0.0.5:80 is Down\r\nBcc: evil@example.com", Fields: map[string]string{"reason": "connection refused", "vs": "web"}})
	a.Event(events.Event{Time: at, Severity: events.Info, Kind: events.KindLogin, Message: "login of bob (not mailed)"})
	select {
	case <-b.got:
	case <-time.After(15 * time.Second):
		t.Fatalf("no mail; errors %q", el.list())
	}
	b.mu.Lock()
	m := b.mails[0]
	b.mu.Unlock()
	if !m.tls || m.user != "alerts" || m.from != "lb@example.com" || strings.Join(m.to, ",") != "ops@example.com,night@example.com" {
		t.Errorf("envelope: tls %v user %q from %q to %q", m.tls, m.user, m.from, m.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
	if err != nil {
		t.Fatalf("the mail does not parse: %v\n%s", err, m.data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Fulcrum lb1.example] 2 events, most severe err: real server 10.0.0.5:80 is Down  Bcc: evil@example.com"; subject != want {
		t.Errorf("subject %q, want %q", subject, want)
	}
	if msg.Header.Get("Bcc") != "" || len(msg.Header["Bcc"]) != 0 {
		t.Errorf("an event's text made a header: %q", msg.Header)
	}
	for k, want := range map[string]string{"From": `"Fulcrum" <lb@example.com>`, "To": `<ops@example.com>, "Night Shift" <night@example.com>`,
		"Content-Type": "text/plain; charset=utf-8", "Auto-Submitted": "auto-generated"} {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Fulcrum lb1.example reports 2 event(s).",
		"2026-12-08T03:04:05Z  warning  cert.expiring\r\ncertificate web expires in 5 days\r\n  certificate: web\r\n  notAfter: 2026-12-13T00:00:00Z",
		"2026-12-08T03:04:05Z  err  rs.down\r\nreal server 10.0.0.5:80 is Down  Bcc: evil@example.com\r\n  reason: connection refused\r\n  vs: web"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(string(body), "not mailed") {
		t.Error("an info event was mailed to a warning destination")
	}
	// Two events right after a mail wait for the interval and go in one
	// mail.
	a.Event(events.Event{Severity: events.Crit, Kind: events.KindVSDown, Message: "second-1"})
	a.Event(events.Event{Severity: events.Crit, Kind: events.KindVSDown, Message: "second-2"})
	select {
	case <-b.got:
	case <-time.After(15 * time.Second):
		t.Fatalf("no second mail; errors %q", el.list())
	}
	b.mu.Lock()
	second := string(b.mails[1].data)
	b.mu.Unlock()
	if !strings.Contains(second, "second-1") || !strings.Contains(second, "second-2") {
		t.Errorf("second mail:\n%s", second)
	}
	if e := el.list(); len(e) != 0 {
		t.Errorf("errors: %q", e)
	}
	// The mail is counted once the relay's answer to DATA and QUIT are in.
	testkit.Eventually(t, 10*time.Second, func() bool { return a.Stats().MailsSent == 2 }, "two mails counted")
	if st := a.Stats(); st.MailsFailed != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMailOverImplicitTLS(t *testing.T) {
	ca := testkit.NewCA(t, "mail CA")
	b, ip, port := startSMTPOn(t, ca.Server(t, "smtps.test"), true)
	var el errorLog
	a := New(Options{Hostname: "lb1", OnError: el.add, BatchWindow: 50 * time.Millisecond})
	defer a.Close()
	err := a.Configure(config.Alerts{Email: config.Email{Server: ip, Port: port, Security: "tls", ServerName: "smtps.test",
		CACert: ca.CertPEM(), User: "alerts", Password: "s3cret pass", From: "lb@example.com", To: []string{"ops@example.com"}, Severity: "crit"}})
	if err != nil {
		t.Fatal(err)
	}
	a.Event(events.Event{Severity: events.Err, Kind: events.KindRSDown, Message: "err is below crit"})
	a.Event(events.Event{Severity: events.Crit, Kind: events.KindVSDown, Message: "über-service is Down"})
	select {
	case <-b.got:
	case <-time.After(15 * time.Second):
		t.Fatalf("no mail; errors %q", el.list())
	}
	b.mu.Lock()
	m := b.mails[0]
	b.mu.Unlock()
	msg, err := mail.ReadMessage(strings.NewReader(string(m.data)))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if !m.tls || m.user != "alerts" || subject != "[Fulcrum lb1] crit: über-service is Down" || strings.Contains(string(m.data), "below crit") {
		t.Errorf("tls %v user %q subject %q\n%s", m.tls, m.user, subject, m.data)
	}
}

func TestMailRefusedWithoutSTARTTLS(t *testing.T) {
	b, ip, port := startSMTP(t, nil) // offers no STARTTLS
	var el errorLog
	a := New(Options{Hostname: "lb1", OnError: el.add, BatchWindow: 50 * time.Millisecond})
	err := a.Configure(config.Alerts{Email: config.Email{Server: ip, Port: port, Security: "starttls",
		User: "alerts", Password: "s3cret pass", From: "lb@example.com", To: []string{"ops@example.com"}, Severity: "warning"}})
	if err != nil {
		t.Fatal(err)
	}
	a.Event(events.Event{Severity: events.Err, Kind: events.KindRSDown, Message: "one"})
	testkit.Eventually(t, 10*time.Second, func() bool { return len(el.list()) == 1 }, "the error reported")
	a.Close()
	if st := a.Stats(); st.MailsFailed != 1 || st.MailsSent != 0 {
		t.Errorf("stats %+v", st)
	}
	if e := el.list()[0]; !strings.Contains(e, "email: ") || !strings.Contains(e, "does not offer STARTTLS") {
		t.Errorf("error %q", e)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.mails) != 0 {
		t.Errorf("a mail went over plain text: %+v", b.mails)
	}
}

func TestWebhookSignedAndRetried(t *testing.T) {
	ca := testkit.NewCA(t, "hook CA")
	ip := testkit.LoopbackAddr()
	cert := ca.Server(t, ip)
	type req struct {
		sig, ct string
		body    []byte
	}
	var mu sync.Mutex
	var reqs []req
	srv := testkit.StartHTTPS(t, ip, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, req{r.Header.Get(SignatureHeader), r.Header.Get("Content-Type"), body})
		n := len(reqs)
		mu.Unlock()
		switch {
		case strings.Contains(string(body), "refuse me"):
			w.WriteHeader(http.StatusBadRequest)
		case n == 1:
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails: retried
		}
	}), cert.TLS())
	var el errorLog
	a := New(Options{Hostname: "lb1", OnError: el.add, RetryWait: 50 * time.Millisecond})
	defer a.Close()
	hook := config.Webhook{URL: srv.URL() + "/hook", Severity: "notice", Secret: "k3y", CACert: ca.CertPEM()}
	if err := a.Configure(config.Alerts{Webhooks: []config.Webhook{hook}}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 8, 3, 4, 5, 0, time.UTC)
	a.Event(events.Event{Seq: 7, Time: at, Severity: events.Info, Kind: events.KindLogin, Message: "below notice"})
	a.Event(events.Event{Seq: 8, Time: at, Severity: events.Notice, Kind: events.KindRSUp, Message: "rs up",
		Fields: map[string]string{"rs": "10.0.0.5:80"}})
	testkit.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(reqs) == 2 }, "two attempts")
	mu.Lock()
	r := reqs[1]
	mu.Unlock()
	if !hmac.Equal([]byte(r.sig), []byte(Sign("k3y", r.body))) || !strings.HasPrefix(r.sig, "sha256=") || len(r.sig) != 7+64 {
		t.Errorf("signature %q does not match the body", r.sig)
	}
	if r.ct != "application/json" {
		t.Errorf("content type %q", r.ct)
	}
	var p Payload
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Host != "lb1" || p.Event.Seq != 8 || p.Event.Kind != events.KindRSUp || p.Event.Severity != events.Notice ||
		p.Event.Fields["rs"] != "10.0.0.5:80" || !p.Event.Time.Equal(at) {
		t.Errorf("payload %+v", p)
	}
	if !strings.Contains(string(r.body), `"severity":"notice"`) {
		t.Errorf("severity not as its keyword: %s", r.body)
	}
	// A 400 is not retried; the failure is reported once.
	a.Event(events.Event{Severity: events.Err, Kind: events.KindRSDown, Message: "refuse me"})
	a.Event(events.Event{Severity: events.Err, Kind: events.KindRSDown, Message: "refuse me again"})
	testkit.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(reqs) == 4 }, "the refused posts")
	testkit.Eventually(t, 10*time.Second, func() bool { return len(el.list()) == 1 }, "the error reported")
	// Its own failure events are not sent again.
	a.Event(events.Event{Severity: events.Err, Kind: events.KindSystem, Message: "alert failed", Fields: map[string]string{SinkField: "alert"}})
	a.Event(events.Event{Severity: events.Err, Kind: events.KindSystem, Message: "after"})
	testkit.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(reqs) == 5 }, "the next post")
	mu.Lock()
	last := string(reqs[4].body)
	mu.Unlock()
	if !strings.Contains(last, `"after"`) {
		t.Errorf("got %s", last)
	}
	// The sender counts a post when its answer is read, which may be
	// after the receiver has it.
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		st := a.Stats()
		return len(st.Webhooks) == 1 && st.Webhooks[0] == (WebhookStats{URL: hook.URL, Sent: 2, Failed: 2}), fmt.Sprintf("stats %+v", st)
	}, "the webhook's counters")
	if e := el.list(); len(e) != 1 || !strings.Contains(e[0], "400 Bad Request") || !strings.HasPrefix(e[0], srv.URL()+"/hook: attempt 1 of 3") {
		t.Errorf("errors %q", e)
	}
}

func TestConfigureNamesBadCA(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	err := a.Configure(config.Alerts{Webhooks: []config.Webhook{{URL: "https://127.0.0.1/", Severity: "warning", CACert: "junk"}}})
	if err == nil || !strings.Contains(err.Error(), "options.alerts.webhooks[0].caCert") {
		t.Errorf("err = %v", err)
	}
}
