package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/events"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
// under the webhook's secret.
const SignatureHeader = "X-Fulcrum-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Payload is the JSON body POSTed to a webhook: the event and the
// appliance that sent it.
type Payload struct {
	// Host is the appliance's host name.
	Host string `json:"host"`
	// Event is the event as the API lists it.
	Event events.Event `json:"event"`
}

type webhook struct {
	a       *Alerter
	cfg     config.Webhook
	client  *http.Client
	queue   chan events.Event
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	st      streak
	dropped atomic.Int64
	sent    atomic.Int64
	failed  atomic.Int64
	once    sync.Once
}

func newWebhook(a *Alerter, w config.Webhook) (*webhook, error) {
	tcfg, err := tlsConfig("", w.CACert)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tcfg, ForceAttemptHTTP2: true, MaxIdleConns: 2, IdleConnTimeout: time.Minute,
		TLSHandshakeTimeout: WebhookTimeout, ResponseHeaderTimeout: WebhookTimeout}
	ctx, cancel := context.WithCancel(context.Background())
	h := &webhook{a: a, cfg: w, client: &http.Client{Transport: tr, Timeout: WebhookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		queue: make(chan events.Event, WebhookQueue), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go h.run()
	return h, nil
}

func (h *webhook) add(e events.Event) {
	if !covers(h.cfg.Severity, e) {
		return
	}
	select {
	case h.queue <- e:
	default:
		h.dropped.Add(1)
	}
}

func (h *webhook) stop() {
	h.once.Do(func() {
		h.cancel()
		<-h.done
		h.client.CloseIdleConnections()
	})
}

func (h *webhook) run() {
	defer close(h.done)
	for {
		select {
		case <-h.ctx.Done():
			return
		case e := <-h.queue:
			if err := h.send(e); err != nil {
				if h.ctx.Err() != nil {
					return
				}
				h.failed.Add(1)
				h.a.failed(&h.st, h.cfg.URL, err)
			} else {
				h.sent.Add(1)
				h.a.succeeded(&h.st)
			}
		}
	}
}

// send POSTs e, retrying network errors, 429 and 5xx answers.
func (h *webhook) send(e events.Event) error {
	body, err := json.Marshal(Payload{Host: h.a.o.Hostname, Event: e})
	if err != nil {
		return err
	}
	wait := h.a.o.RetryWait
	var last error
	for attempt := range WebhookAttempts {
		if attempt > 0 {
			select {
			case <-h.ctx.Done():
				return h.ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		retry, err := h.post(body)
		if err == nil {
			return nil
		}
		last = fmt.Errorf("attempt %d of %d: %w", attempt+1, WebhookAttempts, err)
		if !retry {
			break
		}
	}
	return last
}

func (h *webhook) post(body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Fulcrum")
	if h.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(h.cfg.Secret, body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("answered %s", resp.Status)
	default:
		return false, fmt.Errorf("answered %s", resp.Status)
	}
}
