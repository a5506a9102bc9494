// Package alert sends events to people: by e-mail through an SMTP relay
// (batched) and as JSON POSTs to webhooks (signed with HMAC-SHA256 when a
// secret is set). Each destination receives the events of its severity
// and every more severe one.
//
// Sending never blocks the caller: the mailer and each webhook have a
// goroutine and a bounded queue of their own.
package alert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// Defaults of Options.
const (
	// DefaultBatchWindow: events within this time of the first one go in
	// one mail.
	DefaultBatchWindow = 10 * time.Second
	// DefaultMailInterval: at most one mail per this time to the
	// recipient list.
	DefaultMailInterval = time.Minute
	// DefaultRetryWait is the wait before a webhook's first retry; it
	// doubles for each next one.
	DefaultRetryWait = time.Second
	// WebhookTimeout bounds one webhook attempt.
	WebhookTimeout = 5 * time.Second
	// WebhookAttempts is the number of attempts per event.
	WebhookAttempts = 3
	// SMTPTimeout bounds one mail's whole SMTP exchange.
	SMTPTimeout = 30 * time.Second
	// MaxBatch is the most events listed in one mail; the others are
	// counted in it.
	MaxBatch = 100
	// WebhookQueue is each webhook's queue, in events.
	WebhookQueue = 256
)

// SinkField is the field that marks a KindSystem event about a failing
// sink; its value is "alert" for the alerter's own failures, which it
// does not send (no alert loop).
const SinkField = "sink"

// Options configure an Alerter.
type Options struct {
	// Logger receives sending errors; slog.Default when nil.
	Logger *slog.Logger
	// Hostname names the appliance in mail subjects and bodies; ""
	// means os.Hostname.
	Hostname string
	// OnError, when set, is called once per failure streak of a
	// destination ("email" or the webhook's URL) with its error; again
	// only after a success. It must not block.
	OnError func(dest string, err error)
	// BatchWindow, MailInterval and RetryWait default to the constants
	// above; tests shorten them.
	BatchWindow  time.Duration
	MailInterval time.Duration
	RetryWait    time.Duration
}

// Alerter sends events by e-mail and to webhooks. Its methods are safe for
// concurrent use.
type Alerter struct {
	o    Options
	log  *slog.Logger
	mail *mailer

	mu     sync.Mutex
	hooks  []*webhook
	closed bool
}

// New returns an Alerter with no destination; Configure gives it some.
func New(o Options) *Alerter {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.BatchWindow <= 0 {
		o.BatchWindow = DefaultBatchWindow
	}
	if o.MailInterval <= 0 {
		o.MailInterval = DefaultMailInterval
	}
	if o.RetryWait <= 0 {
		o.RetryWait = DefaultRetryWait
	}
	a := &Alerter{o: o, log: o.Logger}
	a.mail = newMailer(a)
	return a
}

// Configure sets the destinations from c (a validated configuration's
// options.alerts). Events already batched for mail stay batched and go to
// the new settings; a webhook whose settings are unchanged keeps its
// queue. A CA that does not parse is an error naming its field; the
// other destinations are still configured.
func (a *Alerter) Configure(c config.Alerts) error {
	var errs []error
	if err := a.mail.configure(c.Email); err != nil {
		errs = append(errs, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errors.New("alert: closed")
	}
	old := map[config.Webhook]*webhook{}
	for _, h := range a.hooks {
		old[h.cfg] = h
	}
	var hooks []*webhook
	for i, w := range c.Webhooks {
		if h := old[w]; h != nil {
			delete(old, w)
			hooks = append(hooks, h)
			continue
		}
		h, err := newWebhook(a, w)
		if err != nil {
			errs = append(errs, fmt.Errorf("options.alerts.webhooks[%d].caCert: %w", i, err))
			continue
		}
		hooks = append(hooks, h)
	}
	for _, h := range old {
		h.stop()
	}
	a.hooks = hooks
	return errors.Join(errs...)
}

// Stats are the alerter's counters, for the metrics.
type Stats struct {
	// MailsSent and MailsFailed count mails (batches of events).
	MailsSent   int64 `json:"mailsSent"`
	MailsFailed int64 `json:"mailsFailed"`
	// Webhooks are the webhooks' counters in configuration order.
	Webhooks []WebhookStats `json:"webhooks"`
}

// WebhookStats are one webhook's counters.
type WebhookStats struct {
	// URL is the webhook's URL.
	URL string `json:"url"`
	// Sent and Failed count events posted and events given up on after
	// their attempts; Dropped those that did not fit the queue.
	Sent    int64 `json:"sent"`
	Failed  int64 `json:"failed"`
	Dropped int64 `json:"dropped"`
}

// Stats returns the counters.
func (a *Alerter) Stats() Stats {
	st := Stats{MailsSent: a.mail.sent.Load(), MailsFailed: a.mail.failed.Load(), Webhooks: []WebhookStats{}}
	a.mu.Lock()
	hooks := a.hooks
	a.mu.Unlock()
	for _, h := range hooks {
		st.Webhooks = append(st.Webhooks, WebhookStats{URL: h.cfg.URL, Sent: h.sent.Load(), Failed: h.failed.Load(), Dropped: h.dropped.Load()})
	}
	return st
}

// Event sends e to every destination whose severity covers it.
func (a *Alerter) Event(e events.Event) {
	if e.Kind == events.KindSystem && e.Fields[SinkField] == "alert" {
		return
	}
	a.mail.add(e)
	a.mu.Lock()
	hooks := a.hooks
	a.mu.Unlock()
	for _, h := range hooks {
		h.add(e)
	}
}

// Run sends the events of sub until its channel is closed.
func (a *Alerter) Run(sub *events.Subscription) {
	for e := range sub.C() {
		a.Event(e)
	}
}

// Close stops the destinations; a mail batch still gathering is sent
// first (within SMTPTimeout).
func (a *Alerter) Close() {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.closed = true
	hooks := a.hooks
	a.hooks = nil
	a.mu.Unlock()
	for _, h := range hooks {
		h.stop()
	}
	a.mail.close()
}

// streak reports a destination's failures once per streak.
type streak struct {
	mu     sync.Mutex
	failed bool
}

func (a *Alerter) failed(s *streak, dest string, err error) {
	s.mu.Lock()
	first := !s.failed
	s.failed = true
	s.mu.Unlock()
	a.log.Warn("alert: cannot send", "to", dest, "err", err)
	if first && a.o.OnError != nil {
		a.o.OnError(dest, err)
	}
}

func (a *Alerter) succeeded(s *streak) {
	s.mu.Lock()
	s.failed = false
	s.mu.Unlock()
}

// rootCAs parses an optional PEM bundle; nil means the system's roots.
func rootCAs(pemText string) (*x509.CertPool, error) {
	if pemText == "" {
		return nil, nil
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM([]byte(pemText)) {
		return nil, errors.New("no PEM certificate")
	}
	return p, nil
}

func tlsConfig(serverName, caPEM string) (*tls.Config, error) {
	pool, err := rootCAs(caPEM)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, RootCAs: pool}, nil
}

// covers reports whether a destination with least severity name gets e.
func covers(name string, e events.Event) bool {
	lvl, ok := config.SeverityLevel(name)
	if !ok {
		lvl = int(events.Warning)
	}
	return int(e.Severity) <= lvl
}
